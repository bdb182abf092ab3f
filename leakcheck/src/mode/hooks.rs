//! Hook mode: tokio's task hooks feed a sharded [`Table`] of live tasks.
//!
//! Hooks run on tokio's threads, inside `spawn` and around every poll, so
//! they never panic, never block on anything but a short lock (one shard
//! of the table; with `max_tasks`, the fan-out counts), never allocate on
//! the common path and never call `Handle::current()`, which fails inside
//! a spawn hook on a thread outside the runtime (a `Handle::spawn` from a
//! plain thread). Each capture level's hooks are compiled for its record
//! [`Layout`].

use super::id_u64;
use std::cell::Cell;
use std::sync::atomic::Ordering::{Relaxed, SeqCst};
use std::sync::Arc;

use rustc_hash::FxHashMap;
use tokio::runtime::{Builder, Handle, TaskMeta};

use super::live::Live;
use super::Which;
use crate::capture::Capture;
use crate::census::{Census, RecordCounter};
use crate::clock::Clock;
use crate::local;
use crate::record::{parent, Layout, PollRecord, Spawn};
use crate::site::{self, Resolver};
use crate::snapshot::{from_records, TaskInfo, View};
use crate::state::State;
use crate::table::Table;

/// Tasks are known one by one: checks are woken by the terminate hook.
pub(crate) const IDENTITIES: bool = true;

/// The live-task table, its clock, and what is captured into it.
pub(crate) struct Data {
    pub(crate) table: Live,
    pub(crate) capture: Capture,
    pub(crate) clock: Clock,
}

impl Data {
    pub(crate) fn new(capture: Capture) -> Data {
        Data {
            table: Live::new(capture),
            capture,
            clock: Clock::new(),
        }
    }
}

/// Installs the task hooks the capture level needs.
pub(crate) fn install(builder: &mut Builder, state: &Arc<State>, data: &Arc<Data>) {
    match &data.table {
        Live::Sites(table) => install_for(builder, state, data, table),
        Live::Polls(table) => install_for(builder, state, data, table),
    }
}

fn install_for<L: Layout>(
    builder: &mut Builder,
    state: &Arc<State>,
    data: &Arc<Data>,
    table: &Arc<Table<L>>,
) {
    let (s, d, t) = (state.clone(), data.clone(), table.clone());
    builder.on_task_spawn(move |meta| on_spawn(&s, &d, &t, meta));
    let (s, t, polls) = (state.clone(), table.clone(), data.capture.polls());
    builder.on_task_terminate(move |meta| on_terminate(&s, &t, polls, meta));
    if data.capture.polls() {
        let (d, t) = (data.clone(), table.clone());
        builder.on_before_task_poll(move |meta| {
            t.with(id_u64(meta.id()), |r| r.poll_started(d.clock.now()));
        });
        let (d, t) = (data.clone(), table.clone());
        builder.on_after_task_poll(move |meta| {
            let id = id_u64(meta.id());
            // A task that completed in this poll has no record left: skip
            // the lock (the common case for short tasks).
            if !local::just_ended(id) {
                t.with(id, |r| r.poll_ended(d.clock.now()));
            }
        });
    }
}

fn on_spawn<L: Layout>(state: &State, data: &Data, table: &Table<L>, meta: &TaskMeta<'_>) {
    let id = id_u64(meta.id());
    if local::exhume(id) {
        return; // already terminated: spawned onto a closed runtime
    }
    let site = site::intern(meta.spawned_at());
    let (parent, parent_site) = match tokio::task::try_id().map(id_u64) {
        Some(p) => match parent_site(table, p) {
            Some(at) => (p, at),
            // a worker's own blocking task, a spawn_blocking closure, or a
            // task of another runtime: not a parent we can name
            None => (parent::OUTSIDE, 0),
        },
        None if local::on_test_thread() => (parent::TEST_BODY, 0),
        None => (parent::OUTSIDE, 0),
    };
    let chain = match data.capture.chains() {
        true => crate::chain::capture(),
        false => 0,
    };
    table.insert(L::new(&Spawn {
        id,
        parent,
        site,
        parent_site,
        chain,
        spawned: data.clock.now(),
    }));
    if let Some(fanout) = &state.fanout {
        fanout.lock().spawned(site);
    }
}

thread_local! {
    /// The last parent looked up on this thread: (table, task id, spawn
    /// site index). Tasks spawn in bursts from one parent, and a task id's
    /// spawn site never changes, so this saves a table read per spawn.
    static LAST_PARENT: Cell<(usize, u64, u32)> = const { Cell::new((0, 0, 0)) };
}

