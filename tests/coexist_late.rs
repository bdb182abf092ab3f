//! A suite that sets its global subscriber late keeps its logs with
//! leakcheck's `process` feature on: set on a helper thread that logs
//! nothing afterwards, after tasks were spawned, well after it was built,
//! the subscriber still gets what every other thread logs, and leakcheck
//! still checks.
#![cfg(all(tokio_unstable, target_os = "linux"))]

#[path = "support/logs.rs"]
mod logs;

use std::time::{Duration, Instant};

use logs::{logged, wait_for, Sink};

#[test]
fn a_global_set_late_on_a_helper_thread_still_gets_every_threads_logs() {
    // tracing activity first: leakcheck looks for a global subscriber and
    // finds none
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async { tokio::spawn(async {}).await.unwrap() });
    let helper = std::thread::spawn(|| {
        let subscriber = tracing_subscriber::fmt()
            .with_writer(|| Sink)
            .with_ansi(false)
            .finish();
        let dispatch = tracing::Dispatch::new(subscriber);
        // The scenario, not a wait for a condition: the subscriber is set
        // well after it was built (past the few milliseconds in which
        // leakcheck looks on every callback), and this thread logs nothing
        // afterwards.
        std::thread::sleep(Duration::from_millis(30));
        tracing::dispatcher::set_global_default(dispatch).unwrap();
    });
    helper.join().unwrap();
    // Other threads log. leakcheck looks for the global again at most every
    // 20ms, so the first lines may come before it is found: log until one
    // arrives.
    let deadline = Instant::now() + Duration::from_secs(30);
    for attempt in 0.. {
        tracing::info!(attempt, "hello from the test thread");
        if wait_for("hello from the test thread", Duration::from_millis(50)) {
            break;
        }
        assert!(Instant::now() < deadline, "no log arrived:\n{}", logged());
    }
    // once found, every line of every thread arrives
    std::thread::spawn(|| tracing::info!("hello from another thread"))
        .join()
        .unwrap();
    rt.block_on(async {
        tokio::spawn(async { tracing::info!("hello from a task") })
            .await
            .unwrap()
    });
    let logs = logged();
    assert!(
        logs.contains("INFO coexist_late: hello from another thread"),
        "{logs}"
    );
    assert!(
        logs.contains("INFO coexist_late: hello from a task"),
        "{logs}"
    );
    // and leakcheck still checks
    rt.block_on(async {
        let parked = tokio::spawn(std::future::pending::<()>());
        let report = leakcheck::find_leaks().await.unwrap_err();
        assert_eq!(report.tasks().count(), 1, "{report}");
        parked.abort();
        let _ = parked.await;
        leakcheck::verify_none().await;
    });
}
