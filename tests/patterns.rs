//! Twelve ways to leak a tokio task, each next to its fixed twin.
//!
//! Every `leak_*` test runs a leaky body on a current_thread runtime with a
//! short grace and asserts on the report leakcheck fails it with: the
//! headline count, the exact spawn line (marked `// leak:<name>`), who
//! spawned the task and, where the leak sits behind helper functions, the
//! call chain. Every `clean_*` test is the same code with the bug fixed,
//! under `#[leakcheck::test]` with the default grace, and must pass.
//!
//! Without `--cfg tokio_unstable` (count mode) only the headline is
//! asserted: spawn sites, parents and call chains need the task hooks.

use std::future::{pending, Future};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

#[cfg(tokio_unstable)]
use leakcheck_tests::{assert_contains, call_chain, frame_index, group_lines, Source};
use leakcheck_tests::{assert_headline, leak_report, Flavor};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot, Notify};
use tokio::task::{JoinHandle, JoinSet};

#[cfg(tokio_unstable)]
const SRC: Source = Source::new(file!(), include_str!("patterns.rs"));

/// Grace for the leak-expected runs: long enough for nothing, short enough
/// to keep the suite fast.
const GRACE_MS: u64 = 100;
const CURRENT_THREAD: Flavor = Flavor::CurrentThread;

// ── a. A ticker loop nobody stops ──────────────────────────────────────────

/// Bumps `ticks` every 10ms, forever, until its handle is aborted.
#[inline(never)]
fn start_ticker(ticks: Arc<AtomicUsize>) -> JoinHandle<()> {
    let ticker = async move {
        let mut interval = tokio::time::interval(Duration::from_millis(10));
        loop {
            interval.tick().await;
            ticks.fetch_add(1, SeqCst);
        }
    };
    tokio::spawn(ticker) // leak:ticker
}

#[test]
fn leak_ticker_nobody_stops() {
    let report = leak_report(CURRENT_THREAD, GRACE_MS, async {
        let _detached = start_ticker(Arc::default());
    });
    assert_headline(&report, 1);
    #[cfg(tokio_unstable)]
    {
        assert_contains(&report, &SRC.spawned_at("// leak:ticker"));
        assert_contains(&report, "spawned by: the test body");
        frame_index(&call_chain(&report), "patterns::start_ticker");
    }
}

#[leakcheck::test]
async fn clean_ticker_aborted() {
    let ticker = start_ticker(Arc::default());
    ticker.abort();
    assert!(ticker.await.unwrap_err().is_cancelled());
}

// ── b. An actor holding a sender to its own mailbox ────────────────────────

enum Msg {
    Add(u64),
    Total(oneshot::Sender<u64>),
}

