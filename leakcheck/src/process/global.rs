//! Finding the user's global default dispatcher, for the tee to pass
//! everything on to.
//!
//! tracing has no getter for the global default, but a thread without a
//! thread-local default sees it: a look asks one started with libc's own
//! `pthread_create` (a probe, about 20µs). Looks are serialized, and a
//! callback that finds one under way waits for it, so that its event
//! reaches the global default the look finds. While no global is known, a
//! callback looks
//!
//! - when a new dispatcher was just made (tracing then calls every
//!   dispatcher's `max_level_hint`, and `set_global_default` usually
//!   follows at once): at the next callback of the thread that made it;
//!   at any callback for the next [`WINDOW`], unless a look began after
//!   the dispatcher was made; and at the first callback after that;
//! - and from any callback at most every [`EVERY`], so that a global set
//!   later (on a helper thread that logs nothing afterwards, in a
//!   constructor after other tracing activity) is found all the same.
//!
//! Until it is found, a callback costs one read of the coarse clock (a few
//! nanoseconds).

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering::*};
use std::sync::OnceLock;

use parking_lot::Mutex;
use tracing_core::subscriber::NoSubscriber;
use tracing_core::Dispatch;

/// How long after a new dispatcher is made any callback may look for a
/// new global default.
const WINDOW: coarsetime::Duration = coarsetime::Duration::from_millis(4);

/// How often, at most, a callback looks for a global default otherwise.
const EVERY: coarsetime::Duration = coarsetime::Duration::from_millis(20);

/// The coarse monotonic clock, in coarsetime's ticks (a few ns to read).
fn ticks() -> u64 {
    coarsetime::Instant::now_without_cache_update().as_ticks()
}

thread_local! {
    /// This thread made a dispatcher and has not looked for a global since.
    static MADE_HERE: Cell<bool> = const { Cell::new(false) };
    /// This thread is refreshing callsite interests itself.
    static REBUILDING: Cell<bool> = const { Cell::new(false) };
}

/// Whether this thread is refreshing callsite interests after finding the
/// global (tracing then asks every dispatcher its `max_level_hint`: no
/// dispatcher was made).
pub(super) fn rebuilding() -> bool {
    REBUILDING.try_with(Cell::get).unwrap_or(true)
}

/// Marks this thread as refreshing callsite interests until dropped.
struct Rebuilding;

impl Rebuilding {
    fn start() -> Rebuilding {
        let _ = REBUILDING.try_with(|r| r.set(true));
        Rebuilding
    }
}

impl Drop for Rebuilding {
    fn drop(&mut self) {
        let _ = REBUILDING.try_with(|r| r.set(false));
    }
}

/// Why a callback looks.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Why {
    /// Its thread just made a dispatcher.
    MadeHere,
    /// A dispatcher was made less than [`WINDOW`] ago.
    Window,
    /// The slow cadence, due at that time.
    Due(u64),
}

/// The user's global default, once found, and when to look for it.
pub(super) struct Global {
    found: OnceLock<Dispatch>,
    /// Until when any callback may look (a dispatcher was made), in coarse
    /// clock ticks; 0 for no window.
    window_until: AtomicU64,
    /// When the next look of the slow cadence is due, in coarse clock
    /// ticks (0: at once, for a global set before the tee existed).
    next_look: AtomicU64,
    /// `hidden::builds_so_far()` as the latest look began.
    looked_after: AtomicU64,
    /// Held by the look under way.
    looking: Mutex<()>,
}

impl Global {
    pub(super) fn new() -> Global {
        Global {
            found: OnceLock::new(),
            window_until: AtomicU64::new(0),
            next_look: AtomicU64::new(0),
            looked_after: AtomicU64::new(0),
            looking: Mutex::new(()),
        }
    }

    /// The global default if known, without looking.
    #[inline]
    pub(super) fn get(&self) -> Option<&Dispatch> {
        self.found.get()
    }

    /// The global default, looking for it if one may have been set since
    /// the last look (see the module docs).
    #[inline]
    pub(super) fn find(&self) -> Option<&Dispatch> {
        match self.found.get() {
            Some(found) => Some(found),
            None => self.maybe_look(),
        }
    }

    /// A dispatcher other than the tee was just made on this thread.
    pub(super) fn dispatcher_made(&self) {
        if self.found.get().is_none() {
            // look for a while, and once more at the first callback after
            // that (a constructor's `init()` may come before any other
            // thread's tracing activity)
            let _ = MADE_HERE.try_with(|m| m.set(true));
            let until = ticks() + WINDOW.as_ticks();
            self.window_until.store(until, Relaxed);
            self.next_look.fetch_min(until, Relaxed);
        }
    }

    fn maybe_look(&self) -> Option<&Dispatch> {
        let made_here = MADE_HERE.try_with(|m| m.replace(false)).unwrap_or(false);
        let now = ticks();
        let why = if made_here {
            Why::MadeHere
        } else if now <= self.window_until.load(Relaxed)
            && self.looked_after.load(Relaxed) < super::hidden::builds_so_far()
        {
            Why::Window
        } else if now >= self.next_look.load(Relaxed) {
            Why::Due(now)
        } else {
            return self.after_look_under_way();
        };
        self.look(why)
    }

    /// The global default as the look under way (if any) finds it: a
    /// callback that waits for it keeps its event for the user's
    /// subscriber (a probe takes about 20µs, and only while none is known).
    fn after_look_under_way(&self) -> Option<&Dispatch> {
        if self.looking.is_locked() {
            drop(self.looking.lock());
        }
        self.found.get()
    }

    /// Looks for the global default from a thread that has none of its
    /// own, unless a look that began meanwhile makes this one redundant.
    #[cold]
    fn look(&self, why: Why) -> Option<&Dispatch> {
        let looking = self.looking.lock();
        if self.found.get().is_some() {
            return self.found.get();
        }
        let since = super::hidden::builds_so_far();
        let skip = match why {
            Why::MadeHere => false,
            Why::Window => self.looked_after.load(Relaxed) >= since,
            Why::Due(due) => due < self.next_look.load(Relaxed),
        };
        if skip {
            return None; // another callback just looked
        }
        self.looked_after.store(since, Relaxed);
        self.next_look.store(ticks() + EVERY.as_ticks(), Relaxed);
        let found = ask();
        if let Some(found) = found {
            super::hidden::global_found();
            let _ = self.found.set(found);
            self.window_until.store(0, Relaxed);
            drop(looking);
            // interests so far were "maybe": refine them now that the
            // global is known (two dispatchers exist, so tracing asks each
            // one instead of calling back into the default)
            let _rebuilding = Rebuilding::start();
            tracing_core::callsite::rebuild_interest_cache();
        }
        self.found.get()
    }
}

/// The global default dispatcher, asked from a thread that has no
/// thread-local default (leakcheck never sets a global one); `None` while
/// there is none.
fn ask() -> Option<Dispatch> {
    extern "C" fn ask(out: *mut std::ffi::c_void) -> *mut std::ffi::c_void {
        let found =
            tracing::dispatcher::get_default(|d| (!d.is::<NoSubscriber>()).then(|| d.clone()));
        // SAFETY: `out` points at the caller's `Option<Dispatch>`, alive
        // until this thread is joined.
        unsafe { *out.cast::<Option<Dispatch>>() = found };
        std::ptr::null_mut()
    }
    let mut found: Option<Dispatch> = None;
    super::raw::run_raw(ask, std::ptr::from_mut(&mut found).cast());
    found
}
