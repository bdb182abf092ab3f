#[leakcheck::test(unhandled_panic = "abort")]
async fn bad_unhandled_panic() {}

fn main() {}