/// The spawn site index of task `p` if it is a live task of this table.
fn parent_site<L: Layout>(table: &Table<L>, p: u64) -> Option<u32> {
    let tracker = std::ptr::from_ref(table) as usize;
    if let Ok((t, id, at)) = LAST_PARENT.try_with(Cell::get) {
        if t == tracker && id == p && at != 0 {
            return Some(at);
        }
    }
    let at = table.with(p, |r| r.site()).unwrap_or(0);
    let _ = LAST_PARENT.try_with(|c| c.set((tracker, p, at)));
    (at != 0).then_some(at)
}

fn on_terminate<L: Layout>(state: &State, table: &Table<L>, polls: bool, meta: &TaskMeta<'_>) {
    let id = id_u64(meta.id());
    match table.remove(id) {
        None => local::bury(id), // spawn_blocking, a worker thread, or terminate-before-spawn
        Some(record) => {
            if polls {
                local::ended(id); // for the after-poll hook
            }
            if let Some(fanout) = &state.fanout {
                if id > state.baseline.load(Relaxed) {
                    fanout.lock().ended(record.site());
                }
            }
        }
    }
    // `remove` took and released the shard's lock. A check registers as a
    // waiter (SeqCst) before it copies the table, taking each shard's lock:
    // if its copy of this shard came first, its registration happens-before
    // this load, which therefore sees it; otherwise the copy sees the record
    // gone. Either way no check waits for an ended task unwoken.
    if state.waiters.load(SeqCst) > 0 {
        state.notify.notify_waiters();
    }
}

/// The highest task id recorded so far becomes the baseline: task ids only
/// grow, so every task spawned after this has a higher one.
pub(crate) fn set_baseline(state: &State, data: &Data, _: Option<&Handle>) {
    state.baseline.store(data.table.max_id(), SeqCst);
}

pub(crate) fn live_count(data: &Data) -> usize {
    data.table.len()
}

/// The live tasks `which` asks for, ordered by id. Since the baseline,
/// only records with higher ids are copied and converted (their older
/// ancestors are looked up one by one), so tasks that predate the baseline
/// cost a check almost nothing.
pub(crate) fn live_tasks(state: &State, data: &Data, which: Which) -> Vec<TaskInfo> {
    let baseline = state.baseline.load(SeqCst);
    let floor = match which {
        Which::All => 0,
        Which::SinceBaseline | Which::Lineage => baseline,
    };
    let mut records = data.table.sorted(floor);
    if which == Which::Lineage {
        add_ancestors(&mut records, floor, &data.table);
    }
    let view = View {
        baseline,
        capture: data.capture,
        now: data.clock.now(),
        sites: Resolver::now(),
    };
    from_records(&view, &records, floor, |id| data.table.get(id))
}

/// The `limit` live tasks with the lowest ids, ordered by id: only their
/// records are kept from the copy and only their [`TaskInfo`]s built, so
/// the cost beyond one pass over the table follows `limit`, not the live
/// tasks. Parents are looked up one by one.
#[cfg_attr(not(feature = "endpoint"), allow(dead_code))]
pub(crate) fn first_tasks(state: &State, data: &Data, limit: usize) -> Vec<TaskInfo> {
    let records = data.table.lowest(limit);
    let view = View {
        baseline: state.baseline.load(SeqCst),
        capture: data.capture,
        now: data.clock.now(),
        sites: Resolver::now(),
    };
    // floor u64::MAX: every parent is looked up in the table
    from_records(&view, &records, u64::MAX, |id| data.table.get(id))
}

/// Adds to `records` (every live record above `floor`, sorted by id) the
/// live ancestors at or below `floor` of each, looked up one by one; keeps
/// them sorted.
fn add_ancestors(records: &mut Vec<PollRecord>, floor: u64, table: &Live) {
    /// Deeper than any real task tree (a guard, as ids never repeat).
    const MAX_DEPTH: usize = 64;
    let mut found: FxHashMap<u64, PollRecord> = FxHashMap::default();
    for r in records.iter() {
        let mut up = r.parent;
        for _ in 0..MAX_DEPTH {
            if up > floor || up == parent::OUTSIDE || found.contains_key(&up) {
                break; // above the floor: it is in `records`, and walks itself
            }
            let Some(p) = table.get(up) else { break };
            found.insert(up, p);
            up = p.parent;
        }
    }
    if !found.is_empty() {
        records.extend(found.into_values());
        records.sort_unstable_by_key(|r| r.id);
    }
}

/// Every live task counted by spawn site, call chain (and name, with
/// `by_name`), without building a [`TaskInfo`] per task.
pub(crate) fn census(_: &State, data: &Data, by_name: bool) -> Census {
    let mut counter = RecordCounter::new(data.capture, data.clock.now(), by_name);
    data.table.visit(0, |r| counter.add(&r));
    counter.finish(&Resolver::now())
}

/// Bytes of the live-task table's slot arrays.
pub(crate) fn table_bytes(data: &Data) -> usize {
    data.table.allocated_bytes()
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
