#[leakcheck::test(flavor = "multi_threaded")]
async fn bad_flavor() {}

fn main() {}
