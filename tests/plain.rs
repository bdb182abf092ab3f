//! Beyond the test's own runtime (the `process` feature): `verify_none()`
//! and `find_leaks()` in a plain `#[tokio::test]`, tasks on a `LocalSet`,
//! and tasks on a runtime kept in a static, each leaky and clean, on both
//! flavors; and plain tests running in parallel see only their own tasks.
//! The grace for this file is 100ms (tests/leakcheck.toml).
#![cfg(all(tokio_unstable, target_os = "linux"))]

use std::future::pending;
use std::sync::{Barrier, OnceLock};

use leakcheck_tests::{assert_contains, assert_headline, assert_lacks, Source};
use tokio::runtime::Runtime;
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

#[leakcheck::test]
async fn local_set_under_the_attribute() {
    local_set(true).await;
}

#[leakcheck::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_set_under_the_attribute_multi_thread() {
    local_set(true).await;
}

// ── A runtime kept in a static ──────────────────────────────────────────────

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

#[leakcheck::test]
async fn static_runtime_under_the_attribute() {
    static_runtime(true).await;
}

// ── Plain tests in parallel see only their own tasks ───────────────────────

/// The probes run at the same time (a child process runs them with four
/// test threads), so each check runs while the others' tasks are alive.
static TOGETHER: Barrier = Barrier::new(4);

async fn probe(leak: bool, site: usize) {
    let parked = match site {
        0 => tokio::spawn(pending::<()>()), // leak:iso0
        _ => tokio::spawn(pending::<()>()), // leak:iso1
    };
    tokio::task::block_in_place(|| TOGETHER.wait());
    if leak {
        let report = leakcheck::find_leaks().await.unwrap_err().to_string();
        assert_headline(&report, 1);
        let (mine, theirs) = (
            format!("// leak:iso{site}"),
            format!("// leak:iso{}", 1 - site),
        );
        assert_contains(&report, &SRC.spawned_at(&mine));
        assert_lacks(&report, &SRC.spawned_at(&theirs));
    }
    parked.abort();
    let _ = parked.await;
    if !leak {
        leakcheck::verify_none().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
#[ignore = "run by parallel_plain_tests_are_isolated"]
async fn iso_probe_leaky_0() {
    probe(true, 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
#[ignore = "run by parallel_plain_tests_are_isolated"]
async fn iso_probe_leaky_1() {
    probe(true, 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
#[ignore = "run by parallel_plain_tests_are_isolated"]
async fn iso_probe_clean_0() {
    probe(false, 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
#[ignore = "run by parallel_plain_tests_are_isolated"]
async fn iso_probe_clean_1() {
    probe(false, 1).await;
}

#[test]
fn parallel_plain_tests_are_isolated() {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["iso_probe_", "--ignored", "--test-threads", "4"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("test result: ok. 4 passed"), "{stdout}");
}

// ── Where leakcheck cannot see, it says so ─────────────────────────────────

#[tokio::test]
async fn a_task_spawned_out_of_sight_still_fails_the_check() {
    // a scoped subscriber without leakcheck's layer hides this spawn
    let hidden = tracing::subscriber::with_default(tracing_subscriber::registry(), || {
        tokio::spawn(pending::<()>())
    });
    let report = leakcheck::find_leaks().await.unwrap_err().to_string();
    assert_headline(&report, 1);
    assert_contains(
        &report,
        "── 1 task alive that leakcheck knows only by count",
    );
    assert_contains(&report, "note: leakcheck did not see those tasks spawn");
    assert_contains(&report, "add `.with(leakcheck::layer())` to it");
    hidden.abort();
    let _ = hidden.await;
    leakcheck::verify_none().await;
}
