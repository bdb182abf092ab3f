//! `GET tasks/flamegraph.svg`: live tasks as a flame graph (inferno), one
//! tower per call chain, the spawn site on top, widths by task count.

use super::dump::Dump;

/// The SVG of `dump`'s groups (all of them: build the dump without a limit).
pub(crate) fn svg(dump: &Dump) -> Result<Vec<u8>, String> {
    let lines: Vec<String> = dump.groups.iter().map(folded).collect();
    let mut options = inferno::flamegraph::Options::default();
    options.title = format!("{} live tasks, by call chain", dump.total_tasks);
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
fn folded(group: &super::dump::Group) -> String {
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
