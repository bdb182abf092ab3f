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
//! The ways in:
//!
//! - [`#[leakcheck::test]`](macro@test): a drop-in for `#[tokio::test]` that
//!   builds an instrumented runtime and fails the test if any task the body
//!   spawned is still alive when the [grace](Options::grace) runs out.
//! - [`verify_none`] and [`find_leaks`]: the same check at any point of a test
//!   body, panicking or returning the [`Report`]; with the `process` feature
//!   also in a plain `#[tokio::test]`.
//! - [`verify_test_main!`]: one line per test file that checks the whole
//!   binary when it ends, threads included (feature `process`).
//! - [`instrument`]: hooks any runtime you build into a [`Tracker`] that gives
//!   the live count, a [`Snapshot`] of every live task (or a cheap [`Census`]
//!   of them by spawn site), and the same checks.
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
//! | `taskdump` | off | where each leaked task waits (its await tree), from tokio's task dumps; Linux, current_thread runtimes; tokio ≥ 1.48 |
//! | `tracing` | off | task names, "never wakes" and "next wake in", from tokio's tracing instrumentation ([`layer`]); 1–2 µs per spawned task |
//! | `process` | off | tests only (Linux): `verify_none()` in a plain `#[tokio::test]`, `LocalSet`s, other runtimes, [`verify_test_main!`] |
//! | `endpoint` | off | a debug endpoint for live services: `endpoint::router` (axum) and `serve` (a standalone server) with task dumps, JSON, pprof, flame graphs and growth |
//! | `console` | off | `console::init()`: tokio-console alongside leakcheck (for a debugging session: costly) |
//!
//! leakcheck needs tokio 1.46.1 or newer (1.48 with `taskdump`).
//!
//! # Settings for a whole crate
//!
//! `leakcheck.toml` next to the crate's `Cargo.toml` (or in a parent
//! directory up to the workspace root) sets the test attribute's `grace`,
//! `max_tasks` and ignore rules for every test of the crate, or for one test
//! target in a `[tests.<target>]` table:
//!
//! ```toml
//! grace = "2s"
//! ignore_fn = ["my_pool::reaper"]  # the pool's reaper ends at its next tick
//!
//! [tests.pool]                     # tests/pool.rs only
//! grace = "31s"
//! ```
//!
//! `LEAKCHECK_GRACE` (e.g. `250ms`, `2s`) overrides the file's grace for
//! every test check, for a slow CI machine (trackers made with
//! [`instrument`] never read it). A test's own arguments win over both;
//! ignore rules add up. A bad key or value fails the test at its start with a message
//! that names the file (or variable), the line and the key.
#![warn(
    missing_docs,
    missing_debug_implementations,
    unreachable_pub,
    rust_2018_idioms
)]

mod capture;
mod census;
mod chain;
#[cfg(tokio_unstable)]
mod clock;
#[cfg(feature = "console")]
pub mod console;
mod fail;
mod fanout;
mod frame;
mod harness;
mod local;
mod metrics;
mod mode;
mod options;
#[cfg(feature = "tracing")]
mod owner;
mod paths;
#[cfg(feature = "tracing")]
mod plain;
#[cfg(feature = "process")]
mod process;
#[cfg(tokio_unstable)]
mod record;
mod report;
mod settings;
mod site;
mod snapshot;
#[cfg(feature = "tracing")]
mod spans;
mod state;
#[cfg(tokio_unstable)]
mod table;
mod text;
mod thread;
mod trace;
mod tracker;
mod tree;
mod wait;
mod walk;

#[cfg(feature = "endpoint")]
pub mod endpoint;
#[cfg(feature = "tracing")]
mod layer;

pub use capture::Capture;
pub use census::{Census, TaskGroup};
#[cfg(feature = "endpoint")]
pub use endpoint::{serve, ServeOptions, Server};
pub use fanout::Fanout;
#[cfg(feature = "tracing")]
pub use layer::{layer, TaskLayer};
pub use options::Options;
pub use report::{LeakGroup, Report, ReportKind};
pub use site::SpawnSite;
pub use snapshot::{AwaitNode, AwaitTrace, Home, Parent, Snapshot, TaskInfo, TaskState};
pub use thread::ThreadInfo;
pub use tracker::{find_leaks, instrument, verify_none, Tracker};

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
    #[cfg(feature = "process")]
    pub use ctor;

    /// What `verify_test_main!()` expands to: registers the exit check.
    #[cfg(feature = "process")]
    pub fn verify_test_main(manifest_dir: &str, target: &str, options: crate::Options) {
        crate::process::exit::register(manifest_dir, target, options);
    }
}

/// Checks the whole test binary when it ends: put `leakcheck::verify_test_main!();`
/// once at the top of a test file (goleak's `VerifyTestMain`).
///
/// When every test has run, every task still alive (on a runtime that is
/// still alive, such as one kept in a static) and every OS thread a test
/// started that still runs is reported, with where it was spawned or
/// started and by which test, and the binary exits with status 1 even
/// though each test passed. A runtime's own worker and blocking threads
/// belong to it and are not reported; the tasks on them are. Under cargo
/// nextest, which runs each test in a process of its own, this is an exact
/// per-test check.
///
/// Takes optional [`Options`] (the grace to wait for stragglers, ignore
/// rules, which here also match thread names, thread start sites and the
/// functions that started them); `leakcheck.toml` applies as for the test
/// attribute. Needs the `process` feature.
///
/// ```no_run
/// leakcheck::verify_test_main!();
/// # mod with_options {
/// // or, with options:
/// leakcheck::verify_test_main!(leakcheck::Options::new().ignore_name("metrics-pusher"));
/// # }
/// # fn main() {}
/// ```
#[cfg(feature = "process")]
#[macro_export]
macro_rules! verify_test_main {
    () => {
        $crate::verify_test_main!($crate::Options::new());
    };
    ($options:expr) => {
        $crate::__private::ctor::declarative::ctor!(
            #[ctor(unsafe, anonymous)]
            fn verify_test_main() {
                $crate::__private::verify_test_main(
                    ::core::env!("CARGO_MANIFEST_DIR"),
                    ::core::env!("CARGO_CRATE_NAME"),
                    $options,
                );
            }
        );
    };
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
