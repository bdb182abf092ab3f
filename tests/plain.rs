//! Beyond the test's own runtime (the `process` feature): `verify_none()`
//! and `find_leaks()` in a plain `#[tokio::test]`, tasks on a `LocalSet`,
//! and tasks on a runtime kept in a static, each leaky and clean, on both
//! flavors; plain tests running in parallel see only their own tasks; and
//! a task spawned where leakcheck cannot see fails the check, saying so.
//! The grace for this file is 100ms (tests/leakcheck.toml).
#![cfg(all(tokio_unstable, target_os = "linux"))]

use std::any::Any;
use std::future::{pending, Future};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::{Barrier, OnceLock};
use std::task::{Context, Poll};

use leakcheck_tests::{
    assert_contains, assert_headline, assert_lacks, panic_message, shared_runtime, Source,
};
use tokio::task::{JoinHandle, LocalSet};

const SRC: Source = Source::new(file!(), include_str!("plain.rs"));

// ── plain #[tokio::test] ────────────────────────────────────────────────────

#[inline(never)]
fn start_parked() -> JoinHandle<()> {
    tokio::spawn(pending::<()>()) // leak:plain
}

async fn leaky_plain_test(name: &str) {
    let parked = start_parked();
    let report = leakcheck::find_leaks().await.unwrap_err().to_string();
    assert_headline(&report, 1);
    assert_contains(
        &report,
        &format!("leaked by `plain::{name}`: alive at this check"),
    );
    assert_contains(&report, &SRC.spawned_at("// leak:plain"));
    assert_contains(&report, "spawned by: the test body");
    assert_contains(&report, "plain::start_parked at tests/plain.rs:");
    parked.abort();
    let _ = parked.await;
    leakcheck::verify_none().await;
}

async fn clean_plain_test() {
    let worker = tokio::spawn(async { 6 * 7 });
    assert_eq!(worker.await.unwrap(), 42);
    let parked = start_parked();
    parked.abort();
    let _ = parked.await;
    leakcheck::verify_none().await;
}

