//! From the hooks' records to [`TaskInfo`]: state, lineage, names.

use std::time::Duration;

use crate::capture::Capture;
use crate::registry::{parent, ticks, Record, Spawn, Table};
use crate::site::SpawnSite;
use crate::snapshot::{AwaitTrace, Parent, TaskInfo, TaskState};

/// How far up the task tree a task's lineage is followed.
const MAX_ANCESTORS: usize = 8;

/// The tasks behind `records` of `table`, as of now. Tasks with ids above
/// `baseline` were spawned after it.
pub(crate) fn from_records(
    table: &Table,
    baseline: u64,
    capture: Capture,
    records: &[Record],
) -> Vec<TaskInfo> {
    let now = crate::registry::now();
    let polls_captured = capture.polls();
    records
        .iter()
        .map(|r| {
            let (parent, ancestors) = lineage(table, &r.spawn);
            let age = ticks(now.saturating_sub(r.spawn.spawned));
            let mut task = TaskInfo {
                id: r.id,
                name: None,
                spawn_site: Some(SpawnSite::from(r.spawn.location)),
                parent,
                ancestors,
                state: TaskState::Unknown,
                polls: 0,
                age,
                idle: None,
                busy: ticks(r.busy),
                wakers: None,
                next_wake: None,
                since_baseline: r.id > baseline,
                home: crate::snapshot::Home::ThisRuntime,
                test: None,
                waiting: AwaitTrace::NotTaken,
                chain: r.spawn.chain,
            };
            if polls_captured {
                poll_state(&mut task, r, now);
            }
            #[cfg(feature = "tracing")]
            if let Some(facts) = crate::layer::facts(task.id) {
                add_facts(&mut task, facts);
            }
            task
        })
        .collect()
}

/// Running, idle or never polled, from the poll hooks' edge count.
fn poll_state(task: &mut TaskInfo, r: &Record, now: u64) {
    task.polls = r.poll_edges.div_ceil(2);
    let running = r.poll_edges % 2 == 1;
    (task.state, task.idle) = match (running, task.polls) {
        (true, _) => (TaskState::Running, Some(Duration::ZERO)),
        (false, 0) => (TaskState::NotPolled, Some(task.age)),
        (false, _) => (
            TaskState::Idle,
            Some(ticks(now.saturating_sub(r.poll_ended))),
        ),
    };
}

/// What tokio's tracing instrumentation adds: the name, the wakers, whether
/// an idle task is in fact scheduled or can never wake, the next timer.
#[cfg(feature = "tracing")]
fn add_facts(task: &mut TaskInfo, facts: crate::layer::Facts) {
    task.name = facts.name.as_deref().map(str::to_owned);
    task.wakers = Some(facts.wakers);
    task.next_wake = facts.next_wake;
    if task.state == TaskState::Idle {
        if facts.woken {
            task.state = TaskState::Scheduled;
        } else if facts.wakers == 0 {
            task.state = TaskState::NeverWakes;
        }
    }
}

/// Who spawned this task, and who spawned them, while they are alive.
fn lineage(table: &Table, spawn: &Spawn) -> (Parent, Vec<Parent>) {
    let (first, mut up) = parent_of(table, spawn);
    let mut ancestors = Vec::new();
    while let Some(record) = up.filter(|_| ancestors.len() < MAX_ANCESTORS) {
        let (p, next) = parent_of(table, &record.spawn);
        ancestors.push(p);
        up = next;
    }
    (first, ancestors)
}

fn parent_of(table: &Table, spawn: &Spawn) -> (Parent, Option<Record>) {
    match (spawn.parent, spawn.parent_location) {
        (parent::TEST_BODY, _) => (Parent::TestBody, None),
        (id, Some(site)) if id != parent::OUTSIDE => {
            let record = table.get(id);
            let parent = Parent::Task {
                id,
                spawn_site: Some(SpawnSite::from(site)),
                alive: record.is_some(),
            };
            (parent, record)
        }
        _ => (Parent::Outside, None),
    }
}
