#[leakcheck::test(flavor = "multi_thread", start_paused = true)]
async fn start_paused_multi_thread() {}

fn main() {}
