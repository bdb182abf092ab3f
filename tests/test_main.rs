//! `verify_test_main!()`: a binary whose tests leave a thread running and a
//! task alive on a runtime kept in a static exits non-zero and names both;
//! its clean twin exits 0; a thread is charged to the test whose task
//! started it, even on a runtime thread another test started. The fixtures
//! run in a child process of this very binary (they are `#[ignore]`d
//! here), so this binary's own run stays clean: it passes its own check at
//! exit. The grace at exit for this file is 200ms (tests/leakcheck.toml).
#![cfg(all(tokio_unstable, target_os = "linux"))]

leakcheck::verify_test_main!();

use std::future::pending;
use std::process::{Command, Output};
use std::sync::mpsc;
use std::sync::OnceLock;

use leakcheck_tests::{assert_contains, assert_lacks, shared_runtime, Source};
use tokio::runtime::{Handle, Runtime};

const SRC: Source = Source::new(file!(), include_str!("test_main.rs"));

/// A worker thread that runs until told to stop (or forever, given `None`).
#[inline(never)]
fn start_worker(stop: Option<mpsc::Receiver<()>>) -> std::thread::JoinHandle<()> {
    let work = move || match stop {
        Some(stop) => drop(stop.recv()),
        None => loop {
            std::thread::park();
        },
    };
    let thread = std::thread::Builder::new().name("leaky-worker".into());
    thread.spawn(work).unwrap() // start:worker
}

#[test]
#[ignore = "run by a_binary_with_leftovers_fails_naming_them"]
fn fixture_leaks() {
    start_worker(None);
    shared_runtime().spawn(pending::<()>()); // leak:static-task
                                             // a thread started from tokio's blocking pool is still the test's
    let from_blocking = shared_runtime().spawn_blocking(|| {
        let thread = std::thread::Builder::new().name("from-blocking".into());
        thread.spawn(|| loop {
            std::thread::park();
        })
    });
    shared_runtime().block_on(from_blocking).unwrap().unwrap();
}

#[test]
#[ignore = "run by its_clean_twin_exits_zero"]
fn fixture_cleans_up() {
    let (stop, stopped) = mpsc::channel();
    let worker = start_worker(Some(stopped));
    stop.send(()).unwrap();
    worker.join().unwrap();
    let task = shared_runtime().spawn(pending::<()>());
    task.abort();
    let _ = shared_runtime().block_on(task); // the runtime stays alive
}

fn run_fixture(name: &str) -> Output {
    Command::new(std::env::current_exe().unwrap())
        .args(["--exact", name, "--ignored"])
        .output()
        .unwrap()
}

// ── Threads started from another test's runtime thread ────────────────────

/// A multi_thread runtime whose worker the first test to use it starts.
fn workers_of_a() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("workers-of-a")
            .build()
            .unwrap()
    })
}

/// A current_thread runtime driven by a thread the first test to use it
/// starts.
fn driver_of_a() -> &'static Handle {
    static HANDLE: OnceLock<Handle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let (handle_tx, handle_rx) = mpsc::channel();
        let driver = std::thread::Builder::new().name("driver-of-a".into());
        driver
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .build()
                    .unwrap();
                handle_tx.send(rt.handle().clone()).unwrap();
                rt.block_on(pending::<()>());
            })
            .unwrap();
        handle_rx.recv().unwrap()
    })
}

/// Starts a thread named `name` that runs forever, from a task on
/// `handle`'s runtime, and waits until it started.
fn start_from_a_task(handle: &Handle, name: &'static str) {
    let (started_tx, started_rx) = mpsc::channel();
    handle.spawn(async move {
        let thread = std::thread::Builder::new().name(name.into());
        thread
            .spawn(|| loop {
                std::thread::park();
            })
            .unwrap();
        started_tx.send(()).unwrap();
    });
    started_rx.recv().unwrap();
}

#[test]
#[ignore = "run by a_thread_belongs_to_the_test_whose_task_started_it"]
fn fixture_owner_a_starts_the_runtimes() {
    workers_of_a();
    driver_of_a();
}

#[test]
#[ignore = "run by a_thread_belongs_to_the_test_whose_task_started_it"]
fn fixture_owner_b_starts_threads_from_their_tasks() {
    start_from_a_task(workers_of_a().handle(), "b-from-worker");
    start_from_a_task(driver_of_a(), "b-from-driver");
}

#[test]
fn a_thread_belongs_to_the_test_whose_task_started_it() {
    // one at a time, in name order: A first makes the runtimes' threads
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["fixture_owner_", "--ignored", "--test-threads", "1"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stdout.contains("test result: ok. 2 passed"), "{stdout}");
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    let b = ", started by test `fixture_owner_b_starts_threads_from_their_tasks`";
    // on a multi_thread runtime's worker and on a current_thread runtime's
    // driving thread, both started by test A
    for name in ["b-from-worker", "b-from-driver"] {
        let line = stderr
            .lines()
            .find(|l| l.starts_with(&format!("── thread \"{name}\"")))
            .unwrap_or_else(|| panic!("no thread {name:?} in:\n{stderr}"));
        assert!(line.ends_with(b), "{stderr}");
    }
    // A's own leftover: the thread driving its runtime
    let a = ", started by test `fixture_owner_a_starts_the_runtimes`";
    let driver = stderr
        .lines()
        .find(|l| l.starts_with("── thread \"driver-of-a\""));
    assert!(driver.is_some_and(|l| l.ends_with(a)), "{stderr}");
    assert_lacks(&stderr, "── thread \"workers-of-a\"");
}

#[test]
fn a_binary_with_leftovers_fails_naming_them() {
    let out = run_fixture("fixture_leaks");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stdout.contains("test result: ok. 1 passed"), "{stdout}");
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert_contains(
        &stderr,
        "leakcheck: `test_main` leaves 2 threads and 1 task running",
    );
    assert_contains(&stderr, "── thread \"leaky-worker\" (tid ");
    assert_contains(&stderr, "── thread \"from-blocking\" (tid ");
    assert_contains(&stderr, ", started by test `fixture_leaks`");
    let started = format!(
        "started at test_main::start_worker at {}",
        SRC.site("// start:worker")
    );
    assert_contains(&stderr, &started);
    let task = format!("── 1 task {}", SRC.spawned_at("// leak:static-task"));
    let group = stderr.lines().find(|l| l.starts_with(&task));
    let group = group.unwrap_or_else(|| panic!("no group for the task:\n{stderr}"));
    assert!(group.contains(" on another runtime (runtime "), "{stderr}");
    assert!(group.ends_with(", thread \"shared-rt\")"), "{stderr}");
    // the runtime's own worker thread is the runtime's, not a leak
    assert_lacks(&stderr, "── thread \"shared-rt\"");
}

#[test]
fn its_clean_twin_exits_zero() {
    let out = run_fixture("fixture_cleans_up");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_lacks(&stderr, "leakcheck:");
}
