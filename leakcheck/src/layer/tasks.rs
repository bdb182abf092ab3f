//! What the layer knows of each live task: its name, its wakers, and
//! whether it was woken since its last poll began.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};

use parking_lot::RwLock;
use rustc_hash::FxHashMap;

use super::fields::WakerOp;

/// One live task, as the layer sees it.
#[derive(Debug, Default)]
pub(crate) struct Seen {
    pub(crate) name: Option<Arc<str>>,
    wakers: AtomicI64,
    woken: AtomicBool,
}

impl Seen {
    pub(super) fn named(name: Option<String>) -> Seen {
        Seen {
            name: name.map(Arc::from),
            ..Seen::default()
        }
    }

    /// Wakers of this task alive anywhere (clones minus drops).
    pub(crate) fn wakers(&self) -> usize {
        self.wakers.load(Relaxed).max(0) as usize
    }

    /// Woken since its last poll began: it is scheduled to run.
    pub(crate) fn woken(&self) -> bool {
        self.woken.load(Relaxed)
    }

    /// A poll begins.
    pub(super) fn entered(&self) {
        self.woken.store(false, Relaxed);
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

const SHARDS: usize = 16;

/// Live tasks the layer has seen, by tokio task id.
type Shard = RwLock<FxHashMap<u64, Arc<Seen>>>;

fn shards() -> &'static [Shard; SHARDS] {
    static TASKS: OnceLock<[Shard; SHARDS]> = OnceLock::new();
    TASKS.get_or_init(Default::default)
}

fn shard(task: u64) -> &'static Shard {
    &shards()[task as usize % SHARDS]
}

pub(super) fn insert(task: u64, seen: Arc<Seen>) {
    shard(task).write().insert(task, seen);
}

pub(super) fn remove(task: u64) {
    shard(task).write().remove(&task);
}

/// The layer's view of a task, if the layer saw it spawn.
pub(crate) fn lookup(task: u64) -> Option<Arc<Seen>> {
    shard(task).read().get(&task).cloned()
}