/// How the counter actor refers to its own mailbox.
enum SelfHandle {
    /// Keeps the mailbox open for as long as the actor runs: forever.
    Strong(#[allow(dead_code)] mpsc::Sender<Msg>),
    /// Lets the mailbox close once every outside handle is gone.
    Weak(#[allow(dead_code)] mpsc::WeakSender<Msg>),
}

struct Counter {
    mailbox: mpsc::Sender<Msg>,
}

impl Counter {
    /// Spawns the actor; it runs until its mailbox closes.
    #[inline(never)]
    fn spawn(weak_self: bool) -> Counter {
        let (mailbox, mut inbox) = mpsc::channel(8);
        let myself = match weak_self {
            true => SelfHandle::Weak(mailbox.downgrade()),
            false => SelfHandle::Strong(mailbox.clone()),
        };
        let actor = async move {
            let _myself = myself; // to queue follow-up work to itself
            let mut total = 0;
            while let Some(msg) = inbox.recv().await {
                match msg {
                    Msg::Add(n) => total += n,
                    Msg::Total(reply) => {
                        let _ = reply.send(total);
                    }
                }
            }
        };
        tokio::spawn(actor); // leak:actor
        Counter { mailbox }
    }

    async fn add_and_total(&self, n: u64) -> u64 {
        self.mailbox.send(Msg::Add(n)).await.unwrap();
        let (reply, total) = oneshot::channel();
        self.mailbox.send(Msg::Total(reply)).await.unwrap();
        total.await.unwrap()
    }
}

#[test]
fn leak_actor_holds_its_own_sender() {
    let report = leak_report(CURRENT_THREAD, GRACE_MS, async {
        let counter = Counter::spawn(false);
        assert_eq!(counter.add_and_total(3).await, 3);
    });
    assert_headline(&report, 1);
    #[cfg(tokio_unstable)]
    {
        assert_contains(&report, &SRC.spawned_at("// leak:actor"));
        assert_contains(&report, "spawned by: the test body");
        frame_index(&call_chain(&report), "patterns::Counter::spawn");
    }
}

#[leakcheck::test]
async fn clean_actor_holds_a_weak_sender() {
    let counter = Counter::spawn(true);
    assert_eq!(counter.add_and_total(3).await, 3);
}

// ── c. A TCP server started for a test and never shut down ─────────────────

/// Answers `ping` with `pong` on 127.0.0.1 until `shutdown` completes.
#[inline(never)]
async fn start_server(
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> (String, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let serve = async move {
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                accepted = listener.accept() => {
                    let (mut conn, _) = accepted.unwrap();
                    let mut request = [0; 4];
                    conn.read_exact(&mut request).await.unwrap();
                    conn.write_all(b"pong").await.unwrap();
                }
            }
        }
    };
    let server = tokio::spawn(serve); // leak:server
    (addr, server)
}

async fn ping(addr: &str) -> [u8; 4] {
    let mut conn = TcpStream::connect(addr).await.unwrap();
    conn.write_all(b"ping").await.unwrap();
    let mut reply = [0; 4];
    conn.read_exact(&mut reply).await.unwrap();
    reply
}

#[test]
fn leak_tcp_server_never_shut_down() {
    let report = leak_report(CURRENT_THREAD, GRACE_MS, async {
        let (addr, _server) = start_server(pending()).await;
        assert_eq!(&ping(&addr).await, b"pong");
    });
    assert_headline(&report, 1);
    #[cfg(tokio_unstable)]
    {
        assert_contains(&report, &SRC.spawned_at("// leak:server"));
        assert_contains(&report, "spawned by: the test body");
        frame_index(&call_chain(&report), "patterns::start_server::{{closure}}");
    }
}

#[leakcheck::test]
async fn clean_tcp_server_shut_down() {
    let (stop, stopped) = oneshot::channel::<()>();
    let (addr, server) = start_server(async move {
        let _ = stopped.await;
    })
    .await;
    assert_eq!(&ping(&addr).await, b"pong");
    stop.send(()).unwrap();
    server.await.unwrap();
}

// ── d. Deadlock: a tokio Mutex held across a channel receive ───────────────

/// Two tasks share `state`: `holder` locks it and waits for a number that
/// `sender` sends only after taking the same lock. With `hold_lock` the
/// holder keeps the lock while it waits, and neither can ever proceed.
#[inline(never)]
async fn lock_and_exchange(hold_lock: bool) -> [JoinHandle<()>; 2] {
    let state = Arc::new(tokio::sync::Mutex::new(0u64));
    let (tx, mut rx) = mpsc::channel::<u64>(1);
    let (locked, holder_has_lock) = oneshot::channel();
    let shared = state.clone();
    let hold = async move {
        let guard = shared.lock().await;
        locked.send(()).unwrap();
        let guard = hold_lock.then_some(guard); // else: unlocked here
        let n = rx.recv().await.unwrap();
        match guard {
            Some(mut guard) => *guard += n,
            None => *shared.lock().await += n,
        }
    };
    let send = async move {
        *state.lock().await += 1;
        tx.send(1).await.unwrap();
    };
    let holder = tokio::spawn(hold); // leak:holder
    holder_has_lock.await.unwrap();
    let sender = tokio::spawn(send); // leak:sender
    [holder, sender]
}

#[test]
fn leak_deadlock_mutex_held_across_recv() {
    let report = leak_report(CURRENT_THREAD, GRACE_MS, async {
        let _stuck = lock_and_exchange(true).await;
    });
    assert_headline(&report, 2);
    #[cfg(tokio_unstable)]
    {
        assert_contains(
            &report,
            &format!("── 1 task {}", SRC.spawned_at("// leak:holder")),
        );
        assert_contains(
            &report,
            &format!("── 1 task {}", SRC.spawned_at("// leak:sender")),
        );
        assert_eq!(
            report.matches("spawned by: the test body").count(),
            2,
            "{report}"
        );
    }
}

#[leakcheck::test]
async fn clean_mutex_released_before_recv() {
    for task in lock_and_exchange(false).await {
        task.await.unwrap();
    }
}

// ── e. A future that never registers a waker ───────────────────────────────

/// A flag a task can wait for.
#[derive(Default)]
struct Flag {
    set: AtomicBool,
    waker: Mutex<Option<Waker>>,
    /// Notified on every poll of a [`WaitForFlag`], so tests can wait for one.
    polled: Notify,
}

impl Flag {
    fn set(&self) {
        self.set.store(true, SeqCst);
        if let Some(waker) = self.waker.lock().unwrap().take() {
            waker.wake();
        }
    }
}

/// Waits for a [`Flag`]. Unless `registers_waker`, it returns `Pending`
/// without storing the waker, so nothing ever polls it again.
struct WaitForFlag {
    flag: Arc<Flag>,
    registers_waker: bool,
}

impl Future for WaitForFlag {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.registers_waker {
            *self.flag.waker.lock().unwrap() = Some(cx.waker().clone());
        }
        self.flag.polled.notify_one();
        match self.flag.set.load(SeqCst) {
            true => Poll::Ready(()),
            false => Poll::Pending,
        }
    }
}

