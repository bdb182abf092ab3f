//! "Where is it stuck": await traces, the multi_thread trace policy, the
//! task tree and lineage, task names, and tasks that can never wake.
//!
//! Each test leaks on purpose, reads the report with `find_leaks()` (or
//! `find_never_waking()`), asserts on what it says, and then cleans up so
//! the test itself passes.
#![cfg(all(tokio_unstable, target_os = "linux"))]

use std::time::{Duration, Instant};

use leakcheck::Tracker;
use tokio::sync::mpsc;

fn tracker() -> Tracker {
    Tracker::current().expect("inside #[leakcheck::test]")
}

fn line_of(marker: &str) -> u32 {
    let text = include_str!("stuck.rs");
    // the first occurrence is the code; later ones are the tests naming it
    let index = text
        .lines()
        .position(|l| l.contains(marker))
        .expect("marker in stuck.rs");
    index as u32 + 1
}

async fn wait_for_recv(mut rx: mpsc::Receiver<u8>) {
    rx.recv().await; // wait:recv
}

#[leakcheck::test(grace = "50ms")]
async fn await_trace_names_the_await_point_current_thread() {
    let (tx, rx) = mpsc::channel(1);
    let task = tokio::spawn(wait_for_recv(rx));
    let report = leakcheck::find_leaks().await.unwrap_err().to_string();
    let at = format!("tests/stuck.rs:{}:", line_of("// wait:recv"));
    assert!(report.contains("waiting at (innermost first):"), "{report}");
    assert!(report.contains("Receiver<T>::recv"), "{report}");
    assert!(
        report.contains(&format!("stuck::wait_for_recv::{{{{closure}}}} at {at}")),
        "{report}"
    );
    task.abort();
    drop(tx);
}

#[leakcheck::test(flavor = "multi_thread", worker_threads = 2, grace = "50ms")]
async fn await_trace_on_multi_thread_when_workers_are_idle() {
    let (tx, rx) = mpsc::channel(1);
    let task = tokio::spawn(wait_for_recv(rx));
    let report = leakcheck::find_leaks().await.unwrap_err().to_string();
    assert!(report.contains("Receiver<T>::recv"), "{report}");
    assert!(
        report.contains(&format!("tests/stuck.rs:{}:", line_of("// wait:recv"))),
        "{report}"
    );
    task.abort();
    drop(tx);
}

#[leakcheck::test(grace = "50ms")]
async fn a_future_tokio_cannot_trace_is_called_out() {
    let task = tokio::spawn(std::future::pending::<()>());
    let report = leakcheck::find_leaks().await.unwrap_err().to_string();
    assert!(
        report.contains("tokio's task dump has no frames for"),
        "{report}"
    );
    task.abort();
}

#[leakcheck::test(flavor = "multi_thread", worker_threads = 2, grace = "50ms")]
async fn a_blocked_worker_gets_no_dump_and_no_hang() {
    let (started_tx, started_rx) = tokio::sync::oneshot::channel();
    let blocker = tokio::spawn(async move {
        let _ = started_tx.send(());
        std::thread::sleep(Duration::from_secs(2)); // blocks a worker on purpose
    });
    started_rx.await.unwrap();
    let (tx, rx) = mpsc::channel(1);
    let leak = tokio::spawn(wait_for_recv(rx));
    let start = Instant::now();
    let report = leakcheck::find_leaks().await.unwrap_err().to_string();
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "the report waited on the blocked worker"
    );
    let blocker_id = blocker.id().to_string();
    assert!(
        report.contains(&format!(
            "no await trace: task {blocker_id} was mid-poll on a worker"
        )),
        "{report}"
    );
    assert!(
        report.contains("[running"),
        "the blocker shows as running: {report}"
    );
    leak.abort();
    drop(tx);
    blocker.await.unwrap();
}

