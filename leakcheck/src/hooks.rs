//! The four task hooks, feeding one runtime's [`Table`](crate::registry::Table).
//!
//! Hooks run on tokio's threads, inside `spawn` and around every poll, so
//! they never panic, never block on anything but a short uncontended lock
//! (only with `max_tasks`), never allocate on the common path and never call
//! `Handle::current()` (it fails on foreign threads; see
//! `shared/notes/tokio-facts.md` §2.2).

use std::cell::Cell;
use std::hash::{Hash, Hasher};
use std::panic::Location;
use std::sync::atomic::Ordering::{Relaxed, SeqCst};

use parking_lot::Mutex;
use rustc_hash::FxHashMap;
use tokio::runtime::{Builder, TaskMeta};

use crate::context;
use crate::registry::{now, parent, Spawn};
use crate::report::Fanout;
use crate::tracker::{Shared, Tracker};

/// `task::Id` as the `u64` it prints as. tokio has no public accessor, but
/// `Id` hashes as exactly that one `u64`.
pub(crate) fn id_u64(id: tokio::task::Id) -> u64 {
    struct Capture(u64);
    impl Hasher for Capture {
        fn finish(&self) -> u64 {
            self.0
        }
        fn write(&mut self, bytes: &[u8]) {
            for b in bytes {
                self.0 = (self.0 << 8) | u64::from(*b);
            }
        }
        fn write_u64(&mut self, n: u64) {
            self.0 = n;
        }
    }
    let mut capture = Capture(0);
    id.hash(&mut capture);
    capture.0
}

/// Installs the hooks (and the thread hooks that make `verify_none()` find
/// this tracker on the runtime's threads).
pub(crate) fn install(builder: &mut Builder, tracker: &Tracker, polls: bool) {
    let shared = tracker.shared().clone();
    let s = shared.clone();
    builder.on_task_spawn(move |meta| on_spawn(&s, meta));
    let s = shared.clone();
    builder.on_task_terminate(move |meta| on_terminate(&s, meta));
    if polls {
        let s = shared.clone();
        builder.on_before_task_poll(move |meta| {
            s.table
                .with(id_u64(meta.id()), |slot| slot.poll_started(now()));
        });
        let s = shared;
        builder.on_after_task_poll(move |meta| {
            s.table
                .with(id_u64(meta.id()), |slot| slot.poll_ended(now()));
        });
    }
    let t = tracker.clone();
    builder.on_thread_start(move || context::set_for_thread(Some(t.clone())));
    builder.on_thread_stop(|| context::set_for_thread(None));
}

fn on_spawn(shared: &Shared, meta: &TaskMeta<'_>) {
    let id = id_u64(meta.id());
    if context::exhume(id) {
        return; // already terminated: spawned onto a closed runtime
    }
    let location = meta.spawned_at();
    let (parent, parent_location) = match tokio::task::try_id().map(id_u64) {
        Some(p) => match parent_site(shared, p) {
            Some(at) => (p, Some(at)),
            // a worker's own blocking task, a spawn_blocking closure, or a
            // task of another runtime: not a parent we can name
            None => (parent::OUTSIDE, None),
        },
        None if context::on_test_thread() => (parent::TEST_BODY, None),
        None => (parent::OUTSIDE, None),
    };
    let chain = if shared.chains {
        crate::chain::capture()
    } else {
        0
    };
    let generation = shared.generation.load(Relaxed);
    shared.table.insert(
        id,
        &Spawn {
            location,
            parent,
            parent_location,
            chain,
            generation,
            spawned: now(),
        },
        shared.polls,
    );
    if let Some(fanout) = &shared.fanout {
        fanout.lock().spawned(location);
    }
}

thread_local! {
    /// The last parent looked up on this thread: (tracker, task id, spawn
    /// site). Tasks spawn in bursts from one parent, and a task id's spawn
    /// site never changes, so this saves a table read per spawn.
    static LAST_PARENT: Cell<(usize, u64, Option<&'static Location<'static>>)> =
        const { Cell::new((0, 0, None)) };
}

