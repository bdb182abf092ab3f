//! What tokio's own tracing instrumentation tells about tasks: names,
//! wakers (so "never wakes"), and pending timers (so "next wake in").
//!
//! With tokio's `tracing` feature (and `--cfg tokio_unstable`), every task
//! gets a `runtime.spawn` span carrying `task.id` and `task.name`, entered
//! around each poll; every clone, drop and wake of a task's waker is an
//! event naming that span; and every `Sleep` is a `runtime.resource` span
//! whose arming and polling are events. This layer keeps, per live task,
//! what those say.

mod fields;
pub(crate) mod tasks;
mod timers;

use std::sync::{Arc, OnceLock};

use tracing::span::{Attributes, Id};
use tracing::{Event, Metadata, Subscriber};
use tracing_subscriber::filter::{filter_fn, Filtered};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;

use fields::Fields;
use tasks::Seen;
use timers::Timer;

/// What the layer knows of one live task.
#[derive(Debug, Clone, Default)]
#[cfg_attr(not(tokio_unstable), allow(dead_code))]
pub(crate) struct Facts {
    pub(crate) name: Option<Arc<str>>,
    /// Wakers of the task alive anywhere.
    pub(crate) wakers: usize,
    /// Woken since its last poll began: scheduled to run.
    pub(crate) woken: bool,
    /// When its next armed timer fires, from now.
    pub(crate) next_wake: Option<std::time::Duration>,
}

/// What the layer knows of task `task`, if it saw it spawn.
#[cfg_attr(not(tokio_unstable), allow(dead_code))]
pub(crate) fn facts(task: u64) -> Option<Facts> {
    let seen = tasks::lookup(task)?;
    Some(Facts {
        name: seen.name.clone(),
        wakers: seen.wakers(),
        woken: seen.woken(),
        next_wake: timers::next_wake(task),
    })
}

/// [`facts`] without the next timer (which takes another lock): enough
/// for a task's state and name.
#[cfg_attr(not(tokio_unstable), allow(dead_code))]
pub(crate) fn brief(task: u64) -> Option<Facts> {
    let seen = tasks::lookup(task)?;
    Some(Facts {
        name: seen.name.clone(),
        wakers: seen.wakers(),
        woken: seen.woken(),
        next_wake: None,
    })
}

thread_local! {
    /// Set while the `process` feature's tee passes a span or event on to
    /// the user's subscriber: if that subscriber holds a layer of ours too,
    /// it must not see the same task twice (under other span ids).
    static MUTED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f` with this thread's leakcheck layers muted. The previous state
/// comes back when `f` returns or unwinds (a panicking user subscriber
/// must not leave the layers muted for the rest of the thread's life).
#[cfg_attr(not(feature = "process"), allow(dead_code))]
pub(crate) fn muted<R>(f: impl FnOnce() -> R) -> R {
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            let _ = MUTED.try_with(|m| m.set(self.0));
        }
    }
    let _restore = Restore(MUTED.with(|m| m.replace(true)));
    f()
}

fn is_muted() -> bool {
    MUTED.try_with(std::cell::Cell::get).unwrap_or(false)
}

/// The layer inside what [`layer`] returns: `layer()` wraps it in a
/// per-layer filter that passes it only tokio's task and timer spans and
/// waker events. Add it through `layer()`; on its own, unfiltered, it would
/// take any span with a `task.id` field for a task.
///
/// ```
/// use tracing_subscriber::{filter::Filtered, layer::SubscriberExt, Registry};
/// let subscriber: tracing_subscriber::layer::Layered<Filtered<leakcheck::TaskLayer, _, _>, Registry> =
///     tracing_subscriber::registry().with(leakcheck::layer());
/// # let _ = subscriber;
/// ```
#[derive(Debug, Default)]
pub struct TaskLayer {
    _private: (),
}

/// Stored in each task span's extensions.
struct SpanTask(Arc<Seen>);

pub(crate) fn interesting(meta: &Metadata<'_>) -> bool {
    matches!(
        (meta.is_span(), meta.name(), meta.target()),
        (
            true,
            "runtime.spawn",
            "tokio::task" | "tokio::task::blocking"
        ) | (true, "runtime.resource", _)
            | (false, _, "tokio::task::waker")
            | (
                false,
                _,
                "runtime::resource::state_update" | "runtime::resource::poll_op"
            )
    )
}

/// A `tracing` layer that gives leakcheck task names, "never wakes" and
/// "next wake in".
///
/// With the `tracing` feature (and not `process`), a `#[leakcheck::test]`
/// whose thread has no subscriber at all (no default of its own, no global
/// one) makes `registry().with(layer())` the *thread-local* default of the
/// test's thread and of its runtime's threads. It never takes the global
/// default, so your suite's `set_global_default` (or
/// `tracing_subscriber::fmt::init()`) still works whenever it comes. A
/// subscriber of yours that is already in place when the test starts is
/// used instead: add this layer to it. A test that calls `fmt().init()`
/// in its own body keeps leakcheck's default on the threads that already
/// have it (the test's thread until the test ends, its runtime's workers):
/// what they log does not reach the new global subscriber, while other
/// threads' logs do. Set yours up before the test starts (a `#[ctor]`), or
/// in the body with `set_default` and this layer added.
///
/// With the `process` feature, leakcheck's default is every thread's and
/// passes everything on to your global subscriber, set whenever. Add this
/// layer to a subscriber you make a thread's default yourself
/// (`set_default`, `with_default`): without it, the tasks spawned under it
/// are hidden, and a check says so rather than passing.
///
/// It only looks at tokio's task and timer spans and waker events (a
/// per-layer filter), so it changes nothing for your other layers.
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
    TaskLayer::default().with_filter(filter_fn(|meta| interesting(meta) && !is_muted()))
}

