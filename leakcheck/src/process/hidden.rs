//! Spawns nothing of leakcheck's saw: the tasks spawned while a tracing
//! subscriber without leakcheck's layer was a thread's default
//! (`set_default`, `with_default`).
//!
//! Such a subscriber hides tokio's task span from the tee, so the task is
//! in no table. On the checking test's own runtime tokio's live-task count
//! still shows it (`spans::unseen_on`); on a `LocalSet` or another runtime
//! nothing counts it. But tokio numbers every task it makes (and every
//! `block_on`, every `spawn_blocking`, every runtime worker) from one
//! process-wide counter, spans or not, so a task id nothing of leakcheck's
//! saw went by out of sight. This module keeps the evidence:
//!
//! - the tee hears of every dispatcher built (tracing then calls its
//!   `max_level_hint`): [`dispatcher_built`] notes which test built it,
//!   where, on which thread, and the highest task id seen so far (its
//!   *floor*). Builds with the same test, call chain and thread are one
//!   entry, so a `with_default` in a loop keeps one. A build that became
//!   the global default is dropped (it hides nothing) when the tee can tell
//!   which one it was: the only build made before the global was found;
//! - from the first build on, the task ids leakcheck saw are marked, one
//!   bit each: the tee's at spawn ([`seen_spawn`]), those a leakcheck layer
//!   in a user's own subscriber saw when they end (the layer's close hook;
//!   alive, they are in its table);
//! - a check ([`hidden`]) counts the ids above the floor of its test's
//!   first build, and below a fresh id it takes itself ([`fresh_id`]), that
//!   are neither marked nor in the table.
//!
//! Those ids are evidence against the test only when nothing else can
//! explain them: no other test built a dispatcher since the test's first
//! build, and no thread that built one for another test earlier still ran
//! then (its scoped default may still have been set). Otherwise
//! `Hidden::others_built` says the evidence is shared, and the check only
//! mentions it. Not detected: a dispatcher built once and made the default
//! later on another thread (`dispatcher::with_default(&shared, ..)` with a
//! `Dispatch` kept in a static) hides spawns without a build to point at.
//! And tracing asks every dispatcher's `max_level_hint` again whenever
//! interest is rebuilt (a `tracing_subscriber::reload::Handle` reloading a
//! filter, say), which the tee cannot tell from a build: a reload counts as
//! one, by the test it runs in. It hides nothing, but it makes other tests'
//! evidence shared from then on (a reload outside any test, for good).
//!
//! Only with `--cfg tokio_unstable`: without it tokio emits no task spans,
//! leakcheck sees no spawn, and a check's evidence is tokio's live-task
//! count alone, so builds are not tracked at all.
//!
//! Cost: before the first build, a spawn the tee sees costs one relaxed
//! atomic max (the first build's floor); after it, one relaxed load and one
//! atomic bit set instead, and a task end one relaxed load (plus a bit set
//! for a task only a user's subscriber saw). A build costs a call-chain
//! capture and a lock.

use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering::*};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::chain::ChainId;
use crate::layer::tasks;
use crate::owner::Owner;
use crate::spans::Hidden;

/// Set at the first dispatcher built after the tee: from then on the task
/// ids leakcheck sees are marked.
static TRACKING: AtomicBool = AtomicBool::new(false);
/// The highest task id the tee saw spawn without marking it (before
/// tracking began, or racing with its start).
static SEEN_BEFORE: AtomicU64 = AtomicU64::new(0);
/// Dispatchers built so far (each build's number is the count with it).
static SEQ: AtomicU64 = AtomicU64::new(0);
/// Entries kept at most; past this, every check's evidence counts as
/// shared.
const MAX_BUILDS: usize = 4096;
/// Candidates for the global default kept at most.
const MAX_CANDIDATES: usize = 2;

/// Whether the thread a dispatcher was built on still runs: a scoped
/// default is a thread's own, so it can hide spawns only until then.
struct Runs {
    /// `u64::MAX` while the thread runs; after, [`SEQ`] as it ended.
    ended_at: AtomicU64,
}

/// This thread's [`Runs`]; dropping it (the thread's TLS teardown) ends it.
struct Here(Arc<Runs>);

impl Drop for Here {
    fn drop(&mut self) {
        self.0.ended_at.store(SEQ.load(SeqCst), SeqCst);
    }
}

thread_local! {
    static HERE: Here = Here(Arc::new(Runs { ended_at: AtomicU64::new(u64::MAX) }));
}

/// This thread's [`Runs`]; one that never ends where TLS is gone.
fn runs_here() -> Arc<Runs> {
    HERE.try_with(|h| h.0.clone()).unwrap_or_else(|_| {
        Arc::new(Runs {
            ended_at: AtomicU64::new(u64::MAX),
        })
    })
}

