//! The tee: the tracing default of every thread, feeding leakcheck's layer
//! and passing everything on to the user's own global subscriber.
//!
//! tracing has one global default, set once; taking it would make the
//! user's `tracing_subscriber::fmt::init()` panic. So leakcheck takes none:
//! the tee is each thread's *thread-local* default (set in the thread's
//! trampoline), with its own span ids (a `Registry` carrying leakcheck's
//! layer). Once the user sets a global subscriber ("the inner"), the tee
//! forwards every span and event to it, translating span ids, so the
//! user's logs keep their spans.
//!
//! tracing has no getter for the global default, but a thread without a
//! thread-local default sees it: the tee asks one started with libc's own
//! `pthread_create` (a probe, about 20µs). While no global is known it
//! asks
//!
//! - when a new dispatcher was just made (tracing then calls every
//!   dispatcher's `max_level_hint`, and `set_global_default` usually
//!   follows at once): on the next callback of the thread that made it,
//!   on every callback anywhere for the next [`WINDOW`], and on the first
//!   callback after that;
//! - and from any callback at most every [`EVERY`], so that a global set
//!   later (on a helper thread that logs nothing afterwards, in a
//!   constructor after other tracing activity) is found all the same.
//!
//! Until it is found, a callback costs one read of the coarse clock (a few
//! nanoseconds).
//!
//! The tee's spans are closed through the thread's default dispatcher
//! (tracing-subscriber's registry closes a span's parent that way, and
//! before 0.3.21 also a span it exits): when a user's scoped subscriber is
//! the default, the tee makes itself the default around those calls, so
//! that its span ids never reach the user's registry.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::*};
use std::sync::OnceLock;

use parking_lot::Mutex;
use tracing_core::field::{Field, Visit};
use tracing_core::span::{Attributes, Current, Id, Record};
use tracing_core::subscriber::{Interest, NoSubscriber};
use tracing_core::{Dispatch, Event, LevelFilter, Metadata, Subscriber};
use tracing_subscriber::layer::{Layer, Layered, SubscriberExt};
use tracing_subscriber::registry::{LookupSpan, Registry, SpanData};

use crate::layer::muted;

/// How long after a new dispatcher is made every callback looks for a new
/// global default. Looks are serialized.
const WINDOW: coarsetime::Duration = coarsetime::Duration::from_millis(4);

/// How often, at most, a callback looks for a global default otherwise.
const EVERY: coarsetime::Duration = coarsetime::Duration::from_millis(20);

type Reg = Layered<Box<dyn Layer<Registry> + Send + Sync>, Registry>;

/// The tee itself.
pub(crate) struct Tee {
    reg: Reg,
    inner: OnceLock<Dispatch>,
    /// Until when every callback looks for a new global (a dispatcher was
    /// made), in coarse clock ticks; 0 for no window.
    window_until: AtomicU64,
    /// When the next look of the slow cadence is due, in coarse clock
    /// ticks (0: at once, for a global set before the tee existed).
    next_look: AtomicU64,
    /// Serializes looks.
    looking: Mutex<()>,
}

/// The coarse monotonic clock, in coarsetime's ticks (a few ns to read).
fn ticks() -> u64 {
    coarsetime::Instant::now_without_cache_update().as_ticks()
}

/// Set once the tee exists: a dispatcher built before is the tee itself.
static READY: AtomicBool = AtomicBool::new(false);

/// Dispatchers built other than the tee: beyond the user's global one, a
/// scoped default of the user's may stand between the tee and its spans.
static FOREIGN: AtomicUsize = AtomicUsize::new(0);

pub(super) fn tee() -> &'static Dispatch {
    static TEE: OnceLock<Dispatch> = OnceLock::new();
    TEE.get_or_init(|| {
        let layer: Box<dyn Layer<Registry> + Send + Sync> = Box::new(crate::layer::layer());
        // a default set before the tee's (a constructor of the user's)
        if tracing::dispatcher::has_been_set() {
            FOREIGN.fetch_add(1, Relaxed);
        }
        let tee = Dispatch::new(Tee {
            reg: Registry::default().with(layer),
            inner: OnceLock::new(),
            window_until: AtomicU64::new(0),
            next_look: AtomicU64::new(0),
            looking: Mutex::new(()),
        });
        READY.store(true, SeqCst);
        tee
    })
}

