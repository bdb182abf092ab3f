//! `verify_test_main!()`: when the test binary ends, every task still alive
//! (on runtimes still alive: static ones) and every thread it started that
//! still runs fail the binary, even though each test passed.
//!
//! libtest returns from `main` when every test passed and calls
//! `process::exit(101)` when one failed; both end in libc's `exit`, which
//! runs this module's `atexit` handler. It reports and ends the process with
//! status 1 (a failed run keeps a failing status). Under cargo nextest each
//! test runs in a process of its own, so the check is per test.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use super::threads::Thread;
use crate::layer::tasks;
use crate::options::Options;
use crate::report::{Report, ReportKind};
use crate::settings::Settings;
use crate::snapshot::TaskInfo;
use crate::spans::Scope;

/// What `verify_test_main!()` registered.
struct Check {
    name: String,
    options: Result<Options, String>,
}

static CHECK: OnceLock<Check> = OnceLock::new();

/// Registers the check at exit; called from `verify_test_main!()`'s ctor.
pub(crate) fn register(manifest_dir: &str, target: &str, options: Options) {
    let dir = std::path::Path::new(manifest_dir);
    let options = Settings::load(Some(dir), Some(target)).map(|s| s.apply(options));
    let check = Check {
        name: target.to_owned(),
        options,
    };
    if CHECK.set(check).is_ok() {
        // SAFETY: registers a plain `extern "C" fn()`.
        unsafe { libc::atexit(at_exit) };
    }
}

extern "C" fn at_exit() {
    let Some(check) = CHECK.get() else {
        return;
    };
    // `--list` (as cargo nextest asks): no test ran
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let failure = match &check.options {
        Err(e) => Some(e.clone()),
        Ok(options) => look(&check.name, options).map(|r| r.to_string()),
    };
    if let Some(failure) = failure {
        eprintln!("\n{failure}");
        // SAFETY: ends the process at once; stderr is unbuffered.
        unsafe { libc::_exit(1) };
    }
}

/// Waits up to the grace for leftover threads and tasks to end, then
/// reports those that did not.
fn look(name: &str, options: &Options) -> Option<Report> {
    let grace = options.grace_duration();
    // symbolizing takes a while the first time: before the grace starts
    let watched = leftover_threads(options);
    let deadline = Instant::now() + grace;
    let _waiting = tasks::Waiting::new();
    let (threads, tasks) = loop {
        let running: Vec<&Arc<Thread>> = watched.iter().filter(|t| t.running()).collect();
        let tasks = tasks(options);
        let now = Instant::now();
        if (running.is_empty() && tasks.is_empty()) || now >= deadline {
            break (running.iter().map(|t| t.info()).collect(), tasks);
        }
        // woken by a thread exiting; a task ending wakes the other condvar,
        // so wait on each for a short while in turn
        let slice = (deadline - now).min(Duration::from_millis(10));
        let (count, cv) = super::threads::exits();
        cv.wait_for(&mut count.lock(), slice / 2);
        let (count, cv) = tasks::ended_sync();
        cv.wait_for(&mut count.lock(), slice / 2);
    };
    let report = Report {
        name: name.to_owned(),
        kind: ReportKind::EndOfBinary,
        grace,
        threads,
        groups: crate::tree::build(tasks),
        ..Report::default()
    };
    report.is_failure().then_some(report)
}

/// Threads started during the run that still run, but for this one, a
/// runtime's own threads and the ones the options ignore.
fn leftover_threads(options: &Options) -> Vec<Arc<Thread>> {
    // SAFETY: a syscall without arguments.
    let me = unsafe { libc::gettid() };
    let ignore = options.ignore();
    let mut all = super::threads::all();
    all.retain(|t| t.running() && t.tid.load(Relaxed) != me);
    all.retain(|t| {
        let info = t.info();
        !info.is_runtime_thread() && !ignore.matches_thread(&info)
    });
    all
}

/// Tasks still alive, on runtimes still alive, but for the ignored ones.
fn tasks(options: &Options) -> Vec<TaskInfo> {
    let scope = Scope {
        owner: None,
        baseline: 0,
        this_runtime: None,
        blocking: true,
    };
    let alive = crate::spans::leaked(&scope, |_| false);
    let ignored = options.ignore().subtree_matches(&alive, alive.iter());
    alive
        .into_iter()
        .filter(|t| !ignored.contains(&t.id))
        .collect()
}
