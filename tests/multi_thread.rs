//! Leak patterns on `flavor = "multi_thread", worker_threads = 2`.
//!
//! The same checks as `patterns.rs`, where the body runs on the test thread
//! and the tasks on two worker threads: the spawn hook fires on whichever
//! thread spawns, and the report must still name the right site and parent.

use std::future::pending;
use std::time::Duration;

#[cfg(tokio_unstable)]
use leakcheck_tests::{assert_contains, call_chain, frame_index, group_lines, Source};
use leakcheck_tests::{assert_headline, leak_report, Flavor};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

#[cfg(tokio_unstable)]
const SRC: Source = Source::new(file!(), include_str!("multi_thread.rs"));

const GRACE_MS: u64 = 100;
const MULTI_THREAD: Flavor = Flavor::MultiThread;

// ── A ticker loop nobody stops ─────────────────────────────────────────────

#[inline(never)]
fn start_ticker() -> JoinHandle<()> {
    let ticker = async {
        let mut interval = tokio::time::interval(Duration::from_millis(5));
        loop {
            interval.tick().await;
        }
    };
    tokio::spawn(ticker) // leak:ticker
}

#[test]
fn leak_ticker_nobody_stops() {
    let report = leak_report(MULTI_THREAD, GRACE_MS, async {
        let _detached = start_ticker();
    });
    assert_headline(&report, 1);
    #[cfg(tokio_unstable)]
    {
        assert_contains(&report, &SRC.spawned_at("// leak:ticker"));
        assert_contains(&report, "spawned by: the test body");
        frame_index(&call_chain(&report), "multi_thread::start_ticker");
    }
}

#[leakcheck::test(flavor = "multi_thread", worker_threads = 2)]
async fn clean_ticker_aborted() {
    let ticker = start_ticker();
    ticker.abort();
    assert!(ticker.await.unwrap_err().is_cancelled());
}

// ── 100 identical leaks, one entry ─────────────────────────────────────────

/// `n` subscribers, each parked until its channel closes. The tests call it
/// from a task, so the spawns (and their hooks) run on a worker thread.
#[inline(never)]
fn start_subscribers(n: usize) -> Vec<(oneshot::Sender<()>, JoinHandle<()>)> {
    (0..n)
        .map(|_| {
            let (close, closed) = oneshot::channel::<()>();
            let subscriber = async move { closed.await.unwrap_or_default() };
            let task = tokio::spawn(subscriber); // leak:subscriber
            (close, task)
        })
        .collect()
}

#[test]
fn leak_hundred_identical_tasks_grouped() {
    let report = leak_report(MULTI_THREAD, GRACE_MS, async {
        let subscribers = tokio::spawn(async { start_subscribers(100) })
            .await
            .unwrap();
        std::mem::forget(subscribers); // the senders live on: nobody closes them
    });
    assert_headline(&report, 100);
    #[cfg(tokio_unstable)]
    {
        let group = format!("── 100 tasks {}", SRC.spawned_at("// leak:subscriber"));
        assert_contains(&report, &group);
        assert_eq!(
            group_lines(&report).len(),
            1,
            "one group for 100 identical leaks:\n{report}"
        );
        assert_contains(&report, "… and 97 more: tasks ");
        // the parent (the task running `start_subscribers`) has ended
        assert_contains(&report, "which has ended: this task outlived its parent");
    }
}

#[leakcheck::test(flavor = "multi_thread", worker_threads = 2)]
async fn clean_hundred_tasks_closed() {
    let subscribers = tokio::spawn(async { start_subscribers(100) })
        .await
        .unwrap();
    for (close, task) in subscribers {
        close.send(()).unwrap();
        task.await.unwrap();
    }
}

// ── A child that outlives its finished parent ──────────────────────────────

#[inline(never)]
fn spawn_session(stop_heartbeat: bool) -> JoinHandle<()> {
    let session = async move {
        let heartbeat = tokio::spawn(pending::<()>()); // leak:heartbeat
        if stop_heartbeat {
            heartbeat.abort();
            assert!(heartbeat.await.unwrap_err().is_cancelled());
        }
    };
    tokio::spawn(session) // leak:session
}

#[test]
fn leak_child_outlives_its_parent() {
    let mut session_id = None;
    let report = leak_report(MULTI_THREAD, GRACE_MS, async {
        let session = spawn_session(false);
        session_id = Some(session.id());
        session.await.unwrap();
    });
    assert_headline(&report, 1);
    #[cfg(tokio_unstable)]
    {
        let parent = format!(
            "spawned by: task {} (spawned at {}",
            session_id.unwrap(),
            SRC.site("// leak:session")
        );
        assert_contains(&report, &SRC.spawned_at("// leak:heartbeat"));
        assert_contains(&report, &parent);
        assert_contains(&report, "which has ended: this task outlived its parent");
    }
    #[cfg(not(tokio_unstable))]
    let _ = session_id;
}

#[leakcheck::test(flavor = "multi_thread", worker_threads = 2)]
async fn clean_parent_stops_its_child() {
    spawn_session(true).await.unwrap();
}

// ── A graceful shutdown slower than the grace ──────────────────────────────

#[inline(never)]
fn spawn_worker(stop: oneshot::Receiver<()>, cleanup: Duration) -> JoinHandle<()> {
    let work = async move {
        let _ = stop.await;
        tokio::time::sleep(cleanup).await; // flush, close connections, ...
    };
    tokio::spawn(work) // leak:slow
}

#[test]
fn leak_shutdown_slower_than_the_grace() {
    let report = leak_report(MULTI_THREAD, GRACE_MS, async {
        let (stop, stopping) = oneshot::channel();
        let _worker = spawn_worker(stopping, Duration::from_millis(500));
        stop.send(()).unwrap();
    });
    assert_headline(&report, 1);
    assert!(report.contains("still alive 100ms after"), "{report}");
    #[cfg(tokio_unstable)]
    {
        assert_contains(&report, &SRC.spawned_at("// leak:slow"));
        assert_contains(&report, "spawned by: the test body");
    }
}

#[leakcheck::test(flavor = "multi_thread", worker_threads = 2)]
async fn clean_shutdown_within_the_grace() {
    let (stop, stopping) = oneshot::channel();
    let _worker = spawn_worker(stopping, Duration::from_millis(20));
    stop.send(()).unwrap();
}
