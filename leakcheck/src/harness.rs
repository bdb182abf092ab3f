//! The runtime behind `#[leakcheck::test]`: build, instrument, run, check.
//!
//! Not public API: the macro's expansion calls [`run_test`] through
//! `leakcheck::__private`, and nothing else should.

use std::future::Future;
use std::panic::{self, AssertUnwindSafe};
use std::time::Duration;

use crate::options::Options;
use crate::report::ReportKind;
use crate::settings::Settings;
use crate::tracker::Tracker;

/// Which runtime the test body runs on (the macro's `flavor`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// `flavor = "current_thread"` (the default).
    CurrentThread,
    /// `flavor = "multi_thread"`.
    MultiThread,
    /// `flavor = "local"`: a `LocalRuntime` (needs `--cfg tokio_unstable`).
    Local,
}

/// Everything the macro parsed, in the shape the harness needs.
#[derive(Debug, Clone)]
pub struct TestConfig {
    /// `module_path!()::fn_name`, used in the report headline and as the runtime name.
    pub name: &'static str,
    /// `env!("CARGO_MANIFEST_DIR")` of the test's crate: where `leakcheck.toml` is found.
    pub manifest_dir: Option<&'static str>,
    /// `env!("CARGO_CRATE_NAME")` of the test target: its `[tests.<target>]` table.
    pub target: Option<&'static str>,
    /// The runtime flavor.
    pub flavor: Flavor,
    /// `worker_threads = N` (multi_thread only).
    pub worker_threads: Option<usize>,
    /// `start_paused = true`.
    pub start_paused: bool,
    /// `unhandled_panic = "shutdown_runtime"`.
    pub shutdown_on_unhandled_panic: bool,
    /// `grace = "500ms"`, already parsed by the macro. `None`: env or default.
    pub grace: Option<Duration>,
    /// `max_tasks = N`.
    pub max_tasks: Option<usize>,
    /// `ignore_spawn_site = "..."` or `[...]`.
    pub ignore_spawn_sites: &'static [&'static str],
    /// `ignore_fn = "..."` or `[...]`.
    pub ignore_fns: &'static [&'static str],
    /// `ignore_name = "..."` or `[...]`.
    pub ignore_names: &'static [&'static str],
}

/// What a test body may return: `()` or any `Result`.
#[diagnostic::on_unimplemented(
    message = "`#[leakcheck::test]` functions must return `()` or a `Result`, not `{Self}`",
    label = "this return type is not supported"
)]
pub trait TestResult {
    /// True when the body itself failed; leaks are then not checked, so the
    /// body's own error is what the test reports.
    fn is_failure(&self) -> bool;
}

impl TestResult for () {
    fn is_failure(&self) -> bool {
        false
    }
}

impl<T, E> TestResult for Result<T, E> {
    fn is_failure(&self) -> bool {
        self.is_err()
    }
}

impl TestConfig {
    /// The test's own arguments, completed with the crate's settings.
    fn options(&self) -> Result<Options, String> {
        let dir = self.manifest_dir.map(std::path::Path::new);
        let settings = Settings::load(dir, self.target)?;
        Ok(settings.apply(self.arguments()))
    }

    fn arguments(&self) -> Options {
        let mut options = Options::new();
        if let Some(grace) = self.grace {
            options = options.grace(grace);
        }
        if let Some(max) = self.max_tasks {
            options = options.max_tasks(max);
        }
        for s in self.ignore_spawn_sites {
            options = options.ignore_spawn_site(*s);
        }
        for f in self.ignore_fns {
            options = options.ignore_fn(*f);
        }
        for n in self.ignore_names {
            options = options.ignore_name(*n);
        }
        options
    }

