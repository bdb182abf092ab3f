//! Leaked tasks as a tree of groups: the tasks the checked code spawned at
//! the top, the tasks they spawned nested under them, identical leaks
//! (same spawn site and call chain) grouped with a count.

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::report::LeakGroup;
use crate::snapshot::{Parent, TaskInfo};

/// Groups `tasks` into a tree, roots first. A root is a task whose parent
/// is not among `tasks` (the test body, code outside the runtime, or a task
/// that is not leaked). At every level the largest group comes first, then
/// by spawn site and call chain, so the same leaks always print the same.
pub(crate) fn build(tasks: Vec<TaskInfo>) -> Vec<LeakGroup> {
    let ids: HashSet<u64> = tasks.iter().map(|t| t.id).collect();
    let mut children: HashMap<u64, Vec<TaskInfo>> = HashMap::new();
    let mut roots = Vec::new();
    for task in tasks {
        match task.parent {
            Parent::Task { id, .. } if ids.contains(&id) && id != task.id => {
                children.entry(id).or_default().push(task)
            }
            _ => roots.push(task),
        }
    }
    level(roots, &mut children)
}

/// Groups one level and, under each group, the tasks its tasks spawned.
fn level(tasks: Vec<TaskInfo>, children: &mut HashMap<u64, Vec<TaskInfo>>) -> Vec<LeakGroup> {
    let mut by_key: BTreeMap<GroupKey, Vec<TaskInfo>> = BTreeMap::new();
    for task in tasks {
        by_key.entry(GroupKey::of(&task)).or_default().push(task);
    }
    let mut groups: Vec<(GroupKey, LeakGroup)> = by_key
        .into_iter()
        .map(|(key, mut tasks)| {
            tasks.sort_by_key(|t| t.id);
            let below: Vec<TaskInfo> = tasks
                .iter()
                .flat_map(|t| children.remove(&t.id).unwrap_or_default())
                .collect();
            let group = LeakGroup {
                spawn_site: tasks[0].spawn_site,
                children: level(below, children),
                tasks,
            };
            (key, group)
        })
        .collect();
    // largest first; the key (site, then chain) breaks ties
    groups.sort_by(|(ka, a), (kb, b)| b.tasks.len().cmp(&a.tasks.len()).then(ka.cmp(kb)));
    groups.into_iter().map(|(_, g)| g).collect()
}

/// What makes two leaks identical: spawn site, then the call chain as text
/// (chain ids depend on the order chains were first seen, text does not).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct GroupKey {
    site: Option<(String, u32, u32)>,
    chain: Vec<String>,
}

impl GroupKey {
    fn of(task: &TaskInfo) -> GroupKey {
        GroupKey {
            site: task
                .spawn_site
                .map(|s| (s.short_file(), s.line(), s.column())),
            chain: task.call_chain(),
        }
    }
}
