//! One shard of the [`Table`](super::Table): a direct-mapped ring of
//! young records and a hashed [`Archive`] of old ones.

use super::archive::Archive;
use super::slots::{empty, empty_slots};
use super::{Record, BIG, MIN_CAPACITY, RING_CAP};

/// One shard: a ring of young records and an archive of old ones.
pub(super) struct Shard<R: Record> {
    /// Direct-mapped by local id; 0 or a power of two ≤ [`RING_CAP`] slots.
    ring: Box<[R]>,
    ring_len: usize,
    /// Most records in the ring since it was last resized or reviewed.
    ring_peak: usize,
    /// Removes (from either array) since the ring was last reviewed.
    removes: usize,
    archive: Archive<R>,
    max_id: u64,
    /// log2 of the shard count: a record's local id is `id >> shift`.
    shift: u32,
    /// An array replaced by a resize, to be freed after the lock is
    /// released (freeing a big one unmaps memory).
    garbage: Option<Box<[R]>>,
}

/// Where a record is.
enum At {
    Ring(usize),
    Archive(usize),
}

impl<R: Record> Shard<R> {
    pub(super) fn new(shift: u32) -> Self {
        Shard {
            ring: Box::new([]),
            ring_len: 0,
            ring_peak: 0,
            removes: 0,
            archive: Archive::new(shift),
            max_id: 0,
            shift,
            garbage: None,
        }
    }

    pub(super) fn len(&self) -> usize {
        self.ring_len + self.archive.len
    }

    pub(super) fn max_id(&self) -> u64 {
        self.max_id
    }

    /// Slots allocated, both arrays.
    pub(super) fn slots(&self) -> usize {
        self.ring.len() + self.archive.slots.len()
    }

    /// Records in the archive.
    pub(super) fn archived(&self) -> usize {
        self.archive.len
    }

    /// Whether the archive may hold a record with an id above `floor`.
    fn archive_above(&self, floor: u64) -> bool {
        self.archive.max_id > floor
    }

    /// Slots [`Shard::copy_to`] copies for `floor`.
    pub(super) fn copy_len(&self, floor: u64) -> usize {
        match self.archive_above(floor) {
            true => self.slots(),
            false => self.ring.len(),
        }
    }

    /// Copies the ring, and the archive if it may hold ids above `floor`,
    /// slot for slot (empty ones too) to the front of `dst`: the number of
    /// slots copied, or `None` if `dst` is too short.
    pub(super) fn copy_to(&self, floor: u64, dst: &mut [R]) -> Option<usize> {
        let ring = &self.ring[..];
        let archive: &[R] = match self.archive_above(floor) {
            true => &self.archive.slots,
            false => &[],
        };
        let n = ring.len() + archive.len();
        if n > dst.len() {
            return None;
        }
        dst[..ring.len()].copy_from_slice(ring);
        dst[ring.len()..n].copy_from_slice(archive);
        Some(n)
    }

    /// Moves the archive into `fresh`, allocated outside the lock.
    pub(super) fn adopt_archive(&mut self, fresh: Box<[R]>) {
        self.archive.adopt(fresh);
    }

    #[inline]
    fn ring_slot(&self, local: u64) -> usize {
        local as usize & self.ring.len().wrapping_sub(1)
    }

    #[inline]
    fn find(&self, id: u64) -> Option<At> {
        let local = id >> self.shift;
        if !self.ring.is_empty() {
            let i = self.ring_slot(local);
            if self.ring[i].id() == id {
                return Some(At::Ring(i));
            }
        }
        self.archive.find(id).map(At::Archive)
    }

    #[inline]
    pub(super) fn find_mut(&mut self, id: u64) -> Option<&mut R> {
        match self.find(id)? {
            At::Ring(i) => Some(&mut self.ring[i]),
            At::Archive(i) => Some(&mut self.archive.slots[i]),
        }
    }

    /// The archive capacity to allocate before inserting `id`, if that
    /// insert will move a record into the archive and make it grow, and
    /// the new array is big.
    #[inline]
    pub(super) fn archive_resize_before_insert(&self, id: u64) -> Option<usize> {
        let capacity = self.archive.resized(1)?;
        let resident = self.ring.get(self.ring_slot(id >> self.shift))?.id();
        (resident != 0 && capacity * size_of::<R>() >= BIG).then_some(capacity)
    }

