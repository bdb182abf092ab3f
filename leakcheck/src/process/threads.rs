//! Every OS thread started in the process, through an interposed
//! `pthread_create`: who started it, from which call chain, and whether it
//! still runs.
//!
//! The executable's own `pthread_create` wins over libc's for every call
//! made through the dynamic linker (std's, and any C library's), so each new
//! thread starts in [`trampoline`], which records it, hands it the test
//! that started it and leakcheck's tracing default, then runs the real start
//! routine. The trampoline runs before std sets the thread up, so it must
//! not touch `std::thread::current()`.

use std::cell::RefCell;
use std::ffi::c_void;
use std::sync::atomic::{AtomicI32, AtomicU64, AtomicU8, Ordering::*};
use std::sync::{Arc, OnceLock};

use libc::{c_int, pthread_attr_t, pthread_t};
use parking_lot::Mutex;

use crate::owner::{self, Owner};

use super::raw::{real_create, Start};

/// One thread started during the run.
#[derive(Debug)]
pub(crate) struct Thread {
    /// The kernel's thread id, once the thread runs.
    pub(crate) tid: AtomicI32,
    /// The call chain that started it (captured on the starting thread).
    pub(crate) chain: u32,
    /// The same, from the DWARF unwinder, when the frame-pointer walk
    /// found nothing (a build without frame pointers).
    pub(crate) unwound: Option<Arc<[usize]>>,
    /// The test whose code started it.
    pub(crate) owner: Option<Arc<Owner>>,
    state: AtomicU8,
}

const STARTING: u8 = 0;
const RUNNING: u8 = 1;
const EXITED: u8 = 2;

impl Thread {
    pub(crate) fn running(&self) -> bool {
        self.state.load(Acquire) != EXITED
    }

    /// What a report says of it.
    pub(crate) fn info(&self) -> crate::thread::ThreadInfo {
        let tid = self.tid.load(Relaxed);
        // the name the kernel knows it by: at most 15 bytes of the Rust name
        let comm = std::fs::read_to_string(format!("/proc/self/task/{tid}/comm"));
        crate::thread::ThreadInfo {
            name: comm
                .ok()
                .map(|c| c.trim_end().to_owned())
                .filter(|_| tid != 0),
            tid,
            test: self.owner.as_ref().map(|o| o.name.to_string()),
            chain: self.chain,
            unwound: self.unwound.clone(),
        }
    }
}

fn registry() -> &'static Mutex<Vec<Arc<Thread>>> {
    static THREADS: OnceLock<Mutex<Vec<Arc<Thread>>>> = OnceLock::new();
    THREADS.get_or_init(Default::default)
}

/// Every thread started during the run that has not exited, in order.
pub(crate) fn all() -> Vec<Arc<Thread>> {
    registry().lock().clone()
}

static EXITS: AtomicU64 = AtomicU64::new(0);

/// Threads exited so far. Each exit also notifies the condition variable
/// of `tasks::ended_sync` (without counting there), so that one wait sees
/// both threads and tasks end.
pub(crate) fn exits() -> u64 {
    EXITS.load(SeqCst)
}

thread_local! {
    /// This thread's record; its drop (the thread's TLS teardown) marks it exited.
    static CURRENT: RefCell<Option<ExitMark>> = const { RefCell::new(None) };
}

struct ExitMark(Arc<Thread>);

impl Drop for ExitMark {
    fn drop(&mut self) {
        self.0.state.store(EXITED, Release);
        registry().lock().retain(|t| !Arc::ptr_eq(t, &self.0));
        EXITS.fetch_add(1, SeqCst);
        // a waiter reads `EXITS` holding this lock, then waits: taking it
        // here means the notification cannot fall between the two
        let (lock, cv) = crate::layer::tasks::ended_sync();
        drop(lock.lock());
        cv.notify_all();
    }
}

/// Whether this thread was started through the trampoline (so std has set
/// it up by the time it runs user code).
pub(super) fn started_here() -> bool {
    CURRENT.try_with(|c| c.borrow().is_some()).unwrap_or(false)
}

struct Handoff {
    routine: Start,
    arg: *mut c_void,
    thread: Arc<Thread>,
}

/// The interposed `pthread_create`.
///
/// # Safety
///
/// The contract of `pthread_create(3)`.
#[allow(unreachable_pub)] // exported by symbol name, not by path
#[no_mangle]
pub unsafe extern "C" fn pthread_create(
    thread: *mut pthread_t,
    attr: *const pthread_attr_t,
    routine: Start,
    arg: *mut c_void,
) -> c_int {
    let Some(create) = real_create() else {
        return libc::EAGAIN;
    };
    // A thread a test's code starts belongs to that test: the test of the
    // task being polled here (a task of test B on a static runtime's
    // worker that test A's code started is B's), else the thread's. Threads
    // the main thread starts (libtest's test threads among them) are their
    // own.
    let owner = match started_here() {
        true => super::current_owner(),
        false => None,
    };
    let chain = crate::chain::capture();
    let record = Arc::new(Thread {
        tid: AtomicI32::new(0),
        chain,
        unwound: (chain == 0 || forced_unwind()).then(unwind),
        owner,
        state: AtomicU8::new(STARTING),
    });
    // registered before it runs, so it always finds itself
    registry().lock().push(record.clone());
    let handoff = Box::into_raw(Box::new(Handoff {
        routine,
        arg,
        thread: record.clone(),
    }));
    let rc = create(thread, attr, trampoline, handoff.cast());
    if rc != 0 {
        drop(Box::from_raw(handoff));
        registry().lock().retain(|t| !Arc::ptr_eq(t, &record));
    }
    rc
}

