//! The routes and their handlers: parse the query, then build the reply off
//! the runtime's workers. Every view is built from a
//! [`Census`](crate::Census), not a snapshot: no `TaskInfo` per task, but
//! for the `limit` tasks `debug=2` lists.

use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{OriginalUri, RawQuery, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use parking_lot::Mutex;
use tokio::runtime::Handle;
use tokio_metrics::{RuntimeIntervals, RuntimeMonitor};

use super::query::{self, Format, Param, Params};
use super::reply::{off_worker, Reply};
use super::{collect, flame, growth, pprof, render, runtime};
use crate::tracker::Tracker;

/// What every handler shares.
#[derive(Clone)]
pub(crate) struct Shared {
    pub(crate) tracker: Tracker,
    /// The metrics `GET runtime` reads, from one reading to the next.
    metrics: Arc<Mutex<Option<RuntimeIntervals>>>,
    /// Without a handle: whether the runtime serving a request is the
    /// service's (a router in its app), rather than `serve`'s own.
    serving_is_theirs: bool,
}

impl Shared {
    /// `GET runtime` reads the runtime of `handle`; without one, the
    /// runtime serving its first request if `serving_is_theirs`.
    pub(crate) fn new(tracker: Tracker, handle: Option<Handle>, serving_is_theirs: bool) -> Shared {
        let intervals = handle.map(|h| RuntimeMonitor::new(&h).intervals());
        Shared {
            tracker,
            metrics: Arc::new(Mutex::new(intervals)),
            serving_is_theirs,
        }
    }
}

/// The routes, relative to where they are mounted.
pub(crate) const ROUTES: &str = "tasks, tasks/pprof, tasks/growth, tasks/flamegraph.svg, runtime";

pub(crate) fn router(shared: Shared) -> Router {
    Router::new()
        .route("/tasks", get(tasks))
        .route("/tasks/pprof", get(profile))
        .route("/tasks/growth", get(grown))
        .route("/tasks/flamegraph.svg", get(flame_graph))
        .route("/runtime", get(metrics))
        .fallback(not_found)
        .with_state(shared)
}

/// The query's parameters, or the 400 that says what is wrong.
fn params(query: Option<String>, accepted: &[Param]) -> Result<Params, Reply> {
    query::parse(query.as_deref(), accepted)
        .map_err(|message| Reply::error(StatusCode::BAD_REQUEST, &message))
}

async fn tasks(State(shared): State<Shared>, RawQuery(q): RawQuery) -> Reply {
    let p = match params(q, &[Param::Debug, Param::Format, Param::Limit]) {
        Ok(p) => p,
        Err(reply) => return reply,
    };
    off_worker(move || {
        let tracker = &shared.tracker;
        let dump = match p.every_task {
            true => {
                let tasks = tracker.first_tasks(p.limit);
                collect::with_tasks(&tracker.census(), &tasks, p.limit)
            }
            false => collect::grouped(&tracker.census(), p.limit),
        };
        match (p.format, p.every_task) {
            (Format::Json, _) => Reply::json(dump.to_json()),
            (Format::Text, false) => Reply::text(render::groups(&dump)),
            (Format::Text, true) => Reply::text(render::tasks(&dump)),
        }
    })
    .await
}

async fn profile(State(shared): State<Shared>, RawQuery(q): RawQuery) -> Reply {
    let p = match params(q, &[Param::Limit]) {
        Ok(p) => p,
        Err(reply) => return reply,
    };
    off_worker(move || {
        let body = pprof::profile(&shared.tracker.census_by_name(), p.limit);
        Reply::with(StatusCode::OK, "application/octet-stream", body)
    })
    .await
}

async fn grown(State(shared): State<Shared>, RawQuery(q): RawQuery) -> Reply {
    let p = match params(q, &[Param::Seconds, Param::Format, Param::Limit]) {
        Ok(p) => p,
        Err(reply) => return reply,
    };
    let Some(slot) = GrowthSlot::take() else {
        let message = format!(
            "{MAX_GROWTH} growth requests are already waiting out their window; \
             try again when one ends"
        );
        return Reply::error(StatusCode::SERVICE_UNAVAILABLE, &message);
    };
    let tracker = shared.tracker.clone();
    let census = move || collect::grouped(&tracker.census(), usize::MAX);
    let before = census.clone();
    let before = match tokio::task::spawn_blocking(before).await {
        Ok(before) => before,
        Err(e) => return Reply::error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    };
    if let Err(e) = sleep_off_runtime(Duration::from_secs(p.seconds), slot).await {
        let message = format!("leakcheck: no thread to wait out the window on: {e}");
        return Reply::error(StatusCode::INTERNAL_SERVER_ERROR, &message);
    }
    off_worker(move || {
        let after = census();
        let mut grown = growth::growth(&before, &after);
        let total = grown.grown.len();
        grown.grown.truncate(p.limit);
        match p.format {
            Format::Json => Reply::json(serde_json::to_string_pretty(&grown).unwrap_or_default()),
            Format::Text => {
                let mut text = format!("over {}s: {grown}", p.seconds);
                if total > p.limit {
                    text.push_str(&format!(
                        "\nshowing {} of {total} groups; ?limit=N for more\n",
                        p.limit
                    ));
                }
                Reply::text(text)
            }
        }
    })
    .await
}

/// Growth requests allowed to wait at once (each holds a sleeping thread).
const MAX_GROWTH: usize = 8;

/// One of the [`MAX_GROWTH`] slots, given back when dropped.
struct GrowthSlot;

static GROWTH_WAITING: AtomicUsize = AtomicUsize::new(0);

impl GrowthSlot {
    fn take() -> Option<GrowthSlot> {
        let taken = GROWTH_WAITING.fetch_add(1, Relaxed);
        let slot = GrowthSlot; // gives it back if over the limit, too
        (taken < MAX_GROWTH).then_some(slot)
    }
}

impl Drop for GrowthSlot {
    fn drop(&mut self) {
        GROWTH_WAITING.fetch_sub(1, Relaxed);
    }
}

/// Sleeps on a thread of its own: neither a runtime worker nor a thread of
/// the service's blocking pool waits out the window, and no timer driver is
/// needed. The thread holds `slot` until it ends, and ends early when this
/// future is dropped (a client that hung up, a timeout layer): a dropped
/// request neither keeps a thread sleeping nor frees a slot before it.
async fn sleep_off_runtime<T: Send + 'static>(duration: Duration, slot: T) -> std::io::Result<()> {
    let (done, wait) = tokio::sync::oneshot::channel::<()>();
    // its sender is dropped with this future
    let (_cancel, cancelled) = std::sync::mpsc::channel::<()>();
    let sleeper = std::thread::Builder::new().name("leakcheck-growth".into());
    sleeper.spawn(move || {
        let _slot = slot;
        let _ = cancelled.recv_timeout(duration);
        let _ = done.send(());
    })?;
    let _ = wait.await;
    Ok(())
}

