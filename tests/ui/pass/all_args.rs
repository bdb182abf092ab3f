//! Every argument at once, on each flavor that takes it (trybuild builds
//! without `--cfg tokio_unstable`: the arguments that need it are in
//! `fail/needs_tokio_unstable.rs`).

#[leakcheck::test(
    flavor = "multi_thread",
    worker_threads = 2,
    grace = "500ms",
    ignore_spawn_site = "src/metrics.rs",
    ignore_fn = ["hyper::client", "my_crate::pool"],
    ignore_name = ["flusher"],
    crate = "::leakcheck",
)]
async fn multi_thread() {}

#[leakcheck::test(
    flavor = "current_thread",
    start_paused = true,
    unhandled_panic = "ignore",
    grace = "0s"
)]
async fn current_thread() {}

fn main() {}
