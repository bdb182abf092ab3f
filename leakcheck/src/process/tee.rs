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
//! `pthread_create`. It asks when a new dispatcher was just made (tracing
//! then calls every dispatcher's `max_level_hint`, and `set_global_default`
//! follows at once): on the next callback of the thread that made it, and
//! on every callback anywhere for the next [`WINDOW`].

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, Ordering::*};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tracing_core::span::{Attributes, Current, Id, Record};
use tracing_core::subscriber::{Interest, NoSubscriber};
use tracing_core::{Dispatch, Event, LevelFilter, Metadata, Subscriber};
use tracing_subscriber::layer::{Layer, Layered, SubscriberExt};
use tracing_subscriber::registry::{LookupSpan, Registry, SpanData};

use crate::layer::muted;

/// How long after a new dispatcher is made every callback looks for a new
/// global default. A probe takes about 20µs; they are serialized.
const WINDOW: Duration = Duration::from_millis(2);

type Reg = Layered<Box<dyn Layer<Registry> + Send + Sync>, Registry>;

/// The tee itself.
pub(crate) struct Tee {
    reg: Reg,
    inner: OnceLock<Dispatch>,
    /// Until when callbacks look for a new global (a dispatcher was made).
    window: Mutex<Option<Instant>>,
    /// Looked once, for a global set before the tee existed.
    looked_once: AtomicBool,
}

fn tee() -> &'static Dispatch {
    static TEE: OnceLock<Dispatch> = OnceLock::new();
    TEE.get_or_init(|| {
        let layer: Box<dyn Layer<Registry> + Send + Sync> = Box::new(crate::layer::layer());
        Dispatch::new(Tee {
            reg: Registry::default().with(layer),
            inner: OnceLock::new(),
            window: Mutex::new(None),
            looked_once: AtomicBool::new(false),
        })
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

#[derive(Clone, Copy, PartialEq, Eq)]
enum Closing {
    No,
    Inner,
    Ours,
}

fn closing(mode: Closing, f: impl FnOnce() -> bool) -> bool {
    let before = CLOSING.with(|c| c.replace(mode));
    let closed = f();
    CLOSING.with(|c| c.set(before));
    closed
}

impl Tee {
    /// The user's global subscriber, once known.
    #[inline]
    fn inner(&self) -> Option<&Dispatch> {
        if let Some(inner) = self.inner.get() {
            return Some(inner);
        }
        let made_here = MADE_HERE.with(|m| m.replace(false));
        let first = !self.looked_once.swap(true, Relaxed);
        let in_window = self
            .window
            .lock()
            .is_some_and(|until| Instant::now() <= until);
        (made_here || first || in_window).then(|| self.look())?
    }

    /// Looks for the global default from a thread that has none of its own.
    #[cold]
    fn look(&self) -> Option<&Dispatch> {
        let mut window = self.window.lock();
        if self.inner.get().is_none() {
            if let Some(found) = global() {
                let _ = self.inner.set(found);
                *window = None;
                drop(window);
                // interests so far were "maybe": refine them now that the
                // inner is known (two dispatchers exist, so tracing asks
                // each one instead of calling back into the default)
                REBUILDING.with(|r| r.set(true));
                tracing_core::callsite::rebuild_interest_cache();
                REBUILDING.with(|r| r.set(false));
            }
        }
        self.inner.get()
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
    super::threads::run_raw(ask, std::ptr::from_mut(&mut found).cast());
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
        // tracing asks every dispatcher this whenever a new one is made,
        // which `set_global_default` follows: look for a global for a while
        if self.inner.get().is_none() && !REBUILDING.with(Cell::get) {
            MADE_HERE.with(|m| m.set(true));
            *self.window.lock() = Some(Instant::now() + WINDOW);
        }
        Some(LevelFilter::TRACE) // never hide tokio's TRACE task spans
    }

    fn enabled(&self, meta: &Metadata<'_>) -> bool {
        crate::layer::interesting(meta) || self.inner().is_some_and(|i| muted(|| i.enabled(meta)))
    }

    fn new_span(&self, attrs: &Attributes<'_>) -> Id {
        let id = self.reg.new_span(attrs);
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
        self.reg.exit(id);
        if let (Some(inner), Some(iid)) = (self.inner.get(), self.inner_id(id)) {
            muted(|| inner.exit(&iid));
        }
    }

    fn clone_span(&self, id: &Id) -> Id {
        if CLOSING.with(Cell::get) == Closing::Inner {
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
        match CLOSING.with(Cell::get) {
            Closing::Inner => return self.inner.get().is_some_and(|i| muted(|| i.try_close(id))),
            Closing::Ours => return self.reg.try_close(id),
            Closing::No => {}
        }
        if let (Some(inner), Some(iid)) = (self.inner.get(), self.inner_id(&id)) {
            closing(Closing::Inner, || muted(|| inner.try_close(iid)));
        }
        closing(Closing::Ours, || self.reg.try_close(id))
    }

    fn current_span(&self) -> Current {
        self.reg.current_span()
    }

    unsafe fn downcast_raw(&self, id: std::any::TypeId) -> Option<*const ()> {
        if id == std::any::TypeId::of::<Self>() {
            return Some(std::ptr::from_ref(self).cast());
        }
        // so that `dispatch.is::<leakcheck::TaskLayer>()` finds the layer
        // SAFETY: forwarded as tracing-subscriber's own layers do
        unsafe { self.reg.downcast_raw(id) }
    }
}