#[tokio::test]
async fn plain_leak_current_thread() {
    leaky_plain_test("plain_leak_current_thread").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_leak_multi_thread() {
    leaky_plain_test("plain_leak_multi_thread").await;
}

#[tokio::test]
async fn plain_clean_current_thread() {
    clean_plain_test().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_clean_multi_thread() {
    clean_plain_test().await;
}

/// A future's panic as its output (what futures' `catch_unwind` does).
struct CatchUnwind<F>(Pin<Box<F>>);

impl<F: Future> Future for CatchUnwind<F> {
    type Output = Result<F::Output, Box<dyn Any + Send>>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match catch_unwind(AssertUnwindSafe(|| self.0.as_mut().poll(cx))) {
            Ok(Poll::Ready(out)) => Poll::Ready(Ok(out)),
            Ok(Poll::Pending) => Poll::Pending,
            Err(panic) => Poll::Ready(Err(panic)),
        }
    }
}

/// `verify_none()` itself fails the test on a leak: it panics with the
/// report, which names the spawn site and the line of the check.
async fn verify_none_panics(name: &str) {
    let parked = start_parked();
    let check = leakcheck::verify_none(); // check:verify_none
    let panic = CatchUnwind(Box::pin(check)).await.unwrap_err();
    let report = panic_message(panic);
    assert_headline(&report, 1);
    let at = format!(
        "leaked by `plain::{name}`: alive at this check ({}",
        SRC.site("// check:verify_none")
    );
    assert_contains(&report, &at);
    assert_contains(&report, &SRC.spawned_at("// leak:plain"));
    parked.abort();
    let _ = parked.await;
    leakcheck::verify_none().await;
}

#[tokio::test]
async fn verify_none_panics_on_a_leak_current_thread() {
    verify_none_panics("verify_none_panics_on_a_leak_current_thread").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_none_panics_on_a_leak_multi_thread() {
    verify_none_panics("verify_none_panics_on_a_leak_multi_thread").await;
}

// ── LocalSet ────────────────────────────────────────────────────────────────

async fn local_set(leak: bool) {
    let local = LocalSet::new();
    local
        .run_until(async move {
            let rc = std::rc::Rc::new(()); // !Send: only a LocalSet can run it
            let parked_on_the_set = async move {
                let _rc = rc;
                pending::<()>().await
            };
            let parked = tokio::task::spawn_local(parked_on_the_set); // leak:local
            if leak {
                let report = leakcheck::find_leaks().await.unwrap_err().to_string();
                assert_headline(&report, 1);
                let site = SRC.spawned_at("// leak:local");
                assert_contains(&report, &format!("── 1 task {site}"));
                assert_contains(&report, " on a LocalSet");
                // its state (polled once, no waker left) and its parent
                assert_contains(&report, ", 1 poll, never wakes], age ");
                assert_contains(&report, "spawned by: the test body");
            }
            parked.abort();
            let _ = parked.await;
            leakcheck::verify_none().await;
        })
        .await;
}

#[tokio::test]
async fn local_set_leak_current_thread() {
    local_set(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_set_leak_multi_thread() {
    local_set(true).await;
}

#[tokio::test]
async fn local_set_clean() {
    local_set(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_set_clean_multi_thread() {
    local_set(false).await;
}

#[leakcheck::test]
async fn local_set_under_the_attribute() {
    local_set(true).await;
}

#[leakcheck::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_set_under_the_attribute_multi_thread() {
    local_set(true).await;
}

// ── A runtime kept in a static ──────────────────────────────────────────────

async fn static_runtime(leak: bool) {
    let parked = shared_runtime().spawn(pending::<()>()); // leak:static
    if leak {
        let report = leakcheck::find_leaks().await.unwrap_err().to_string();
        assert_headline(&report, 1);
        assert_contains(&report, &SRC.spawned_at("// leak:static"));
        assert_contains(&report, " on another runtime (runtime ");
        assert_contains(&report, ", thread \"shared-rt\")");
    }
    parked.abort();
    let _ = parked.await;
    leakcheck::verify_none().await;
}

#[tokio::test]
async fn static_runtime_leak_current_thread() {
    static_runtime(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn static_runtime_leak_multi_thread() {
    static_runtime(true).await;
}

#[tokio::test]
async fn static_runtime_clean() {
    static_runtime(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn static_runtime_clean_multi_thread() {
    static_runtime(false).await;
}

#[leakcheck::test]
async fn static_runtime_under_the_attribute() {
    static_runtime(true).await;
}

// ── Plain tests in parallel see only their own tasks ───────────────────────

/// The probes: a child process runs all eight at once (eight test
/// threads), two leaky and two clean on each flavor, each spawning at a
/// site of its own.
const PROBES: usize = 8;

/// Every probe has spawned its task.
static SPAWNED: Barrier = Barrier::new(PROBES);
/// Every probe has checked: only then does any task end, so each check ran
/// while every other probe's task was alive.
static CHECKED: Barrier = Barrier::new(PROBES);

/// Blocks this probe's thread until every probe reaches `barrier` (on a
/// multi_thread runtime through `block_in_place`, so its worker runs on).
fn wait_for_all(barrier: &Barrier, multi_thread: bool) {
    match multi_thread {
        true => drop(tokio::task::block_in_place(|| barrier.wait())),
        false => drop(barrier.wait()),
    }
}

async fn probe(site: usize, leak: bool, multi_thread: bool) {
    let parked = match site {
        0 => tokio::spawn(pending::<()>()), // leak:iso0
        1 => tokio::spawn(pending::<()>()), // leak:iso1
        2 => tokio::spawn(pending::<()>()), // leak:iso2
        3 => tokio::spawn(pending::<()>()), // leak:iso3
        4 => tokio::spawn(pending::<()>()), // leak:iso4
        5 => tokio::spawn(pending::<()>()), // leak:iso5
        6 => tokio::spawn(pending::<()>()), // leak:iso6
        _ => tokio::spawn(pending::<()>()), // leak:iso7
    };
    wait_for_all(&SPAWNED, multi_thread);
    let parked = match leak {
        true => {
            let report = leakcheck::find_leaks().await.unwrap_err().to_string();
            assert_headline(&report, 1);
            for other in 0..PROBES {
                let marker = format!("// leak:iso{other}");
                match other == site {
                    true => assert_contains(&report, &SRC.spawned_at(&marker)),
                    false => assert_lacks(&report, &SRC.spawned_at(&marker)),
                }
            }
            Some(parked)
        }
        false => {
            // its own task gone, nothing of the others' shows
            parked.abort();
            let _ = parked.await;
            leakcheck::verify_none().await;
            None
        }
    };
    wait_for_all(&CHECKED, multi_thread);
    if let Some(parked) = parked {
        parked.abort();
        let _ = parked.await;
    }
}

#[tokio::test]
#[ignore = "run by parallel_plain_tests_are_isolated"]
async fn iso_probe_leaky_0() {
    probe(0, true, false).await;
}

#[tokio::test]
#[ignore = "run by parallel_plain_tests_are_isolated"]
async fn iso_probe_leaky_1() {
    probe(1, true, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
#[ignore = "run by parallel_plain_tests_are_isolated"]
async fn iso_probe_leaky_2() {
    probe(2, true, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
#[ignore = "run by parallel_plain_tests_are_isolated"]
async fn iso_probe_leaky_3() {
    probe(3, true, true).await;
}

#[tokio::test]
#[ignore = "run by parallel_plain_tests_are_isolated"]
async fn iso_probe_clean_4() {
    probe(4, false, false).await;
}

#[tokio::test]
#[ignore = "run by parallel_plain_tests_are_isolated"]
async fn iso_probe_clean_5() {
    probe(5, false, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
#[ignore = "run by parallel_plain_tests_are_isolated"]
async fn iso_probe_clean_6() {
    probe(6, false, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
#[ignore = "run by parallel_plain_tests_are_isolated"]
async fn iso_probe_clean_7() {
    probe(7, false, true).await;
}

/// Runs this binary's ignored tests whose names start with `prefix` in a
/// child process with `threads` test threads, and asserts all `count`
/// passed.
fn run_children(prefix: &str, threads: usize, count: usize) {
    run_child(&[prefix, "--test-threads", &threads.to_string()], count);
}

/// Runs this binary's ignored tests `args` select in a child process, and
/// asserts all `count` passed. Fixtures that meet at barriers wait forever
/// for one that failed: after a generous bound (only a hang reaches it) the
/// child is killed and what it printed so far, the failure included, shown.
fn run_child(args: &[&str], count: usize) {
    let child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--ignored", "--nocapture"])
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id().to_string();
    let (done_tx, done) = std::sync::mpsc::channel();
    std::thread::spawn(move || done_tx.send(child.wait_with_output()));
    let out = match done.recv_timeout(std::time::Duration::from_secs(300)) {
        Ok(out) => out.unwrap(),
        Err(_) => {
            let _ = std::process::Command::new("kill")
                .args(["-9", &pid])
                .status();
            let out = done.recv().unwrap().unwrap();
            panic!(
                "the child {args:?} hung (a fixture failed before a barrier?):\n{}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let passed = format!("test result: ok. {count} passed");
    assert!(stdout.contains(&passed), "{stdout}");
}

#[test]
fn parallel_plain_tests_are_isolated() {
    run_children("iso_probe_", PROBES, PROBES);
}

// ── Where leakcheck cannot see, it says so ─────────────────────────────────
//
// A tracing subscriber of the test's own, without leakcheck's layer, set
// as the thread's default hides the spawns made under it. The check fails
// however the task went: on the test's own runtime tokio's count shows it;
// on a LocalSet or another runtime nothing counts it, and leakcheck cannot
// tell whether it still runs, so the check keeps failing after it ended.
// Each fixture runs alone in a child process: on a LocalSet or another
// runtime, task ids that went by unseen count against a test only while no
// other test built a subscriber (see the next section).

/// A subscriber without leakcheck's layer.
fn without_leakcheck() -> impl tracing::Subscriber + Send + Sync {
    tracing_subscriber::registry()
}

/// The group line of a task tokio's count shows alive on the test's own
/// runtime, and of a task id that went by unseen (alive or not).
const ALIVE: &str = "── 1 task alive that leakcheck knows only by count";
const UNSEEN: &str = "── 1 task spawned out of leakcheck's sight, alive or not";

/// Asserts what a check that could not see a spawn says.
#[track_caller]
fn assert_out_of_sight(report: &str, line: &str, scoped_at: &str) {
    assert_headline(report, 1);
    assert_contains(report, line);
    assert_contains(report, "note: leakcheck did not see 1 task spawn");
    assert_contains(
        report,
        &format!("a tracing subscriber built at plain::{scoped_at}"),
    );
    assert_contains(
        report,
        "was a thread's default while 1 task id went by unseen",
    );
    assert_contains(report, "add `.with(leakcheck::layer())` to that subscriber");
}

/// On the test's own runtime.
async fn out_of_sight_here() {
    let scoped = without_leakcheck();
    let hidden = tracing::subscriber::with_default(scoped, || tokio::spawn(pending::<()>())); // scoped:here
    let report = leakcheck::find_leaks().await.unwrap_err().to_string();
    let scoped_at = format!(
        "out_of_sight_here::{{{{closure}}}} at {}",
        SRC.site("// scoped:here")
    );
    assert_out_of_sight(&report, ALIVE, &scoped_at);
    hidden.abort();
    let _ = hidden.await;
    // gone, but leakcheck cannot know that it was here
    let report = leakcheck::find_leaks().await.unwrap_err().to_string();
    assert_out_of_sight(&report, UNSEEN, &scoped_at);
}

/// On a LocalSet.
async fn out_of_sight_on_a_local_set() {
    let local = LocalSet::new();
    local
        .run_until(async move {
            let scoped = without_leakcheck();
            let spawn = || tokio::task::spawn_local(pending::<()>());
            let hidden = tracing::subscriber::with_default(scoped, spawn); // scoped:local
            let report = leakcheck::find_leaks().await.unwrap_err().to_string();
            let scoped_at = format!(
                "out_of_sight_on_a_local_set::{{{{closure}}}}::{{{{closure}}}} at {}",
                SRC.site("// scoped:local")
            );
            assert_out_of_sight(&report, UNSEEN, &scoped_at);
            hidden.abort();
            let _ = hidden.await;
            let report = leakcheck::find_leaks().await.unwrap_err().to_string();
            assert_out_of_sight(&report, UNSEEN, &scoped_at);
        })
        .await;
}

/// On a runtime kept in a static.
async fn out_of_sight_on_a_static_runtime() {
    let (scoped, shared) = (without_leakcheck(), shared_runtime());
    let hidden = tracing::subscriber::with_default(scoped, || shared.spawn(pending::<()>())); // scoped:static
    let report = leakcheck::find_leaks().await.unwrap_err().to_string();
    let scoped_at = format!(
        "out_of_sight_on_a_static_runtime::{{{{closure}}}} at {}",
        SRC.site("// scoped:static")
    );
    assert_out_of_sight(&report, UNSEEN, &scoped_at);
    hidden.abort();
    let _ = hidden.await;
    let report = leakcheck::find_leaks().await.unwrap_err().to_string();
    assert_out_of_sight(&report, UNSEEN, &scoped_at);
}

#[tokio::test]
#[ignore = "run by a_task_spawned_out_of_sight_still_fails_the_check"]
async fn out_of_sight_here_current_thread() {
    out_of_sight_here().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run by a_task_spawned_out_of_sight_still_fails_the_check"]
async fn out_of_sight_here_multi_thread() {
    out_of_sight_here().await;
}

#[tokio::test]
#[ignore = "run by a_task_spawned_out_of_sight_still_fails_the_check"]
async fn out_of_sight_on_a_local_set_current_thread() {
    out_of_sight_on_a_local_set().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run by a_task_spawned_out_of_sight_still_fails_the_check"]
async fn out_of_sight_on_a_local_set_multi_thread() {
    out_of_sight_on_a_local_set().await;
}

#[tokio::test]
#[ignore = "run by a_task_spawned_out_of_sight_still_fails_the_check"]
async fn out_of_sight_on_a_static_runtime_current_thread() {
    out_of_sight_on_a_static_runtime().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run by a_task_spawned_out_of_sight_still_fails_the_check"]
async fn out_of_sight_on_a_static_runtime_multi_thread() {
    out_of_sight_on_a_static_runtime().await;
}

#[test]
fn a_task_spawned_out_of_sight_still_fails_the_check() {
    for flavor in ["current_thread", "multi_thread"] {
        for place in ["here", "on_a_local_set", "on_a_static_runtime"] {
            let name = format!("out_of_sight_{place}_{flavor}");
            run_child(&[&name, "--exact"], 1);
        }
    }
}

// ── Another test's task not polled yet hides nothing ───────────────────────
//
// The probes run at the same time in a child process. One keeps a task of
// its own unpolled (its only thread blocked) while the other checks a task
// it spawned out of sight on its own runtime, under a subscriber built by
// the first (so only tokio's count of its runtime's tasks shows it).

static UNPOLLED: Barrier = Barrier::new(2);
static COUNTED: Barrier = Barrier::new(2);
static BUILT_ELSEWHERE: OnceLock<tracing::Dispatch> = OnceLock::new();

#[tokio::test]
#[ignore = "run by another_tests_unpolled_task_hides_nothing"]
async fn unpolled_probe_blocked() {
    BUILT_ELSEWHERE.get_or_init(|| tracing::Dispatch::new(without_leakcheck()));
    let parked = tokio::spawn(pending::<()>());
    // this runtime's only thread blocks: the task stays unpolled
    UNPOLLED.wait();
    COUNTED.wait();
    parked.abort();
    let _ = parked.await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
#[ignore = "run by another_tests_unpolled_task_hides_nothing"]
async fn unpolled_probe_counting() {
    tokio::task::block_in_place(|| UNPOLLED.wait());
    let scoped = BUILT_ELSEWHERE.get().unwrap();
    let hidden = tracing::dispatcher::with_default(scoped, || tokio::spawn(pending::<()>()));
    let found = leakcheck::find_leaks().await;
    tokio::task::block_in_place(|| COUNTED.wait());
    let report = found.unwrap_err().to_string();
    assert_headline(&report, 1);
    assert_contains(&report, ALIVE);
    hidden.abort();
    let _ = hidden.await;
    leakcheck::verify_none().await;
}

#[test]
fn another_tests_unpolled_task_hides_nothing() {
    run_children("unpolled_probe_", 2, 2);
}

// ── Task ids another test hid count against no one else ────────────────────
//
// Three tests run at the same time in a child process. One hides spawns on
// its own runtime: under a scoped subscriber without leakcheck's layer it
// set before the others built theirs and still holds, and under one it
// builds after. Meanwhile the others build subscribers of their own: one
// with leakcheck's layer, one the global default (`fmt().try_init()`).
// Their checks are not charged with what the first hid; a failure of
// theirs mentions it.

static HIDER_SET: Barrier = Barrier::new(3);
static OTHERS_BUILT: Barrier = Barrier::new(3);
static HID: Barrier = Barrier::new(3);
static OTHERS_CHECKED: Barrier = Barrier::new(3);

#[tokio::test]
#[ignore = "run by hidden_spawns_count_against_no_other_test"]
async fn shared_probe_hider() {
    let guard = tracing::subscriber::set_default(without_leakcheck());
    HIDER_SET.wait();
    OTHERS_BUILT.wait();
    let held = tokio::spawn(pending::<()>());
    drop(guard);
    let fresh =
        tracing::subscriber::with_default(without_leakcheck(), || tokio::spawn(pending::<()>()));
    HID.wait();
    OTHERS_CHECKED.wait();
    // its own runtime's count shows them (this runtime's only thread was
    // blocked: they were never polled)
    let report = leakcheck::find_leaks().await.unwrap_err().to_string();
    assert_headline(&report, 2);
    assert_contains(
        &report,
        "── 2 tasks alive that leakcheck knows only by count",
    );
    held.abort();
    fresh.abort();
    let _ = (held.await, fresh.await);
}

#[tokio::test]
#[ignore = "run by hidden_spawns_count_against_no_other_test"]
async fn shared_probe_layered() {
    HIDER_SET.wait();
    let seen = tracing::subscriber::with_default(with_leakcheck(), || tokio::spawn(async {}));
    seen.await.unwrap();
    OTHERS_BUILT.wait();
    HID.wait();
    leakcheck::verify_none().await;
    // a failure of its own mentions the ids, without counting them
    let parked = tokio::spawn(pending::<()>()); // leak:shared
    let report = leakcheck::find_leaks().await.unwrap_err().to_string();
    assert_headline(&report, 1);
    assert_contains(&report, &SRC.spawned_at("// leak:shared"));
    assert_lacks(&report, "knows only by count");
    assert_contains(
        &report,
        "went by unseen since this test built a tracing subscriber at plain::",
    );
    assert_contains(&report, "but other tests built subscribers meanwhile");
    parked.abort();
    let _ = parked.await;
    OTHERS_CHECKED.wait();
}

#[tokio::test]
#[ignore = "run by hidden_spawns_count_against_no_other_test"]
async fn shared_probe_global() {
    HIDER_SET.wait();
    // the first in this process sets the global default
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::sink)
        .try_init();
    OTHERS_BUILT.wait();
    HID.wait();
    leakcheck::verify_none().await;
    OTHERS_CHECKED.wait();
}

#[test]
fn hidden_spawns_count_against_no_other_test() {
    run_children("shared_probe_", 3, 3);
}

/// A subscriber of the suite's own, with leakcheck's layer.
fn with_leakcheck() -> impl tracing::Subscriber + Send + Sync {
    use tracing_subscriber::layer::SubscriberExt;
    tracing_subscriber::registry().with(leakcheck::layer())
}

// ── A test that sets the global default hides nothing ──────────────────────
//
// Two tests run at the same time in a child process: one sets the global
// default (`fmt().try_init()`) and runs on; the other hides a spawn on a
// LocalSet. The global subscriber is no scoped default, so the second's
// check still fails, saying why.

static GLOBAL_SET: Barrier = Barrier::new(2);
static GLOBAL_CHECKED: Barrier = Barrier::new(2);

#[tokio::test]
#[ignore = "run by a_global_default_set_by_a_test_leaves_the_evidence_whole"]
async fn global_probe_init() {
    tracing_subscriber::fmt()
        .with_writer(std::io::sink)
        .try_init()
        .unwrap();
    // its next tracing callback finds the global, built right before
    tokio::spawn(async {}).await.unwrap();
    GLOBAL_SET.wait();
    GLOBAL_CHECKED.wait();
    leakcheck::verify_none().await;
}

#[tokio::test]
#[ignore = "run by a_global_default_set_by_a_test_leaves_the_evidence_whole"]
async fn global_probe_hider() {
    GLOBAL_SET.wait();
    out_of_sight_on_a_local_set().await;
    GLOBAL_CHECKED.wait();
}

#[test]
fn a_global_default_set_by_a_test_leaves_the_evidence_whole() {
    run_children("global_probe_", 2, 2);
}

// ── A check never waits for a task of its own ──────────────────────────────

/// Under `Handle::block_on` on a current_thread runtime nothing polls a
/// task the check would spawn: it takes its bound on task ids without one.
#[test]
fn a_check_under_handle_block_on_returns() {
    let (done_tx, done) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        // a subscriber of the test's own: the check counts task ids
        drop(tracing::Dispatch::new(with_leakcheck()));
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let found = rt.handle().block_on(leakcheck::find_leaks());
        let _ = done_tx.send(found.map_err(|r| r.to_string()));
    });
    // a generous bound: only a hang reaches it
    let found = done.recv_timeout(std::time::Duration::from_secs(120));
    assert_eq!(found, Ok(Ok(())));
}
