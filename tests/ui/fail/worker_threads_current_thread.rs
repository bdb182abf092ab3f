#[leakcheck::test(flavor = "current_thread", worker_threads = 2)]
async fn worker_threads_current_thread() {}

fn main() {}
