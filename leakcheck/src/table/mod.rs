//! A sharded table of fixed-size records keyed by a non-zero `u64` id,
//! built for monotonically increasing ids (tokio task ids).
//!
//! Self-contained (std, spin): the live-task table behind a tracker, but
//! nothing here knows about tasks.
//!
//! * `S` shards (a power of two: 4 × available parallelism, 16..=1024), the
//!   shard chosen by `id & (S - 1)`, so consecutive ids spread over all of
//!   them. Every operation, readers included, takes the shard's lock for a
//!   short critical section. The lock is a spin lock that yields its time
//!   slice while it waits (`spin`'s `SpinMutex` with `Yield`): taking it
//!   is one compare-and-swap and releasing it one plain store, where
//!   `parking_lot::Mutex` releases with a second compare-and-swap, about
//!   10 ns more per task for the spawn and terminate hooks together
//!   (BENCHMARKS.md). A hook's own work under it is a few ns; the long
//!   holds are O(records in one shard): a reader copying it (one `memcpy`;
//!   a big reader yields its core between shards) and, when an array
//!   grows or shrinks, moving the records into it (the allocation itself
//!   happens outside the lock).
//! * Within a shard a record's *local id* is `id >> log2(S)`. Two arrays:
//!   - the **ring**, direct-mapped: slot `local & (R - 1)`, no probing.
//!     Consecutive ids land in consecutive slots, so the young tasks a
//!     workload churns through stay in a few hot cache lines;
//!   - the **archive**, for records that outlived a lap of the ring: open
//!     addressing with a multiplicative hash of the local id, linear
//!     probing and backward-shift deletion (no tombstones).
//!
//!   An insert whose ring slot holds an older record moves that record to
//!   the archive (once: it never comes back). Long-lived records therefore
//!   never sit in the path of new ones, whatever their number.
//! * The ring grows ×2 above 7/8 full (up to [`RING_CAP`] slots), and
//!   shrinks when its peak occupancy over a lap stayed under 1/4; the
//!   archive grows ×2 above 7/8 load and shrinks ÷2 below 1/8, down to
//!   [`MIN_CAPACITY`]. Arrays are allocated on first use, zeroed.
//! * A record's id doubles as its "occupied" mark: id 0 is an empty slot.
//!   Ids must be unique: inserting an id that is already present is a bug
//!   of the caller (the table stays consistent, but may then hold both).

mod archive;
mod shard;
mod slots;

use std::sync::OnceLock;

/// A shard's lock (see the module docs).
type Mutex<T> = spin::mutex::SpinMutex<T, spin::relax::Yield>;
type MutexGuard<'a, T> = spin::mutex::SpinMutexGuard<'a, T>;

use shard::Shard;
use slots::{empty, faulted_slots};

/// A record the table can hold.
///
/// # Safety
///
/// The all-zero bit pattern must be a valid value of the type, and it must
/// be the empty record (`id() == 0`): arrays are allocated zeroed.
pub(crate) unsafe trait Record: Copy + Send + 'static {
    /// The record's key; 0 means "empty slot", never a real id.
    fn id(&self) -> u64;
}

/// Archive arrays at least this big are allocated outside the shard lock.
const BIG: usize = 64 << 10;

/// A reader copying at least this many slots of one shard yields its core
/// before the next.
const YIELD_AFTER: usize = 16 << 10;

/// Smallest array a shard allocates (ring or archive).
pub(crate) const MIN_CAPACITY: usize = 64;

/// Largest ring a shard grows: with 16 shards, young records are those
/// among the last 64Ki ids; older ones live in the archive.
pub(crate) const RING_CAP: usize = 4096;

/// Number of shards for this machine: the next power of two ≥ 4 × available
/// parallelism, at least 16 and at most 1024.
pub(crate) fn default_shards() -> usize {
    static SHARDS: OnceLock<usize> = OnceLock::new();
    *SHARDS.get_or_init(|| {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        (cpus * 4).next_power_of_two().clamp(16, 1024)
    })
}

/// One shard on its own pair of cache lines (x86 prefetches lines in pairs).
#[repr(align(128))]
struct Padded<T>(T);

/// The table. All methods take `&self` and are safe to call from any thread.
pub(crate) struct Table<R: Record> {
    shards: Box<[Padded<Mutex<Shard<R>>>]>,
}

impl<R: Record> Default for Table<R> {
    fn default() -> Self {
        Self::new()
    }
}

impl<R: Record> Table<R> {
    /// A table with [`default_shards`] shards.
    pub(crate) fn new() -> Self {
        Self::with_shards(default_shards())
    }

    /// A table with `shards` shards (rounded up to a power of two).
    pub(crate) fn with_shards(shards: usize) -> Self {
        let n = shards.max(1).next_power_of_two();
        Table {
            shards: (0..n)
                .map(|_| Padded(Mutex::new(Shard::new(n.trailing_zeros()))))
                .collect(),
        }
    }

