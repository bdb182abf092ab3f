//! Hook mode: tokio's task hooks feed a [`Table`] of live tasks.
//!
//! Hooks run on tokio's threads, inside `spawn` and around every poll, so
//! they never panic, never block on anything but a short uncontended lock
//! (only with `max_tasks`), never allocate on the common path and never call
//! `Handle::current()`, which fails inside a spawn hook on a thread outside
//! the runtime (a `Handle::spawn` from a plain thread).

use std::cell::Cell;
use std::hash::{Hash, Hasher};
use std::panic::Location;
use std::sync::atomic::Ordering::{Relaxed, SeqCst};
use std::sync::Arc;

use tokio::runtime::{Builder, Handle, TaskMeta};

use super::Which;
use crate::capture::Capture;
use crate::local;
use crate::registry::{now, parent, Spawn, Table};
use crate::site::SpawnSite;
use crate::snapshot::TaskInfo;
use crate::state::State;

/// Tasks are known one by one: checks are woken by the terminate hook.
pub(crate) const IDENTITIES: bool = true;

/// Slots in a runtime's direct-mapped task table (more live tasks than this
/// still work, through a slower overflow map).
const TABLE_BITS: u32 = 14;

/// The live-task table and what is captured into it.
pub(crate) struct Data {
    pub(crate) table: Table,
    pub(crate) capture: Capture,
}

impl Data {
    pub(crate) fn new(capture: Capture) -> Data {
        Data {
            table: Table::new(TABLE_BITS),
            capture,
        }
    }
}

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

/// Installs the task hooks the capture level needs.
pub(crate) fn install(builder: &mut Builder, state: &Arc<State>, data: &Arc<Data>) {
    let (s, d) = (state.clone(), data.clone());
    builder.on_task_spawn(move |meta| on_spawn(&s, &d, meta));
    let (s, d) = (state.clone(), data.clone());
    builder.on_task_terminate(move |meta| on_terminate(&s, &d, meta));
    if data.capture.polls() {
        let d = data.clone();
        builder.on_before_task_poll(move |meta| {
            d.table
                .with(id_u64(meta.id()), |slot| slot.poll_started(now()));
        });
        let d = data.clone();
        builder.on_after_task_poll(move |meta| {
            d.table
                .with(id_u64(meta.id()), |slot| slot.poll_ended(now()));
        });
    }
}

fn on_spawn(state: &State, data: &Data, meta: &TaskMeta<'_>) {
    let id = id_u64(meta.id());
    if local::exhume(id) {
        return; // already terminated: spawned onto a closed runtime
    }
    let location = meta.spawned_at();
    let (parent, parent_location) = match tokio::task::try_id().map(id_u64) {
        Some(p) => match parent_site(data, p) {
            Some(at) => (p, Some(at)),
            // a worker's own blocking task, a spawn_blocking closure, or a
            // task of another runtime: not a parent we can name
            None => (parent::OUTSIDE, None),
        },
        None if local::on_test_thread() => (parent::TEST_BODY, None),
        None => (parent::OUTSIDE, None),
    };
    let capture = data.capture;
    let chain = match capture.chains() {
        true => crate::chain::capture(),
        false => 0,
    };
    let spawn = Spawn {
        location,
        parent,
        parent_location,
        chain,
        spawned: now(),
    };
    data.table.insert(id, &spawn, capture.polls());
    if let Some(fanout) = &state.fanout {
        fanout.lock().spawned(SpawnSite::from(location));
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
fn parent_site(data: &Data, p: u64) -> Option<&'static Location<'static>> {
    let tracker = std::ptr::from_ref(data) as usize;
    let cached = LAST_PARENT.try_with(Cell::get).ok();
    if let Some((t, id, at @ Some(_))) = cached {
        if t == tracker && id == p {
            return at;
        }
    }
    let at = data.table.with(p, |slot| slot.location()).flatten();
    let _ = LAST_PARENT.try_with(|c| c.set((tracker, p, at)));
    at
}

fn on_terminate(state: &State, data: &Data, meta: &TaskMeta<'_>) {
    let id = id_u64(meta.id());
    match data.table.remove(id) {
        None => local::bury(id), // spawn_blocking, a worker thread, or terminate-before-spawn
        Some(location) => {
            if let Some(fanout) = &state.fanout {
                if id > state.baseline.load(Relaxed) {
                    fanout.lock().ended(SpawnSite::from(location));
                }
            }
        }
    }
    // `remove` cleared the slot with SeqCst: a check that registered as a
    // waiter after this load will see the slot empty when it scans.
    if state.waiters.load(SeqCst) > 0 {
        state.notify.notify_waiters();
    }
}

/// The highest live task id becomes the baseline.
pub(crate) fn set_baseline(state: &State, data: &Data, _: Option<&Handle>) {
    let newest = data.table.records().iter().map(|r| r.id).max();
    state.baseline.store(newest.unwrap_or(0), SeqCst);
}

pub(crate) fn live_count(data: &Data) -> usize {
    data.table.records().len()
}

pub(crate) fn live_tasks(state: &State, data: &Data, which: Which) -> Vec<TaskInfo> {
    let baseline = state.baseline.load(SeqCst);
    let mut records = data.table.records();
    if which == Which::SinceBaseline {
        records.retain(|r| r.id > baseline);
    }
    crate::snapshot::from_records(&data.table, baseline, data.capture, &records)
}

/// Whether the hooks track task `id`.
#[cfg_attr(not(feature = "tracing"), allow(dead_code))]
pub(crate) fn is_tracked(data: &Data, id: u64) -> bool {
    data.table.get(id).is_some()
}

/// Every leaked task has an identity here.
pub(crate) fn unidentified(_: &State, _: &Data, _: Option<&Handle>) -> usize {
    0
}
