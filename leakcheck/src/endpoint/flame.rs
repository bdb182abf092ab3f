//! `GET tasks/flamegraph.svg`: live tasks as a flame graph (inferno), one
//! tower per call chain, the spawn site on top, widths by task count.
//!
//! At most the dump's `limit` groups, the largest; the tasks of the groups
//! left out stand in one tower of their own, and the title says so.

use super::dump::{Dump, Group};
use crate::text::count;

/// The SVG of `dump`'s groups (cut at its limit, largest first).
pub(crate) fn svg(dump: &Dump) -> Result<Vec<u8>, String> {
    let mut lines: Vec<String> = dump.groups.iter().map(folded).collect();
    let mut options = inferno::flamegraph::Options::default();
    options.title = format!("{}, by call chain", count(dump.total_tasks, "live task"));
    if dump.is_cut() {
        let left_out = dump.total_groups - dump.groups.len();
        let shown: usize = dump.groups.iter().map(|g| g.count).sum();
        let tasks = dump.total_tasks.saturating_sub(shown);
        options.title.push_str(&format!(
            ": the {} largest of {} groups; ?limit=N for more",
            dump.groups.len(),
            dump.total_groups
        ));
        if tasks > 0 {
            lines.push(format!(
                "{} in {left_out} smaller groups left out {tasks}",
                count(tasks, "task")
            ));
        }
    }
    options.count_name = "tasks".to_owned();
    options.name_type = "Frame:".to_owned();
    options.deterministic = true;
    let mut svg = Vec::new();
    if lines.is_empty() {
        // inferno refuses an empty graph; say so in an SVG all the same
        return Ok(empty(&options.title).into_bytes());
    }
    inferno::flamegraph::from_lines(&mut options, lines.iter().map(String::as_str), &mut svg)
        .map_err(|e| format!("could not draw the flame graph: {e}"))?;
    Ok(svg)
}

/// `outermost;...;innermost;spawned at site count`, the folded-stack line
/// of one group. `;` separates frames, so it may not appear inside one.
fn folded(group: &Group) -> String {
    let mut frames: Vec<String> = group
        .call_chain
        .iter()
        .rev()
        .map(|f| f.replace(';', ","))
        .collect();
    let site = group.spawn_site.as_deref().unwrap_or("an unknown site");
    frames.push(format!("spawned at {site}"));
    format!("{} {}", frames.join(";"), group.count)
}

fn empty(title: &str) -> String {
    format!(
        "<?xml version=\"1.0\" standalone=\"no\"?>\n<svg version=\"1.1\" width=\"600\" \
         height=\"60\" xmlns=\"http://www.w3.org/2000/svg\"><text x=\"10\" y=\"30\">{title}: \
         nothing to draw</text></svg>\n"
    )
}