/// Runs on the new thread before std's own start code.
extern "C" fn trampoline(handoff: *mut c_void) -> *mut c_void {
    // SAFETY: `pthread_create` passed exactly this box.
    let Handoff {
        routine,
        arg,
        thread,
    } = *unsafe { Box::from_raw(handoff.cast::<Handoff>()) };
    // SAFETY: a syscall without arguments.
    thread.tid.store(unsafe { libc::gettid() }, Relaxed);
    thread.state.store(RUNNING, Release);
    if let Some(owner) = thread.owner.clone() {
        owner::inherit(owner);
    }
    let _ = CURRENT.try_with(|c| *c.borrow_mut() = Some(ExitMark(thread)));
    super::tee::install_here();
    routine(arg)
}

#[cfg(test)]
thread_local! {
    /// Tests only: the threads this thread starts get their chain from the
    /// DWARF unwinder too (see `tests::ForceUnwind`).
    static FORCE_UNWIND: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

fn forced_unwind() -> bool {
    #[cfg(test)]
    return FORCE_UNWIND.try_with(std::cell::Cell::get).unwrap_or(false);
    #[cfg(not(test))]
    false
}

/// The return addresses of the calling thread's stack, from the DWARF
/// unwinder: slow (microseconds), but threads start rarely, and it needs
/// no frame pointers.
#[inline(never)]
fn unwind() -> Arc<[usize]> {
    const MAX: usize = 64;
    let mut ips = Vec::with_capacity(MAX);
    backtrace::trace(|frame| {
        ips.push(frame.ip() as usize);
        ips.len() < MAX
    });
    ips.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record_of(tid: i32) -> Arc<Thread> {
        all()
            .into_iter()
            .find(|t| t.tid.load(Relaxed) == tid)
            .expect("the thread was started through the interposer")
    }

    fn gettid() -> i32 {
        // SAFETY: a syscall without arguments.
        unsafe { libc::gettid() }
    }

    /// The threads this thread starts until dropped are unwound with the
    /// DWARF unwinder too; no other test's threads are.
    struct ForceUnwind;

    impl ForceUnwind {
        fn start() -> ForceUnwind {
            FORCE_UNWIND.with(|f| f.set(true));
            ForceUnwind
        }
    }

    impl Drop for ForceUnwind {
        fn drop(&mut self) {
            FORCE_UNWIND.with(|f| f.set(false));
        }
    }

    /// A build without frame pointers has no frame-pointer chain: the
    /// DWARF unwinder's still tells a runtime's threads from a test's.
    #[test]
    fn runtime_threads_are_known_by_the_dwarf_unwinder_too() {
        let forced = ForceUnwind::start();
        // the runtime starts its workers on this thread, as it is built
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .build()
            .unwrap();
        let worker = rt.block_on(rt.spawn(async { gettid() })).unwrap();
        let mut info = record_of(worker).info();
        assert!(info.unwound.is_some());
        info.chain = 0; // as the frame-pointer walk leaves it without frame pointers
        assert!(info.chain_known());
        assert!(info.is_runtime_thread(), "{:#?}", info.frames());

        let (tid_tx, tid_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
        let plain = std::thread::spawn(move || {
            tid_tx.send(gettid()).unwrap();
            let _ = stop_rx.recv();
        });
        let mut info = record_of(tid_rx.recv().unwrap()).info();
        info.chain = 0;
        assert!(!info.is_runtime_thread(), "{:#?}", info.frames());
        let here = "runtime_threads_are_known_by_the_dwarf_unwinder_too";
        assert!(
            info.frames().iter().any(|f| f.function.contains(here)),
            "{:#?}",
            info.frames()
        );
        stop_tx.send(()).unwrap();
        plain.join().unwrap();
        drop(forced);
        // dropped: this thread's threads are as any other's again
        let info = parked_thread_info();
        assert!(
            info.unwound.is_none() || !crate::chain::walk_available(),
            "{info:?}"
        );
    }

    /// Starts a thread that waits, reads its record, then ends it.
    fn parked_thread_info() -> crate::thread::ThreadInfo {
        let (tid_tx, tid_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            tid_tx.send(gettid()).unwrap();
            let _ = stop_rx.recv();
        });
        let info = record_of(tid_rx.recv().unwrap()).info();
        stop_tx.send(()).unwrap();
        thread.join().unwrap();
        info
    }

    /// Threads of a thread that forces nothing (the other tests' threads,
    /// whatever runs meanwhile) carry no DWARF-unwound chain where the
    /// frame-pointer walk works.
    #[test]
    fn unwinding_is_forced_only_on_the_thread_that_asks() {
        let (forcing_tx, forcing) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
        let other = std::thread::spawn(move || {
            let _forced = ForceUnwind::start();
            forcing_tx.send(()).unwrap();
            let _ = stop_rx.recv();
        });
        forcing.recv().unwrap();
        // another thread forces unwinding meanwhile: not for this one's
        let info = parked_thread_info();
        assert!(
            info.unwound.is_none() || !crate::chain::walk_available(),
            "{info:?}"
        );
        stop_tx.send(()).unwrap();
        other.join().unwrap();
    }
}
