// trybuild builds without `--cfg tokio_unstable`, where these arguments
// cannot work: each is a compile error at the argument.

#[leakcheck::test(max_tasks = 10, grace = "1s")]
async fn peak() {}

#[leakcheck::test(unhandled_panic = "shutdown_runtime")]
async fn shutdown_on_panic() {}

#[leakcheck::test(flavor = "local")]
async fn local() {}

fn main() {}