    fn builder(&self) -> tokio::runtime::Builder {
        let mut builder = match self.flavor {
            Flavor::CurrentThread | Flavor::Local => tokio::runtime::Builder::new_current_thread(),
            Flavor::MultiThread => tokio::runtime::Builder::new_multi_thread(),
        };
        if let Some(n) = self.worker_threads {
            builder.worker_threads(n);
        }
        #[cfg(feature = "macros")]
        if self.start_paused {
            builder.start_paused(true);
        }
        if self.shutdown_on_unhandled_panic {
            #[cfg(tokio_unstable)]
            builder.unhandled_panic(tokio::runtime::UnhandledPanic::ShutdownRuntime);
            #[cfg(not(tokio_unstable))]
            panic!(
                "leakcheck: `unhandled_panic = \"shutdown_runtime\"` needs `--cfg tokio_unstable`; \
                 add it to `[build] rustflags` in .cargo/config.toml"
            );
        }
        builder.thread_name("leakcheck-test").enable_all();
        builder
    }
}

/// Runs one `#[leakcheck::test]` body: builds an instrumented runtime, runs
/// the body, waits out the grace for stragglers and panics with the report
/// if any task the body spawned is still alive.
#[track_caller]
pub fn run_test<F>(config: TestConfig, body: F) -> F::Output
where
    F: Future,
    F::Output: TestResult,
{
    // the layer for this thread (and, through the tracker, the runtime's)
    #[cfg(all(tokio_unstable, feature = "tracing", not(feature = "process")))]
    let _layer = crate::layer::test_default().map(tracing::dispatcher::set_default);
    let options = match config.options() {
        Ok(options) => options,
        Err(e) => panic!("{e}"),
    };
    // the attribute's argument is a compile error without the flag; this
    // catches `max_tasks` from leakcheck.toml
    #[cfg(not(tokio_unstable))]
    if options.max_task_limit().is_some() {
        panic!(
            "leakcheck: `max_tasks` (from the attribute or leakcheck.toml) needs \
             `--cfg tokio_unstable`: the peak is counted in tokio's spawn hook; add it to \
             `[build] rustflags` in .cargo/config.toml"
        );
    }
    // a test of its own, whatever thread it runs on (before the runtime's
    // threads start, so they belong to it too)
    #[cfg(feature = "tracing")]
    let _owner = crate::owner::begin(config.name);
    let mut builder = config.builder();
    let tracker = Tracker::install(&mut builder, config.name.to_owned(), options);
    let runtime = Runtime::build(&mut builder, config.flavor);
    let _context = tracker.enter();

    let outcome = panic::catch_unwind(AssertUnwindSafe(|| {
        runtime.block_on(async {
            tracker.set_baseline();
            let output = body.await;
            if output.is_failure() {
                return (output, Ok(()));
            }
            let verdict = tracker.check(ReportKind::EndOfTest).await;
            (output, verdict)
        })
    }));
    match outcome {
        Err(payload) => {
            // The body's own panic is the failure; never let a blocked
            // blocking task or worker turn it into a hang.
            runtime.shutdown_background();
            panic::resume_unwind(payload)
        }
        Ok((output, Ok(()))) => {
            runtime.shutdown(&tracker);
            output
        }
        Ok((_, Err(report))) => {
            runtime.shutdown(&tracker);
            // the test's line, without a backtrace through leakcheck's harness
            crate::fail::fail_at(std::panic::Location::caller(), report.to_string())
        }
    }
}

/// The two runtime types a test can run on.
enum Runtime {
    Shared(tokio::runtime::Runtime),
    #[cfg(tokio_unstable)]
    Local(tokio::runtime::LocalRuntime),
}

impl Runtime {
    fn build(builder: &mut tokio::runtime::Builder, flavor: Flavor) -> Runtime {
        const FAILED: &str = "leakcheck: failed to build the test runtime";
        match flavor {
            #[cfg(tokio_unstable)]
            Flavor::Local => Runtime::Local(
                builder
                    .build_local(tokio::runtime::LocalOptions::default())
                    .expect(FAILED),
            ),
            #[cfg(not(tokio_unstable))]
            Flavor::Local => panic!(
                "leakcheck: `flavor = \"local\"` needs `--cfg tokio_unstable`; \
                 add it to `[build] rustflags` in .cargo/config.toml"
            ),
            _ => Runtime::Shared(builder.build().expect(FAILED)),
        }
    }

