//! From a [`Census`] (and, for `debug=2`, the first tasks) to a [`Dump`]:
//! tasks grouped by spawn site and call chain, largest group first, and the
//! tasks themselves.
//!
//! A census already counts by (site, chain id); each distinct chain is
//! then symbolized once, and groups whose chains read the same once
//! leakcheck's own frames are left out are merged.

use std::collections::BTreeMap;
use std::time::Duration;

use super::dump::{Dump, Group, Task, TaskParent, VERSION};
use crate::capture::Capture;
use crate::census::{Census, TaskGroup};
use crate::site::SpawnSite;
use crate::snapshot::{Parent, TaskInfo};

/// The grouped dump of `census`: at most `limit` groups.
pub(crate) fn grouped(census: &Census, limit: usize) -> Dump {
    let mut groups = groups(census);
    let total_groups = groups.len();
    groups.truncate(limit);
    Dump {
        version: VERSION,
        capture: capture_name(census.capture).to_owned(),
        per_task: cfg!(tokio_unstable),
        total_tasks: census.total,
        total_groups,
        limit,
        groups,
        tasks: None,
    }
}

/// The dump of `census` with `tasks` (the first `limit` by id, from
/// [`Tracker::first_tasks`](crate::Tracker::first_tasks)): at most `limit`
/// groups and `limit` tasks. The two come from two passes over the table,
/// so a task that starts or ends in between may be in one and not the other.
pub(crate) fn with_tasks(census: &Census, tasks: &[TaskInfo], limit: usize) -> Dump {
    let mut dump = grouped(census, limit);
    dump.tasks = Some(tasks.iter().take(limit).map(task).collect());
    dump
}

/// A group's counts while merging groups whose chains read the same.
struct Merged {
    count: usize,
    states: BTreeMap<String, usize>,
    oldest: Duration,
}

/// Every group of `census`, largest first, then by site and chain.
fn groups(census: &Census) -> Vec<Group> {
    let mut merged: BTreeMap<(Option<String>, Vec<String>), Merged> = BTreeMap::new();
    for group in &census.groups {
        let key = (site_text(group.spawn_site), group.call_chain());
        let into = merged.entry(key).or_insert_with(|| Merged {
            count: 0,
            states: BTreeMap::new(),
            oldest: Duration::ZERO,
        });
        into.count += group.count;
        add_states(&mut into.states, group);
        into.oldest = into.oldest.max(group.oldest);
    }
    let mut groups: Vec<Group> = merged
        .into_iter()
        .map(|((spawn_site, call_chain), m)| Group {
            count: m.count,
            spawn_site,
            call_chain,
            states: m.states,
            oldest_ms: millis(m.oldest),
        })
        .collect();
    // stable: the BTreeMap already ordered equal counts by site and chain
    groups.sort_by_key(|g| std::cmp::Reverse(g.count));
    groups
}

/// Adds `group`'s tasks per state (`TaskState::as_str` names) to `states`.
fn add_states(states: &mut BTreeMap<String, usize>, group: &TaskGroup) {
    for (state, n) in group.states() {
        *states.entry(state.as_str().to_owned()).or_insert(0) += n;
    }
}

/// One task as `debug=2` lists it.
pub(crate) fn task(t: &TaskInfo) -> Task {
    Task {
        id: t.id,
        name: t.name.clone(),
        state: t.state.as_str().to_owned(),
        age_ms: millis(t.age),
        idle_ms: t.idle.map(millis),
        // with poll state captured, a task always has an idle time
        busy_ms: t.idle.map(|_| millis(t.busy)),
        polls: t.idle.map(|_| t.polls),
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

#[cfg(all(test, tokio_unstable))]
mod tests {
    use super::task;
    use crate::capture::Capture;
    use crate::options::Options;

    #[test]
    fn first_tasks_are_the_snapshots_first_tasks() {
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        let tracker = Options::new()
            .capture(Capture::CallChains)
            .instrument(&mut builder);
        let rt = builder.worker_threads(2).enable_all().build().unwrap();
        let spawner = rt.spawn(async {
            for i in 0..5000 {
                match i % 2 {
                    0 => tokio::spawn(std::future::pending::<()>()),
                    _ => tokio::spawn(std::future::pending::<()>()),
                };
            }
        });
        rt.block_on(spawner).unwrap();
        // the spawner's record goes in its terminate hook, after the join
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while tracker.live_count() != 5000 {
            assert!(std::time::Instant::now() < deadline, "the spawner ends");
            std::thread::yield_now();
        }
        let all: Vec<_> = tracker.snapshot().tasks()[..100].iter().map(task).collect();
        let first: Vec<_> = tracker.first_tasks(100).iter().map(task).collect();
        assert_eq!(first.len(), 100);
        for (a, b) in all.iter().zip(&first) {
            assert_eq!(a.id, b.id);
            assert_eq!(a.call_chain, b.call_chain, "task {}", a.id);
            assert_eq!(a.parent, b.parent, "task {}", a.id);
            assert_eq!(a.spawn_site, b.spawn_site, "task {}", a.id);
        }
        rt.shutdown_background();
    }
}
