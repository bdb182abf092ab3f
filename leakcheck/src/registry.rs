//! The live-task table: one slot per task, written by tokio's hooks.
//!
//! Slots are direct-mapped by task id (`id & mask`), so every hook finds its
//! slot without hashing or locking; poll hooks are a compare and two relaxed
//! stores. A task whose slot is taken by an older live task goes to a small
//! locked overflow map. Readers copy a slot and validate it seqlock-style
//! (id read before and after), so a snapshot never blocks a hook.

use std::panic::Location;
use std::ptr;
use std::sync::atomic::{fence, AtomicPtr, AtomicU32, AtomicU64, AtomicUsize, Ordering::*};
use std::time::Duration;

use parking_lot::Mutex;
use rustc_hash::FxHashMap;

/// An id no task has: the slot is being written.
const WRITING: u64 = u64::MAX;

/// Who spawned a task, as stored in a slot.
pub(crate) mod parent {
    /// Spawned outside any task of this runtime, not from the test body.
    pub(crate) const OUTSIDE: u64 = 0;
    /// Spawned by the `#[leakcheck::test]` body itself.
    pub(crate) const TEST_BODY: u64 = u64::MAX;
}

/// Monotonic coarse ticks (a few ns to read; jiffy resolution).
pub(crate) fn now() -> u64 {
    coarsetime::Instant::now_without_cache_update().as_ticks()
}

/// Converts a tick difference into a `Duration`.
pub(crate) fn ticks(t: u64) -> Duration {
    Duration::from_nanos(coarsetime::Duration::from_ticks(t).as_nanos())
}

/// One live task. All fields are atomics so hooks on any thread can write
/// them and readers can copy them without a lock.
#[repr(align(64))]
#[derive(Default)]
pub(crate) struct Slot {
    id: AtomicU64,
    location: AtomicPtr<Location<'static>>,
    parent: AtomicU64,
    parent_location: AtomicPtr<Location<'static>>,
    chain: AtomicU32,
    spawned: AtomicU64,
    /// Poll hook calls: odd while a poll is running; polls = (n + 1) / 2.
    poll_edges: AtomicU64,
    poll_started: AtomicU64,
    poll_ended: AtomicU64,
    busy: AtomicU64,
}

/// What the spawn hook records.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Spawn {
    pub(crate) location: &'static Location<'static>,
    pub(crate) parent: u64,
    pub(crate) parent_location: Option<&'static Location<'static>>,
    pub(crate) chain: u32,
    pub(crate) spawned: u64,
}

/// A consistent copy of one slot.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Record {
    pub(crate) id: u64,
    pub(crate) spawn: Spawn,
    pub(crate) poll_edges: u64,
    pub(crate) poll_ended: u64,
    pub(crate) busy: u64,
}

impl Slot {
    /// Writes a new task's record. `polls`: the poll hooks are installed,
    /// so the poll fields a previous task left in this slot need clearing
    /// (without them they stay zero and the stores are saved).
    fn fill(&self, s: &Spawn, polls: bool) {
        self.location
            .store(ptr::from_ref(s.location).cast_mut(), Relaxed);
        self.parent.store(s.parent, Relaxed);
        let parent_location = s
            .parent_location
            .map_or(ptr::null_mut(), |l| ptr::from_ref(l).cast_mut());
        self.parent_location.store(parent_location, Relaxed);
        self.chain.store(s.chain, Relaxed);
        self.spawned.store(s.spawned, Relaxed);
        if polls {
            self.poll_edges.store(0, Relaxed);
            self.poll_started.store(0, Relaxed);
            self.poll_ended.store(0, Relaxed);
            self.busy.store(0, Relaxed);
        }
    }

    fn read(&self) -> Option<Record> {
        let id = self.id.load(SeqCst);
        if id == 0 || id == WRITING {
            return None;
        }
        let location = self.location.load(Relaxed);
        let parent_location = self.parent_location.load(Relaxed);
        let record = Record {
            id,
            spawn: Spawn {
                // SAFETY: only ever stored from `&'static Location`; checked non-null.
                location: unsafe { location.as_ref()? },
                parent: self.parent.load(Relaxed),
                // SAFETY: as above; null means "none".
                parent_location: unsafe { parent_location.as_ref() },
                chain: self.chain.load(Relaxed),
                spawned: self.spawned.load(Relaxed),
            },
            poll_edges: self.poll_edges.load(Relaxed),
            poll_ended: self.poll_ended.load(Relaxed),
            busy: self.busy.load(Relaxed),
        };
        fence(Acquire);
        (self.id.load(Relaxed) == id).then_some(record)
    }

    /// Called by the before-poll hook. Only the task's poller writes these.
    pub(crate) fn poll_started(&self, now: u64) {
        self.poll_started.store(now, Relaxed);
        self.poll_edges
            .store(self.poll_edges.load(Relaxed) + 1, Relaxed);
    }

    /// Called by the after-poll hook.
    pub(crate) fn poll_ended(&self, now: u64) {
        let spent = now.saturating_sub(self.poll_started.load(Relaxed));
        self.busy.store(self.busy.load(Relaxed) + spent, Relaxed);
        self.poll_ended.store(now, Relaxed);
        self.poll_edges
            .store(self.poll_edges.load(Relaxed) + 1, Relaxed);
    }

