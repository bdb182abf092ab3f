//! What a failed check says: leaked tasks grouped by where they came from.

use std::collections::BTreeMap;
use std::fmt;
use std::panic::Location;
use std::time::Duration;

use crate::snapshot::{human, site, Parent, TaskInfo};

/// Why a leak check failed.
///
/// `Display` renders the full report: a headline with the count and the test
/// name, then one entry per group of identical leaks (same spawn site and
/// call chain), largest first, each with the task ids, state, parent and the
/// user's call chain, then what to do about it.
///
/// ```
/// # #[cfg(tokio_unstable)] {
/// let mut builder = tokio::runtime::Builder::new_current_thread();
/// let tracker = leakcheck::Options::new()
///     .grace(std::time::Duration::from_millis(10))
///     .instrument(&mut builder);
/// let rt = builder.enable_all().build().unwrap();
/// rt.block_on(async {
///     let parked = tokio::spawn(std::future::pending::<()>());
///     let report = tracker.find_leaks().await.unwrap_err();
///     assert_eq!(report.leaked(), 1);
///     assert!(report.to_string().contains("1 task spawned at"));
///     parked.abort();
/// });
/// # }
/// ```
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct Report {
    /// The test (or tracker) name used in the headline.
    pub name: String,
    /// How long the check waited.
    pub grace: Duration,
    /// Leaked tasks, grouped; largest group first.
    pub groups: Vec<LeakGroup>,
    /// Leaked tasks known only by count (count mode: no `tokio_unstable`).
    pub unidentified: usize,
    /// `spawn_blocking` work still running or queued.
    pub blocking: usize,
    /// Set when `max_tasks` was exceeded.
    pub fanout: Option<Fanout>,
    /// A report of tasks that can never wake, not of leaks since a baseline.
    pub never_wakes: bool,
}

/// Leaked tasks with the same spawn site and call chain.
///
/// ```
/// let group = leakcheck::LeakGroup::default();
/// assert!(group.tasks.is_empty());
/// ```
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct LeakGroup {
    /// Where they were spawned.
    pub spawn_site: Option<&'static Location<'static>>,
    /// The tasks, ordered by id.
    pub tasks: Vec<TaskInfo>,
}

/// The moment the most spawned tasks were alive, when over `max_tasks`.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct Fanout {
    /// The limit that was set.
    pub limit: usize,
    /// The most tasks alive at once.
    pub peak: usize,
    /// How many of the peak came from each spawn site, most first.
    pub sites: Vec<(&'static Location<'static>, usize)>,
}

/// Tasks listed one per line in a group before the rest are summarized.
const SHOWN_PER_GROUP: usize = 3;

impl Report {
    /// Number of leaked tasks (grouped or counted).
    ///
    /// ```
    /// assert_eq!(leakcheck::Report::default().leaked(), 0);
    /// ```
    pub fn leaked(&self) -> usize {
        self.groups.iter().map(|g| g.tasks.len()).sum::<usize>() + self.unidentified
    }

    pub(crate) fn is_failure(&self) -> bool {
        self.leaked() > 0 || self.blocking > 0 || self.fanout.is_some()
    }

