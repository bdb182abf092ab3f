//! `verify_test_main!()`: when the test binary ends, every task still alive
//! (on runtimes still alive: static ones) and every thread it started that
//! still runs fail the binary, even though each test passed.
//!
//! libtest returns from `main` when every test passed and calls
//! `process::exit(101)` when one failed; both end in libc's `exit`, which
//! runs this module's `atexit` handler. It reports and ends the process with
//! status 1 (a failed run keeps a failing status). Under cargo nextest each
//! test runs in a process of its own, so the check is per test.

use std::sync::atomic::{AtomicUsize, Ordering::*};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

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

/// Times `verify_test_main!()` registered in this binary: more than once
/// fails the binary (only the first one's options would apply).
static REGISTERED: AtomicUsize = AtomicUsize::new(0);

/// Registers the check at exit; called from `verify_test_main!()`'s ctor.
pub(crate) fn register(manifest_dir: &str, target: &str, options: Options) {
    if REGISTERED.fetch_add(1, SeqCst) > 0 {
        return; // the one registered first reports it at exit
    }
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

/// The failure for a binary that uses `verify_test_main!()` more than once.
fn twice(name: &str, times: usize) -> Option<String> {
    (times > 1).then(|| {
        format!(
            "leakcheck: `verify_test_main!()` is used {times} times in the test binary `{name}` \
             (in modules it includes, too): a binary has one exit check, so keep one, with \
             the options you want"
        )
    })
}

extern "C" fn at_exit() {
    let Some(check) = CHECK.get() else {
        return;
    };
    // `--list` (as cargo nextest asks): no test ran
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let failure = match (&check.options, twice(&check.name, REGISTERED.load(SeqCst))) {
        (_, Some(twice)) => Some(twice),
        (Err(e), None) => Some(e.clone()),
        (Ok(options), None) => look(&check.name, options).map(|r| r.to_string()),
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
    // a task ending counts on this condition variable's counter, a thread
    // exiting notifies it too (counting in `threads::exits`)
    let (ended, cv) = tasks::ended_sync();
    let (threads, tasks) = loop {
        let seen = (*ended.lock(), super::threads::exits());
        // only a look that began after the deadline is the verdict (a slow
        // one may have seen what ended while it looked)
        let began = Instant::now();
        let running: Vec<&Arc<Thread>> = watched.iter().filter(|t| t.running()).collect();
        let tasks = tasks(options);
        if (running.is_empty() && tasks.is_empty()) || began >= deadline {
            break (running.iter().map(|t| t.info()).collect(), tasks);
        }
        if Instant::now() >= deadline {
            continue; // it passed during the look: look once more
        }
        let mut count = ended.lock();
        // nothing ended since the look began: wait until something does
        if (*count, super::threads::exits()) == seen {
            cv.wait_until(&mut count, deadline);
        }
    };
    let mut report = Report {
        name: name.to_owned(),
        kind: ReportKind::EndOfBinary,
        grace,
        threads,
        groups: crate::tree::build(tasks),
        ..Report::default()
    };
    if report.threads.iter().any(|t| !t.chain_known()) {
        report.notes.push(
            "leakcheck could not learn the call chain that started some of these threads (no \
             frame pointers, and the DWARF unwinder found nothing), so it cannot tell whether \
             they are a runtime's own threads: build the tests with `-C \
             force-frame-pointers=yes` (see leakcheck's README), or ignore them by name"
                .to_owned(),
        );
    }
    report.is_failure().then_some(report)
}

/// Threads a test started that still run, but for this one, a runtime's
/// own threads and the ones the options ignore. (Threads the main thread or
/// a constructor started before any test are not a test's leftovers.)
fn leftover_threads(options: &Options) -> Vec<Arc<Thread>> {
    // SAFETY: a syscall without arguments.
    let me = unsafe { libc::gettid() };
    let ignore = options.ignore();
    let mut all = super::threads::all();
    all.retain(|t| t.owner.is_some() && t.running() && t.tid.load(Relaxed) != me);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_verify_test_main_is_an_error() {
        assert_eq!(twice("pool", 1), None);
        let message = twice("pool", 2).unwrap();
        assert!(
            message.contains("`verify_test_main!()` is used 2 times"),
            "{message}"
        );
        assert!(message.contains("keep one"), "{message}");
    }
}
