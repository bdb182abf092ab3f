//! One tracker's live-task [`Table`], in the record layout of its capture
//! level, as readers see it: every record widened to a [`PollRecord`].

use std::sync::Arc;

use crate::capture::Capture;
use crate::record::{Layout, PollRecord, SiteRecord};
use crate::table::Table;

/// The table, in the layout of the capture level (the hooks hold the
/// `Arc<Table<_>>` of their layout directly).
pub(crate) enum Live {
    /// `Capture::SpawnSites`: 24-byte records.
    Sites(Arc<Table<SiteRecord>>),
    /// `Capture::Polls` and `CallChains`: 48-byte records.
    Polls(Arc<Table<PollRecord>>),
}

impl Live {
    pub(crate) fn new(capture: Capture) -> Live {
        match capture.polls() {
            true => Live::Polls(Arc::default()),
            false => Live::Sites(Arc::default()),
        }
    }

    pub(crate) fn len(&self) -> usize {
        match self {
            Live::Sites(t) => t.len(),
            Live::Polls(t) => t.len(),
        }
    }

    /// The highest task id ever recorded.
    pub(crate) fn max_id(&self) -> u64 {
        match self {
            Live::Sites(t) => t.max_id(),
            Live::Polls(t) => t.max_id(),
        }
    }

    /// Bytes of slot arrays the table holds now.
    pub(crate) fn allocated_bytes(&self) -> usize {
        match self {
            Live::Sites(t) => t.allocated_bytes(),
            Live::Polls(t) => t.allocated_bytes(),
        }
    }

    /// The record of task `id`, if it is alive.
    pub(crate) fn get(&self, id: u64) -> Option<PollRecord> {
        match self {
            Live::Sites(t) => t.get(id).map(|r| r.widen()),
            Live::Polls(t) => t.get(id),
        }
    }

    /// Calls `visit` on a copy of every record with an id above `floor`
    /// (see [`Table::visit`]), unordered.
    pub(crate) fn visit(&self, floor: u64, mut visit: impl FnMut(PollRecord)) {
        match self {
            Live::Sites(t) => t.visit(floor, |r| visit(r.widen())),
            Live::Polls(t) => t.visit(floor, |r| visit(*r)),
        }
    }

    /// The `limit` records with the lowest ids, sorted by id: one pass
    /// over the table that keeps at most `2 * limit` records at a time.
    #[cfg_attr(not(feature = "endpoint"), allow(dead_code))]
    pub(crate) fn lowest(&self, limit: usize) -> Vec<PollRecord> {
        if limit == 0 {
            return Vec::new();
        }
        let mut kept: Vec<PollRecord> = Vec::with_capacity(2 * limit.min(self.len()));
        // ids at or above this are not among the lowest `limit`
        let mut ceiling = u64::MAX;
        self.visit(0, |r| {
            if r.id >= ceiling {
                return;
            }
            kept.push(r);
            if kept.len() == 2 * limit {
                kept.select_nth_unstable_by_key(limit, |r| r.id);
                ceiling = kept[limit].id;
                kept.truncate(limit);
            }
        });
        kept.sort_unstable_by_key(|r| r.id);
        kept.truncate(limit);
        kept
    }

    /// The records [`Live::visit`] sees, sorted by id (the records are
    /// small; sorting them is cheap next to sorting what is built from them).
    pub(crate) fn sorted(&self, floor: u64) -> Vec<PollRecord> {
        let mut records = Vec::new();
        if floor == 0 {
            records.reserve(self.len() + self.len() / 16);
        }
        self.visit(floor, |r| records.push(r));
        records.sort_unstable_by_key(|r| r.id);
        records
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lowest_keeps_the_lowest_ids_in_order() {
        let live = Live::new(Capture::Polls);
        let Live::Polls(table) = &live else {
            unreachable!()
        };
        // out of order, and more than twice the limit, so it prunes
        for id in (1..=100u64).rev().chain(200..=300) {
            table.insert(PollRecord {
                id,
                ..PollRecord::default()
            });
        }
        let ids = |limit| -> Vec<u64> { live.lowest(limit).iter().map(|r| r.id).collect() };
        assert_eq!(ids(7), (1..=7).collect::<Vec<_>>());
        assert_eq!(ids(1), [1]);
        assert!(ids(0).is_empty());
        assert_eq!(ids(1000), (1..=100).chain(200..=300).collect::<Vec<_>>());
    }
}