async fn flame_graph(State(shared): State<Shared>, RawQuery(q): RawQuery) -> Reply {
    let p = match params(q, &[Param::Limit]) {
        Ok(p) => p,
        Err(reply) => return reply,
    };
    off_worker(move || {
        let dump = collect::grouped(&shared.tracker.census(), p.limit);
        match flame::svg(&dump) {
            Ok(svg) => Reply::with(StatusCode::OK, "image/svg+xml", svg),
            Err(message) => Reply::error(StatusCode::INTERNAL_SERVER_ERROR, &message),
        }
    })
    .await
}

async fn metrics(State(shared): State<Shared>, RawQuery(q): RawQuery) -> Reply {
    let p = match params(q, &[Param::Format]) {
        Ok(p) => p,
        Err(reply) => return reply,
    };
    let mut metrics = shared.metrics.lock();
    if metrics.is_none() && shared.serving_is_theirs {
        *metrics = Handle::try_current()
            .ok()
            .map(|h| RuntimeMonitor::new(&h).intervals());
    }
    let Some(intervals) = metrics.as_mut() else {
        return Reply::error(
            StatusCode::SERVICE_UNAVAILABLE,
            "no runtime to read metrics from: leakcheck::serve was called outside \
             the service's runtime; pass its handle with \
             ServeOptions::new().runtime(runtime.handle().clone()), or call serve \
             inside the runtime (in block_on, or after runtime.enter())",
        );
    };
    match p.format {
        Format::Text => Reply::text(runtime::text(intervals)),
        Format::Json => Reply::json(runtime::json(intervals)),
    }
}

pub(crate) async fn not_found(OriginalUri(uri): OriginalUri) -> Reply {
    Reply::error(
        StatusCode::NOT_FOUND,
        &format!(
            "no such path: {}; leakcheck's endpoint serves {ROUTES} (under its mount point, e.g. /debug/tasks)",
            uri.path()
        ),
    )
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{sleep_off_runtime, GrowthSlot, MAX_GROWTH};

    #[test]
    fn growth_requests_wait_in_a_bounded_number() {
        let slots: Vec<GrowthSlot> = (0..MAX_GROWTH).map_while(|_| GrowthSlot::take()).collect();
        assert_eq!(slots.len(), MAX_GROWTH);
        assert!(GrowthSlot::take().is_none(), "one more is refused");
        drop(slots);
        assert!(
            GrowthSlot::take().is_some(),
            "and taken again once they end"
        );
    }

    /// Sends the name of the thread it is dropped on.
    struct Slot(Option<tokio::sync::oneshot::Sender<Option<String>>>);

    impl Drop for Slot {
        fn drop(&mut self) {
            let name = std::thread::current().name().map(str::to_owned);
            let _ = self.0.take().map(|to| to.send(name));
        }
    }

    #[tokio::test]
    async fn a_dropped_growth_request_ends_its_wait_and_then_gives_back_its_slot() {
        let (to, given_back) = tokio::sync::oneshot::channel();
        let mut wait = Box::pin(sleep_off_runtime(Duration::from_secs(3600), Slot(Some(to))));
        tokio::select! {
            biased;
            _ = &mut wait => panic!("an hour went by"),
            () = std::future::ready(()) => {} // the thread is sleeping now
        }
        drop(wait);
        // the sleeping thread held the slot, and ends now, not in an hour
        let ended = tokio::time::timeout(Duration::from_secs(60), given_back).await;
        let on = ended.expect("the wait went on").unwrap();
        assert_eq!(on.as_deref(), Some("leakcheck-growth"));
    }
}
