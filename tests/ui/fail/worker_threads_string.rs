#[leakcheck::test(flavor = "multi_thread", worker_threads = "2")]
async fn worker_threads_string() {}

fn main() {}
