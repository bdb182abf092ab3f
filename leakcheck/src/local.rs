//! Per-thread facts the task hooks read: whether this thread runs a
//! `#[leakcheck::test]` body, a terminate that came before its spawn, and
//! the task whose record the terminate hook just removed.

use std::cell::Cell;

thread_local! {
    /// Set while this thread runs a `#[leakcheck::test]` body.
    static TEST_THREAD: Cell<bool> = const { Cell::new(false) };
    /// The last task id whose terminate hook found no record on this thread:
    /// tokio runs terminate *before* spawn when spawning onto a closed runtime.
    static TOMBSTONE: Cell<u64> = const { Cell::new(0) };
    /// The last task whose record the terminate hook removed on this
    /// thread. tokio runs a completing task's terminate hook inside its
    /// last poll, before the after-poll hook, on the same thread.
    static JUST_ENDED: Cell<u64> = const { Cell::new(0) };
}

/// Marks (or unmarks) this thread as running a test body; returns the old mark.
pub(crate) fn set_test_thread(on: bool) -> bool {
    TEST_THREAD.try_with(|t| t.replace(on)).unwrap_or(false)
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

/// Remembers that the terminate hook removed task `id`'s record.
#[cfg_attr(not(tokio_unstable), allow(dead_code))]
pub(crate) fn ended(id: u64) {
    let _ = JUST_ENDED.try_with(|t| t.set(id));
}

/// True if the terminate hook just removed `id`'s record on this thread:
/// its after-poll hook has nothing to update.
#[cfg_attr(not(tokio_unstable), allow(dead_code))]
pub(crate) fn just_ended(id: u64) -> bool {
    JUST_ENDED.try_with(Cell::get).is_ok_and(|last| last == id)
}
