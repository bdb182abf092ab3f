//! [`State`]: what a tracker and its runtime's hooks share, whichever way
//! tasks are observed (that part is `mode::Data`).

use std::sync::atomic::{AtomicU64, AtomicUsize};

use parking_lot::Mutex;
use tokio::sync::Notify;

use crate::fanout::FanoutCounts;
use crate::options::Options;

/// One tracker's state, shared with the hooks of its runtime.
pub(crate) struct State {
    /// The test (or tracker) name used in report headlines.
    pub(crate) name: String,
    pub(crate) options: Options,
    /// Tasks with a higher id were spawned after the baseline (tokio's task
    /// ids come from one process-wide counter that only goes up).
    pub(crate) baseline: AtomicU64,
    /// Checks waiting for tasks to end; the terminate hook notifies only if > 0.
    pub(crate) waiters: AtomicUsize,
    pub(crate) notify: Notify,
    /// `spawn_blocking` work already running at the baseline.
    pub(crate) blocking_baseline: AtomicUsize,
    /// The `max_tasks` counting, when a limit is set.
    pub(crate) fanout: Option<Mutex<FanoutCounts>>,
    /// The test this tracker checks (see `owner`), once a test thread entered it.
    #[cfg_attr(not(feature = "tracing"), allow(dead_code))]
    pub(crate) owner: std::sync::OnceLock<u64>,
}

impl State {
    pub(crate) fn new(name: String, options: Options) -> State {
        State {
            name,
            baseline: AtomicU64::new(0),
            waiters: AtomicUsize::new(0),
            notify: Notify::new(),
            blocking_baseline: AtomicUsize::new(0),
            fanout: options.max_task_limit().map(FanoutCounts::new),
            owner: std::sync::OnceLock::new(),
            options,
        }
    }
}
