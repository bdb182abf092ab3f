//! What a leak-checked test means beyond "tasks left over": isolation between
//! parallel runs, `max_tasks`, panicking bodies, blocking work, `Result`
//! tests, `#[should_panic]`, mid-test checks, paused clocks, and ignore rules
//! that match an ancestor older than the baseline.
//!
//! `LEAKCHECK_GRACE` is not tested here: the environment is process-global
//! and the tests of this binary run in parallel.

use std::future::pending;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use leakcheck::__private::TestConfig;
#[cfg(tokio_unstable)]
use leakcheck_tests::{
    assert_contains, assert_lacks, leak_report, leak_report_with_max_tasks, Source,
};
use leakcheck_tests::{assert_headline, config, run, Flavor};
use tokio::sync::oneshot;
#[cfg(tokio_unstable)]
use tokio::{sync::Semaphore, task::JoinSet};

#[cfg(tokio_unstable)]
const SRC: Source = Source::new(file!(), include_str!("semantics.rs"));

const CURRENT_THREAD: Flavor = Flavor::CurrentThread;

// ── Parallel runs see only their own tasks ─────────────────────────────────

const RUNS: usize = 8;
const NAMES: [&str; RUNS] = [
    "iso0", "iso1", "iso2", "iso3", "iso4", "iso5", "iso6", "iso7",
];

/// Spawns a task parked until `close` fires, from a site that depends on
/// `site` (0..4), so each leaky run leaks from a line of its own.
fn spawn_parked(site: usize, closed: oneshot::Receiver<()>) -> tokio::task::JoinHandle<()> {
    let parked = async move {
        closed.await.ok();
    };
    match site {
        0 => tokio::spawn(parked), // leak:iso0
        1 => tokio::spawn(parked), // leak:iso1
        2 => tokio::spawn(parked), // leak:iso2
        _ => tokio::spawn(parked), // leak:iso3
    }
}

/// Eight runtimes on eight threads at once, all with a live task at the
/// same moment (a barrier inside the bodies): the even runs leak theirs,
/// the odd ones close and join it. Each run must see only its own tasks.
#[test]
fn parallel_runs_are_isolated() {
    let barrier = Arc::new(Barrier::new(RUNS));
    let runs: Vec<_> = (0..RUNS)
        .map(|i| {
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                let config = TestConfig {
                    name: NAMES[i],
                    ..config(CURRENT_THREAD, 200)
                };
                run(config, async move {
                    let (close, closed) = oneshot::channel();
                    let task = spawn_parked(i / 2, closed);
                    // Blocking the runtime thread is fine here: its only task waits anyway.
                    barrier.wait();
                    if i % 2 == 1 {
                        close.send(()).unwrap();
                        task.await.unwrap();
                    } else {
                        std::mem::forget(close); // the leaky half never closes its task
                    }
                })
            })
        })
        .collect();
    for (i, run) in runs.into_iter().enumerate() {
        let outcome = run.join().expect("the runner thread itself never panics");
        if i % 2 == 1 {
            assert_eq!(outcome, Ok(()), "clean run {i} must pass");
            continue;
        }
        let report = outcome.expect_err("leaky runs fail");
        assert_headline(&report, 1);
        assert!(
            report.contains(&format!("leaked by `{}`", NAMES[i])),
            "{report}"
        );
        #[cfg(tokio_unstable)]
        for site in 0..4 {
            let at = SRC.spawned_at(&format!("// leak:iso{site}"));
            match site == i / 2 {
                true => assert_contains(&report, &at),
                false => assert_lacks(&report, &at),
            }
        }
    }
}

// ── max_tasks ──────────────────────────────────────────────────────────────

// Without the spawn hook there is no exact peak: in count mode `max_tasks`
// is a compile error at the argument (ui/fail/needs_tokio_unstable.rs).

