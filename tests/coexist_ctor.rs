//! A suite that sets its own global subscriber before `main` (in a
//! `#[ctor]`, without leakcheck's layer) keeps working with leakcheck's
//! `process` feature on, and leakcheck still sees every task.
#![cfg(all(tokio_unstable, target_os = "linux"))]

use std::future::pending;

#[path = "support/logs.rs"]
mod logs;

use leakcheck_tests::{assert_contains, assert_headline, Source};
use logs::{logged, Sink};

const SRC: Source = Source::new(file!(), include_str!("coexist_ctor.rs"));

#[ctor::ctor(unsafe)]
fn set_up_logging() {
    tracing_subscriber::fmt()
        .with_writer(|| Sink)
        .with_ansi(false)
        .init();
}

async fn logs_and_leak_checks(who: &str) {
    tracing::info_span!("outer", who).in_scope(|| tracing::info!("hello"));
    let logs = logged();
    assert_contains(
        &logs,
        &format!("outer{{who=\"{who}\"}}: coexist_ctor: hello"),
    );
    let parked = tokio::spawn(pending::<()>()); // leak:ctor
    let report = leakcheck::find_leaks().await.unwrap_err().to_string();
    assert_headline(&report, 1);
    assert_contains(&report, &SRC.spawned_at("// leak:ctor"));
    parked.abort();
    let _ = parked.await;
    leakcheck::verify_none().await;
}

#[tokio::test]
async fn logs_and_leak_checks_both_work() {
    logs_and_leak_checks("current_thread").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_and_leak_checks_both_work_multi_thread() {
    logs_and_leak_checks("multi_thread").await;
}
