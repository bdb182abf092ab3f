//! Live tasks from a debug endpoint in production: the `pprof` goroutine
//! dump, for tokio (feature `endpoint`).
//!
//! One implementation, served two ways:
//!
//! - [`router`]: an axum [`Router`] (also a `tower::Service`) to mount in
//!   your own app: `app.nest("/debug", leakcheck::endpoint::router(tracker))`.
//! - [`serve`](crate::serve): a server of its own (hyper), for services
//!   with no HTTP stack; loopback by default, a token for anything else.
//!
//! # Routes
//!
//! Relative to the mount point (`/debug` below, and with [`serve`](crate::serve)):
//!
//! | route | what |
//! |---|---|
//! | `GET /debug/tasks` | live tasks grouped by spawn site and call chain, with counts and states, largest first (Go's `goroutine?debug=1`) |
//! | `GET /debug/tasks?debug=2` | every task: id, name, state, age, idle time, parent, spawn site, call chain |
//! | `GET /debug/tasks?format=json` | the same as JSON ([schema](#json-schema-version-1)); with `debug=2` also every task |
//! | `GET /debug/tasks/pprof` | a gzipped pprof profile for `go tool pprof`: one sample per stack and labels (`state`, `name`), value = tasks; the largest `?limit=N` samples, the rest in one sample labelled `left_out` |
//! | `GET /debug/tasks/growth?seconds=N` | two snapshots `N` seconds apart (default 10, at most 600): the groups that grew, largest growth first: the leak suspects |
//! | `GET /debug/tasks/flamegraph.svg` | live tasks as a flame graph by call chain; the largest `?limit=N` groups, the rest in one tower |
//! | `GET /debug/runtime` | the runtime's metrics from tokio-metrics: gauges, and counters since the previous reading (`?format=json` too) |
//!
//! Lists are cut at `?limit=N` entries (default 10000, at most 100000) and
//! say so (`showing 10000 of 1000000 tasks; ?limit=N for more`); so are the
//! pprof profile (its samples; its comment and a `left_out` sample say so)
//! and the flame graph (its groups; its title says so). An
//! unknown path is a 404; an unknown query parameter or a bad value is a
//! 400 that names the parameter and the values it takes. Snapshots and
//! rendering run on the blocking pool, never on a runtime worker.
//!
//! # Task names need the `tracing` feature
//!
//! A task's name (`tokio::task::Builder::name`) reaches leakcheck only
//! through tokio's tracing instrumentation: the `name` field of `debug=2`
//! and of the JSON, and the pprof `name` label, need leakcheck's `tracing`
//! feature, with `leakcheck::layer()` on the tracing subscriber. That
//! feature costs 1–2 µs per spawned task, so a production build without
//! it, the usual one, shows no names: `name` is null and the profile has
//! no `name` label. Everything else here comes from the task hooks alone.
//!
//! # JSON schema, version 1
//!
//! `GET tasks?format=json` (a [`Dump`]):
//!
//! ```json
//! {
//!   "version": 1,
//!   "capture": "call_chains",          // or "polls", "spawn_sites"
//!   "per_task": true,                  // false without --cfg tokio_unstable
//!   "total_tasks": 1003,
//!   "total_groups": 3,
//!   "limit": 10000,                    // groups (and tasks) listed at most
//!   "groups": [{                       // largest first
//!     "count": 1000,
//!     "spawn_site": "src/session.rs:40:9",   // or null
//!     "call_chain": ["app::session::start at src/session.rs:40:9"],  // innermost first
//!     "states": {"idle": 998, "running": 2},  // TaskState::as_str names
//!     "oldest_ms": 61234
//!   }],
//!   "tasks": [{                        // with debug=2 only; by id
//!     "id": 12, "name": null, "state": "idle",
//!     "age_ms": 61234, "idle_ms": 61200, "busy_ms": 0, "polls": 1,  // these 3 null under spawn_sites
//!     "parent": {"kind": "task", "id": 3, "spawn_site": "src/main.rs:20:5", "alive": true},
//!     "spawn_site": "src/session.rs:40:9",
//!     "call_chain": ["app::session::start at src/session.rs:40:9"]
//!   }]
//! }
//! ```
//!
//! `parent.kind` is `task`, `test_body` or `outside` (the other fields are
//! null unless `task`); `idle_ms` is null when poll state is not captured.
//! `GET tasks/growth?format=json` is a [`Growth`]: `{"version": 1,
//! "before_tasks", "after_tasks", "partial", "grown": [{"spawn_site",
//! "call_chain", "before", "after"}]}`. `GET runtime?format=json` is
//! `{"version": 1, "metrics": {"workers_count": 2, "total_busy_duration_us":
//! 1234, ...}}`.
//!
//! # Saved dumps
//!
//! [`Dump::parse`] reads a saved `tasks?format=json` and [`growth`] compares
//! two of them, as `leakcheck diff` (the `leakcheck-cli` crate) does.

mod auth;
mod collect;
mod dump;
mod flame;
mod growth;
mod pprof;
mod query;
mod render;
mod reply;
mod routes;
mod runtime;
mod serve;

pub use dump::{Dump, Group, ParseError, Task, TaskParent};
pub use growth::{growth, Grown, Growth};
pub use serve::{serve, ServeOptions, Server};

use axum::Router;

use crate::tracker::Tracker;

/// The endpoint's routes for `tracker`'s runtime, to mount in an axum app:
/// `app.nest("/debug", leakcheck::endpoint::router(tracker))`. A `Router`
/// is a `tower::Service` too.
///
/// Task dumps show your code's structure: if the app is reachable from
/// other machines, put the routes behind its authentication.
///
/// `GET runtime` reads the runtime `router` is called from, or, called
/// outside one, the runtime serving its first request. Its counters cover
/// the time since the previous `GET runtime`.
///
/// ```
/// use tower::ServiceExt;
///
/// let mut builder = tokio::runtime::Builder::new_multi_thread();
/// let tracker = leakcheck::instrument(&mut builder);
/// let rt = builder.worker_threads(1).enable_all().build().unwrap();
/// rt.block_on(async {
///     let app = axum::Router::new().nest("/debug", leakcheck::endpoint::router(tracker));
///     let _parked = tokio::spawn(std::future::pending::<()>());
///     let request = axum::http::Request::get("/debug/tasks").body(axum::body::Body::empty()).unwrap();
///     let response = app.oneshot(request).await.unwrap();
///     assert_eq!(response.status(), 200);
///     let body = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
///     let text = String::from_utf8(body.to_vec()).unwrap();
///     # #[cfg(tokio_unstable)]
///     assert!(text.starts_with("1 live task in 1 group"), "{text}");
/// });
/// ```
pub fn router(tracker: Tracker) -> Router {
    let handle = tokio::runtime::Handle::try_current().ok();
    routes::router(routes::Shared::new(tracker, handle, true))
}
