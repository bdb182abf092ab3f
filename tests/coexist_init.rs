//! A suite with its own tracing setup keeps working with leakcheck's
//! `process` feature on: each test calls `tracing_subscriber::fmt().init()`
//! through a `Once` (which panics if a global subscriber is already set),
//! its logs keep their spans, and leakcheck still sees every task.
#![cfg(all(tokio_unstable, target_os = "linux"))]

use std::future::pending;
use std::io::Write;
use std::sync::{Arc, Mutex, Once, OnceLock};

use leakcheck_tests::{assert_contains, assert_headline, Source};
use tracing::Instrument;

const SRC: Source = Source::new(file!(), include_str!("coexist_init.rs"));

/// Everything the suite's subscriber wrote.
fn logs() -> &'static Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(Default::default)
}

struct Sink(Arc<Mutex<Vec<u8>>>);

impl Write for Sink {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The suite's own setup, as many suites write it.
fn init_logging() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        tracing_subscriber::fmt()
            .with_writer(|| Sink(logs().clone()))
            .with_ansi(false)
            .init(); // panics if a global subscriber is already set
    });
}

fn logged() -> String {
    String::from_utf8_lossy(&logs().lock().unwrap()).into_owned()
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
