//! A suite that sets scoped subscribers of its own (`with_default`) keeps
//! full checks with leakcheck's `process` feature on once it adds
//! `.with(leakcheck::layer())` to them, as a failed check tells it to: the
//! tasks spawned under them are seen, on a LocalSet and on a runtime kept
//! in a static, on both flavors, and once they end the check passes.
#![cfg(all(tokio_unstable, target_os = "linux"))]

use std::future::pending;

use leakcheck_tests::{assert_contains, assert_headline, shared_runtime, Source};
use tokio::task::LocalSet;
use tracing_subscriber::layer::SubscriberExt;

const SRC: Source = Source::new(file!(), include_str!("coexist_layer.rs"));

/// A subscriber of the suite's own, with leakcheck's layer.
fn with_leakcheck() -> impl tracing::Subscriber + Send + Sync {
    tracing_subscriber::registry().with(leakcheck::layer())
}

async fn on_a_local_set() {
    LocalSet::new()
        .run_until(async {
            let parked = tracing::subscriber::with_default(with_leakcheck(), || {
                tokio::task::spawn_local(pending::<()>()) // leak:local
            });
            let report = leakcheck::find_leaks().await.unwrap_err().to_string();
            assert_headline(&report, 1);
            assert_contains(&report, &SRC.spawned_at("// leak:local"));
            assert_contains(&report, " on a LocalSet");
            parked.abort();
            let _ = parked.await;
            leakcheck::verify_none().await;
        })
        .await;
}

async fn on_a_static_runtime() {
    let shared = shared_runtime();
    let parked = tracing::subscriber::with_default(with_leakcheck(), || {
        shared.spawn(pending::<()>()) // leak:static
    });
    let report = leakcheck::find_leaks().await.unwrap_err().to_string();
    assert_headline(&report, 1);
    assert_contains(&report, &SRC.spawned_at("// leak:static"));
    parked.abort();
    let _ = parked.await;
    leakcheck::verify_none().await;
}

#[tokio::test]
async fn seen_on_a_local_set_current_thread() {
    on_a_local_set().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seen_on_a_local_set_multi_thread() {
    on_a_local_set().await;
}

#[tokio::test]
async fn seen_on_a_static_runtime_current_thread() {
    on_a_static_runtime().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seen_on_a_static_runtime_multi_thread() {
    on_a_static_runtime().await;
}