    #[inline]
    fn shard(&self, id: u64) -> &Mutex<Shard<R>> {
        let mask = (self.shards.len() - 1) as u64;
        &self.shards[(id & mask) as usize].0
    }

    /// Stores `record`. Its id must not be in the table already (task ids
    /// are unique); a record with id 0 is ignored.
    #[inline]
    pub(crate) fn insert(&self, record: R) {
        let id = record.id();
        if id == 0 {
            return;
        }
        let mut shard = self.shard(id).lock();
        if let Some(capacity) = shard.archive_resize_before_insert(id) {
            shard = self.resize_unlocked(id, shard, capacity);
        }
        shard.insert(record);
        let garbage = shard.take_garbage();
        drop(shard);
        drop(garbage);
    }

    /// Resizes the archive of `id`'s shard to `capacity` slots: the new
    /// array is allocated and its pages faulted in with the lock released,
    /// so other threads never wait for that (a few ms for a big array).
    #[cold]
    fn resize_unlocked<'a>(
        &'a self,
        id: u64,
        shard: MutexGuard<'a, Shard<R>>,
        capacity: usize,
    ) -> MutexGuard<'a, Shard<R>> {
        drop(shard);
        let fresh = faulted_slots::<R>(capacity);
        let mut shard = self.shard(id).lock();
        shard.adopt_archive(fresh);
        shard
    }

    /// Removes and returns the record with this id.
    #[inline]
    pub(crate) fn remove(&self, id: u64) -> Option<R> {
        if id == 0 {
            return None;
        }
        let mut shard = self.shard(id).lock();
        if let Some(capacity) = shard.archive_resize_before_remove(id) {
            shard = self.resize_unlocked(id, shard, capacity);
        }
        let removed = shard.remove(id);
        let garbage = shard.take_garbage();
        drop(shard);
        drop(garbage);
        removed
    }

    /// Runs `f` on the record with this id, under its shard's lock. `f`
    /// must not change the id.
    #[inline]
    pub(crate) fn with<T>(&self, id: u64, f: impl FnOnce(&mut R) -> T) -> Option<T> {
        if id == 0 {
            return None;
        }
        let mut shard = self.shard(id).lock();
        shard.find_mut(id).map(f)
    }

    /// A copy of the record with this id.
    pub(crate) fn get(&self, id: u64) -> Option<R> {
        self.with(id, |r| *r)
    }

    /// Number of records.
    pub(crate) fn len(&self) -> usize {
        self.shards.iter().map(|s| s.0.lock().len()).sum()
    }

    /// The highest id ever inserted (0 if none).
    pub(crate) fn max_id(&self) -> u64 {
        self.shards
            .iter()
            .map(|s| s.0.lock().max_id())
            .max()
            .unwrap_or(0)
    }

    /// Bytes of slot arrays currently allocated.
    pub(crate) fn allocated_bytes(&self) -> usize {
        let slots: usize = self.shards.iter().map(|s| s.0.lock().slots()).sum();
        slots * size_of::<R>()
    }

    /// Records that left the ring for the archive, now (for tests and
    /// benchmarks).
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) fn archived(&self) -> usize {
        self.shards.iter().map(|s| s.0.lock().archived()).sum()
    }

    /// Calls `visit` on a copy of every record whose id is above `floor`
    /// (0: every record), one shard at a time. Each shard's lock is held
    /// only while its arrays are copied (one `memcpy` into a scratch buffer
    /// faulted in beforehand; a shard whose archive never held an id above
    /// `floor` copies only its ring); `visit` runs after the lock is
    /// released. Records inserted or removed during the call may or may
    /// not be visited; none is visited twice.
    pub(crate) fn visit(&self, floor: u64, mut visit: impl FnMut(&R)) {
        let mut scratch: Vec<R> = Vec::new();
        for shard in self.shards.iter() {
            let copied = loop {
                let want = shard.0.lock().copy_len(floor);
                // Room for a grow in between, written now so that no page
                // fault happens under the lock.
                let want = want + want / 2;
                if scratch.len() < want {
                    scratch = vec![empty(); want];
                }
                // `None`: it grew past the estimate; measure again.
                if let Some(n) = shard.0.lock().copy_to(floor, &mut scratch) {
                    break n;
                }
            };
            scratch[..copied]
                .iter()
                .filter(|r| r.id() > floor)
                .for_each(&mut visit);
            if copied >= YIELD_AFTER {
                // a long read gives the core back between shards, so a
                // runtime worker waiting for it is not held up for the
                // whole read (it matters when cores are few)
                std::thread::yield_now();
            }
        }
    }

    /// A copy of every record (see [`Table::visit`]), unordered.
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) fn records(&self) -> Vec<R> {
        let mut out = Vec::new();
        self.visit(0, |r| out.push(*r));
        out
    }
}

#[cfg(test)]
mod tests;
