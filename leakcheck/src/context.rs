//! Which tracker the current thread belongs to.
//!
//! `verify_none()` and friends find their tracker here: the test harness
//! sets it on the test thread, and `instrument` sets it on every thread the
//! runtime starts. Nothing here is process-global, so parallel tests never
//! see each other's trackers.

use std::cell::{Cell, RefCell};

use crate::tracker::Tracker;

thread_local! {
    static CURRENT: RefCell<Option<Tracker>> = const { RefCell::new(None) };
    /// Set while this thread runs a `#[leakcheck::test]` body.
    static TEST_THREAD: Cell<bool> = const { Cell::new(false) };
    /// The last task id whose terminate hook found no record on this thread:
    /// tokio runs terminate *before* spawn when spawning onto a closed runtime.
    static TOMBSTONE: Cell<u64> = const { Cell::new(0) };
}

/// The tracker of the runtime this thread belongs to.
pub(crate) fn current() -> Option<Tracker> {
    CURRENT.try_with(|c| c.borrow().clone()).ok().flatten()
}

/// Makes `tracker` current on this thread until the guard drops.
pub(crate) fn enter(tracker: &Tracker, test_thread: bool) -> Guard {
    let previous = CURRENT.with(|c| c.replace(Some(tracker.clone())));
    let was_test = TEST_THREAD.with(|t| t.replace(test_thread));
    Guard { previous, was_test }
}

/// Sets the current tracker for a runtime thread (no guard: lives as long as the thread).
pub(crate) fn set_for_thread(tracker: Option<Tracker>) {
    let _ = CURRENT.try_with(|c| *c.borrow_mut() = tracker);
}

/// True on the thread running a `#[leakcheck::test]` body.
#[cfg_attr(not(tokio_unstable), allow(dead_code))]
pub(crate) fn on_test_thread() -> bool {
    TEST_THREAD.try_with(Cell::get).unwrap_or(false)
}

/// Remembers a terminate that came before its spawn.
#[cfg_attr(not(tokio_unstable), allow(dead_code))]
pub(crate) fn bury(id: u64) {
    let _ = TOMBSTONE.try_with(|t| t.set(id));
}

/// True (once) if `id` already terminated on this thread.
#[cfg_attr(not(tokio_unstable), allow(dead_code))]
pub(crate) fn exhume(id: u64) -> bool {
    TOMBSTONE
        .try_with(|t| {
            let hit = t.get() == id;
            if hit {
                t.set(0);
            }
            hit
        })
        .unwrap_or(false)
}

/// Restores the previous tracker when dropped.
#[derive(Debug)]
pub(crate) struct Guard {
    previous: Option<Tracker>,
    was_test: bool,
}

impl Drop for Guard {
    fn drop(&mut self) {
        let previous = self.previous.take();
        let _ = CURRENT.try_with(|c| *c.borrow_mut() = previous);
        let _ = TEST_THREAD.try_with(|t| t.set(self.was_test));
    }
}
