#[leakcheck::test(worker_threads = 4)]
async fn worker_threads_without_flavor() {}

fn main() {}
