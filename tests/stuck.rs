//! "Where is it stuck": await traces, the multi_thread trace policy, the
//! task tree and lineage, task names, and tasks that can never wake.
//!
//! Each test leaks on purpose, reads the report with `find_leaks()` (or
//! `find_never_waking()`), asserts on what it says, and then cleans up so
//! the test itself passes.
#![cfg(all(tokio_unstable, target_os = "linux"))]

use std::time::{Duration, Instant};

use leakcheck::{TaskState, Tracker};
use tokio::sync::mpsc;

/// Runs a check body on a current_thread and on a multi_thread runtime.
macro_rules! both_flavors {
    ($body:ident: $current:ident, $multi:ident) => {
        #[leakcheck::test(grace = "50ms")]
        async fn $current() {
            $body().await;
        }

        #[leakcheck::test(flavor = "multi_thread", worker_threads = 2, grace = "50ms")]
        async fn $multi() {
            $body().await;
        }
    };
}

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

/// Waits until every task in `ids` has been polled at least once (on
/// multi_thread the workers poll them concurrently with the test body).
/// Waits until every task has been polled and is parked again: a poll
/// counts from its start, so on multi_thread a task can still be in its
/// first poll on the other worker (longer on a loaded machine).
async fn until_polled(ids: &[tokio::task::Id]) {
    let ids: Vec<String> = ids.iter().map(ToString::to_string).collect();
    loop {
        let snapshot = tracker().snapshot();
        let parked = |id: &String| {
            let task = snapshot.tasks().iter().find(|t| &t.id.to_string() == id);
            let task = task.unwrap_or_else(|| panic!("task {id} ended early:\n{snapshot}"));
            task.polls > 0 && matches!(task.state, TaskState::Idle | TaskState::NeverWakes)
        };
        if ids.iter().all(parked) {
            return;
        }
        tokio::task::yield_now().await;
    }
}

async fn wait_for_recv(mut rx: mpsc::Receiver<u8>) {
    rx.recv().await; // wait:recv
}

/// State, polls, idle time and the await chain of a task parked on `recv`.
/// multi_thread runtimes are never dumped (a worker that misses the dump's
/// barrier is left stuck): the report says so and how to get the trace.
async fn state_and_await_trace() {
    let (tx, rx) = mpsc::channel(1);
    let task = tokio::spawn(wait_for_recv(rx));
    let report = leakcheck::find_leaks().await.unwrap_err().to_string();
    let flavor = tokio::runtime::Handle::current().runtime_flavor();
    if flavor == tokio::runtime::RuntimeFlavor::CurrentThread {
        assert!(
            report.contains(&format!("task {} [idle ", task.id())),
            "{report}"
        );
        assert!(
            report.contains(", 1 poll], age "),
            "parked after one poll: {report}"
        );
        let at = format!("tests/stuck.rs:{}:", line_of("// wait:recv"));
        // the await tree, outermost first: the task's future, then what it awaits
        let frame = format!("   waiting at:\n       stuck::wait_for_recv::{{{{closure}}}} at {at}");
        assert!(report.contains(&frame), "{report}");
        let leaf = "\n       └─ tokio::sync::mpsc::bounded::Receiver<T>::recv\n";
        assert!(report.contains(leaf), "{report}");
    } else {
        // a worker may be re-polling it right now, so `idle` is not certain
        assert!(
            report.contains(&format!("task {} [", task.id())),
            "{report}"
        );
        assert!(report.contains(" poll"), "{report}");
        assert!(report.contains(MULTI_THREAD_NO_TRACE), "{report}");
        assert!(
            report.contains("with flavor = \"current_thread\" to see where each task waits"),
            "{report}"
        );
    }
    task.abort();
    drop(tx);
}

const MULTI_THREAD_NO_TRACE: &str =
    "\nnote: no await traces: tokio's task dump is not taken on multi_thread runtimes";

both_flavors!(state_and_await_trace: await_trace_current_thread, await_trace_multi_thread);

#[leakcheck::test(grace = "50ms")]
async fn a_future_tokio_cannot_trace_is_called_out() {
    let task = tokio::spawn(std::future::pending::<()>());
    let report = leakcheck::find_leaks().await.unwrap_err().to_string();
    let opaque = "   no await trace: it waits on something tokio's task dump cannot see: \
        futures-util's FuturesUnordered or join_all, socket readiness (accept, readable()), a \
        hand-written future, or std::future::pending()\n";
    assert!(report.contains(opaque), "{report}");
    task.abort();
}

#[leakcheck::test(flavor = "multi_thread", worker_threads = 2, grace = "50ms")]
async fn a_blocked_worker_hangs_neither_the_report_nor_the_runtime() {
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
    assert!(report.contains(MULTI_THREAD_NO_TRACE), "{report}");
    let blocker_state = format!("task {} [running", blocker.id());
    assert!(
        report.contains(&blocker_state),
        "the blocker shows as running: {report}"
    );
    leak.abort();
    drop(tx);
    blocker.await.unwrap();
}

