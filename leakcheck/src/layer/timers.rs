//! When a task's next timer fires, from tokio's timer instrumentation.
//!
//! Every `Sleep` (also the one inside an `Interval` or a `timeout`) is a
//! `runtime.resource` span of kind `timer`. When it is armed (first poll or
//! a reset) tokio emits a `runtime::resource::state_update` event with the
//! `duration` until it fires; each poll emits `poll_op` events whose last
//! one says whether it has fired. Both are emitted while the polling task's
//! span is entered, so the timer belongs to the task polling it, which also
//! holds for a timer created elsewhere and moved into the task.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use rustc_hash::FxHashMap;

fn polling_task() -> Option<u64> {
    super::tasks::polling()
}

/// One timer, kept in its span's extensions.
#[derive(Debug, Default)]
pub(super) struct Timer {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    owner: Option<u64>,
    deadline: Option<Instant>,
    armed: bool,
}

type Index = Mutex<FxHashMap<u64, Vec<Arc<Timer>>>>;

/// Timers by the task they belong to.
fn index() -> &'static Index {
    static INDEX: OnceLock<Index> = OnceLock::new();
    INDEX.get_or_init(Default::default)
}

impl Timer {
    /// A timer created now, belonging to the task being polled, if any.
    pub(super) fn created() -> Arc<Timer> {
        let timer = Arc::new(Timer::default());
        timer.move_to(polling_task());
        timer
    }

    /// Armed to fire `after` from now (a `state_update`).
    pub(super) fn armed(self: &Arc<Self>, after: Duration) {
        self.move_to(polling_task());
        let mut state = self.state.lock();
        state.deadline = Some(Instant::now() + after);
        state.armed = true;
    }

    /// A poll saw whether it fired (the last `poll_op` of a poll wins).
    pub(super) fn polled(self: &Arc<Self>, ready: bool) {
        self.move_to(polling_task());
        self.state.lock().armed = !ready;
    }

    /// The timer was dropped.
    pub(super) fn closed(self: &Arc<Self>) {
        self.move_to(None);
    }

    fn move_to(self: &Arc<Self>, owner: Option<u64>) {
        let mut state = self.state.lock();
        if owner == state.owner {
            return;
        }
        let mut index = index().lock();
        if let Some(old) = state.owner {
            if let Some(timers) = index.get_mut(&old) {
                timers.retain(|t| !Arc::ptr_eq(t, self));
                if timers.is_empty() {
                    index.remove(&old);
                }
            }
        }
        if let Some(new) = owner {
            index.entry(new).or_default().push(self.clone());
        }
        state.owner = owner;
    }
}

/// How long until the next armed timer of `task` fires. A deadline that
/// has passed while the timer still waits is stale (tokio before 1.54 does
/// not report an `Interval`'s later deadlines) and says nothing.
pub(crate) fn next_wake(task: u64) -> Option<Duration> {
    let timers = index().lock().get(&task)?.clone();
    let now = Instant::now();
    timers
        .iter()
        .filter_map(|t| {
            let state = t.state.lock();
            state.armed.then_some(state.deadline?)
        })
        .filter_map(|deadline| deadline.checked_duration_since(now))
        .min()
}

/// `duration` in `unit` (tokio reports timers in ms).
pub(super) fn duration(value: u64, unit: Option<&'static str>) -> Duration {
    match unit {
        Some("s") => Duration::from_secs(value),
        Some("us" | "µs") => Duration::from_micros(value),
        Some("ns") => Duration::from_nanos(value),
        _ => Duration::from_millis(value),
    }
}