#[leakcheck::test(grace = "50ms")]
async fn lineage_follows_live_ancestors_to_the_test_body() {
    let (tx, rx) = mpsc::channel::<u8>(1);
    let parent = tokio::spawn(async move {
        let child = tokio::spawn(wait_for_recv(rx)); // spawn:child
        std::future::pending::<()>().await;
        drop(child);
    });
    tokio::task::yield_now().await;
    let report = leakcheck::find_leaks().await.unwrap_err();
    let text = report.to_string();
    let child_group = report
        .groups
        .iter()
        .find(|g| g.spawn_site.unwrap().line() == line_of("// spawn:child"))
        .expect("the child's group");
    let child = &child_group.tasks[0];
    assert_eq!(
        child.parent.to_string().split(' ').nth(1),
        Some(parent.id().to_string().as_str())
    );
    assert!(
        text.contains(&format!(
            "spawned by: task {} (spawned at tests/stuck.rs:",
            parent.id()
        )),
        "{text}"
    );
    assert!(text.contains("), spawned by the test body"), "{text}");

    let tree = format!("{:#}", tracker().snapshot());
    let parent_line = tree
        .lines()
        .position(|l| l.contains(&format!("task {} [", parent.id())))
        .unwrap();
    let child_line = &tree.lines().nth(parent_line + 1).unwrap();
    assert!(
        child_line.starts_with("      └ task"),
        "child indented under its parent:\n{tree}"
    );
    parent.abort();
    drop(tx);
}

#[leakcheck::test(grace = "50ms")]
async fn names_show_in_reports_and_can_be_ignored() {
    let named = tokio::task::Builder::new()
        .name("metrics-flusher")
        .spawn(std::future::pending::<()>())
        .unwrap();
    tokio::task::yield_now().await;
    let report = leakcheck::find_leaks().await.unwrap_err().to_string();
    assert!(
        report.contains(&format!("task {} \"metrics-flusher\" [", named.id())),
        "{report}"
    );
    named.abort();
}

#[leakcheck::test(grace = "50ms", ignore_name = "metrics-flusher")]
async fn an_ignored_name_is_not_a_leak() {
    let named = tokio::task::Builder::new()
        .name("metrics-flusher")
        .spawn(std::future::pending::<()>())
        .unwrap();
    tokio::task::yield_now().await;
    leakcheck::verify_none().await;
    named.abort();
}

/// A future that returns `Pending` once without keeping the waker.
struct Forgetful;

impl std::future::Future for Forgetful {
    type Output = ();
    fn poll(self: std::pin::Pin<&mut Self>, _: &mut std::task::Context<'_>) -> std::task::Poll<()> {
        std::task::Poll::Pending
    }
}

#[leakcheck::test]
async fn tasks_without_a_waker_never_wake() {
    let pending = tokio::spawn(std::future::pending::<()>());
    let forgetful = tokio::spawn(Forgetful);
    tokio::task::yield_now().await;
    let report = tracker().find_never_waking().await.unwrap_err();
    let text = report.to_string();
    assert!(
        text.starts_with(
            "leakcheck: 2 tasks in `stuck::tasks_without_a_waker_never_wake` can never wake"
        ),
        "{text}"
    );
    assert!(
        text.contains(&format!("task {} [idle", pending.id())),
        "{text}"
    );
    assert!(text.contains("never wakes]"), "{text}");
    let flagged: Vec<String> = report
        .groups
        .iter()
        .flat_map(|g| &g.tasks)
        .map(|t| t.id.to_string())
        .collect();
    assert!(flagged.contains(&forgetful.id().to_string()), "{text}");
    pending.abort();
    forgetful.abort();
}

#[leakcheck::test]
async fn tasks_that_can_still_wake_are_not_flagged() {
    let (tx, rx) = mpsc::channel::<u8>(1);
    let on_channel = tokio::spawn(wait_for_recv(rx));
    let on_timer = tokio::spawn(tokio::time::sleep(Duration::from_secs(3600)));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let client = tokio::net::TcpStream::connect(listener.local_addr().unwrap())
        .await
        .unwrap();
    let (server, _) = listener.accept().await.unwrap();
    let on_socket = tokio::spawn(async move {
        let _ = server.readable().await;
    });
    let never_polled = tokio::spawn(std::future::pending::<()>());
    // `never_polled` has not run yet: a first poll still to come is not a lost waker
    assert!(tracker().find_never_waking().await.is_ok() || never_polled.is_finished());
    tokio::task::yield_now().await;
    let report = tracker().find_never_waking().await.unwrap_err();
    let flagged: Vec<String> = report
        .groups
        .iter()
        .flat_map(|g| &g.tasks)
        .map(|t| t.id.to_string())
        .collect();
    assert_eq!(flagged, vec![never_polled.id().to_string()], "{report}");
    for task in [on_channel, on_timer, on_socket, never_polled] {
        task.abort();
    }
    drop((tx, client));
}
