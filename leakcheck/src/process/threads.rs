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
use std::sync::atomic::{AtomicI32, AtomicU8, AtomicUsize, Ordering::*};
use std::sync::{Arc, OnceLock};

use libc::{c_int, pthread_attr_t, pthread_t};
use parking_lot::{Condvar, Mutex};

use crate::owner::{self, Owner};

type Start = extern "C" fn(*mut c_void) -> *mut c_void;
type Create =
    unsafe extern "C" fn(*mut pthread_t, *const pthread_attr_t, Start, *mut c_void) -> c_int;

/// One thread started during the run.
#[derive(Debug)]
pub(crate) struct Thread {
    /// The kernel's thread id, once the thread runs.
    pub(crate) tid: AtomicI32,
    /// The call chain that started it (captured on the starting thread).
    pub(crate) chain: u32,
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
        }
    }
}

fn registry() -> &'static Mutex<Vec<Arc<Thread>>> {
    static THREADS: OnceLock<Mutex<Vec<Arc<Thread>>>> = OnceLock::new();
    THREADS.get_or_init(Default::default)
}

/// Every thread started during the run, in order.
pub(crate) fn all() -> Vec<Arc<Thread>> {
    registry().lock().clone()
}

/// Notified when a thread exits.
pub(crate) fn exits() -> &'static (Mutex<u64>, Condvar) {
    static EXITS: OnceLock<(Mutex<u64>, Condvar)> = OnceLock::new();
    EXITS.get_or_init(Default::default)
}

thread_local! {
    /// This thread's record; its drop (the thread's TLS teardown) marks it exited.
    static CURRENT: RefCell<Option<ExitMark>> = const { RefCell::new(None) };
}

struct ExitMark(Arc<Thread>);

impl Drop for ExitMark {
    fn drop(&mut self) {
        self.0.state.store(EXITED, Release);
        let (count, cv) = exits();
        *count.lock() += 1;
        cv.notify_all();
    }
}

/// Whether this thread was started through the trampoline (so std has set
/// it up by the time it runs user code).
fn started_here() -> bool {
    CURRENT.try_with(|c| c.borrow().is_some()).unwrap_or(false)
}

fn real_create() -> Option<Create> {
    static REAL: AtomicUsize = AtomicUsize::new(0);
    let mut found = REAL.load(Acquire);
    if found == 0 {
        // SAFETY: dlsym with RTLD_NEXT and a NUL-terminated name.
        found = unsafe { libc::dlsym(libc::RTLD_NEXT, c"pthread_create".as_ptr()) } as usize;
        REAL.store(found, Release);
    }
    // SAFETY: the symbol libc exports under this name has this signature.
    (found != 0).then(|| unsafe { std::mem::transmute::<usize, Create>(found) })
}

/// Runs `routine(arg)` on a thread started with libc's own `pthread_create`
/// (no trampoline: it has no tracing default of leakcheck's) and joins it.
pub(crate) fn run_raw(routine: Start, arg: *mut c_void) -> bool {
    let Some(create) = real_create() else {
        return false;
    };
    let mut thread: pthread_t = 0;
    // SAFETY: a valid start routine; the thread is joined before returning,
    // so `arg` outlives it.
    unsafe {
        if create(&mut thread, std::ptr::null(), routine, arg) != 0 {
            return false;
        }
        libc::pthread_join(thread, std::ptr::null_mut());
    }
    true
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
    // A thread a test's code starts belongs to that test. Threads the main
    // thread starts (libtest's test threads among them) are their own.
    let owner = match started_here() {
        true => owner::of_thread(),
        false => None,
    };
    let record = Arc::new(Thread {
        tid: AtomicI32::new(0),
        chain: crate::chain::capture(),
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