    pub(crate) fn location(&self) -> Option<&'static Location<'static>> {
        // SAFETY: only ever stored from `&'static Location`.
        unsafe { self.location.load(Relaxed).as_ref() }
    }
}

const OVERFLOW_SHARDS: usize = 8;

/// The table of one runtime's live tasks.
pub(crate) struct Table {
    slots: Box<[Slot]>,
    mask: u64,
    overflow: [Mutex<FxHashMap<u64, Box<Slot>>>; OVERFLOW_SHARDS],
    overflow_len: AtomicUsize,
}

impl Table {
    /// A table with `2^bits` direct-mapped slots.
    pub(crate) fn new(bits: u32) -> Table {
        let len = 1usize << bits;
        Table {
            slots: (0..len).map(|_| Slot::default()).collect(),
            mask: len as u64 - 1,
            overflow: Default::default(),
            overflow_len: AtomicUsize::new(0),
        }
    }

    #[inline]
    fn home(&self, id: u64) -> &Slot {
        &self.slots[(id & self.mask) as usize]
    }

    fn shard(&self, id: u64) -> &Mutex<FxHashMap<u64, Box<Slot>>> {
        &self.overflow[id as usize % OVERFLOW_SHARDS]
    }

    /// Records a new task.
    pub(crate) fn insert(&self, id: u64, spawn: &Spawn, polls: bool) {
        let slot = self.home(id);
        if slot
            .id
            .compare_exchange(0, WRITING, Acquire, Relaxed)
            .is_ok()
        {
            slot.fill(spawn, polls);
            slot.id.store(id, Release);
            return;
        }
        let boxed = Box::<Slot>::default();
        boxed.fill(spawn, false);
        boxed.id.store(id, Relaxed);
        self.shard(id).lock().insert(id, boxed);
        self.overflow_len.fetch_add(1, Relaxed);
    }

    /// Forgets a task; returns its spawn site if it was known.
    ///
    /// The id is cleared with `SeqCst` so that a waiter which registers and
    /// then scans either sees the task gone or is seen by the terminate hook.
    pub(crate) fn remove(&self, id: u64) -> Option<&'static Location<'static>> {
        let slot = self.home(id);
        if slot.id.load(Acquire) == id {
            let removed = slot.location();
            slot.id.store(0, SeqCst);
            return removed;
        }
        if self.overflow_len.load(Relaxed) == 0 {
            return None;
        }
        let removed = self.shard(id).lock().remove(&id)?;
        self.overflow_len.fetch_sub(1, Relaxed);
        removed.location()
    }

    /// Runs `f` on the task's slot, if the task is known.
    #[inline]
    pub(crate) fn with<R>(&self, id: u64, f: impl FnOnce(&Slot) -> R) -> Option<R> {
        let slot = self.home(id);
        if slot.id.load(Acquire) == id {
            return Some(f(slot));
        }
        if self.overflow_len.load(Relaxed) == 0 {
            return None;
        }
        self.shard(id).lock().get(&id).map(|slot| f(slot))
    }

    /// A consistent copy of one task's record.
    pub(crate) fn get(&self, id: u64) -> Option<Record> {
        self.with(id, Slot::read).flatten()
    }

    /// Copies every live record.
    pub(crate) fn records(&self) -> Vec<Record> {
        let mut out: Vec<Record> = self.slots.iter().filter_map(Slot::read).collect();
        if self.overflow_len.load(Relaxed) > 0 {
            for shard in &self.overflow {
                out.extend(shard.lock().values().filter_map(|s| s.read()));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spawn() -> Spawn {
        Spawn {
            location: Location::caller(),
            parent: parent::OUTSIDE,
            parent_location: None,
            chain: 0,
            spawned: now(),
        }
    }

    #[test]
    fn colliding_ids_overflow_and_come_back() {
        let t = Table::new(2);
        for id in [1, 5, 9, 2] {
            t.insert(id, &spawn(), true);
        }
        let mut ids: Vec<_> = t.records().iter().map(|r| r.id).collect();
        ids.sort();
        assert_eq!(ids, [1, 2, 5, 9]);
        assert!(t.remove(5).is_some());
        assert!(t.remove(1).is_some());
        assert_eq!(t.remove(1), None, "a second remove is a no-op");
        assert!(t.get(9).is_some());
        t.insert(13, &spawn(), true);
        assert_eq!(t.get(13).map(|r| r.id), Some(13));
    }

    #[test]
    fn unknown_ids_are_ignored() {
        let t = Table::new(4);
        assert_eq!(t.remove(42), None);
        assert!(t.with(42, |_| ()).is_none());
    }

    #[test]
    fn poll_edges_track_running_and_busy() {
        let t = Table::new(4);
        t.insert(3, &spawn(), true);
        t.with(3, |s| s.poll_started(10)).unwrap();
        assert_eq!(t.get(3).unwrap().poll_edges, 1, "running");
        t.with(3, |s| s.poll_ended(25)).unwrap();
        let r = t.get(3).unwrap();
        assert_eq!((r.poll_edges, r.busy, r.poll_ended), (2, 15, 25));
    }
}