    fn handle(&self) -> &tokio::runtime::Handle {
        match self {
            Runtime::Shared(rt) => rt.handle(),
            #[cfg(tokio_unstable)]
            Runtime::Local(rt) => rt.handle(),
        }
    }

    fn block_on<F: Future>(&self, future: F) -> F::Output {
        match self {
            Runtime::Shared(rt) => rt.block_on(future),
            #[cfg(tokio_unstable)]
            Runtime::Local(rt) => rt.block_on(future),
        }
    }

    /// Drops the runtime without waiting on blocking work that outlived the
    /// test (a leaked `spawn_blocking`, or a worker stuck in a blocking call).
    fn shutdown(self, tracker: &Tracker) {
        let wait = match tracker.blocking_in_flight(self.handle()) {
            Some(0) => SHUTDOWN_WAIT,
            Some(_) => Duration::ZERO,
            // count mode: blocking work is invisible, so never wait long on it
            None => COUNT_MODE_SHUTDOWN_WAIT,
        };
        match self {
            Runtime::Shared(rt) => rt.shutdown_timeout(wait),
            #[cfg(tokio_unstable)]
            Runtime::Local(rt) => drop(rt),
        }
    }

    fn shutdown_background(self) {
        match self {
            Runtime::Shared(rt) => rt.shutdown_background(),
            #[cfg(tokio_unstable)]
            Runtime::Local(rt) => drop(rt),
        }
    }
}

/// How long runtime shutdown may wait for blocking threads to finish when
/// the check saw none busy. Long enough for a clean shutdown, short enough
/// that a worker stuck in a blocking call cannot hang the test.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(5);

/// The same without `--cfg tokio_unstable`, where leakcheck cannot tell
/// whether blocking work is running: idle blocking threads exit at once.
const COUNT_MODE_SHUTDOWN_WAIT: Duration = Duration::from_millis(250);

#[cfg(all(test, tokio_unstable, feature = "tracing", not(feature = "process")))]
mod tests {
    use super::{run_test, Flavor, TestConfig};

    /// A `#[leakcheck::test]` sees task names through a thread-local
    /// default and leaves the global one to the suite, which may set its
    /// own afterwards (`tracing_subscriber::fmt::init()` panics otherwise).
    #[test]
    fn a_test_leaves_the_global_default_to_the_suite() {
        for flavor in [Flavor::CurrentThread, Flavor::MultiThread] {
            let config = TestConfig {
                name: "harness::tests::checked",
                manifest_dir: None,
                target: None,
                flavor,
                worker_threads: None,
                start_paused: false,
                shutdown_on_unhandled_panic: false,
                grace: Some(std::time::Duration::from_millis(50)),
                max_tasks: None,
                ignore_spawn_sites: &[],
                ignore_fns: &[],
                ignore_names: &[],
            };
            run_test(config, async {
                // spawned from a task: on multi_thread, from a worker thread
                #[allow(clippy::async_yields_async)] // the handle is the point
                let inner = tokio::spawn(async {
                    let named = tokio::task::Builder::new().name("named");
                    named.spawn(std::future::pending::<()>()).unwrap()
                });
                let named = inner.await.unwrap();
                let seen = crate::layer::tasks::lookup(crate::mode::id_u64(named.id()));
                let name = seen.and_then(|s| s.name.clone());
                assert_eq!(name.as_deref(), Some("named"), "{flavor:?}");
                named.abort();
            });
        }
        let suite = tracing::subscriber::NoSubscriber::default();
        tracing::subscriber::set_global_default(suite).expect("the global default is free");
    }
}
