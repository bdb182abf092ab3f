//! libc's own `pthread_create`, behind leakcheck's interposed one: to
//! start a thread that has no trampoline (so no tracing default of
//! leakcheck's), and for the interposer to call.

use std::ffi::c_void;
use std::sync::atomic::{AtomicUsize, Ordering::*};

use libc::{c_int, pthread_attr_t, pthread_t};

/// A thread's start routine.
pub(super) type Start = extern "C" fn(*mut c_void) -> *mut c_void;

/// `pthread_create`'s signature.
pub(super) type Create =
    unsafe extern "C" fn(*mut pthread_t, *const pthread_attr_t, Start, *mut c_void) -> c_int;

/// libc's `pthread_create`, looked up once; `None` if the dynamic linker
/// does not find it.
pub(super) fn real_create() -> Option<Create> {
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
pub(super) fn run_raw(routine: Start, arg: *mut c_void) -> bool {
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