both_flavors!(lineage_and_tree: lineage_current_thread, lineage_multi_thread);

/// "spawned by: task P (spawned at ...), spawned by the test body", and the
/// child printed under its parent in the task tree.
async fn lineage_and_tree() {
    let (tx, rx) = mpsc::channel::<u8>(1);
    let parent = tokio::spawn(async move {
        let child = tokio::spawn(wait_for_recv(rx)); // spawn:child
        std::future::pending::<()>().await;
        drop(child);
    });
    until_polled(&[parent.id()]).await;
    let report = leakcheck::find_leaks().await.unwrap_err();
    let text = report.to_string();
    let child = report
        .tasks()
        .find(|t| t.spawn_site.unwrap().line() == line_of("// spawn:child"))
        .expect("the child is reported");
    assert_eq!(
        child.parent.to_string().split(' ').nth(1),
        Some(parent.id().to_string().as_str())
    );
    // the parent's group first, the child's nested under it, naming its parent
    let parent_group = text.find("── 1 task spawned at tests/stuck.rs:").unwrap();
    let child_group = format!(
        "   └── 1 task spawned at tests/stuck.rs:{}:",
        line_of("// spawn:child")
    );
    let child_line = text
        .lines()
        .find(|l| l.starts_with(&child_group))
        .unwrap_or_else(|| panic!("no nested child group:\n{text}"));
    assert!(
        child_line.ends_with(&format!(" by task {} (above)", parent.id())),
        "{text}"
    );
    assert!(parent_group < text.find(child_line).unwrap(), "{text}");
    assert!(text.contains("spawned by: the test body"), "{text}");

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

both_flavors!(named_task: names_current_thread, names_multi_thread);

/// A parked task named with `tokio::task::Builder::name`.
fn spawn_named_flusher() -> tokio::task::JoinHandle<()> {
    tokio::task::Builder::new()
        .name("metrics-flusher")
        .spawn(std::future::pending::<()>())
        .unwrap()
}

async fn named_task() {
    let named = spawn_named_flusher();
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
    let named = spawn_named_flusher();
    tokio::task::yield_now().await;
    leakcheck::verify_none().await;
    named.abort();
}

/// A future that returns `Pending` without keeping the waker, after a slow
/// poll (as on a loaded machine): checks must wait for the poll to end.
struct Forgetful;

impl std::future::Future for Forgetful {
    type Output = ();
    fn poll(self: std::pin::Pin<&mut Self>, _: &mut std::task::Context<'_>) -> std::task::Poll<()> {
        std::thread::sleep(Duration::from_millis(20));
        std::task::Poll::Pending
    }
}

both_flavors!(lost_wakers: never_wakes_current_thread, never_wakes_multi_thread);

async fn lost_wakers() {
    let pending = tokio::spawn(std::future::pending::<()>());
    let forgetful = tokio::spawn(Forgetful);
    until_polled(&[pending.id(), forgetful.id()]).await;
    let report = tracker().find_never_waking().await.unwrap_err();
    let text = report.to_string();
    assert!(
        text.starts_with("leakcheck: 2 tasks in `stuck::never_wakes_"),
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

both_flavors!(live_wakers: wakeable_current_thread, wakeable_multi_thread);

async fn live_wakers() {
    let (tx, rx) = mpsc::channel::<u8>(1);
    let on_channel = tokio::spawn(wait_for_recv(rx));
    let on_timer = tokio::spawn(tokio::time::sleep(Duration::from_secs(3600)));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let client = tokio::net::TcpStream::connect(listener.local_addr().unwrap())
        .await
        .unwrap();
    let (server, _) = listener.accept().await.unwrap();
    let on_socket = tokio::spawn(async move {
        let mut server = server;
        let _ = tokio::io::AsyncReadExt::read(&mut server, &mut [0u8; 8]).await;
    });
    let never_polled = tokio::spawn(std::future::pending::<()>()); // not polled yet
    let all = [
        on_channel.id(),
        on_timer.id(),
        on_socket.id(),
        never_polled.id(),
    ];
    until_polled(&all).await;
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

#[leakcheck::test]
async fn a_task_not_yet_polled_is_not_a_lost_waker() {
    // current_thread: nothing runs until the body yields, so this task has
    // been spawned but never polled; console's lost-waker lint flickered here
    let first_poll_to_come = tokio::spawn(std::future::pending::<()>());
    tracker().find_never_waking().await.unwrap();
    assert_eq!(tracker().snapshot().tasks()[0].polls, 0);
    first_poll_to_come.abort();
}
