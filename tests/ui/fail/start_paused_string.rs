#[leakcheck::test(start_paused = "yes")]
async fn start_paused_string() {}

fn main() {}
