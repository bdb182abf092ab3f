#[leakcheck::test(grace = "5 parsecs")]
async fn bad_duration() {}

fn main() {}
