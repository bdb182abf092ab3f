#[leakcheck::test(flavor = "threaded_scheduler")]
async fn old_flavor_name() {}

fn main() {}
