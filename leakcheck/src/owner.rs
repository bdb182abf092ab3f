//! Which test a task belongs to, when tasks are seen through tokio's spans.
//!
//! Tests in one process run on threads of their own (libtest names each
//! after its test), so a test is identified by its thread: an [`Owner`].
//! A task belongs to the owner of the task that spawned it, or, spawned
//! outside any task, to the owner of the thread that spawned it. A thread
//! started by a test's code (its runtime's workers, a `std::thread` it
//! spawns) belongs to that test too when leakcheck sees threads start (the
//! `process` feature); otherwise every thread is its own owner.

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

/// A test (or, outside tests, a thread) that tasks are attributed to.
#[derive(Debug)]
pub(crate) struct Owner {
    pub(crate) id: u64,
    /// The test's name (its thread's name), for report headlines.
    pub(crate) name: Arc<str>,
    /// The thread the test runs on.
    pub(crate) thread: std::thread::ThreadId,
}

thread_local! {
    static OWNER: RefCell<Option<Arc<Owner>>> = const { RefCell::new(None) };
}

fn next_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Relaxed)
}

/// The owner of the current thread, made on first use from the thread's
/// name. Only call this from code that runs after std has set the thread
/// up (tracing callbacks, spawns, checks), never from a thread trampoline.
pub(crate) fn of_thread() -> Option<Arc<Owner>> {
    OWNER
        .try_with(|slot| {
            let mut slot = slot.borrow_mut();
            let owner = slot.get_or_insert_with(|| {
                let thread = std::thread::current();
                let name = thread.name().unwrap_or("an unnamed thread");
                Arc::new(Owner {
                    id: next_id(),
                    name: Arc::from(name),
                    thread: thread.id(),
                })
            });
            owner.clone()
        })
        .ok()
}

/// The owner of the current thread if it has one already; never makes one
/// (safe before `main`, where std may not have set the thread up).
#[cfg_attr(not(feature = "process"), allow(dead_code))]
pub(crate) fn peek() -> Option<Arc<Owner>> {
    OWNER
        .try_with(|slot| slot.try_borrow().ok().and_then(|o| o.clone()))
        .ok()
        .flatten()
}

/// Gives the current thread a fresh owner named `name` until the scope
/// drops: a `#[leakcheck::test]` run is a test of its own, whatever thread
/// it runs on.
pub(crate) fn begin(name: &str) -> Scope {
    let fresh = Arc::new(Owner {
        id: next_id(),
        name: Arc::from(name),
        thread: std::thread::current().id(),
    });
    let previous = OWNER
        .try_with(|slot| slot.replace(Some(fresh)))
        .ok()
        .flatten();
    Scope { previous }
}

/// Restores the thread's previous owner when dropped.
pub(crate) struct Scope {
    previous: Option<Arc<Owner>>,
}

impl Drop for Scope {
    fn drop(&mut self) {
        let previous = self.previous.take();
        let _ = OWNER.try_with(|slot| *slot.borrow_mut() = previous);
    }
}

/// Makes `owner` the current thread's: a thread started by a test's code
/// belongs to that test.
#[cfg_attr(not(feature = "process"), allow(dead_code))]
pub(crate) fn inherit(owner: Arc<Owner>) {
    let _ = OWNER.try_with(|slot| *slot.borrow_mut() = Some(owner));
}
