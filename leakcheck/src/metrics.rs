//! Counts from tokio's runtime metrics (through tokio-metrics): the only
//! signal in count mode, and the only view of `spawn_blocking` tasks, which
//! fire no spawn hook.

use tokio::runtime::Handle;
#[cfg(tokio_unstable)]
use tokio::runtime::RuntimeFlavor;

/// A point-in-time reading of one runtime.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Counts {
    /// Async tasks alive (tokio's `num_alive_tasks`): count mode's signal.
    #[cfg_attr(tokio_unstable, allow(dead_code))]
    pub(crate) alive: usize,
    /// Blocking-pool work running or queued, not counting the runtime's own
    /// worker threads. `None` without `--cfg tokio_unstable`.
    pub(crate) blocking: Option<usize>,
}

pub(crate) fn read(handle: &Handle) -> Counts {
    let Some(m) = tokio_metrics::RuntimeMonitor::new(handle)
        .intervals()
        .next()
    else {
        return Counts::default();
    };
    Counts {
        alive: m.live_tasks_count,
        blocking: blocking(handle, &m),
    }
}

#[cfg(tokio_unstable)]
fn blocking(handle: &Handle, m: &tokio_metrics::RuntimeMetrics) -> Option<usize> {
    // multi_thread workers are themselves blocking-pool threads, always busy.
    let workers = match handle.runtime_flavor() {
        RuntimeFlavor::MultiThread => m.workers_count,
        _ => 0,
    };
    let busy = m
        .blocking_threads_count
        .saturating_sub(m.idle_blocking_threads_count);
    Some((busy + m.blocking_queue_depth).saturating_sub(workers))
}

#[cfg(not(tokio_unstable))]
fn blocking(_: &Handle, _: &tokio_metrics::RuntimeMetrics) -> Option<usize> {
    None
}