/// The tracing default for the threads of a `#[leakcheck::test]` (with
/// `tracing`, without `process`): `registry().with(layer())`, made once, if
/// this thread has no subscriber at all (neither its own nor a global one;
/// the user's needs [`layer`] added). A thread-local default, never the
/// global one: a suite that calls `tracing_subscriber::fmt::init()` after
/// the first test must not panic.
#[cfg_attr(any(not(tokio_unstable), feature = "process"), allow(dead_code))]
pub(crate) fn test_default() -> Option<&'static tracing::Dispatch> {
    nobody_here().then(|| {
        TEST_DEFAULT.get_or_init(|| {
            use tracing_subscriber::layer::SubscriberExt;
            tracing::Dispatch::new(tracing_subscriber::registry().with(layer()))
        })
    })
}

static TEST_DEFAULT: OnceLock<tracing::Dispatch> = OnceLock::new();

/// Whether no subscriber at all sees this thread's spans.
fn nobody_here() -> bool {
    tracing::dispatcher::get_default(|d| d.is::<tracing_core::subscriber::NoSubscriber>())
}

/// Makes [`test_default`] this thread's default for the rest of its life,
/// if a test made one and the thread has no subscriber (a runtime thread
/// of a test; never in a binary without `#[leakcheck::test]`s).
#[cfg_attr(any(not(tokio_unstable), feature = "process"), allow(dead_code))]
pub(crate) fn enter_test_default() {
    if let Some(dispatch) = TEST_DEFAULT.get().filter(|_| nobody_here()) {
        // tracing's thread-local state drops it when the thread ends
        std::mem::forget(tracing::dispatcher::set_default(dispatch));
    }
}

impl<S> Layer<S> for TaskLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else {
            return;
        };
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        if attrs.metadata().name() == "runtime.resource" {
            if fields.kind == Some("timer") {
                span.extensions_mut().insert(Timer::created());
            }
            return;
        }
        if let Some(task) = fields.task {
            let seen = tasks::spawned(task, fields);
            span.extensions_mut().insert(SpanTask(seen));
        }
    }

    fn on_enter(&self, id: &Id, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id) {
            if let Some(t) = span.extensions().get::<SpanTask>() {
                t.0.entered();
            }
        }
    }

    fn on_exit(&self, id: &Id, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id) {
            if let Some(t) = span.extensions().get::<SpanTask>() {
                t.0.exited();
            }
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        if event.metadata().target() == "tokio::task::waker" {
            // here `task.id` is the task's tracing span id
            let (Some(span_id), Some(op)) = (fields.task, fields.op) else {
                return;
            };
            if let Some(span) = ctx.span(&Id::from_u64(span_id)) {
                if let Some(t) = span.extensions().get::<SpanTask>() {
                    t.0.waker(op);
                }
            }
            return;
        }
        // a timer event: the timer is the root of the event's span scope
        let Some(root) = ctx
            .event_scope(event)
            .and_then(|scope| scope.from_root().next())
        else {
            return;
        };
        let Some(timer) = root.extensions().get::<Arc<Timer>>().cloned() else {
            return;
        };
        if let Some(d) = fields.duration {
            timer.armed(timers::duration(d, fields.unit));
        } else if let (true, Some(ready)) = (fields.poll_elapsed, fields.is_ready) {
            timer.polled(ready);
        }
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(&id) else {
            return;
        };
        let extensions = span.extensions();
        if let Some(t) = extensions.get::<SpanTask>() {
            tasks::closed(t.0.id);
        }
        if let Some(timer) = extensions.get::<Arc<Timer>>() {
            timer.closed();
        }
    }
}
