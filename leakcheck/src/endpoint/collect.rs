//! From a [`Snapshot`] to a [`Dump`]: tasks grouped by spawn site and call
//! chain, largest group first, and the tasks themselves for `debug=2`.
//!
//! Grouping first goes by (site, chain id), a cheap hash per task; each
//! distinct chain is then symbolized once, and groups whose chains read the
//! same once leakcheck's own frames are left out are merged.

use std::collections::BTreeMap;
use std::time::Duration;

use rustc_hash::FxHashMap;

use super::dump::{Dump, Group, Task, TaskParent, VERSION};
use crate::capture::Capture;
use crate::site::SpawnSite;
use crate::snapshot::{Parent, Snapshot, TaskInfo, TaskState};

/// The states in the order their counts are kept.
const STATES: [TaskState; 6] = [
    TaskState::Running,
    TaskState::Scheduled,
    TaskState::Idle,
    TaskState::NeverWakes,
    TaskState::NotPolled,
    TaskState::Unknown,
];

fn state_index(state: TaskState) -> usize {
    STATES.iter().position(|s| *s == state).unwrap_or(5)
}

/// Tasks of one (site, chain id), before symbolizing.
struct Tally<'a> {
    sample: &'a TaskInfo,
    count: usize,
    states: [usize; 6],
    oldest: Duration,
}

impl Tally<'_> {
    fn add(&mut self, task: &TaskInfo) {
        self.count += 1;
        self.states[state_index(task.state)] += 1;
        self.oldest = self.oldest.max(task.age);
    }
}

/// The dump of `snapshot`: at most `limit` groups and, if `with_tasks`, at
/// most `limit` tasks (the oldest by id).
pub(crate) fn dump(snapshot: &Snapshot, limit: usize, with_tasks: bool) -> Dump {
    let mut groups = groups(snapshot);
    let total_groups = groups.len();
    groups.truncate(limit);
    let tasks = with_tasks.then(|| snapshot.tasks().iter().take(limit).map(task).collect());
    Dump {
        version: VERSION,
        capture: capture_name(snapshot.capture()).to_owned(),
        per_task: cfg!(tokio_unstable),
        total_tasks: snapshot.tasks().len(),
        total_groups,
        limit,
        groups,
        tasks,
    }
}

/// Every group of `snapshot`, largest first, then by site and chain.
fn groups(snapshot: &Snapshot) -> Vec<Group> {
    let mut tallies: FxHashMap<(Option<SpawnSite>, u32), Tally<'_>> = FxHashMap::default();
    for task in snapshot.tasks() {
        tallies
            .entry((task.spawn_site, task.chain))
            .or_insert_with(|| Tally {
                sample: task,
                count: 0,
                states: [0; 6],
                oldest: Duration::ZERO,
            })
            .add(task);
    }
    let mut merged: BTreeMap<(Option<String>, Vec<String>), Tally<'_>> = BTreeMap::new();
    for tally in tallies.into_values() {
        let key = (
            site_text(tally.sample.spawn_site),
            tally.sample.call_chain(),
        );
        match merged.get_mut(&key) {
            Some(into) => {
                into.count += tally.count;
                (0..6).for_each(|i| into.states[i] += tally.states[i]);
                into.oldest = into.oldest.max(tally.oldest);
            }
            None => {
                merged.insert(key, tally);
            }
        }
    }
    let mut groups: Vec<Group> = merged
        .into_iter()
        .map(|((spawn_site, call_chain), t)| Group {
            count: t.count,
            spawn_site,
            call_chain,
            states: state_counts(&t.states),
            oldest_ms: millis(t.oldest),
        })
        .collect();
    // stable: the BTreeMap already ordered equal counts by site and chain
    groups.sort_by_key(|g| std::cmp::Reverse(g.count));
    groups
}

fn state_counts(counts: &[usize; 6]) -> BTreeMap<String, usize> {
    STATES
        .iter()
        .zip(counts)
        .filter(|(_, n)| **n > 0)
        .map(|(s, n)| (s.as_str().to_owned(), *n))
        .collect()
}

/// One task as `debug=2` lists it.
pub(crate) fn task(t: &TaskInfo) -> Task {
    Task {
        id: t.id,
        name: t.name.clone(),
        state: t.state.as_str().to_owned(),
        age_ms: millis(t.age),
        idle_ms: t.idle.map(millis),
        busy_ms: millis(t.busy),
        polls: t.polls,
        parent: parent(&t.parent),
        spawn_site: site_text(t.spawn_site),
        call_chain: t.call_chain(),
    }
}

fn parent(p: &Parent) -> TaskParent {
    let (kind, id, spawn_site, alive) = match p {
        Parent::TestBody => ("test_body", None, None, None),
        Parent::Task {
            id,
            spawn_site,
            alive,
        } => ("task", Some(*id), site_text(*spawn_site), Some(*alive)),
        Parent::Outside => ("outside", None, None, None),
    };
    TaskParent {
        kind: kind.to_owned(),
        id,
        spawn_site,
        alive,
    }
}

pub(crate) fn site_text(site: Option<SpawnSite>) -> Option<String> {
    site.map(|s| s.to_string())
}

pub(crate) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The stable name of a capture level, as dumps spell it.
pub(crate) fn capture_name(capture: Capture) -> &'static str {
    match capture {
        Capture::SpawnSites => "spawn_sites",
        Capture::Polls => "polls",
        Capture::CallChains => "call_chains",
    }
}