#[inline(never)]
fn spawn_flag_waiter(flag: &Arc<Flag>, registers_waker: bool) -> JoinHandle<()> {
    let wait = WaitForFlag {
        flag: flag.clone(),
        registers_waker,
    };
    tokio::spawn(wait) // leak:waker
}

#[test]
fn leak_future_never_registers_a_waker() {
    let report = leak_report(CURRENT_THREAD, GRACE_MS, async {
        let flag = Arc::new(Flag::default());
        let _waiter = spawn_flag_waiter(&flag, false);
        flag.polled.notified().await;
        flag.set(); // too late: the waiter left no waker to wake
    });
    assert_headline(&report, 1);
    #[cfg(tokio_unstable)]
    {
        assert_contains(&report, &SRC.spawned_at("// leak:waker"));
        assert_contains(&report, "[idle "); // polled once, then never again
        assert_contains(&report, ", 1 poll");
        assert_contains(&report, "spawned by: the test body");
    }
}

#[leakcheck::test]
async fn clean_future_registers_its_waker() {
    let flag = Arc::new(Flag::default());
    let waiter = spawn_flag_waiter(&flag, true);
    flag.polled.notified().await;
    flag.set();
    waiter.await.unwrap();
}

// ── f. A wait on a Notify only the waiter can reach ────────────────────────

#[inline(never)]
fn spawn_notify_waiter(ready: Arc<Notify>) -> JoinHandle<()> {
    tokio::spawn(async move { ready.notified().await }) // leak:notify
}

#[test]
fn leak_notify_only_the_waiter_can_reach() {
    let report = leak_report(CURRENT_THREAD, GRACE_MS, async {
        let ready = Arc::new(Notify::new());
        let _waiter = spawn_notify_waiter(ready.clone());
        drop(ready); // the waiter now holds the only handle to its Notify
    });
    assert_headline(&report, 1);
    #[cfg(tokio_unstable)]
    {
        assert_contains(&report, &SRC.spawned_at("// leak:notify"));
        assert_contains(&report, "spawned by: the test body");
    }
}

#[leakcheck::test]
async fn clean_notify_kept_and_notified() {
    let ready = Arc::new(Notify::new());
    let waiter = spawn_notify_waiter(ready.clone());
    ready.notify_one();
    waiter.await.unwrap();
}

// ── g. A child that outlives its finished parent ───────────────────────────

