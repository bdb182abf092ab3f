//! What the hooks record per live task: one compact layout per capture
//! level, kept in the sharded [`Table`](crate::table::Table).
//!
//! | level | layout | bytes |
//! |---|---|---:|
//! | spawn sites | [`SiteRecord`]: id, parent, site, spawned | 24 |
//! | polls, call chains | [`PollRecord`]: + parent's site, chain, poll edges, last poll start/end, busy | 48 |
//!
//! Spawn sites are interned to `u32` indices (`site::index`), times are
//! [`Clock`](crate::clock::Clock) units. The hooks are generic over the
//! [`Layout`], so each level's hooks are compiled for its record and pay
//! only for the fields it has. Readers see every record as a
//! [`PollRecord`]; the 24-byte layout has no room for the parent's site,
//! so at that level an ended parent is named without one.

use crate::table::Record;

/// Who spawned a task, as stored in a record: a task id, or one of these.
pub(crate) mod parent {
    /// Spawned outside any task of this runtime, not from the test body.
    pub(crate) const OUTSIDE: u64 = 0;
    /// Spawned by the `#[leakcheck::test]` body itself.
    pub(crate) const TEST_BODY: u64 = u64::MAX;
}

/// What the spawn hook knows about a new task.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Spawn {
    pub(crate) id: u64,
    pub(crate) parent: u64,
    pub(crate) site: u32,
    /// The parent's spawn site (0 if the parent is not a task).
    pub(crate) parent_site: u32,
    pub(crate) chain: u32,
    pub(crate) spawned: u32,
}

/// A record layout: what one capture level keeps per live task.
pub(crate) trait Layout: Record + std::fmt::Debug + Sync {
    fn new(spawn: &Spawn) -> Self;
    fn site(&self) -> u32;
    /// Called by the before-poll hook (only installed for layouts with poll
    /// fields).
    fn poll_started(&mut self, now: u32);
    /// Called by the after-poll hook.
    fn poll_ended(&mut self, now: u32);
    /// The record in the widest layout, for readers.
    fn widen(&self) -> PollRecord;
}

/// The `SpawnSites` record: 24 bytes.
#[derive(Debug, Clone, Copy, Default)]
#[repr(C)]
pub(crate) struct SiteRecord {
    id: u64,
    parent: u64,
    site: u32,
    spawned: u32,
}

// SAFETY: plain integers; all-zero is the empty record (id 0).
unsafe impl Record for SiteRecord {
    #[inline]
    fn id(&self) -> u64 {
        self.id
    }
}

impl Layout for SiteRecord {
    #[inline]
    fn new(s: &Spawn) -> Self {
        SiteRecord {
            id: s.id,
            parent: s.parent,
            site: s.site,
            spawned: s.spawned,
        }
    }

    #[inline]
    fn site(&self) -> u32 {
        self.site
    }

    fn poll_started(&mut self, _: u32) {}

    fn poll_ended(&mut self, _: u32) {}

    #[inline]
    fn widen(&self) -> PollRecord {
        PollRecord {
            id: self.id,
            parent: self.parent,
            site: self.site,
            spawned: self.spawned,
            ..PollRecord::default()
        }
    }
}

/// The `Polls` and `CallChains` record: 48 bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[repr(C)]
pub(crate) struct PollRecord {
    pub(crate) id: u64,
    pub(crate) parent: u64,
    pub(crate) site: u32,
    pub(crate) spawned: u32,
    /// The parent's spawn site, kept so an ended parent can still be named.
    pub(crate) parent_site: u32,
    pub(crate) chain: u32,
    /// Poll hook calls: odd while a poll runs; polls = ⌈edges / 2⌉. Wraps
    /// after 2^32 edges (parity, and so running/idle, stays right).
    pub(crate) poll_edges: u32,
    pub(crate) poll_started: u32,
    pub(crate) poll_ended: u32,
    /// Clock units spent inside polls (saturating).
    pub(crate) busy: u32,
}

// SAFETY: plain integers; all-zero is the empty record (id 0).
unsafe impl Record for PollRecord {
    #[inline]
    fn id(&self) -> u64 {
        self.id
    }
}

impl Layout for PollRecord {
    #[inline]
    fn new(s: &Spawn) -> Self {
        PollRecord {
            id: s.id,
            parent: s.parent,
            site: s.site,
            spawned: s.spawned,
            parent_site: s.parent_site,
            chain: s.chain,
            ..PollRecord::default()
        }
    }

    #[inline]
    fn site(&self) -> u32 {
        self.site
    }

    #[inline]
    fn poll_started(&mut self, now: u32) {
        self.poll_started = now;
        self.poll_edges = self.poll_edges.wrapping_add(1);
    }

    #[inline]
    fn poll_ended(&mut self, now: u32) {
        let spent = now.wrapping_sub(self.poll_started);
        self.busy = self.busy.saturating_add(spent);
        self.poll_ended = now;
        self.poll_edges = self.poll_edges.wrapping_add(1);
    }

    #[inline]
    fn widen(&self) -> PollRecord {
        *self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_are_compact() {
        assert_eq!(size_of::<SiteRecord>(), 24);
        assert_eq!(size_of::<PollRecord>(), 48);
    }

    #[test]
    fn poll_edges_track_running_and_busy() {
        let mut r = PollRecord::new(&Spawn {
            id: 3,
            parent: parent::OUTSIDE,
            site: 1,
            parent_site: 0,
            chain: 0,
            spawned: 0,
        });
        r.poll_started(10);
        assert_eq!(r.poll_edges, 1, "running");
        r.poll_ended(25);
        assert_eq!((r.poll_edges, r.busy, r.poll_ended), (2, 15, 25));
        // Across the clock's wrap.
        r.poll_started(u32::MAX - 1);
        r.poll_ended(3);
        assert_eq!(r.busy, 20);
    }

    #[test]
    fn the_narrow_layout_widens_without_parent_site() {
        let spawn = Spawn {
            id: 9,
            parent: 4,
            site: 2,
            parent_site: 7,
            chain: 5,
            spawned: 11,
        };
        let wide = SiteRecord::new(&spawn).widen();
        assert_eq!(
            (wide.id, wide.parent, wide.site, wide.spawned),
            (9, 4, 2, 11)
        );
        assert_eq!((wide.parent_site, wide.chain, wide.poll_edges), (0, 0, 0));
    }
}