#[cfg(tokio_unstable)]
#[test]
fn max_tasks_exceeded_names_the_peak_and_site() {
    let report = leak_report_with_max_tasks(CURRENT_THREAD, 100, 10, async {
        let (go, ready) = tokio::sync::watch::channel(false);
        let mut batch = JoinSet::new();
        for _ in 0..50 {
            let mut ready = ready.clone();
            let wait = async move { ready.wait_for(|go| *go).await.map(drop) };
            batch.spawn(wait); // leak:fanout
        }
        go.send(true).unwrap();
        while let Some(done) = batch.join_next().await {
            done.unwrap().unwrap();
        }
    });
    assert_contains(&report, "failed its task checks");
    assert_contains(
        &report,
        "── 50 spawned tasks were alive at once; max_tasks = 10",
    );
    assert_contains(
        &report,
        &format!("    50 {}", SRC.spawned_at("// leak:fanout")),
    );
    assert_lacks(&report, "leaked by"); // every task was joined: only the fan-out failed
}

#[cfg(tokio_unstable)]
#[leakcheck::test(max_tasks = 10)]
async fn max_tasks_bounded_fan_out_passes() {
    let permits = Arc::new(Semaphore::new(8));
    let mut batch = JoinSet::new();
    for i in 0..50u64 {
        let permit = permits.clone().acquire_owned().await.unwrap();
        batch.spawn(async move {
            let _permit = permit;
            i * 2
        });
    }
    let mut sum = 0;
    while let Some(done) = batch.join_next().await {
        sum += done.unwrap();
    }
    assert_eq!(sum, 49 * 50);
}

// ── A panicking body fails with its own message ────────────────────────────

/// Panics with `message` (a function, so the body's type stays `()`).
fn fail(message: &'static str) {
    panic!("{message}")
}

#[test]
fn panicking_body_fails_with_its_own_message() {
    let started = Instant::now();
    let outcome = run(config(CURRENT_THREAD, 100), async {
        tokio::spawn(pending::<()>());
        tokio::task::spawn_blocking(|| std::thread::sleep(Duration::from_secs(10)));
        fail("the body's own failure");
    });
    assert_eq!(outcome, Err("the body's own failure".to_owned()));
    let elapsed = started.elapsed();
    assert!(
        elapsed < Duration::from_secs(5),
        "waited {elapsed:?} on leftover work"
    );
}

#[leakcheck::test]
#[should_panic(expected = "the body's own failure")]
async fn should_panic_sees_the_body_panic() {
    tokio::spawn(async {}).await.unwrap();
    panic!("the body's own failure");
}

#[leakcheck::test(grace = "50ms")]
#[should_panic(expected = "leakcheck: 1 task leaked by `semantics::should_panic_sees_the_leak`")]
async fn should_panic_sees_the_leak() {
    tokio::spawn(pending::<()>());
}

// ── Leaked spawn_blocking ──────────────────────────────────────────────────

#[cfg(tokio_unstable)]
#[test]
fn leaked_spawn_blocking_is_reported_without_waiting_for_it() {
    let started = Instant::now();
    let report = leak_report(CURRENT_THREAD, 100, async {
        tokio::task::spawn_blocking(|| std::thread::sleep(Duration::from_secs(3)));
    });
    let elapsed = started.elapsed();
    assert_contains(&report, "── 1 spawn_blocking task still running");
    assert!(
        elapsed < Duration::from_secs(3),
        "waited {elapsed:?} for the blocking task"
    );
}

// ── Result-returning tests ─────────────────────────────────────────────────

#[leakcheck::test]
async fn result_ok_passes() -> Result<(), String> {
    let answer = tokio::spawn(async { 6 * 7 })
        .await
        .map_err(|e| e.to_string())?;
    assert_eq!(answer, 42);
    Ok(())
}

#[test]
fn result_err_is_returned_not_masked_by_a_leak() {
    let outcome = run(config(CURRENT_THREAD, 100), async {
        tokio::spawn(pending::<()>());
        Err::<(), _>("config file not found")
    });
    assert_eq!(outcome, Ok(Err("config file not found")));
}

