//! Find tokio tasks that outlive the code that spawned them.
//!
//! `#[tokio::test]` drops its runtime when the body returns, which cancels
//! every task still alive, so a leaked ticker loop, a server nobody shuts down
//! or a task parked on a channel whose sender lives forever never fails a test.
//! leakcheck tracks every task of a runtime through tokio's task hooks, with
//! its spawn site, the call chain that spawned it and its parent task, and
//! turns survivors into a failing test with a report you can act on.
//!
//! ```
//! #[leakcheck::test]
//! async fn cleans_up() {
//!     let ticker = tokio::spawn(async {
//!         loop {
//!             tokio::time::sleep(std::time::Duration::from_millis(10)).await;
//!         }
//!     });
//!     ticker.abort(); // remove this line and the test fails with a report
//! }
//! ```
//!
//! The three ways in:
//!
//! - [`#[leakcheck::test]`](macro@test): a drop-in for `#[tokio::test]` that
//!   builds an instrumented runtime and fails the test if any task the body
//!   spawned is still alive when the [grace](Options::grace) runs out.
//! - [`verify_none`] and [`find_leaks`]: the same check at any point of a test
//!   body, panicking or returning the [`Report`].
//! - [`instrument`]: hooks any runtime you build into a [`Tracker`] that gives
//!   the live count, a [`Snapshot`] of every live task, and the same checks.
//! - `endpoint::router` and `serve` (feature `endpoint`): the live tasks of a
//!   running service over HTTP, grouped, as JSON, as a pprof profile or a
//!   flame graph, and what grew: the `pprof` goroutine dump, for tokio.
//!
//! # Enable spawn sites
//!
//! Spawn sites and call chains come from tokio's unstable task hooks. Build
//! with these flags (for example in `.cargo/config.toml`):
//!
//! ```toml
//! [build]
//! rustflags = ["--cfg", "tokio_unstable", "-C", "force-frame-pointers=yes"]
//! ```
//!
//! Without `--cfg tokio_unstable` leakcheck still fails a leaky test, by the
//! live-task count of tokio's stable metrics, and says how to turn the flags on.
//! Without frame pointers the report names spawn sites but not the callers.
//!
//! # Features
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `macros` | on | `#[leakcheck::test]` |
//! | `taskdump` | off | where each leaked task waits (its await chain), from tokio's task dumps; Linux, current_thread runtimes |
//! | `tracing` | off | task names and the "never wakes" flag, from tokio's tracing instrumentation |
//! | `endpoint` | off | a debug endpoint for live services: `endpoint::router` (axum) and `serve` (a standalone server) with task dumps, JSON, pprof, flame graphs and growth |
//!
//! # Environment
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `LEAKCHECK_GRACE` | how long to wait for tasks to end, e.g. `250ms`, `2s` | `1s` |
//!
//! An invalid value is an error that names the variable.
#![warn(
    missing_docs,
    missing_debug_implementations,
    unreachable_pub,
    rust_2018_idioms
)]

mod capture;
mod chain;
mod fanout;
mod frame;
mod harness;
mod local;
mod metrics;
mod mode;
mod options;
mod paths;
mod report;
mod settings;
mod site;
mod snapshot;
mod state;
mod text;
mod trace;
mod tracker;
mod tree;
mod wait;
mod walk;

#[cfg(feature = "endpoint")]
pub mod endpoint;
#[cfg(feature = "tracing")]
mod layer;
#[cfg(tokio_unstable)]
mod registry;

pub use capture::Capture;
#[cfg(feature = "endpoint")]
pub use endpoint::{serve, ServeOptions, Server};
pub use fanout::Fanout;
#[cfg(feature = "tracing")]
pub use layer::{layer, TaskLayer};
pub use options::Options;
pub use report::{LeakGroup, Report, ReportKind};
pub use site::SpawnSite;
pub use snapshot::{AwaitNode, AwaitTrace, Parent, Snapshot, TaskInfo, TaskState};
pub use tracker::{find_leaks, instrument, verify_none, Tracker};

/// Runs an async test on an instrumented runtime and fails it if any task
/// the body spawned outlives the body.
///
/// Accepts everything `#[tokio::test]` accepts (`flavor`, `worker_threads`,
/// `start_paused`, `unhandled_panic`, `crate`) plus:
///
/// | argument | meaning |
/// |---|---|
/// | `grace = "500ms"` | how long tasks may take to end after the body returns (default `1s`, or `LEAKCHECK_GRACE`) |
/// | `max_tasks = 100` | fail if more than this many spawned tasks were ever alive at once |
/// | `ignore_spawn_site = "src/metrics.rs"` | ignore tasks whose spawn site contains this text (a string or an array of strings) |
/// | `ignore_fn = "hyper::client"` | ignore tasks with a matching function in their spawn call chain |
/// | `ignore_name = "flusher"` | ignore tasks with this name |
///
/// ```
/// #[leakcheck::test(flavor = "multi_thread", worker_threads = 2, grace = "200ms")]
/// async fn joins_its_workers() {
///     let workers: Vec<_> = (0..4).map(|i| tokio::spawn(async move { i * 2 })).collect();
///     for w in workers {
///         w.await.unwrap();
///     }
/// }
/// ```
#[cfg(feature = "macros")]
pub use leakcheck_macros::test;

// Not public API. Referenced by the code `#[leakcheck::test]` expands to.
#[doc(hidden)]
pub mod __private {
    pub use crate::harness::{run_test, Flavor, TestConfig, TestResult};
}

// Not public API. `#[leakcheck::test]` calls it for each argument that needs
// `--cfg tokio_unstable`: empty in a build with the flag, an error without.
#[cfg(tokio_unstable)]
#[doc(hidden)]
#[macro_export]
macro_rules! __needs_tokio_unstable {
    ($message:literal) => {};
}

#[cfg(not(tokio_unstable))]
#[doc(hidden)]
#[macro_export]
macro_rules! __needs_tokio_unstable {
    ($message:literal) => {
        ::core::compile_error!($message);
    };
}