    /// Groups tasks by spawn site and call chain, largest group first, then
    /// by spawn site, so the same leaks always print the same report.
    pub(crate) fn group(tasks: Vec<TaskInfo>) -> Vec<LeakGroup> {
        let mut by_key: BTreeMap<(String, u32, u32, u32), LeakGroup> = BTreeMap::new();
        for task in tasks {
            let (file, line, col) = task.spawn_site.map_or((String::new(), 0, 0), |l| {
                (l.file().to_owned(), l.line(), l.column())
            });
            let entry = by_key.entry((file, line, col, task.chain)).or_default();
            entry.spawn_site = task.spawn_site;
            entry.tasks.push(task);
        }
        let mut groups: Vec<LeakGroup> = by_key.into_values().collect();
        for g in &mut groups {
            g.tasks.sort_by_key(|t| t.id);
        }
        groups.sort_by_key(|g| std::cmp::Reverse(g.tasks.len()));
        groups
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let leaked = self.leaked();
        if self.never_wakes {
            writeln!(
                f,
                "leakcheck: {} in `{}` can never wake: idle, not scheduled, and no waker \
                 is left anywhere to wake {}",
                count(leaked, "task"),
                self.name,
                if leaked == 1 { "it" } else { "them" }
            )?;
        } else if leaked > 0 {
            writeln!(
                f,
                "leakcheck: {} leaked by `{}`: still alive {} after the checked code returned",
                count(leaked, "task"),
                self.name,
                human(self.grace)
            )?;
        } else if self.is_failure() {
            writeln!(f, "leakcheck: `{}` failed its task checks", self.name)?;
        }
        for group in &self.groups {
            writeln!(f)?;
            write_group(f, group)?;
        }
        if self.unidentified > 0 {
            writeln!(f)?;
            writeln!(
                f,
                "   Spawn sites are unknown: this build lacks `--cfg tokio_unstable`, so only \
                 tokio's live-task count is available. To see where each task was spawned, \
                 add to .cargo/config.toml:\n\n       [build]\n       rustflags = [\"--cfg\", \
                 \"tokio_unstable\", \"-C\", \"force-frame-pointers=yes\"]"
            )?;
        }
        if self.blocking > 0 {
            writeln!(f)?;
            writeln!(
                f,
                "── {} still running on runtime `{}` after {}",
                count(self.blocking, "spawn_blocking task"),
                self.name,
                human(self.grace)
            )?;
            writeln!(
                f,
                "   (blocking tasks fire no spawn hook, so their spawn sites are unknown; \
                 the runtime was shut down without waiting for them)"
            )?;
        }
        if let Some(fanout) = &self.fanout {
            writeln!(f)?;
            write_fanout(f, fanout)?;
        }
        if leaked > 0 || self.blocking > 0 {
            writeln!(f)?;
            write!(
                f,
                "To fix: stop these tasks before the test returns (abort or await their \
                 JoinHandles, drop the senders they wait on, or signal shutdown and await it)."
            )?;
            match self.groups.first().and_then(|g| g.spawn_site) {
                Some(l) => writeln!(
                    f,
                    " To accept one, ignore it: #[leakcheck::test(ignore_spawn_site = \"{}:{}\")].",
                    l.file(),
                    l.line()
                )?,
                None => writeln!(f)?,
            }
        }
        Ok(())
    }
}

fn write_group(f: &mut fmt::Formatter<'_>, group: &LeakGroup) -> fmt::Result {
    let n = group.tasks.len();
    let at = group
        .spawn_site
        .map(site)
        .unwrap_or_else(|| "an unknown site".into());
    writeln!(f, "── {} spawned at {at}", count(n, "task"))?;
    for task in group.tasks.iter().take(SHOWN_PER_GROUP) {
        writeln!(f, "   {}, age {}", task.headline(), human(task.age))?;
    }
    if n > SHOWN_PER_GROUP {
        let rest: Vec<String> = group.tasks[SHOWN_PER_GROUP..]
            .iter()
            .map(|t| t.id.to_string())
            .collect();
        let shown = if rest.len() > 8 {
            format!("{}, …", rest[..8].join(", "))
        } else {
            rest.join(", ")
        };
        writeln!(f, "   … and {} more: tasks {shown}", rest.len())?;
    }
    let first = &group.tasks[0];
    writeln!(f, "   spawned by: {}", first.lineage())?;
    let orphans = group
        .tasks
        .iter()
        .filter(|t| matches!(t.parent, Parent::Task { alive: false, .. }))
        .count();
    if orphans > 0 && orphans < n {
        writeln!(f, "   ({orphans} of them outlived their parent task)")?;
    }
    match &first.waiting {
        crate::snapshot::AwaitTrace::NotTaken => {}
        waiting => {
            for (i, line) in waiting.to_string().lines().enumerate() {
                let pad = if i == 0 { "   " } else { "       " };
                writeln!(f, "{pad}{}", line.trim_start())?;
            }
        }
    }
    let chain = first.call_chain();
    if !chain.is_empty() {
        writeln!(f, "   call chain (innermost first):")?;
        for frame in &chain {
            writeln!(f, "       {frame}")?;
        }
    }
    Ok(())
}

fn write_fanout(f: &mut fmt::Formatter<'_>, fanout: &Fanout) -> fmt::Result {
    writeln!(
        f,
        "── {} were alive at once; max_tasks = {}",
        count(fanout.peak, "spawned task"),
        fanout.limit
    )?;
    writeln!(f, "   at the peak:")?;
    for (location, n) in &fanout.sites {
        writeln!(f, "   {n:>6} spawned at {}", site(location))?;
    }
    writeln!(
        f,
        "   To fix: bound the fan-out (a Semaphore, a JoinSet drained as it goes, \
         or buffer_unordered), or raise max_tasks if this many is expected."
    )
}

fn count(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}
