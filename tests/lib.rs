//! Helpers shared by leakcheck's integration tests.
//!
//! Leak-expected runs go through [`leak_report`], which runs a body through
//! `leakcheck::__private::run_test` (exactly what `#[leakcheck::test]`
//! expands to) and hands back the failure message, so a test can assert on
//! the report's text. Spawn sites are asserted to the exact line through
//! marker comments: see [`Source`].

use std::any::Any;
use std::future::Future;
use std::panic::{self, AssertUnwindSafe};
use std::time::Duration;

pub use leakcheck::__private::Flavor;
use leakcheck::__private::{run_test, TestConfig, TestResult};

/// The name leak-expected runs get in the report headline, unless a test
/// sets its own.
pub const RUN_NAME: &str = "leakcheck_tests::leak_report";

/// The [`TestConfig`] `#[leakcheck::test(flavor = .., grace = "<grace_ms>ms")]`
/// would build. `MultiThread` gets `worker_threads = 2`.
pub fn config(flavor: Flavor, grace_ms: u64) -> TestConfig {
    TestConfig {
        name: RUN_NAME,
        manifest_dir: None,
        target: None,
        flavor,
        worker_threads: (flavor == Flavor::MultiThread).then_some(2),
        start_paused: false,
        shutdown_on_unhandled_panic: false,
        grace: Some(Duration::from_millis(grace_ms)),
        max_tasks: None,
        ignore_spawn_sites: &[],
        ignore_fns: &[],
        ignore_names: &[],
    }
}

/// Runs `body` the way `#[leakcheck::test]` does and returns its output, or
/// the panic message if the run failed (a leak report or the body's own panic).
pub fn run<F>(config: TestConfig, body: F) -> Result<F::Output, String>
where
    F: Future,
    F::Output: TestResult,
{
    panic::catch_unwind(AssertUnwindSafe(|| run_test(config, body))).map_err(panic_message)
}

/// The text of a panic payload (`panic!` with a format string gives a
/// `String`, with a literal a `&str`).
pub fn panic_message(payload: Box<dyn Any + Send>) -> String {
    match payload.downcast::<String>() {
        Ok(message) => *message,
        Err(payload) => match payload.downcast::<&'static str>() {
            Ok(message) => (*message).to_owned(),
            Err(_) => "<a panic payload that is not a string>".to_owned(),
        },
    }
}

/// Runs `body` under `config` and returns the failure message; panics if
/// the run passed.
#[track_caller]
pub fn expect_failure<F: Future<Output = ()>>(config: TestConfig, body: F) -> String {
    let (flavor, grace, max_tasks) = (config.flavor, config.grace, config.max_tasks);
    match run(config, body) {
        Err(message) => message,
        Ok(()) => panic!(
            "expected this run to fail with a leakcheck report, but it passed \
             (flavor {flavor:?}, grace {grace:?}, max_tasks {max_tasks:?})"
        ),
    }
}

/// Runs `body` on a `flavor` runtime with a grace of `grace_ms` and returns
/// the leak report it fails with. Panics if the run did not fail.
#[track_caller]
pub fn leak_report<F: Future<Output = ()>>(flavor: Flavor, grace_ms: u64, body: F) -> String {
    expect_failure(config(flavor, grace_ms), body)
}

/// Like [`leak_report`], with `max_tasks = max_tasks`.
#[track_caller]
pub fn leak_report_with_max_tasks<F: Future<Output = ()>>(
    flavor: Flavor,
    grace_ms: u64,
    max_tasks: usize,
    body: F,
) -> String {
    let config = TestConfig {
        max_tasks: Some(max_tasks),
        ..config(flavor, grace_ms)
    };
    expect_failure(config, body)
}

/// The 1-based number of the one line of `file_text` that ends with
/// `marker`, a trailing comment such as `// leak:ticker`.
///
/// Only lines that *end* with the marker count, so the test code that names
/// the marker in a string literal (`spawned_at("// leak:ticker")`) is not a
/// second match. Panics unless exactly one line matches.
#[track_caller]
pub fn spawn_line(file_text: &str, marker: &str) -> u32 {
    let hits: Vec<usize> = file_text
        .lines()
        .enumerate()
        .filter(|(_, line)| line.trim_end().ends_with(marker))
        .map(|(i, _)| i + 1)
        .collect();
    match hits[..] {
        [line] => u32::try_from(line).expect("a test file shorter than 4 billion lines"),
        [] => panic!("no line ends with the marker {marker:?}"),
        _ => panic!("the marker {marker:?} ends more than one line: {hits:?}"),
    }
}

