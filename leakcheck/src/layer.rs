//! Task names and waker counts, from tokio's own tracing instrumentation.
//!
//! With tokio's `tracing` feature, every task gets a `runtime.spawn` span
//! (carrying `task.id` and `task.name`) that is entered around each poll,
//! and every clone, drop and wake of a task's waker is an event naming that
//! span. This layer keeps, per live task: its name, how many wakers exist,
//! and whether it was woken since its last poll began. A task that was
//! polled, is not running, was not woken, and has no waker left anywhere can
//! never run again.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};

use parking_lot::RwLock;
use rustc_hash::FxHashMap;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing::{Event, Metadata, Subscriber};
use tracing_subscriber::filter::{filter_fn, Filtered};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;

/// What the layer knows of one live task.
#[derive(Debug, Default)]
pub(crate) struct Wakes {
    pub(crate) name: Option<Arc<str>>,
    wakers: AtomicI64,
    woken: AtomicBool,
}

impl Wakes {
    /// Wakers of this task alive anywhere (clones minus drops).
    pub(crate) fn wakers(&self) -> usize {
        self.wakers.load(Relaxed).max(0) as usize
    }

    /// Woken since its last poll began: it is scheduled to run.
    pub(crate) fn woken(&self) -> bool {
        self.woken.load(Relaxed)
    }
}

const SHARDS: usize = 16;

/// Live tasks the layer has seen, by tokio task id.
type Shard = RwLock<FxHashMap<u64, Arc<Wakes>>>;

fn tasks() -> &'static [Shard; SHARDS] {
    static TASKS: OnceLock<[Shard; SHARDS]> = OnceLock::new();
    TASKS.get_or_init(Default::default)
}

fn shard(task: u64) -> &'static Shard {
    &tasks()[task as usize % SHARDS]
}

/// The layer's view of a task, if the layer saw it spawn.
pub(crate) fn lookup(task: u64) -> Option<Arc<Wakes>> {
    shard(task).read().get(&task).cloned()
}

/// The layer itself; see [`crate::layer`].
#[derive(Debug, Default)]
pub struct TaskLayer {
    _private: (),
}

/// Stored in each task span's extensions.
struct SpanTask {
    task: u64,
    wakes: Arc<Wakes>,
}

fn interesting(meta: &Metadata<'_>) -> bool {
    (meta.is_span() && meta.name() == "runtime.spawn" && meta.target() == "tokio::task")
        || (meta.is_event() && meta.target() == "tokio::task::waker")
}

/// A `tracing` layer that gives leakcheck task names and "never wakes".
///
/// `#[leakcheck::test]` installs it as the global subscriber when the
/// `tracing` feature is on and no global subscriber is set. If your tests or
/// service set their own subscriber, add this layer to it, and set yours
/// before the first `#[leakcheck::test]` runs: once leakcheck's is in place,
/// a later `set_global_default` (or `tracing_subscriber::fmt::init()`) fails. It only looks at
/// tokio's task spans and waker events (a per-layer filter), so it changes
/// nothing for your other layers.
///
/// ```
/// use tracing_subscriber::layer::SubscriberExt;
/// let subscriber = tracing_subscriber::registry().with(leakcheck::layer());
/// let _guard = tracing::subscriber::set_default(subscriber);
/// ```
pub fn layer<S>(
) -> Filtered<TaskLayer, impl tracing_subscriber::layer::Filter<S> + Send + Sync + 'static, S>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    TaskLayer::default().with_filter(filter_fn(interesting))
}

/// Installs `registry().with(layer())` as the global subscriber, unless one
/// is already set (then the user's subscriber needs [`layer`] added).
pub(crate) fn install_default() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        use tracing_subscriber::layer::SubscriberExt;
        if !tracing::dispatcher::has_been_set() {
            let _ = tracing::subscriber::set_global_default(
                tracing_subscriber::registry().with(layer()),
            );
        }
    });
}

#[derive(Default)]
struct Fields {
    task: Option<u64>,
    name: Option<String>,
    op: Option<&'static str>,
}

impl Visit for Fields {
    fn record_u64(&mut self, field: &Field, value: u64) {
        if field.name() == "task.id" {
            self.task = Some(value);
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "op" {
            self.op = match value {
                "waker.clone" => Some("clone"),
                "waker.drop" => Some("drop"),
                "waker.wake" => Some("wake"),
                "waker.wake_by_ref" => Some("wake_by_ref"),
                _ => None,
            };
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        match field.name() {
            "task.name" => self.name = Some(format!("{value:?}")).filter(|n| !n.is_empty()),
            "op" => self.record_str(field, format!("{value:?}").trim_matches('"')),
            _ => {}
        }
    }
}

impl<S> Layer<S> for TaskLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        let (Some(task), Some(span)) = (fields.task, ctx.span(id)) else {
            return;
        };
        let wakes = Arc::new(Wakes {
            name: fields.name.map(Arc::from),
            ..Wakes::default()
        });
        shard(task).write().insert(task, wakes.clone());
        span.extensions_mut().insert(SpanTask { task, wakes });
    }

    fn on_enter(&self, id: &Id, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id) {
            if let Some(t) = span.extensions().get::<SpanTask>() {
                t.wakes.woken.store(false, Relaxed);
            }
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        let (Some(span_id), Some(op)) = (fields.task, fields.op) else {
            return;
        };
        let Some(span) = ctx.span(&Id::from_u64(span_id)) else {
            return;
        };
        let extensions = span.extensions();
        let Some(t) = extensions.get::<SpanTask>() else {
            return;
        };
        match op {
            "clone" => {
                t.wakes.wakers.fetch_add(1, Relaxed);
            }
            "drop" => {
                t.wakes.wakers.fetch_sub(1, Relaxed);
            }
            "wake" => {
                // waking by value consumes the waker
                t.wakes.woken.store(true, Relaxed);
                t.wakes.wakers.fetch_sub(1, Relaxed);
            }
            _ => t.wakes.woken.store(true, Relaxed),
        }
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(&id) {
            if let Some(t) = span.extensions().get::<SpanTask>() {
                shard(t.task).write().remove(&t.task);
            }
        }
    }
}
