//! [`growth`]: which groups of tasks grew between two dumps, the leak
//! suspects (Go's "two goroutine profiles a minute apart").

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::dump::{Dump, VERSION};
use crate::text::count;

/// The groups whose live count grew from one [`Dump`] to a later one,
/// largest growth first. `Display` prints it as `GET tasks/growth` and
/// `leakcheck diff` do.
///
/// ```
/// use leakcheck::endpoint::{growth, Dump};
/// let dump = |n: usize| Dump::parse(&format!(
///     r#"{{"version": 1, "capture": "spawn_sites", "per_task": true, "total_tasks": {n},
///         "total_groups": 1, "limit": 100, "groups": [{{"count": {n},
///         "spawn_site": "src/session.rs:40:9", "call_chain": [],
///         "states": {{"unknown": {n}}}, "oldest_ms": 0}}]}}"#
/// )).unwrap();
/// let grown = growth(&dump(3), &dump(10));
/// assert_eq!(grown.grown[0].growth(), 7);
/// assert!(grown.to_string().contains("+7 (3 → 10) tasks spawned at src/session.rs:40:9"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Growth {
    /// Always 1 for this schema.
    pub version: u32,
    /// Live tasks in the first dump.
    pub before_tasks: usize,
    /// Live tasks in the second dump.
    pub after_tasks: usize,
    /// Some group is missing from a dump that was cut by its `limit`:
    /// growth outside the listed groups is unknown.
    pub partial: bool,
    /// Groups that grew, largest growth first.
    pub grown: Vec<Grown>,
}

/// One group that grew.
///
/// ```
/// let text = r#"{"spawn_site": "src/a.rs:1:1", "call_chain": [], "before": 2, "after": 5}"#;
/// let grown: leakcheck::endpoint::Grown = serde_json::from_str(text).unwrap();
/// assert_eq!(grown.growth(), 3);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Grown {
    /// `path:line:col`; null when unknown.
    pub spawn_site: Option<String>,
    /// `function at path:line:col` lines, innermost first.
    pub call_chain: Vec<String>,
    /// Live tasks of this group in the first dump.
    pub before: usize,
    /// Live tasks of this group in the second dump.
    pub after: usize,
}

impl Grown {
    /// How many more tasks the group has.
    ///
    /// ```
    /// let text = r#"{"spawn_site": null, "call_chain": [], "before": 0, "after": 4}"#;
    /// let grown: leakcheck::endpoint::Grown = serde_json::from_str(text).unwrap();
    /// assert_eq!(grown.growth(), 4);
    /// ```
    pub fn growth(&self) -> usize {
        self.after.saturating_sub(self.before)
    }
}

/// Compares two dumps of the same service taken some time apart: the
/// groups (spawn site and call chain) with more live tasks in `after` than
/// in `before`, largest growth first, then by site and chain.
///
/// ```
/// let empty = leakcheck::endpoint::Dump::parse(
///     r#"{"version": 1, "capture": "polls", "per_task": true, "total_tasks": 0,
///         "total_groups": 0, "limit": 10, "groups": []}"#,
/// ).unwrap();
/// let same = leakcheck::endpoint::growth(&empty, &empty);
/// assert!(same.grown.is_empty());
/// assert!(same.to_string().contains("no group grew"));
/// ```
pub fn growth(before: &Dump, after: &Dump) -> Growth {
    type Key<'a> = (&'a Option<String>, &'a Vec<String>);
    let old: BTreeMap<Key<'_>, usize> = before
        .groups
        .iter()
        .map(|g| ((&g.spawn_site, &g.call_chain), g.count))
        .collect();
    let mut grown: Vec<Grown> = after
        .groups
        .iter()
        .filter_map(|g| {
            let was = old.get(&(&g.spawn_site, &g.call_chain)).copied();
            (g.count > was.unwrap_or(0)).then(|| Grown {
                spawn_site: g.spawn_site.clone(),
                call_chain: g.call_chain.clone(),
                before: was.unwrap_or(0),
                after: g.count,
            })
        })
        .collect();
    grown.sort_by(|a, b| {
        (b.growth().cmp(&a.growth()))
            .then_with(|| a.spawn_site.cmp(&b.spawn_site))
            .then_with(|| a.call_chain.cmp(&b.call_chain))
    });
    Growth {
        version: VERSION,
        before_tasks: before.total_tasks,
        after_tasks: after.total_tasks,
        partial: before.is_cut() || after.is_cut(),
        grown,
    }
}

impl fmt::Display for Growth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (before, after) = (self.before_tasks, self.after_tasks);
        match self.grown.len() {
            0 => writeln!(f, "no group grew (live tasks: {before} → {after})")?,
            n => writeln!(
                f,
                "{} grew, largest growth first (live tasks: {before} → {after})",
                count(n, "group")
            )?,
        }
        if self.partial {
            writeln!(
                f,
                "a dump was cut by its limit: growth outside the listed groups is unknown"
            )?;
        }
        for g in &self.grown {
            let site = g.spawn_site.as_deref().unwrap_or("an unknown site");
            let what = if g.after == 1 { "task" } else { "tasks" };
            write!(
                f,
                "\n+{} ({} → {}) {what} spawned at {site}\n",
                g.growth(),
                g.before,
                g.after
            )?;
            if !g.call_chain.is_empty() {
                writeln!(f, "    call chain (innermost first):")?;
                g.call_chain
                    .iter()
                    .try_for_each(|c| writeln!(f, "        {c}"))?;
            }
        }
        Ok(())
    }
}
