//! From what tokio's tracing spans showed to [`TaskInfo`]: the tasks no
//! task hook sees (on a `LocalSet`, on another runtime, or on any runtime of
//! a plain `#[tokio::test]`).

use std::time::Duration;

use crate::layer::tasks::{Kind, Seen};
use crate::snapshot::{AwaitTrace, Home, Parent, TaskInfo, TaskState};

/// `seen` as a task report, as seen from a check on the runtime with id
/// `this_runtime` (`None`: no runtime, every task is on another one).
pub(crate) fn from_seen(seen: &Seen, this_runtime: Option<u64>, baseline: u64) -> TaskInfo {
    let facts = crate::layer::facts(seen.id);
    let age = seen.spawned.elapsed();
    let polls = seen.polls();
    let (state, idle) = match (seen.running(), polls) {
        (true, _) => (TaskState::Running, Some(Duration::ZERO)),
        (false, 0) => (TaskState::NotPolled, Some(age)),
        (false, _) => (TaskState::Idle, seen.idle()),
    };
    let mut task = TaskInfo {
        id: seen.id,
        name: seen.name.as_deref().map(str::to_owned),
        spawn_site: seen.site,
        parent: parent(seen),
        ancestors: Vec::new(),
        state,
        polls,
        age,
        idle,
        busy: Duration::ZERO,
        wakers: None,
        next_wake: None,
        since_baseline: seen.id > baseline,
        home: home(seen, this_runtime),
        test: seen.owner.as_ref().map(|o| o.name.to_string()),
        waiting: AwaitTrace::NotTaken,
        chain: seen.chain,
    };
    if let Some(facts) = facts {
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
    task
}

fn parent(seen: &Seen) -> Parent {
    match seen.parent {
        Some(id) => Parent::Task {
            id,
            spawn_site: seen.parent_site,
            alive: crate::layer::tasks::lookup(id).is_some(),
        },
        None if seen.by_test_body => Parent::TestBody,
        None => Parent::Outside,
    }
}

fn home(seen: &Seen, this_runtime: Option<u64>) -> Home {
    if seen.kind == Kind::Local {
        return Home::LocalSet;
    }
    let Some(polled) = seen.home() else {
        // not polled yet: spawned from the checked code, so most likely here
        return Home::ThisRuntime;
    };
    match (polled.runtime, this_runtime) {
        (Some(theirs), Some(ours)) if theirs == ours => Home::ThisRuntime,
        (theirs, _) => Home::OtherRuntime {
            id: theirs.map(|id| id.to_string()),
            thread: polled.thread.as_deref().map(str::to_owned),
        },
    }
}