    /// The archive capacity to allocate before removing `id`, if `id` is in
    /// the archive, the archive will shrink, and the new array is big.
    #[inline]
    pub(super) fn archive_resize_before_remove(&self, id: u64) -> Option<usize> {
        let capacity = self.archive.resized(-1)?;
        let in_archive = matches!(self.find(id), Some(At::Archive(_)));
        (in_archive && capacity * size_of::<R>() >= BIG).then_some(capacity)
    }

    /// Arrays replaced by resizes, to free after the lock is released.
    #[inline]
    pub(super) fn take_garbage(&mut self) -> Option<[Option<Box<[R]>>; 2]> {
        if self.garbage.is_none() && self.archive.garbage.is_none() {
            return None;
        }
        Some([self.garbage.take(), self.archive.garbage.take()])
    }

    #[inline]
    pub(super) fn insert(&mut self, record: R) {
        let id = record.id();
        let local = id >> self.shift;
        self.max_id = self.max_id.max(id);
        if self.ring.is_empty() {
            self.ring = empty_slots(MIN_CAPACITY);
        }
        let i = self.ring_slot(local);
        let resident = self.ring[i];
        if resident.id() == 0 {
            self.ring[i] = record;
            self.ring_len += 1;
            self.ring_peak = self.ring_peak.max(self.ring_len);
            if self.ring_len * 8 > self.ring.len() * 7 && self.ring.len() < RING_CAP {
                self.resize_ring(self.ring.len() * 2);
            }
        } else if resident.id() < id {
            // The resident is at least a lap older: it moves out for good.
            self.ring[i] = record;
            self.archive.insert(resident);
        } else {
            // An older id arriving after a lap-newer one (spawn hooks racing
            // across threads): it goes straight to the archive.
            self.archive.insert(record);
        }
    }

    #[inline]
    pub(super) fn remove(&mut self, id: u64) -> Option<R> {
        let removed = match self.find(id)? {
            At::Ring(i) => {
                let removed = self.ring[i];
                self.ring[i] = empty();
                self.ring_len -= 1;
                removed
            }
            At::Archive(i) => self.archive.remove_at(i),
        };
        self.removes += 1;
        if self.removes >= self.ring.len()
            || (self.len() == 0 && self.ring.len() > 4 * MIN_CAPACITY)
        {
            self.review_ring();
        }
        Some(removed)
    }

    /// After as many removes as the ring has slots: shrink the ring if it
    /// stayed under 1/4 full all along, so its size follows the young
    /// population (and a resize is paid for by that many operations).
    #[cold]
    fn review_ring(&mut self) {
        let size = self.ring.len();
        if self.len() == 0 && size > 4 * MIN_CAPACITY {
            // Empty after a burst: nothing to move.
            self.garbage = Some(std::mem::replace(&mut self.ring, empty_slots(MIN_CAPACITY)));
        } else if size > MIN_CAPACITY && self.ring_peak < size / 4 {
            let want = (self.ring_peak * 2).next_power_of_two().max(MIN_CAPACITY);
            self.resize_ring(want.min(size / 2));
        }
        self.removes = 0;
        self.ring_peak = self.ring_len;
    }

    /// Moves the ring's records into a ring of `size` slots. When shrinking,
    /// of two records wanting one slot the older goes to the archive.
    #[cold]
    fn resize_ring(&mut self, size: usize) {
        let old = std::mem::replace(&mut self.ring, empty_slots(size));
        self.ring_len = 0;
        for r in old.iter().filter(|r| r.id() != 0) {
            let local = r.id() >> self.shift;
            let i = self.ring_slot(local);
            let resident = self.ring[i];
            if resident.id() == 0 {
                self.ring[i] = *r;
                self.ring_len += 1;
            } else if resident.id() < r.id() {
                self.ring[i] = *r;
                self.archive.insert(resident);
            } else {
                self.archive.insert(*r);
            }
        }
        self.garbage = Some(old);
        self.ring_peak = self.ring_len;
        self.removes = 0;
    }
}