/// A session that starts a heartbeat and returns. With `stop_heartbeat` it
/// stops the heartbeat before returning.
#[inline(never)]
fn spawn_session(stop_heartbeat: bool) -> JoinHandle<()> {
    let session = async move {
        let beat = async {
            let mut interval = tokio::time::interval(Duration::from_millis(10));
            loop {
                interval.tick().await;
            }
        };
        let heartbeat = tokio::spawn(beat); // leak:heartbeat
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
    let report = leak_report(CURRENT_THREAD, GRACE_MS, async {
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

#[leakcheck::test]
async fn clean_parent_stops_its_child() {
    spawn_session(true).await.unwrap();
}

// ── h. A task spawned from a Drop impl ─────────────────────────────────────

/// A connection that closes asynchronously when dropped: a task lingers for
/// `linger` (like `SO_LINGER`) before the close completes.
struct Connection {
    linger: Duration,
}

impl Drop for Connection {
    fn drop(&mut self) {
        let linger = self.linger;
        tokio::spawn(async move { tokio::time::sleep(linger).await }); // leak:drop
    }
}

#[test]
fn leak_spawned_from_drop() {
    let report = leak_report(CURRENT_THREAD, GRACE_MS, async {
        drop(Connection {
            linger: Duration::from_secs(3600),
        });
    });
    assert_headline(&report, 1);
    #[cfg(tokio_unstable)]
    {
        assert_contains(&report, &SRC.spawned_at("// leak:drop"));
        assert_contains(&report, "spawned by: the test body");
        frame_index(&call_chain(&report), "as core::ops::drop::Drop>::drop");
    }
}

#[leakcheck::test]
async fn clean_drop_task_ends_within_the_grace() {
    drop(Connection {
        linger: Duration::from_millis(10),
    });
}

// ── i. 100 identical leaks, one entry ──────────────────────────────────────

/// One timeout watchdog per request; the caller must cancel them.
#[inline(never)]
fn start_watchdogs(requests: usize) -> Vec<JoinHandle<()>> {
    (0..requests)
        .map(|_| tokio::spawn(tokio::time::sleep(Duration::from_secs(3600)))) // leak:watchdog
        .collect()
}

#[test]
fn leak_hundred_identical_tasks_grouped() {
    let report = leak_report(CURRENT_THREAD, GRACE_MS, async {
        let _forgotten = start_watchdogs(100);
    });
    assert_headline(&report, 100);
    #[cfg(tokio_unstable)]
    {
        let group = format!("── 100 tasks {}", SRC.spawned_at("// leak:watchdog"));
        assert_contains(&report, &group);
        assert_eq!(
            group_lines(&report).len(),
            1,
            "one group for 100 identical leaks:\n{report}"
        );
        assert_contains(&report, "… and 97 more: tasks ");
        assert_contains(&report, "spawned by: the test body");
    }
}

#[leakcheck::test]
async fn clean_hundred_tasks_cancelled() {
    for watchdog in start_watchdogs(100) {
        watchdog.abort();
        assert!(watchdog.await.unwrap_err().is_cancelled());
    }
}

// ── j. A leak three calls deep ─────────────────────────────────────────────

#[inline(never)]
fn outer() -> JoinHandle<()> {
    middle()
}

#[inline(never)]
fn middle() -> JoinHandle<()> {
    inner()
}

#[inline(never)]
fn inner() -> JoinHandle<()> {
    tokio::spawn(pending()) // leak:deep
}

#[test]
fn leak_three_calls_deep() {
    let report = leak_report(CURRENT_THREAD, GRACE_MS, async {
        let _forgotten = outer();
    });
    assert_headline(&report, 1);
    #[cfg(tokio_unstable)]
    {
        assert_contains(&report, &SRC.spawned_at("// leak:deep"));
        let chain = call_chain(&report);
        let inner = frame_index(&chain, "patterns::inner");
        let middle = frame_index(&chain, "patterns::middle");
        let outer = frame_index(&chain, "patterns::outer");
        assert!(
            inner < middle && middle < outer,
            "innermost first:\n{}",
            chain.join("\n")
        );
        assert_contains(chain[inner], &format!("at {}", SRC.site("// leak:deep")));
    }
}

#[leakcheck::test]
async fn clean_three_calls_deep_aborted() {
    let task = outer();
    task.abort();
    assert!(task.await.unwrap_err().is_cancelled());
}

// ── k. A graceful shutdown slower than the grace ───────────────────────────

/// A worker that, once told to stop, takes `cleanup` to flush and exit.
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
    let report = leak_report(CURRENT_THREAD, GRACE_MS, async {
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

#[leakcheck::test]
async fn clean_shutdown_within_the_grace() {
    let (stop, stopping) = oneshot::channel();
    let _worker = spawn_worker(stopping, Duration::from_millis(20));
    stop.send(()).unwrap();
    // not awaited: the check waits for the worker to finish its cleanup
}

// ── l. A channel whose sender lives forever ────────────────────────────────

/// Where the leaky code keeps the config sender: a global, never dropped.
static CONFIG_UPDATES: OnceLock<mpsc::UnboundedSender<String>> = OnceLock::new();

/// Applies config updates until every sender is gone; returns what it saw.
#[inline(never)]
fn spawn_config_watcher() -> (mpsc::UnboundedSender<String>, JoinHandle<Vec<String>>) {
    let (updates, mut inbox) = mpsc::unbounded_channel();
    let watch = async move {
        let mut seen = Vec::new();
        while let Some(update) = inbox.recv().await {
            seen.push(update);
        }
        seen
    };
    let watcher = tokio::spawn(watch); // leak:config
    (updates, watcher)
}

#[test]
fn leak_receiver_whose_sender_is_static() {
    let report = leak_report(CURRENT_THREAD, GRACE_MS, async {
        let (updates, _watcher) = spawn_config_watcher();
        updates.send("log_level=debug".into()).unwrap();
        CONFIG_UPDATES.set(updates).unwrap();
    });
    assert_headline(&report, 1);
    #[cfg(tokio_unstable)]
    {
        assert_contains(&report, &SRC.spawned_at("// leak:config"));
        assert_contains(&report, "spawned by: the test body");
    }
}

#[leakcheck::test]
async fn clean_receiver_whose_sender_is_dropped() {
    let (updates, watcher) = spawn_config_watcher();
    updates.send("log_level=debug".into()).unwrap();
    drop(updates);
    assert_eq!(watcher.await.unwrap(), ["log_level=debug"]);
}

// ── m. Dropped JoinSets and aborted handles are not leaks ──────────────────

#[leakcheck::test]
async fn clean_dropped_join_set() {
    let mut set = JoinSet::new();
    for _ in 0..10 {
        set.spawn(pending::<()>());
    }
    drop(set); // aborts every task in it
}

#[leakcheck::test]
async fn clean_aborted_handles_not_awaited() {
    tokio::spawn(pending::<()>()).abort();
    let abort = tokio::spawn(pending::<()>()).abort_handle();
    abort.abort();
}
