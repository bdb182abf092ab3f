//! Spawns nothing of leakcheck's saw: the tasks a test spawned while a
//! tracing subscriber of its own without leakcheck's layer was the
//! thread's default (`set_default`, `with_default`).
//!
//! Such a subscriber hides tokio's task span from the tee, so the task is
//! in no table. On the test's own runtime tokio's live-task count still
//! shows it (see `spans::unseen_on`); on a `LocalSet` or another runtime
//! nothing counts it. But tokio numbers every task it makes from one
//! process-wide counter, spans or not, so a task id the tee never saw is a
//! spawn it missed. That is what this module counts:
//!
//! - the tee hears of every dispatcher built (tracing calls its
//!   `max_level_hint`): [`dispatcher_built`] notes which test built it,
//!   where, and the highest task id seen so far (the test's *floor*);
//! - from the first such build on, the tee marks each task id it sees
//!   ([`seen_spawn`]), and every task end is counted (a check's
//!   `tasks::Waiting`, held for good);
//! - a check of a test that built a dispatcher counts the ids above its
//!   floor that the tee never saw and no table holds ([`hidden`]), less the
//!   tasks that a leakcheck layer in someone's own subscriber saw and that
//!   ended since (task ends the tee did not close itself).
//!
//! What is left was spawned where nothing of leakcheck's looked: alive or
//! not, leakcheck cannot tell, so the check fails and says so. A test
//! never building a dispatcher pays nothing for this; after the first
//! build, a spawn costs one more atomic bit set.

use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, Ordering::*};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::chain::ChainId;
use crate::layer::tasks;
use crate::owner::Owner;

/// Set at the first dispatcher built after the tee: from then on the tee
/// marks the task ids it sees.
static TRACKING: AtomicBool = AtomicBool::new(false);
/// The highest task id the tee has seen spawn.
static MAX_SEEN: AtomicU64 = AtomicU64::new(0);
/// Task spans the tee closed while tracking.
static TEE_CLOSES: AtomicU64 = AtomicU64::new(0);

/// A dispatcher a test built.
struct Build {
    owner: u64,
    chain: ChainId,
    /// Every task id above this was made after the build began.
    floor: u64,
    /// [`foreign_ends`] when it was built.
    foreign_ends: u64,
}

static BUILDS: Mutex<Vec<Build>> = Mutex::new(Vec::new());

/// A dispatcher other than the tee is being built on this thread, by the
/// test `owner` (if the thread has one).
pub(super) fn dispatcher_built(owner: Option<Arc<Owner>>) {
    if !TRACKING.swap(true, SeqCst) {
        // every task end from now on bumps `tasks::ended_sync`'s counter
        std::mem::forget(tasks::Waiting::new());
    }
    let Some(owner) = owner else {
        return;
    };
    let build = Build {
        owner: owner.id,
        chain: crate::chain::capture(),
        // read after `TRACKING` is set: a spawn that found it unset has an
        // id at most this (both are `SeqCst`)
        floor: MAX_SEEN.load(SeqCst),
        foreign_ends: foreign_ends(),
    };
    BUILDS.lock().push(build);
}

/// The tee saw task `id` spawn.
#[inline]
pub(super) fn seen_spawn(id: u64) {
    MAX_SEEN.fetch_max(id, SeqCst);
    if TRACKING.load(SeqCst) {
        mark(id);
    }
}

/// Whether the tee is counting the task spans it closes.
#[inline]
pub(super) fn counting_closes() -> bool {
    TRACKING.load(Relaxed)
}

/// The tee closed one of its task spans (while [`counting_closes`]).
pub(super) fn tee_closed_task() {
    TEE_CLOSES.fetch_add(1, SeqCst);
}

/// Task ends that the tee did not close itself: tasks a leakcheck layer in
/// a user's own subscriber saw. Counted only since tracking began.
fn foreign_ends() -> u64 {
    let ends = *tasks::ended_sync().0.lock();
    ends.saturating_sub(TEE_CLOSES.load(SeqCst))
}

/// Whether the test `owner` built a dispatcher.
pub(crate) fn built_by(owner: u64) -> bool {
    TRACKING.load(Relaxed) && BUILDS.lock().iter().any(|b| b.owner == owner)
}

/// The highest task id the tee has seen.
pub(crate) fn max_seen() -> u64 {
    MAX_SEEN.load(SeqCst)
}

/// Spawns the test `owner` may have hidden: task ids above its first
/// build and below `below` that nothing of leakcheck's saw.
#[derive(Debug, Default)]
pub(crate) struct Hidden {
    pub(crate) count: usize,
    /// Where the test built its dispatchers, as call chains.
    pub(crate) built_at: Vec<ChainId>,
}