/// A test file's path (as `file!()` and spawn sites spell it) and text (from
/// `include_str!`), to turn marker comments into the sites a report prints.
///
/// ```text
/// const SRC: Source = Source::new(file!(), include_str!("patterns.rs"));
/// assert_contains(&report, &SRC.spawned_at("// leak:ticker"));
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Source {
    /// `tests/<file>.rs`.
    pub path: &'static str,
    /// The file's text.
    pub text: &'static str,
}

impl Source {
    /// A source file; pass `file!()` and `include_str!("<file>.rs")`.
    pub const fn new(path: &'static str, text: &'static str) -> Source {
        Source { path, text }
    }

    /// The line the marker ends.
    #[track_caller]
    pub fn line(&self, marker: &str) -> u32 {
        spawn_line(self.text, marker)
    }

    /// `tests/<file>.rs:<line>:`, a spawn site up to its column.
    #[track_caller]
    pub fn site(&self, marker: &str) -> String {
        format!("{}:{}:", self.path, self.line(marker))
    }

    /// `spawned at tests/<file>.rs:<line>:`, as a report's group line says it.
    #[track_caller]
    pub fn spawned_at(&self, marker: &str) -> String {
        format!("spawned at {}", self.site(marker))
    }
}

/// The start of a leak report's headline: `leakcheck: 1 task leaked by`.
pub fn headline(leaked: usize) -> String {
    match leaked {
        1 => "leakcheck: 1 task leaked by".to_owned(),
        n => format!("leakcheck: {n} tasks leaked by"),
    }
}

/// Asserts that the report starts with the headline for `leaked` tasks.
#[track_caller]
pub fn assert_headline(report: &str, leaked: usize) {
    let expected = headline(leaked);
    assert!(
        report.starts_with(&expected),
        "expected the report to start with {expected:?}; the report:\n{report}"
    );
}

/// Asserts that `report` contains `needle`, printing the whole report if not.
#[track_caller]
pub fn assert_contains(report: &str, needle: &str) {
    assert!(
        report.contains(needle),
        "expected the report to contain {needle:?}; the report:\n{report}"
    );
}

/// Asserts that `report` does not contain `needle`, printing the whole report if it does.
#[track_caller]
pub fn assert_lacks(report: &str, needle: &str) {
    assert!(
        !report.contains(needle),
        "expected the report NOT to contain {needle:?}; the report:\n{report}"
    );
}

/// The lines of a report that open a group of leaks (`── 3 tasks spawned at …`).
pub fn group_lines(report: &str) -> Vec<&str> {
    report.lines().filter(|l| l.starts_with("──")).collect()
}

/// The call chain of the report's first group that has one, innermost
/// first: `function at path:line:col` per frame.
pub fn call_chain(report: &str) -> Vec<&str> {
    report
        .lines()
        .skip_while(|l| l.trim() != "call chain (innermost first):")
        .skip(1)
        .take_while(|l| l.starts_with("       "))
        .map(str::trim)
        .collect()
}

/// The position in `chain` of the first frame whose function ends with
/// `function` (e.g. `patterns::inner`). Panics, printing the chain, if none does.
#[track_caller]
pub fn frame_index(chain: &[&str], function: &str) -> usize {
    chain
        .iter()
        .position(|frame| {
            frame
                .split(" at ")
                .next()
                .is_some_and(|f| f.ends_with(function))
        })
        .unwrap_or_else(|| {
            panic!(
                "no frame of {function:?} in the call chain:\n{}",
                chain.join("\n")
            )
        })
}

/// A multi_thread runtime kept in a static (one worker, named `shared-rt`,
/// every driver on), shared by every test of a binary: tasks on it live
/// outside any test's own runtime.
pub fn shared_runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("shared-rt")
            .enable_all()
            .build()
            .unwrap()
    })
}