#[test]
fn result_ok_with_a_leak_fails() {
    let outcome = run(config(CURRENT_THREAD, 100), async {
        tokio::spawn(pending::<()>());
        Ok::<(), String>(())
    });
    assert_headline(&outcome.expect_err("an Ok body that leaked must fail"), 1);
}

// ── Checks from inside the body ────────────────────────────────────────────

#[leakcheck::test]
async fn verify_none_passes_after_cleanup() {
    let worker = tokio::spawn(async { "done" });
    let parked = tokio::spawn(pending::<()>());
    assert_eq!(worker.await.unwrap(), "done");
    parked.abort();
    leakcheck::verify_none().await;
}

#[leakcheck::test(grace = "50ms")]
async fn find_leaks_reports_the_leaked_task() {
    let stuck = tokio::spawn(pending::<()>());
    let report = leakcheck::find_leaks().await.unwrap_err();
    assert_eq!(report.leaked(), 1);
    #[cfg(tokio_unstable)]
    assert_eq!(
        report.groups[0].tasks[0].id.to_string(),
        stuck.id().to_string()
    );
    stuck.abort();
    assert!(stuck.await.unwrap_err().is_cancelled());
    leakcheck::verify_none().await;
}

// ── Paused clocks ──────────────────────────────────────────────────────────

#[leakcheck::test(start_paused = true)]
async fn start_paused_clock_auto_advances() {
    let start = tokio::time::Instant::now();
    let nap = tokio::spawn(tokio::time::sleep(Duration::from_secs(3600)));
    nap.await.unwrap();
    assert!(start.elapsed() >= Duration::from_secs(3600));
}

/// The grace is real time even when the test's clock is paused: a parked
/// task is still reported, and the run does not wait forever.
#[test]
fn start_paused_leak_is_still_reported() {
    let config = TestConfig {
        start_paused: true,
        ..config(CURRENT_THREAD, 100)
    };
    let outcome = run(config, async {
        tokio::spawn(pending::<()>());
    });
    assert_headline(
        &outcome.expect_err("a leak under a paused clock must fail"),
        1,
    );
}

// ── Ignore rules reach ancestors older than the baseline ───────────────────

/// Spawns workers on request (the `ignore_fn` rule below names this).
#[cfg(tokio_unstable)]
#[inline(never)]
fn start_pool(asked: tokio::sync::mpsc::Receiver<()>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(pool_loop(asked))
}

/// The pool's loop: not in `start_pool`, so the workers' call chains do
/// not name it.
#[cfg(tokio_unstable)]
async fn pool_loop(mut asked: tokio::sync::mpsc::Receiver<()>) {
    while asked.recv().await.is_some() {
        tokio::spawn(pending::<()>());
    }
}

/// A pool started before the baseline spawns a worker after it: ignoring
/// the function that started the pool ignores the worker too, although a
/// check looks at tasks since the baseline (it looks their ancestors up).
#[cfg(tokio_unstable)]
#[test]
fn ignoring_a_pool_older_than_the_baseline_ignores_its_new_workers() {
    let mut builder = tokio::runtime::Builder::new_current_thread();
    let tracker = leakcheck::Options::new()
        .grace(Duration::from_millis(20))
        .ignore_fn("semantics::start_pool")
        .instrument(&mut builder);
    let rt = builder.enable_all().build().unwrap();
    rt.block_on(async {
        let (more, asked) = tokio::sync::mpsc::channel::<()>(1);
        let pool = start_pool(asked);
        tokio::task::yield_now().await;
        tracker.set_baseline();
        more.send(()).await.unwrap();
        tokio::task::yield_now().await;
        assert_eq!(tracker.live_count(), 2, "the pool and its worker");
        let found = tracker.find_leaks().await;
        assert!(found.is_ok(), "{}", found.unwrap_err());
        pool.abort();
    });
}