/// Makes the tee this thread's tracing default, for the thread's life.
pub(crate) fn install_here() {
    // tracing's own thread-local state drops it when the thread ends
    std::mem::forget(tracing::dispatcher::set_default(tee()));
}

/// The inner id of a tee span, kept in the span's extensions.
#[derive(Clone)]
struct InnerId(Id);

thread_local! {
    /// Set while the inner's registry, closing a span, closes its parent
    /// through the default dispatcher (us), and while ours does the same.
    static CLOSING: Cell<Closing> = const { Cell::new(Closing::No) };
    /// This thread made a dispatcher and has not looked for a global since.
    static MADE_HERE: Cell<bool> = const { Cell::new(false) };
    /// This thread is refreshing callsite interests itself.
    static REBUILDING: Cell<bool> = const { Cell::new(false) };
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

/// Whether a span is a task's `runtime.spawn` span (one the layer keeps a
/// task for).
fn is_task_span(meta: &Metadata<'_>) -> bool {
    meta.name() == "runtime.spawn"
        && matches!(meta.target(), "tokio::task" | "tokio::task::blocking")
}

/// The `task.id` field of a `runtime.spawn` span.
#[derive(Default)]
struct TaskIdField(Option<u64>);

impl Visit for TaskIdField {
    fn record_u64(&mut self, field: &Field, value: u64) {
        if field.name() == "task.id" {
            self.0 = Some(value);
        }
    }
    fn record_debug(&mut self, _: &Field, _: &dyn std::fmt::Debug) {}
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Closing {
    No,
    Inner,
    Ours,
}

/// Runs `f` with closes routed as `mode` says; the previous mode comes
/// back when `f` returns or unwinds (a user's subscriber may panic).
fn closing<R>(mode: Closing, f: impl FnOnce() -> R) -> R {
    struct Restore(Closing);
    impl Drop for Restore {
        fn drop(&mut self) {
            let _ = CLOSING.try_with(|c| c.set(self.0));
        }
    }
    let Ok(before) = CLOSING.try_with(|c| c.replace(mode)) else {
        return f(); // the thread is exiting
    };
    let _restore = Restore(before);
    f()
}

impl Tee {
    /// The user's global subscriber, once known.
    #[inline]
    fn inner(&self) -> Option<&Dispatch> {
        match self.inner.get() {
            Some(inner) => Some(inner),
            None => self.maybe_look(),
        }
    }

    /// Runs `f` with the tee as this thread's default dispatcher, so that
    /// what a registry closes through the default comes back to the tee.
    #[inline]
    fn as_default<R>(&self, f: impl FnOnce() -> R) -> R {
        let foreign = FOREIGN.load(Relaxed);
        if foreign == 0 || (foreign == 1 && self.inner.get().is_some()) {
            return f(); // no dispatcher but the tee and the global: the tee is the default
        }
        if tracing::dispatcher::get_default(|d| d.is::<Tee>()) {
            return f();
        }
        tracing::dispatcher::with_default(tee(), f)
    }

    /// Looks for a global default if one may have been set since the last
    /// look (see the module docs).
    fn maybe_look(&self) -> Option<&Dispatch> {
        let made_here = MADE_HERE.try_with(|m| m.replace(false)).unwrap_or(false);
        let now = ticks();
        if made_here || now <= self.window_until.load(Relaxed) {
            return self.look(None);
        }
        if now >= self.next_look.load(Relaxed) {
            return self.look(Some(now));
        }
        // a look under way (another callback's) counts for this one too
        if self.looking.is_locked() {
            drop(self.looking.lock());
        }
        self.inner.get()
    }

    /// Looks for the global default from a thread that has none of its own.
    /// `due`: a look of the slow cadence, due at that time, which a look
    /// made since by another callback replaces.
    #[cold]
    fn look(&self, due: Option<u64>) -> Option<&Dispatch> {
        let looking = self.looking.lock();
        if self.inner.get().is_some() {
            return self.inner.get();
        }
        let now = ticks();
        if due.is_some_and(|due| due < self.next_look.load(Relaxed)) {
            return None; // another callback just looked
        }
        self.next_look.store(now + EVERY.as_ticks(), Relaxed);
        if let Some(found) = global() {
            let _ = self.inner.set(found);
            self.window_until.store(0, Relaxed);
            drop(looking);
            // interests so far were "maybe": refine them now that the
            // inner is known (two dispatchers exist, so tracing asks each
            // one instead of calling back into the default)
            let _rebuilding = Rebuilding::start();
            tracing_core::callsite::rebuild_interest_cache();
        }
        self.inner.get()
    }

    /// Closes `id` in the tee's own registry, counting the task spans it
    /// closes while [`super::hidden`] needs them counted.
    fn close_ours(&self, id: Id) -> bool {
        let task = super::hidden::counting_closes()
            && self
                .reg
                .span_data(&id)
                .is_some_and(|d| is_task_span(d.metadata()));
        let closed = self.reg.try_close(id);
        if closed && task {
            super::hidden::tee_closed_task();
        }
        closed
    }

    fn inner_id(&self, id: &Id) -> Option<Id> {
        let data = self.reg.span_data(id)?;
        let inner = data.extensions().get::<InnerId>().map(|i| i.0.clone());
        inner
    }

    /// The inner id of `id` or of its nearest ancestor the inner knows.
    fn nearest_inner(&self, id: &Id) -> Option<Id> {
        let mut current = Some(id.clone());
        while let Some(id) = current {
            let data = self.reg.span_data(&id)?;
            if let Some(inner) = data.extensions().get::<InnerId>() {
                return Some(inner.0.clone());
            }
            current = data.parent().cloned();
        }
        None
    }

    /// Makes the inner's copy of a new span, with its parent translated.
    fn forward_new_span(&self, inner: &Dispatch, attrs: &Attributes<'_>, id: &Id) {
        let meta = attrs.metadata();
        if !muted(|| inner.enabled(meta)) {
            return;
        }
        let inner_id = match attrs.parent() {
            None => muted(|| inner.new_span(attrs)), // contextual or root: as it is
            Some(parent) => match self.nearest_inner(parent) {
                Some(p) => muted(|| inner.new_span(&Attributes::child_of(p, meta, attrs.values()))),
                None => muted(|| inner.new_span(&Attributes::new_root(meta, attrs.values()))),
            },
        };
        if let Some(data) = self.reg.span_data(id) {
            data.extensions_mut().insert(InnerId(inner_id));
        }
    }
}

/// The global default dispatcher, asked from a thread that has no
/// thread-local default; `None` while there is none.
fn global() -> Option<Dispatch> {
    extern "C" fn ask(out: *mut std::ffi::c_void) -> *mut std::ffi::c_void {
        let found = tracing::dispatcher::get_default(|d| {
            (!d.is::<NoSubscriber>() && !d.is::<Tee>()).then(|| d.clone())
        });
        // SAFETY: `out` points at the caller's `Option<Dispatch>`, alive
        // until this thread is joined.
        unsafe { *out.cast::<Option<Dispatch>>() = found };
        std::ptr::null_mut()
    }
    let mut found: Option<Dispatch> = None;
    super::raw::run_raw(ask, std::ptr::from_mut(&mut found).cast());
    found
}

impl Subscriber for Tee {
    fn register_callsite(&self, meta: &'static Metadata<'static>) -> Interest {
        if crate::layer::interesting(meta) {
            return Interest::always();
        }
        match self.inner.get() {
            Some(inner) => muted(|| inner.register_callsite(meta)),
            // a global may be on its way: decide per call
            None => Interest::sometimes(),
        }
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        // tracing asks every dispatcher this whenever a new one is made
        // (a scoped one of the user's, or one `set_global_default` follows)
        if READY.load(Relaxed) && !REBUILDING.try_with(Cell::get).unwrap_or(true) {
            FOREIGN.fetch_add(1, Relaxed);
            super::hidden::dispatcher_built(super::current_owner(false));
            if self.inner.get().is_none() {
                // look for a global for a while, and once more at the first
                // callback after that (a constructor's `init()` may come
                // before any other thread's tracing activity)
                let _ = MADE_HERE.try_with(|m| m.set(true));
                let until = ticks() + WINDOW.as_ticks();
                self.window_until.store(until, Relaxed);
                self.next_look.fetch_min(until, Relaxed);
            }
        }
        Some(LevelFilter::TRACE) // never hide tokio's TRACE task spans
    }

    fn enabled(&self, meta: &Metadata<'_>) -> bool {
        crate::layer::interesting(meta) || self.inner().is_some_and(|i| muted(|| i.enabled(meta)))
    }

    fn new_span(&self, attrs: &Attributes<'_>) -> Id {
        let id = self.reg.new_span(attrs);
        if is_task_span(attrs.metadata()) {
            let mut task = TaskIdField::default();
            attrs.record(&mut task);
            if let Some(task) = task.0 {
                super::hidden::seen_spawn(task);
            }
        }
        if let Some(inner) = self.inner() {
            self.forward_new_span(inner, attrs, &id);
        }
        id
    }

    fn record(&self, id: &Id, values: &Record<'_>) {
        self.reg.record(id, values);
        if let (Some(inner), Some(iid)) = (self.inner.get(), self.inner_id(id)) {
            muted(|| inner.record(&iid, values));
        }
    }

    fn record_follows_from(&self, id: &Id, follows: &Id) {
        let ids = (self.inner_id(id), self.inner_id(follows));
        if let (Some(inner), (Some(a), Some(b))) = (self.inner.get(), ids) {
            muted(|| inner.record_follows_from(&a, &b));
        }
    }

    fn event(&self, event: &Event<'_>) {
        self.reg.event(event);
        let Some(inner) = self.inner() else {
            return;
        };
        if !muted(|| inner.enabled(event.metadata())) {
            return;
        }
        match event.parent() {
            None => muted(|| inner.event(event)), // contextual (the inner's current span) or root
            Some(parent) => {
                let parent = self.nearest_inner(parent);
                muted(|| super::forward::event(inner, event, parent));
            }
        }
    }

    fn enter(&self, id: &Id) {
        self.reg.enter(id);
        if let (Some(inner), Some(iid)) = (self.inner.get(), self.inner_id(id)) {
            muted(|| inner.enter(&iid));
        }
    }

    fn exit(&self, id: &Id) {
        // before 0.3.21 tracing-subscriber's registry closes an exited span
        // through the default dispatcher: route that close back
        self.as_default(|| {
            closing(Closing::Ours, || self.reg.exit(id));
            if let (Some(inner), Some(iid)) = (self.inner.get(), self.inner_id(id)) {
                closing(Closing::Inner, || muted(|| inner.exit(&iid)));
            }
        });
    }

    fn clone_span(&self, id: &Id) -> Id {
        if CLOSING.try_with(Cell::get) == Ok(Closing::Inner) {
            return self
                .inner
                .get()
                .map_or_else(|| id.clone(), |i| muted(|| i.clone_span(id)));
        }
        let ours = self.reg.clone_span(id);
        if let (Some(inner), Some(iid)) = (self.inner.get(), self.inner_id(id)) {
            muted(|| inner.clone_span(&iid));
        }
        ours
    }

    fn try_close(&self, id: Id) -> bool {
        match CLOSING.try_with(Cell::get).unwrap_or(Closing::No) {
            Closing::Inner => return self.inner.get().is_some_and(|i| muted(|| i.try_close(id))),
            Closing::Ours => return self.close_ours(id),
            Closing::No => {}
        }
        // a registry closes a span's parent through the default dispatcher:
        // under a user's scoped default that would hand the user's registry
        // an id of ours (a panic, or an unrelated span closed)
        self.as_default(|| {
            if let (Some(inner), Some(iid)) = (self.inner.get(), self.inner_id(&id)) {
                closing(Closing::Inner, || muted(|| inner.try_close(iid)));
            }
            closing(Closing::Ours, || self.close_ours(id))
        })
    }

    fn current_span(&self) -> Current {
        self.reg.current_span()
    }

    // Not forwarded to the inner: what a downcast finds there (tracing-error's
    // `WithContext`, tracing-opentelemetry's) is then handed the tee's span
    // ids, which the inner's registry does not know. The README says so.
    unsafe fn downcast_raw(&self, id: std::any::TypeId) -> Option<*const ()> {
        if id == std::any::TypeId::of::<Self>() {
            return Some(std::ptr::from_ref(self).cast());
        }
        // so that `dispatch.is::<leakcheck::TaskLayer>()` finds the layer
        // SAFETY: forwarded as tracing-subscriber's own layers do
        unsafe { self.reg.downcast_raw(id) }
    }
}
