//! A suite with its own tracing setup keeps working with leakcheck's
//! `process` feature on: each test calls `tracing_subscriber::fmt().init()`
//! through a `Once` (which panics if a global subscriber is already set),
//! its logs keep their spans, and leakcheck still sees every task; and a
//! test's own scoped registry, the default while task spans close, is
//! never handed leakcheck's span ids.
#![cfg(all(tokio_unstable, target_os = "linux"))]

use std::future::pending;
use std::sync::Once;

#[path = "support/logs.rs"]
mod logs;

use leakcheck_tests::{assert_contains, assert_headline, Source};
use tokio::runtime::Runtime;
use tokio::sync::oneshot;
use tracing::Instrument;

use logs::{logged, Sink};

const SRC: Source = Source::new(file!(), include_str!("coexist_init.rs"));

/// The suite's own setup, as many suites write it.
fn init_logging() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        tracing_subscriber::fmt()
            .with_writer(|| Sink)
            .with_ansi(false)
            .init(); // panics if a global subscriber is already set
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_suites_logs_keep_their_spans() {
    init_logging();
    tracing::info_span!("outer", who = "body").in_scope(|| tracing::info!("hello from the body"));
    let task = async { tracing::info!(answer = 42, "hello from a task") };
    tokio::spawn(task.instrument(tracing::info_span!("worker", n = 7)))
        .await
        .unwrap();
    let logs = logged();
    assert_contains(
        &logs,
        "outer{who=\"body\"}: coexist_init: hello from the body",
    );
    assert_contains(
        &logs,
        "worker{n=7}: coexist_init: hello from a task answer=42",
    );
    assert!(
        !logs.contains("runtime.spawn"),
        "tokio's TRACE spans stay out:\n{logs}"
    );
    leakcheck::verify_none().await;
}

#[tokio::test]
async fn leakcheck_still_sees_every_task() {
    init_logging();
    let parked = tokio::spawn(pending::<()>()); // leak:coexist
    let report = leakcheck::find_leaks().await.unwrap_err().to_string();
    assert_headline(&report, 1);
    assert_contains(&report, &SRC.spawned_at("// leak:coexist"));
    parked.abort();
    let _ = parked.await;
    leakcheck::verify_none().await;
}

// ── Task spans closing under a test's own scoped registry ─────────────────

fn current_thread() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
}

/// Holds an `info` span `child` of `outer`, itself a child of the task's
/// span, with `outer` already dropped: closing `child` closes `outer`, and
/// that releases the task's span. A registry closes a parent through the
/// default dispatcher.
async fn task_with_spans(started: oneshot::Sender<()>, release: oneshot::Receiver<()>) {
    let outer = tracing::info_span!("outer");
    let child = outer.in_scope(|| tracing::info_span!("child"));
    drop(outer);
    let parked = async move {
        let _ = started.send(());
        let _ = release.await;
    };
    parked.instrument(child).await;
}

/// leakcheck saw the task end: no span id of its own went astray.
fn assert_clean() {
    current_thread().block_on(leakcheck::verify_none());
}

#[test]
fn task_spans_dropped_under_a_scoped_registry() {
    init_logging();
    let rt = current_thread();
    let (started_tx, started) = oneshot::channel();
    let (_release, release) = oneshot::channel();
    let _task = rt.spawn(task_with_spans(started_tx, release));
    rt.block_on(started).unwrap();
    // the runtime drops the parked task (and its spans) under the test's
    // own registry, which has none of them
    tracing::subscriber::with_default(tracing_subscriber::registry(), || drop(rt));
    assert_clean();
}

#[test]
fn task_spans_closed_in_a_poll_under_a_scoped_registry() {
    init_logging();
    let rt = current_thread();
    let (started_tx, started) = oneshot::channel();
    let (release_tx, release) = oneshot::channel();
    let task = rt.spawn(task_with_spans(started_tx, release));
    rt.block_on(started).unwrap();
    // the task ends, closing its spans, in a poll under the test's own
    // registry (with leakcheck's layer, which sees the `block_on`)
    use tracing_subscriber::layer::SubscriberExt;
    let scoped = tracing_subscriber::registry().with(leakcheck::layer());
    tracing::subscriber::with_default(scoped, || {
        rt.block_on(async {
            release_tx.send(()).unwrap();
            task.await.unwrap();
        })
    });
    assert_clean();
}
