//! Count mode: no `--cfg tokio_unstable`, so no task hooks. Leaks are
//! counted with tokio's stable `num_alive_tasks`.

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;

use tokio::runtime::{Builder, Handle};

use super::Which;
use crate::capture::Capture;
use crate::census::Census;
use crate::metrics;
use crate::snapshot::TaskInfo;
use crate::state::State;

/// Tasks have no identities here: checks poll the count on a backoff.
pub(crate) const IDENTITIES: bool = false;

/// The live-task count when the baseline was taken.
pub(crate) struct Data {
    alive_baseline: AtomicUsize,
    capture: Capture,
}

impl Data {
    pub(crate) fn new(capture: Capture) -> Data {
        Data {
            alive_baseline: AtomicUsize::new(0),
            capture,
        }
    }
}

/// No hooks to install without `--cfg tokio_unstable`.
pub(crate) fn install(_: &mut Builder, _: &Arc<State>, _: &Arc<Data>) {}

pub(crate) fn set_baseline(_: &State, data: &Data, handle: Option<&Handle>) {
    let alive = handle.map_or(0, |h| metrics::read(h).alive);
    data.alive_baseline.store(alive, SeqCst);
}

/// Reads tokio's metrics, so only from inside the runtime; 0 elsewhere.
pub(crate) fn live_count(_: &Data) -> usize {
    Handle::try_current().map_or(0, |h| metrics::read(&h).alive)
}

pub(crate) fn live_tasks(_: &State, _: &Data, _: Which) -> Vec<TaskInfo> {
    Vec::new()
}

#[cfg_attr(not(feature = "endpoint"), allow(dead_code))]
pub(crate) fn first_tasks(_: &State, _: &Data, _: usize) -> Vec<TaskInfo> {
    Vec::new()
}

/// No task is known one by one here: an empty census.
pub(crate) fn census(_: &State, data: &Data, _: bool) -> Census {
    Census::empty(data.capture)
}

/// No table here.
pub(crate) fn table_bytes(_: &Data) -> usize {
    0
}

pub(crate) fn unidentified(_: &State, data: &Data, handle: Option<&Handle>) -> usize {
    let alive = handle.map_or(0, |h| metrics::read(h).alive);
    alive.saturating_sub(data.alive_baseline.load(SeqCst))
}

/// No task is tracked one by one here.
#[cfg_attr(not(feature = "tracing"), allow(dead_code))]
pub(crate) fn is_tracked(_: &Data, _: u64) -> bool {
    false
}
