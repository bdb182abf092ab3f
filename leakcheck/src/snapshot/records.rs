//! From the hooks' records to [`TaskInfo`]: state, lineage, names.

use std::time::Duration;

use crate::capture::Capture;
use crate::clock::{since, ticks};
use crate::record::{parent, PollRecord};
use crate::site::Resolver;
use crate::snapshot::{AwaitTrace, Parent, TaskInfo, TaskState};

/// How far up the task tree a task's lineage is followed.
const MAX_ANCESTORS: usize = 8;

/// What every record of one snapshot is read against.
pub(crate) struct View {
    /// Tasks with higher ids were spawned after the baseline.
    pub(crate) baseline: u64,
    pub(crate) capture: Capture,
    /// The tracker's clock, now.
    pub(crate) now: u32,
    pub(crate) sites: Resolver,
}

/// The tasks behind `records`: every live record with an id above
/// `floor`, sorted by id. A parent at or below `floor` is looked up with
/// `older`; one above it that is not in `records` has ended. The tasks
/// come out in the records' order.
pub(crate) fn from_records(
    view: &View,
    records: &[PollRecord],
    floor: u64,
    older: impl Fn(u64) -> Option<PollRecord>,
) -> Vec<TaskInfo> {
    let find = |id: u64| match id > floor {
        true => records
            .binary_search_by_key(&id, |r| r.id)
            .ok()
            .map(|i| records[i]),
        false => older(id),
    };
    records.iter().map(|r| task(view, r, &find)).collect()
}

fn task(view: &View, r: &PollRecord, find: &impl Fn(u64) -> Option<PollRecord>) -> TaskInfo {
    let (parent, ancestors) = lineage(view, r, find);
    let age = since(view.now, r.spawned);
    let mut task = TaskInfo {
        id: r.id,
        name: None,
        spawn_site: view.sites.site(r.site),
        parent,
        ancestors,
        state: TaskState::Unknown,
        polls: 0,
        age,
        idle: None,
        busy: ticks(r.busy),
        wakers: None,
        next_wake: None,
        since_baseline: r.id > view.baseline,
        home: crate::snapshot::Home::ThisRuntime,
        test: None,
        waiting: AwaitTrace::NotTaken,
        chain: r.chain,
    };
    if view.capture.polls() {
        (task.state, task.idle) = poll_state(r, view.now);
        task.polls = u64::from(r.poll_edges.div_ceil(2));
    }
    #[cfg(feature = "tracing")]
    if let Some(facts) = crate::layer::facts(task.id) {
        add_facts(&mut task, facts);
    }
    task
}

/// Running, idle or never polled, and the time since the last poll ended,
/// from the poll hooks' edge count (only meaningful with poll hooks).
pub(crate) fn poll_state(r: &PollRecord, now: u32) -> (TaskState, Option<Duration>) {
    let running = r.poll_edges % 2 == 1;
    match (running, r.poll_edges) {
        (true, _) => (TaskState::Running, Some(Duration::ZERO)),
        (false, 0) => (TaskState::NotPolled, Some(since(now, r.spawned))),
        (false, _) => (TaskState::Idle, Some(since(now, r.poll_ended))),
    }
}

/// What tokio's tracing instrumentation adds: the name, the wakers, whether
/// an idle task is in fact scheduled or can never wake, the next timer.
#[cfg(feature = "tracing")]
fn add_facts(task: &mut TaskInfo, facts: crate::layer::Facts) {
    task.state = refined(task.state, &facts);
    task.name = facts.name.as_deref().map(str::to_owned);
    task.wakers = Some(facts.wakers);
    task.next_wake = facts.next_wake;
}

/// An idle task's state given what tokio's tracing says: scheduled if it
/// was woken, never waking if no waker for it is left.
#[cfg(feature = "tracing")]
pub(crate) fn refined(state: TaskState, facts: &crate::layer::Facts) -> TaskState {
    match state {
        TaskState::Idle if facts.woken => TaskState::Scheduled,
        TaskState::Idle if facts.wakers == 0 => TaskState::NeverWakes,
        state => state,
    }
}

/// Who spawned this task, and who spawned them, while they are alive.
fn lineage(
    view: &View,
    r: &PollRecord,
    find: &impl Fn(u64) -> Option<PollRecord>,
) -> (Parent, Vec<Parent>) {
    let (first, mut up) = parent_of(view, r, find);
    let mut ancestors = Vec::new();
    while let Some(record) = up.filter(|_| ancestors.len() < MAX_ANCESTORS) {
        let (p, next) = parent_of(view, &record, find);
        ancestors.push(p);
        up = next;
    }
    (first, ancestors)
}

/// The parent of `r`, and its record while it is alive. An ended parent
/// is named with the site `r` kept for it (none at `SpawnSites`).
fn parent_of(
    view: &View,
    r: &PollRecord,
    find: &impl Fn(u64) -> Option<PollRecord>,
) -> (Parent, Option<PollRecord>) {
    match r.parent {
        parent::TEST_BODY => (Parent::TestBody, None),
        parent::OUTSIDE => (Parent::Outside, None),
        id => {
            let record = find(id);
            let site = record.map_or(r.parent_site, |p| p.site);
            let parent = Parent::Task {
                id,
                spawn_site: view.sites.site(site),
                alive: record.is_some(),
            };
            (parent, record)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: u64, parent: u64) -> PollRecord {
        PollRecord {
            id,
            parent,
            ..PollRecord::default()
        }
    }

    #[test]
    fn lineage_reads_the_copy_above_the_floor_and_looks_up_below_it() {
        let view = View {
            baseline: 4,
            capture: Capture::Polls,
            now: 0,
            sites: Resolver::now(),
        };
        let records = [record(5, 3), record(7, 5), record(9, 6)];
        let older = |id| (id == 3).then(|| record(3, parent::TEST_BODY));
        let tasks = from_records(&view, &records, 4, older);
        let task = |id: u64| move |p: &Parent| matches!(p, Parent::Task { id: i, alive: true, .. } if *i == id);
        assert!(task(3)(&tasks[0].parent), "{:?}", tasks[0].parent);
        assert_eq!(tasks[0].ancestors, [Parent::TestBody]);
        assert!(task(5)(&tasks[1].parent));
        assert!(task(3)(&tasks[1].ancestors[0]));
        let ended = Parent::Task {
            id: 6,
            spawn_site: None,
            alive: false,
        };
        assert_eq!(
            tasks[2].parent, ended,
            "above the floor and not copied: ended"
        );
        assert!(tasks[2].ancestors.is_empty());
        assert!(tasks.iter().all(|t| t.since_baseline));
        assert_eq!(tasks[0].state, TaskState::NotPolled);
    }
}