/// The spawn site of task `p` if it is a live task of this tracker.
fn parent_site(shared: &Shared, p: u64) -> Option<&'static Location<'static>> {
    let tracker = std::ptr::from_ref(shared) as usize;
    let cached = LAST_PARENT.try_with(Cell::get).ok();
    if let Some((t, id, at @ Some(_))) = cached {
        if t == tracker && id == p {
            return at;
        }
    }
    let at = shared.table.with(p, |slot| slot.location()).flatten();
    let _ = LAST_PARENT.try_with(|c| c.set((tracker, p, at)));
    at
}

fn on_terminate(shared: &Shared, meta: &TaskMeta<'_>) {
    let id = id_u64(meta.id());
    match shared.table.remove(id) {
        None => context::bury(id), // spawn_blocking, a worker thread, or terminate-before-spawn
        Some((generation, location)) => {
            if let (Some(fanout), Some(at)) = (&shared.fanout, location) {
                if generation == shared.generation.load(Relaxed) {
                    fanout.lock().ended(at);
                }
            }
        }
    }
    // `remove` cleared the slot with SeqCst: a check that registered as a
    // waiter after this load will see the slot empty when it scans.
    if shared.waiters.load(SeqCst) > 0 {
        shared.notify.notify_waiters();
    }
}

/// Live tasks per spawn site, and their make-up at the highest peak seen.
#[derive(Debug)]
pub(crate) struct FanoutCounts {
    limit: usize,
    live: FxHashMap<usize, (&'static Location<'static>, usize)>,
    total: usize,
    peak: usize,
    at_peak: Vec<(&'static Location<'static>, usize)>,
}

impl FanoutCounts {
    pub(crate) fn new(limit: usize) -> Mutex<FanoutCounts> {
        Mutex::new(FanoutCounts {
            limit,
            live: FxHashMap::default(),
            total: 0,
            peak: 0,
            at_peak: Vec::new(),
        })
    }

    fn key(at: &'static Location<'static>) -> usize {
        std::ptr::from_ref(at) as usize
    }

    fn spawned(&mut self, at: &'static Location<'static>) {
        self.live.entry(Self::key(at)).or_insert((at, 0)).1 += 1;
        self.total += 1;
        if self.total > self.peak {
            self.peak = self.total;
            if self.peak > self.limit {
                self.at_peak = self
                    .live
                    .values()
                    .filter(|(_, n)| *n > 0)
                    .copied()
                    .collect();
            }
        }
    }

    fn ended(&mut self, at: &'static Location<'static>) {
        if let Some(entry) = self.live.get_mut(&Self::key(at)) {
            entry.1 = entry.1.saturating_sub(1);
            self.total = self.total.saturating_sub(1);
        }
    }

    /// Starts counting afresh (a new baseline).
    pub(crate) fn reset(&mut self) {
        self.live.clear();
        self.total = 0;
        self.peak = 0;
        self.at_peak.clear();
    }

    /// The failure, if the limit was exceeded.
    pub(crate) fn failure(&self) -> Option<Fanout> {
        if self.peak <= self.limit {
            return None;
        }
        let mut sites = self.at_peak.clone();
        sites.sort_by(|a, b| {
            (b.1, a.0.file(), a.0.line(), a.0.column()).cmp(&(
                a.1,
                b.0.file(),
                b.0.line(),
                b.0.column(),
            ))
        });
        Some(Fanout {
            limit: self.limit,
            peak: self.peak,
            sites,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_u64_matches_display() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let handle = rt.spawn(async {});
        assert_eq!(id_u64(handle.id()).to_string(), handle.id().to_string());
    }

    #[test]
    fn fanout_remembers_the_peak_make_up() {
        let a = Location::caller();
        let b = Location::caller();
        let f = FanoutCounts::new(2);
        let mut f = f.lock();
        f.spawned(a);
        f.spawned(a);
        f.spawned(b);
        f.ended(a);
        f.ended(a);
        f.spawned(b);
        let failure = f.failure().unwrap();
        assert_eq!(failure.peak, 3);
        assert_eq!(failure.sites, vec![(a, 2), (b, 1)]);
    }
}
