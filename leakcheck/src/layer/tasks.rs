//! Every live task tokio's spans show: where and by whom it was spawned,
//! which test it belongs to, where it runs, its polls and its wakers.

use std::cell::RefCell;
use std::sync::atomic::Ordering::{Relaxed, SeqCst};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, AtomicU64, AtomicUsize};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use parking_lot::RwLock;
use rustc_hash::FxHashMap;
use tokio::sync::Notify;

use super::fields::{Fields, WakerOp};
use crate::owner::{self, Owner};
use crate::site::SpawnSite;

/// What kind of task a `runtime.spawn` span is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `tokio::spawn` and friends.
    Task,
    /// `spawn_local` on a `LocalSet`.
    Local,
    /// `spawn_blocking`.
    Blocking,
    /// The future a `block_on` runs (a test body): not a task.
    BlockOn,
}

impl Kind {
    fn parse(kind: Option<&str>) -> Kind {
        match kind {
            Some("local") => Kind::Local,
            Some("blocking") => Kind::Blocking,
            Some("block_on") => Kind::BlockOn,
            _ => Kind::Task,
        }
    }
}

/// Where a task runs, learned at its first poll.
#[derive(Debug, Clone, Default)]
pub(crate) struct Home {
    /// The id of the runtime that polled it (`tokio::runtime::Id` as a number).
    pub(crate) runtime: Option<u64>,
    /// The name of the thread that first polled it.
    pub(crate) thread: Option<Arc<str>>,
}

/// One live task, as the layer sees it.
#[derive(Debug)]
pub(crate) struct Seen {
    pub(crate) id: u64,
    pub(crate) kind: Kind,
    pub(crate) name: Option<Arc<str>>,
    pub(crate) site: Option<SpawnSite>,
    /// The task whose poll spawned it.
    pub(crate) parent: Option<u64>,
    pub(crate) parent_site: Option<SpawnSite>,
    /// The test it belongs to.
    pub(crate) owner: Option<Arc<Owner>>,
    /// Spawned outside any task, on the thread the test runs on: by the
    /// test body itself.
    pub(crate) by_test_body: bool,
    /// The call chain of the spawn (a frame-pointer walk at the span).
    pub(crate) chain: u32,
    pub(crate) spawned: Instant,
    home: OnceLock<Home>,
    polls: AtomicU64,
    depth: AtomicU32,
    /// When its last poll ended, in ns since [`epoch`]; 0 if never.
    last_exit: AtomicU64,
    wakers: AtomicI64,
    woken: AtomicBool,
}

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

fn now_ns() -> u64 {
    u64::try_from(epoch().elapsed().as_nanos()).unwrap_or(u64::MAX)
}

impl Seen {
    /// Wakers of this task alive anywhere (clones minus drops).
    pub(crate) fn wakers(&self) -> usize {
        self.wakers.load(Relaxed).max(0) as usize
    }

    /// Woken since its last poll began: it is scheduled to run.
    pub(crate) fn woken(&self) -> bool {
        self.woken.load(Relaxed)
    }

    pub(crate) fn polls(&self) -> u64 {
        self.polls.load(Relaxed)
    }

    /// A poll is running right now.
    pub(crate) fn running(&self) -> bool {
        self.depth.load(Relaxed) > 0
    }

    /// Time since its last poll ended, if it was polled.
    pub(crate) fn idle(&self) -> Option<Duration> {
        match self.last_exit.load(Relaxed) {
            0 => None,
            at => Some(Duration::from_nanos(now_ns().saturating_sub(at))),
        }
    }

    pub(crate) fn home(&self) -> Option<&Home> {
        self.home.get()
    }

    /// A poll begins on this thread.
    pub(super) fn entered(&self) {
        self.woken.store(false, Relaxed);
        if self.depth.fetch_add(1, Relaxed) == 0 && self.polls.fetch_add(1, Relaxed) == 0 {
            self.home.get_or_init(here);
        }
        let _ = ENTERED.try_with(|e| e.borrow_mut().push(self.id));
    }

    /// A poll ends on this thread.
    pub(super) fn exited(&self) {
        let _ = self
            .depth
            .fetch_update(Relaxed, Relaxed, |d| d.checked_sub(1));
        self.last_exit.store(now_ns().max(1), Relaxed);
        let _ = ENTERED.try_with(|e| {
            let mut entered = e.borrow_mut();
            if let Some(at) = entered.iter().rposition(|t| *t == self.id) {
                entered.remove(at);
            }
        });
    }

    pub(super) fn waker(&self, op: WakerOp) {
        match op {
            WakerOp::Clone => {
                self.wakers.fetch_add(1, Relaxed);
            }
            WakerOp::Drop => {
                self.wakers.fetch_sub(1, Relaxed);
            }
            WakerOp::Wake => {
                // waking by value consumes the waker
                self.woken.store(true, Relaxed);
                self.wakers.fetch_sub(1, Relaxed);
            }
            WakerOp::WakeByRef => self.woken.store(true, Relaxed),
        }
    }
}

/// The runtime and thread polling right now.
fn here() -> Home {
    thread_local! {
        /// This thread's name, looked up once.
        static NAME: OnceLock<Option<Arc<str>>> = const { OnceLock::new() };
    }
    let thread = NAME
        .try_with(|n| {
            n.get_or_init(|| std::thread::current().name().map(Arc::from))
                .clone()
        })
        .ok()
        .flatten();
    Home {
        runtime: current_runtime(),
        thread,
    }
}

