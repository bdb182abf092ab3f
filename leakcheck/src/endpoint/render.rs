//! The plain-text views of a [`Dump`]: grouped (`GET tasks`, Go's
//! `goroutine?debug=1`) and every task (`GET tasks?debug=2`).

use std::fmt::Write;
use std::time::Duration;

use super::dump::{Dump, Group, Task, TaskParent};
use crate::text::{count, human};

/// What the views say when the build cannot see tasks one by one.
const NO_DETAIL: &str = "no per-task detail: this build has no --cfg tokio_unstable, \
    so leakcheck sees no spawn hooks (see leakcheck's docs, \"Enable spawn sites\")\n";

fn ms(ms: u64) -> String {
    human(Duration::from_millis(ms))
}

/// `showing 10 of 12 groups; ?limit=N for more`, when the list was cut.
fn cut_line(out: &mut String, shown: usize, total: usize, what: &str) {
    if shown < total {
        let _ = writeln!(out, "showing {shown} of {total} {what}; ?limit=N for more");
    }
}

fn chain_lines(out: &mut String, chain: &[String]) {
    if chain.is_empty() {
        return;
    }
    out.push_str("    call chain (innermost first):\n");
    for frame in chain {
        let _ = writeln!(out, "        {frame}");
    }
}

/// The grouped view: one block per group, largest first.
pub(crate) fn groups(dump: &Dump) -> String {
    let mut out = format!(
        "{} in {}, largest first (capture: {})\n",
        count(dump.total_tasks, "live task"),
        count(dump.total_groups, "group"),
        dump.capture
    );
    if !dump.per_task {
        out.push_str(NO_DETAIL);
    }
    cut_line(&mut out, dump.groups.len(), dump.total_groups, "groups");
    for group in &dump.groups {
        out.push('\n');
        group_block(&mut out, group);
    }
    out
}

fn group_block(out: &mut String, group: &Group) {
    let site = group.spawn_site.as_deref().unwrap_or("an unknown site");
    let _ = writeln!(out, "{} spawned at {site}", count(group.count, "task"));
    let states: Vec<String> = group
        .states
        .iter()
        .map(|(state, n)| format!("{} {n}", state.replace('_', " ")))
        .collect();
    let _ = writeln!(
        out,
        "    states: {}; oldest {}",
        states.join(", "),
        ms(group.oldest_ms)
    );
    chain_lines(out, &group.call_chain);
}

/// Every task, by id.
pub(crate) fn tasks(dump: &Dump) -> String {
    let listed = dump.tasks.as_deref().unwrap_or_default();
    let mut out = format!(
        "{}, by id (capture: {})\n",
        count(dump.total_tasks, "live task"),
        dump.capture
    );
    if !dump.per_task {
        out.push_str(NO_DETAIL);
    }
    cut_line(&mut out, listed.len(), dump.total_tasks, "tasks");
    for task in listed {
        out.push('\n');
        task_block(&mut out, task);
    }
    out
}

fn task_block(out: &mut String, t: &Task) {
    let name = t
        .name
        .as_deref()
        .map(|n| format!(" {n:?}"))
        .unwrap_or_default();
    let _ = write!(
        out,
        "task {}{name} [{}], age {}",
        t.id,
        t.state,
        ms(t.age_ms)
    );
    if let (Some(idle), Some(busy), Some(polls)) = (t.idle_ms, t.busy_ms, t.polls) {
        let polls = count(usize::try_from(polls).unwrap_or(usize::MAX), "poll");
        let _ = write!(out, ", idle {}, busy {}, {polls}", ms(idle), ms(busy));
    }
    let site = t.spawn_site.as_deref().unwrap_or("an unknown site");
    let _ = writeln!(out, "\n    spawned at {site}");
    let _ = writeln!(out, "    spawned by {}", parent(&t.parent));
    chain_lines(out, &t.call_chain);
}

fn parent(p: &TaskParent) -> String {
    match (p.kind.as_str(), p.id) {
        ("task", Some(id)) => {
            let site = p
                .spawn_site
                .as_deref()
                .map(|s| format!(" (spawned at {s})"))
                .unwrap_or_default();
            let ended = match p.alive {
                Some(false) => ", which has ended",
                _ => "",
            };
            format!("task {id}{site}{ended}")
        }
        ("test_body", _) => "the test body".to_owned(),
        _ => "code outside any task of this runtime".to_owned(),
    }
}
