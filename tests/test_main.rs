//! `verify_test_main!()`: a binary whose tests leave a thread running and a
//! task alive on a runtime kept in a static exits non-zero and names both;
//! its clean twin exits 0. The fixtures run in a child process of this
//! very binary (they are `#[ignore]`d here), so this binary's own run stays
//! clean: it passes its own check at exit. The grace at exit for this file
//! is 200ms (tests/leakcheck.toml).
#![cfg(all(tokio_unstable, target_os = "linux"))]

leakcheck::verify_test_main!();

use std::future::pending;
use std::process::{Command, Output};
use std::sync::mpsc;
use std::sync::OnceLock;

use leakcheck_tests::{assert_contains, assert_lacks, Source};
use tokio::runtime::Runtime;

const SRC: Source = Source::new(file!(), include_str!("test_main.rs"));

fn shared_runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("shared-rt")
            .enable_all()
            .build()
            .unwrap()
    })
}

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

#[test]
fn a_binary_with_leftovers_fails_naming_them() {
    let out = run_fixture("fixture_leaks");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stdout.contains("test result: ok. 1 passed"), "{stdout}");
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert_contains(
        &stderr,
        "leakcheck: `test_main` leaves 1 thread and 1 task running",
    );
    assert_contains(&stderr, "── thread \"leaky-worker\" (tid ");
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