/// The id of the runtime the calling code runs on, as a number.
pub(crate) fn current_runtime() -> Option<u64> {
    #[cfg(tokio_unstable)]
    return tokio::runtime::Handle::try_current().ok().map(|h| {
        use std::hash::{Hash, Hasher};
        // `runtime::Id` has no accessor; it hashes as its one number
        let mut hasher = rustc_hash::FxHasher::default();
        h.id().hash(&mut hasher);
        hasher.finish()
    });
    #[cfg(not(tokio_unstable))]
    return None;
}

thread_local! {
    /// Tasks whose span is entered on this thread, innermost last.
    static ENTERED: RefCell<Vec<u64>> = const { RefCell::new(Vec::new()) };
}

/// The task being polled on this thread, if any.
pub(super) fn polling() -> Option<u64> {
    ENTERED
        .try_with(|e| e.borrow().last().copied())
        .ok()
        .flatten()
}

/// A `runtime.spawn` span was created (on the spawning thread, just before
/// the task is spawned): records the task.
pub(super) fn spawned(task: u64, fields: Fields) -> Arc<Seen> {
    let polling = polling().and_then(lookup);
    let owner = match &polling {
        Some(p) => p.owner.clone(),
        None => owner::of_thread(),
    };
    // a `block_on` future (a test body) is not a task: no parent
    let parent = polling.filter(|p| p.kind != Kind::BlockOn);
    let by_test_body = parent.is_none()
        && owner
            .as_ref()
            .is_some_and(|o| o.thread == std::thread::current().id());
    let site = match (fields.file, fields.line, fields.col) {
        (Some(file), Some(line), Some(col)) => Some(SpawnSite::new(file, line, col)),
        _ => None,
    };
    let seen = Arc::new(Seen {
        id: task,
        kind: Kind::parse(fields.kind),
        name: fields.name.map(Arc::from),
        site,
        parent: parent.as_ref().map(|p| p.id),
        parent_site: parent.as_ref().and_then(|p| p.site),
        owner,
        by_test_body,
        chain: crate::chain::capture(),
        spawned: Instant::now(),
        home: OnceLock::new(),
        polls: AtomicU64::new(0),
        depth: AtomicU32::new(0),
        last_exit: AtomicU64::new(0),
        wakers: AtomicI64::new(0),
        woken: AtomicBool::new(false),
    });
    shard(task).write().insert(task, seen.clone());
    seen
}

/// Called with a task's id as its span closes, before it leaves the table,
/// once set (the `process` feature marks the task seen).
pub(crate) static ON_CLOSE: OnceLock<fn(u64)> = OnceLock::new();

/// The task's span closed: it ended (or its future was dropped).
pub(super) fn closed(task: u64) {
    if let Some(hook) = ON_CLOSE.get() {
        hook(task);
    }
    shard(task).write().remove(&task);
    if WAITERS.load(SeqCst) > 0 {
        ended().notify_waiters();
        let (count, cv) = ended_sync();
        *count.lock() += 1;
        cv.notify_all();
    }
}

/// Like [`ended`], for a waiter outside any runtime: a counter of task
/// ends and a condition variable notified with it.
pub(crate) fn ended_sync() -> &'static (parking_lot::Mutex<u64>, parking_lot::Condvar) {
    static ENDED: OnceLock<(parking_lot::Mutex<u64>, parking_lot::Condvar)> = OnceLock::new();
    ENDED.get_or_init(Default::default)
}

const SHARDS: usize = 16;

/// Live tasks the layer has seen, by tokio task id.
type Shard = RwLock<FxHashMap<u64, Arc<Seen>>>;

fn shards() -> &'static [Shard; SHARDS] {
    static TASKS: OnceLock<[Shard; SHARDS]> = OnceLock::new();
    TASKS.get_or_init(Default::default)
}

/// Runs of 256 consecutive ids share a shard, so the ids in one shard's map
/// are dense, which FxHash spreads well (ids a multiple of 16 apart would
/// all land in the same few buckets).
fn shard(task: u64) -> &'static Shard {
    &shards()[(task >> 8) as usize % SHARDS]
}

/// The layer's view of a task, if the layer saw it spawn.
pub(crate) fn lookup(task: u64) -> Option<Arc<Seen>> {
    shard(task).read().get(&task).cloned()
}

/// Every live task the layer has seen.
pub(crate) fn live() -> Vec<Arc<Seen>> {
    shards()
        .iter()
        .flat_map(|s| s.read().values().cloned().collect::<Vec<_>>())
        .collect()
}

static WAITERS: AtomicUsize = AtomicUsize::new(0);

/// Notified whenever a task span closes while a check is waiting.
pub(crate) fn ended() -> &'static Notify {
    static ENDED: OnceLock<Notify> = OnceLock::new();
    ENDED.get_or_init(Notify::new)
}

/// A check waiting for tasks to end; the close hook notifies while one lives.
pub(crate) struct Waiting(());

impl Waiting {
    pub(crate) fn new() -> Waiting {
        WAITERS.fetch_add(1, SeqCst);
        Waiting(())
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        WAITERS.fetch_sub(1, SeqCst);
    }
}