/// What the test `owner` hid (see the module docs), counting task ids
/// below `below`; `None` if it built no dispatcher.
pub(crate) fn hidden(owner: u64, below: u64) -> Option<Hidden> {
    if !TRACKING.load(Relaxed) {
        return None;
    }
    let (floor, ends_then, built_at) = {
        let builds = BUILDS.lock();
        let mine: Vec<&Build> = builds.iter().filter(|b| b.owner == owner).collect();
        let first = mine.iter().min_by_key(|b| b.floor)?;
        let mut chains: Vec<ChainId> = mine.iter().map(|b| b.chain).collect();
        chains.dedup();
        (first.floor, first.foreign_ends, chains)
    };
    let mut unseen = 0usize;
    for_each_unmarked(floor + 1, below, |id| {
        if tasks::lookup(id).is_none() {
            unseen += 1;
        }
    });
    let foreign = foreign_ends().saturating_sub(ends_then);
    let count = unseen.saturating_sub(usize::try_from(foreign).unwrap_or(usize::MAX));
    Some(Hidden { count, built_at })
}

// ── the task ids the tee saw, one bit each ─────────────────────────────────

/// Ids per chunk (8 KiB of bits).
const CHUNK: u64 = 1 << 16;
const WORDS: usize = (CHUNK / 64) as usize;
/// Chunks at most: 2^30 task ids. Past that nothing is marked, and an id
/// up there counts as seen (never as hidden).
const CHUNKS: usize = 1 << 14;

type Chunk = [AtomicU64; WORDS];

static MARKS: [AtomicPtr<Chunk>; CHUNKS] = [const { AtomicPtr::new(std::ptr::null_mut()) }; CHUNKS];

fn chunk(index: usize, make: bool) -> Option<&'static Chunk> {
    let slot = MARKS.get(index)?;
    let mut ptr = slot.load(Acquire);
    if ptr.is_null() {
        if !make {
            return None;
        }
        let fresh = Box::into_raw(Box::new([const { AtomicU64::new(0) }; WORDS]));
        ptr = match slot.compare_exchange(std::ptr::null_mut(), fresh, AcqRel, Acquire) {
            Ok(_) => fresh,
            Err(theirs) => {
                // SAFETY: `fresh` was never shared.
                drop(unsafe { Box::from_raw(fresh) });
                theirs
            }
        };
    }
    // SAFETY: chunks are never freed once published.
    Some(unsafe { &*ptr })
}

fn mark(id: u64) {
    let Ok(index) = usize::try_from(id / CHUNK) else {
        return;
    };
    if let Some(chunk) = chunk(index, true) {
        let bit = id % CHUNK;
        chunk[(bit / 64) as usize].fetch_or(1 << (bit % 64), SeqCst);
    }
}

/// Calls `f` with every id in `from..below` the tee did not mark.
fn for_each_unmarked(from: u64, below: u64, mut f: impl FnMut(u64)) {
    let mut id = from;
    while id < below {
        let index = usize::try_from(id / CHUNK).unwrap_or(usize::MAX);
        if index >= CHUNKS {
            return; // not tracked: counts as seen
        }
        let chunk_end = ((id / CHUNK) + 1) * CHUNK;
        let end = below.min(chunk_end);
        match chunk(index, false) {
            None => (id..end).for_each(&mut f),
            Some(chunk) => {
                while id < end {
                    let bit = id % CHUNK;
                    let word = chunk[(bit / 64) as usize].load(SeqCst);
                    let word_end = end.min(id - bit % 64 + 64);
                    let mut unmarked = !word >> (bit % 64);
                    let mut at = id;
                    while at < word_end && unmarked != 0 {
                        let skip = u64::from(unmarked.trailing_zeros());
                        at += skip;
                        if at >= word_end {
                            break;
                        }
                        f(at);
                        at += 1;
                        unmarked = unmarked.checked_shr(skip as u32 + 1).unwrap_or(0);
                    }
                    id = word_end;
                }
            }
        }
        id = end;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unmarked_ids_are_found_across_words_and_chunks() {
        // a range no real task id reaches in a unit test
        let base = 5 * CHUNK - 70;
        for id in base..base + 200 {
            if id % 7 != 0 {
                mark(id);
            }
        }
        let mut found = Vec::new();
        for_each_unmarked(base, base + 200, |id| found.push(id));
        let expected: Vec<u64> = (base..base + 200).filter(|id| id % 7 == 0).collect();
        assert_eq!(found, expected);
        let mut none = Vec::new();
        for_each_unmarked(9 * CHUNK, 9 * CHUNK + 3, |id| none.push(id));
        assert_eq!(
            none,
            [9 * CHUNK, 9 * CHUNK + 1, 9 * CHUNK + 2],
            "an empty chunk"
        );
    }
}
