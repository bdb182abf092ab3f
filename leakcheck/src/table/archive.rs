//! The archive of a shard: records that outlived a lap of its ring, in
//! open addressing with linear probing over a multiplicative hash of the
//! local id, and backward-shift deletion (no tombstones).

use super::slots::{empty, empty_slots};
use super::{Record, MIN_CAPACITY};

/// Open addressing with linear probing over a multiplicative hash of the
/// local id; backward-shift deletion.
pub(super) struct Archive<R: Record> {
    /// 0 or a power of two ≥ [`MIN_CAPACITY`] slots.
    pub(super) slots: Box<[R]>,
    pub(super) len: usize,
    /// The highest id ever inserted (records only leave the ring for the
    /// archive, so readers after newer ids can often skip it).
    pub(super) max_id: u64,
    /// 64 − log2(slots.len()).
    hash_shift: u32,
    /// log2 of the shard count.
    shift: u32,
    /// The array before the last resize, to free after the lock is
    /// released.
    pub(super) garbage: Option<Box<[R]>>,
}

impl<R: Record> Archive<R> {
    pub(super) fn new(shift: u32) -> Self {
        Archive {
            slots: Box::new([]),
            len: 0,
            max_id: 0,
            hash_shift: 64,
            shift,
            garbage: None,
        }
    }

    /// The capacity the array will have after `delta` (±1) more records,
    /// if that makes it grow (above 7/8 load) or shrink (below 1/8).
    #[inline]
    pub(super) fn resized(&self, delta: isize) -> Option<usize> {
        let cap = self.slots.len();
        let len = self.len.checked_add_signed(delta)?;
        if len * 8 > cap * 7 {
            Some((cap * 2).max(MIN_CAPACITY))
        } else if len * 8 < cap && cap > MIN_CAPACITY {
            Some(cap / 2)
        } else {
            None
        }
    }

    /// Moves every record into `fresh` (an empty array, a power of two
    /// ≥ MIN_CAPACITY), unless the records do not fit it at ≤ 7/8 load or it
    /// is the current size (another thread resized first).
    pub(super) fn adopt(&mut self, fresh: Box<[R]>) {
        if fresh.len() == self.slots.len() || self.len * 8 > fresh.len() * 7 {
            self.garbage = Some(fresh);
            return;
        }
        let old = std::mem::replace(&mut self.slots, fresh);
        self.hash_shift = 64 - self.slots.len().trailing_zeros();
        for r in old.iter().filter(|r| r.id() != 0) {
            self.place(*r);
        }
        self.garbage = Some(old);
    }

    #[inline]
    fn mask(&self) -> usize {
        self.slots.len().wrapping_sub(1)
    }

    /// Fibonacci hashing of the local id: the top bits of `local × 2^64/φ`.
    #[inline]
    pub(super) fn home(&self, id: u64) -> usize {
        ((id >> self.shift).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> self.hash_shift) as usize
    }

    #[inline]
    pub(super) fn find(&self, id: u64) -> Option<usize> {
        if self.len == 0 {
            return None;
        }
        let mask = self.mask();
        let mut i = self.home(id);
        loop {
            let here = self.slots[i].id();
            if here == id {
                return Some(i);
            }
            if here == 0 {
                return None;
            }
            i = (i + 1) & mask;
        }
    }

    pub(super) fn insert(&mut self, record: R) {
        self.max_id = self.max_id.max(record.id());
        if let Some(capacity) = self.resized(1) {
            self.resize(capacity);
        }
        self.place(record);
        self.len += 1;
    }

    /// Puts `record` in the first empty slot from its home.
    fn place(&mut self, record: R) {
        let mask = self.mask();
        let mut i = self.home(record.id());
        while self.slots[i].id() != 0 {
            i = (i + 1) & mask;
        }
        self.slots[i] = record;
    }

    pub(super) fn remove_at(&mut self, i: usize) -> R {
        let removed = self.slots[i];
        self.delete_at(i);
        self.len -= 1;
        if self.len * 8 < self.slots.len() && self.slots.len() > MIN_CAPACITY {
            self.resize(self.slots.len() / 2);
        }
        removed
    }

    /// Empties slot `hole`, shifting later records of its probe run back so
    /// every record stays reachable from its home without tombstones.
    fn delete_at(&mut self, mut hole: usize) {
        let mask = self.mask();
        let mut j = (hole + 1) & mask;
        loop {
            let r = self.slots[j];
            if r.id() == 0 {
                break;
            }
            // `r` may move back to `hole` if `hole` lies on its probe path,
            // i.e. its home is not in the cyclic range (hole, j].
            let from_home = j.wrapping_sub(self.home(r.id())) & mask;
            let from_hole = j.wrapping_sub(hole) & mask;
            if from_home >= from_hole {
                self.slots[hole] = r;
                hole = j;
            }
            j = (j + 1) & mask;
        }
        self.slots[hole] = empty();
    }

    /// Moves every record into a new array of `capacity` slots.
    #[cold]
    pub(super) fn resize(&mut self, capacity: usize) {
        self.adopt(empty_slots(capacity));
    }
}