/// Dispatchers built by one test (or by no test), at one call chain, on
/// one thread.
struct Build {
    owner: Option<u64>,
    chain: ChainId,
    runs: Arc<Runs>,
    count: u64,
    /// The numbers of its first and latest build.
    first: u64,
    last: u64,
    /// Every task id above this was made after its first build began
    /// (except spawns hidden just before, which no seen id followed).
    floor: u64,
}

#[derive(Default)]
struct Builds {
    list: Vec<Build>,
    /// Past [`MAX_BUILDS`]: builds went unrecorded.
    overflowed: bool,
    /// Builds made while no global default was known: one of them may
    /// become the global (see [`global_found`]).
    candidates: Vec<(Arc<Runs>, u64)>,
}

static BUILDS: Mutex<Builds> = Mutex::new(Builds {
    list: Vec::new(),
    overflowed: false,
    candidates: Vec::new(),
});

/// A dispatcher other than the tee is being built on this thread, by the
/// test `owner` (if the code building it belongs to one). `global_known`:
/// the user's global default is known already (so this one is not it).
/// Runs inside a tracing callback: never panics.
pub(super) fn dispatcher_built(owner: Option<Arc<Owner>>, global_known: bool) {
    if !cfg!(tokio_unstable) {
        // without task spans leakcheck sees no spawn at all, and every id
        // would look hidden: tokio's live-task count is the evidence there
        return;
    }
    if !TRACKING.swap(true, SeqCst) {
        // from now on a task span a leakcheck layer closes is marked seen
        let _ = tasks::ON_CLOSE.set(closed);
    }
    let seq = SEQ.fetch_add(1, SeqCst) + 1;
    // a spawn that found `TRACKING` unset updated `SEEN_BEFORE` before
    // reading it (or will, and a check reads it again)
    let floor = SEEN_BEFORE.load(SeqCst).max(highest_marked());
    let owner = owner.map(|o| o.id);
    // no test's (before `main`, say): nothing will name where it was built
    let chain = owner.map_or(0, |_| crate::chain::capture());
    let runs = runs_here();
    let mut builds = BUILDS.lock();
    // two are as many as more: only a lone one is ever picked
    if !global_known && builds.candidates.len() < MAX_CANDIDATES {
        builds.candidates.push((runs.clone(), seq));
    }
    let same = |b: &&mut Build| b.owner == owner && b.chain == chain && Arc::ptr_eq(&b.runs, &runs);
    if let Some(build) = builds.list.iter_mut().find(same) {
        build.count += 1;
        build.last = seq;
        return;
    }
    if builds.list.len() >= MAX_BUILDS {
        builds.overflowed = true;
        return;
    }
    builds.list.push(Build {
        owner,
        chain,
        runs,
        count: 1,
        first: seq,
        last: seq,
        floor,
    });
}

/// The number of the latest build: a look for the global default notes it
/// as it begins.
pub(super) fn builds_so_far() -> u64 {
    SEQ.load(SeqCst)
}

/// A look for the global default found one: the one build made while none
/// was known became it, if there was exactly one. With several (tests
/// building subscribers while another sets the global one, or a look that
/// found none between a `Dispatch::new` and its `set_global_default`),
/// leakcheck cannot tell which, and drops none: every one of them stays a
/// build its test may have hidden spawns under (the cautious side: the
/// others' checks then only mention task ids that went by unseen).
pub(super) fn global_found() {
    let mut builds = BUILDS.lock();
    let candidates = std::mem::take(&mut builds.candidates);
    let [(runs, seq)] = candidates.as_slice() else {
        return;
    };
    let at = builds
        .list
        .iter()
        .position(|b| Arc::ptr_eq(&b.runs, runs) && (b.first..=b.last).contains(seq));
    if let Some(at) = at {
        match builds.list[at].count {
            1 => drop(builds.list.swap_remove(at)),
            _ => builds.list[at].count -= 1,
        }
    }
}

/// The tee saw task `id` spawn.
#[inline]
pub(super) fn seen_spawn(id: u64) {
    if TRACKING.load(Relaxed) {
        mark(id);
    } else {
        SEEN_BEFORE.fetch_max(id, Relaxed);
    }
}

/// A leakcheck layer closed task `id`'s span (the layer's close hook, set
/// at the first build): marks it seen, before the layer forgets it.
fn closed(id: u64) {
    if !is_marked(id) {
        mark(id);
    }
}

/// Whether the test `owner` built a dispatcher (one that did not become
/// the global default).
pub(crate) fn built_by(owner: u64) -> bool {
    TRACKING.load(Relaxed) && BUILDS.lock().list.iter().any(|b| b.owner == Some(owner))
}

