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
//! The global default is found by [`super::global`].
//!
//! The tee's spans are closed through the thread's default dispatcher
//! (tracing-subscriber's registry closes a span's parent that way, and
//! before 0.3.21 also a span it exits): when a user's scoped subscriber is
//! the default, the tee makes itself the default around those calls, so
//! that its span ids never reach the user's registry.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::*};
use std::sync::OnceLock;

use tracing_core::field::{Field, Visit};
use tracing_core::span::{Attributes, Current, Id, Record};
use tracing_core::subscriber::{Interest, NoSubscriber};
use tracing_core::{Dispatch, Event, LevelFilter, Metadata, Subscriber};
use tracing_subscriber::layer::{Layer, Layered, SubscriberExt};
use tracing_subscriber::registry::{LookupSpan, Registry, SpanData};

use crate::layer::muted;

use super::global::Global;

type Reg = Layered<Box<dyn Layer<Registry> + Send + Sync>, Registry>;

/// The tee itself.
pub(crate) struct Tee {
    reg: Reg,
    /// The user's global default ("the inner"), once found.
    inner: Global,
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
            inner: Global::new(),
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
        self.inner.find()
    }

    /// Runs `f` with the tee as this thread's default dispatcher, so that
    /// what a registry closes through the default comes back to the tee.
    #[inline]
    fn as_default<R>(&self, f: impl FnOnce() -> R) -> R {
        let foreign = FOREIGN.load(Relaxed);
        if foreign == 0 || (foreign == 1 && self.inner.get().is_some()) {
            return f(); // no dispatcher but the tee and the global: the tee is the default
        }
        // Inside another `get_default` (a callback of a subscriber's own,
        // say) tracing hands out no dispatcher at all, and the default's
        // cell is borrowed: replacing it would panic. A registry closing
        // through the default gets none there too, so nothing needs routing.
        let current = tracing::dispatcher::get_default(|d| {
            if d.is::<Tee>() {
                ThreadDefault::Tee
            } else if d.is::<NoSubscriber>() {
                ThreadDefault::Nobody
            } else {
                ThreadDefault::Other
            }
        });
        match current {
            ThreadDefault::Tee | ThreadDefault::Nobody => f(),
            ThreadDefault::Other => tracing::dispatcher::with_default(tee(), f),
        }
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

/// What this thread's default dispatcher is, as [`Tee::as_default`] sees it.
enum ThreadDefault {
    Tee,
    /// None at all, or none handed out (inside another `get_default`).
    Nobody,
    /// A user's scoped default.
    Other,
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
        if READY.load(Relaxed) && !super::global::rebuilding() {
            FOREIGN.fetch_add(1, Relaxed);
            let global_known = self.inner.get().is_some();
            super::hidden::dispatcher_built(super::current_owner(), global_known);
            self.inner.dispatcher_made();
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
            Closing::Ours => return self.reg.try_close(id),
            Closing::No => {}
        }
        // a registry closes a span's parent through the default dispatcher:
        // under a user's scoped default that would hand the user's registry
        // an id of ours (a panic, or an unrelated span closed)
        self.as_default(|| {
            if let (Some(inner), Some(iid)) = (self.inner.get(), self.inner_id(&id)) {
                closing(Closing::Inner, || muted(|| inner.try_close(iid)));
            }
            closing(Closing::Ours, || self.reg.try_close(id))
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
