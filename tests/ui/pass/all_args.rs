//! Every argument at once, on each flavor that takes it.

#[leakcheck::test(
    flavor = "multi_thread",
    worker_threads = 2,
    grace = "500ms",
    max_tasks = 10,
    ignore_spawn_site = "src/metrics.rs",
    ignore_fn = ["hyper::client", "my_crate::pool"],
    ignore_name = ["flusher"],
    crate = "::leakcheck",
)]
async fn multi_thread() {}

#[leakcheck::test(
    flavor = "current_thread",
    start_paused = true,
    unhandled_panic = "shutdown_runtime",
    grace = "0s",
    max_tasks = 1
)]
async fn current_thread() {}

#[leakcheck::test(flavor = "local", start_paused = false, unhandled_panic = "ignore")]
async fn local() {}

fn main() {}