/// A task id made now, on this thread, without a runtime and without
/// waiting: a task spawned on a `LocalSet` of its own and dropped with it
/// at once. Every id below it was made before. Marked seen, so that a
/// check running where its span is hidden adds nothing to anyone's count.
pub(crate) fn fresh_id() -> u64 {
    let local = tokio::task::LocalSet::new();
    let probe = local.spawn_local(async {});
    let id = crate::mode::id_u64(probe.id());
    drop(probe);
    drop(local);
    mark(id);
    id
}

/// What went by unseen since the test `owner` first built a dispatcher
/// (see the module docs), counting task ids below `below`; `None` if it
/// built none.
pub(crate) fn hidden(owner: u64, below: u64) -> Option<Hidden> {
    if !TRACKING.load(Relaxed) {
        return None;
    }
    let (floor, built_at, others_built) = {
        let builds = BUILDS.lock();
        let mine: Vec<&Build> = builds
            .list
            .iter()
            .filter(|b| b.owner == Some(owner))
            .collect();
        let first = mine.iter().map(|b| b.first).min()?;
        let floor = mine.iter().map(|b| b.floor).min()?;
        let mut chains: Vec<ChainId> = mine.iter().map(|b| b.chain).collect();
        chains.sort_unstable();
        chains.dedup();
        let others = builds
            .list
            .iter()
            .filter(|b| b.owner != Some(owner))
            .any(|b| b.last > first || b.runs.ended_at.load(SeqCst) >= first);
        (floor, chains, others || builds.overflowed)
    };
    // what a spawn racing with tracking's start left unmarked is below this
    let floor = floor.max(SEEN_BEFORE.fetch_max(0, SeqCst));
    let mut count = 0usize;
    for_each_unmarked(floor + 1, below, |id| {
        // a layer marks a task before it forgets it: look at the mark again
        if tasks::lookup(id).is_none() && !is_marked(id) {
            count += 1;
        }
    });
    Some(Hidden {
        count,
        built_at,
        others_built,
    })
}

// ── the task ids leakcheck saw, one bit each ───────────────────────────────

/// Ids per chunk (8 KiB of bits).
const CHUNK: u64 = 1 << 16;
const WORDS: usize = (CHUNK / 64) as usize;
/// Chunks at most: 2^30 task ids. Past that nothing is marked, and an id
/// up there counts as seen (never as hidden).
const CHUNKS: usize = 1 << 14;

type Chunk = [AtomicU64; WORDS];

static MARKS: [AtomicPtr<Chunk>; CHUNKS] = [const { AtomicPtr::new(std::ptr::null_mut()) }; CHUNKS];
/// One past the highest chunk made.
static CHUNKS_MADE: AtomicUsize = AtomicUsize::new(0);

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
        CHUNKS_MADE.fetch_max(index + 1, AcqRel);
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

/// Whether `id` is marked seen (an id past the marks counts as seen).
fn is_marked(id: u64) -> bool {
    let index = usize::try_from(id / CHUNK).unwrap_or(usize::MAX);
    if index >= CHUNKS {
        return true;
    }
    let bit = id % CHUNK;
    chunk(index, false)
        .is_some_and(|c| c[(bit / 64) as usize].load(SeqCst) & (1 << (bit % 64)) != 0)
}

/// The highest marked id (0 if none): at most a chunk's words read.
fn highest_marked() -> u64 {
    for index in (0..CHUNKS_MADE.load(Acquire)).rev() {
        let Some(chunk) = chunk(index, false) else {
            continue;
        };
        for (at, word) in chunk.iter().enumerate().rev() {
            let bits = word.load(SeqCst);
            if bits != 0 {
                let top = 63 - u64::from(bits.leading_zeros());
                return index as u64 * CHUNK + at as u64 * 64 + top;
            }
        }
    }
    0
}

/// Calls `f` with every id in `from..below` that is not marked.
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
        assert!(!is_marked(expected[0]) && is_marked(expected[0] + 1));
        let mut none = Vec::new();
        for_each_unmarked(9 * CHUNK, 9 * CHUNK + 3, |id| none.push(id));
        assert_eq!(
            none,
            [9 * CHUNK, 9 * CHUNK + 1, 9 * CHUNK + 2],
            "an empty chunk"
        );
        assert!(highest_marked() >= base + 199);
    }

    /// A fresh id comes from tokio's one counter, without a runtime, and
    /// every id made after it is higher.
    #[test]
    fn fresh_ids_need_no_runtime_and_grow() {
        let first = fresh_id();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let task = rt.spawn(async {});
        let spawned = crate::mode::id_u64(task.id());
        rt.block_on(task).unwrap();
        let second = fresh_id();
        assert!(
            first < spawned && spawned < second,
            "{first} {spawned} {second}"
        );
        assert!(is_marked(first) && is_marked(second));
    }
}
