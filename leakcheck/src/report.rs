//! [`Report`]: what a failed check says, as a tree of leaked-task groups.

use std::collections::BTreeSet;
use std::fmt;
use std::panic::Location;
use std::time::Duration;

use crate::fanout::Fanout;
use crate::site::SpawnSite;
use crate::snapshot::{AwaitTrace, TaskInfo};
use crate::text::{count, human};
use crate::thread::ThreadInfo;

/// Why a check failed.
///
/// `Display` renders the full report: a headline with the count and the
/// test name, then the leaked tasks as a tree of groups (tasks the checked
/// code spawned first, the tasks they spawned nested under them, identical
/// leaks grouped with a count), each with its state, parent, where it waits
/// and the call chain that spawned it; then notes that hold for the whole
/// report and what to do.
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
    /// What was checked, and where.
    pub kind: ReportKind,
    /// How long the check waited.
    pub grace: Duration,
    /// Leaked tasks as a tree: groups of tasks the checked code (or code
    /// outside any leaked task) spawned, each holding the groups its tasks
    /// spawned. Largest group first at every level.
    pub groups: Vec<LeakGroup>,
    /// Leaked tasks leakcheck knows only by count: without
    /// `tokio_unstable`, tasks alive on the test's runtime; in a plain
    /// `#[tokio::test]`, tasks spawned where leakcheck's layer could not
    /// see them, alive on the test's runtime or (with the `process`
    /// feature) task ids that went by out of its sight, which may have
    /// ended. The report's notes say which.
    pub unidentified: usize,
    /// `spawn_blocking` work still running or queued.
    pub blocking: usize,
    /// Set when `max_tasks` was exceeded.
    pub fanout: Option<Fanout>,
    /// OS threads still running (`verify_test_main!()` only).
    pub threads: Vec<ThreadInfo>,
    /// What holds for every task in the report, said once (for example
    /// why no task has an await trace).
    pub notes: Vec<String>,
    /// The leaked tasks that were polled again during the check's grace
    /// (for the advice on tasks waiting on a timer).
    pub(crate) woke_in_grace: BTreeSet<u64>,
    /// `unidentified` counts task ids that went by out of sight, rather
    /// than tasks tokio counts alive: they may have ended.
    pub(crate) out_of_sight: bool,
}

/// What a [`Report`] is about.
///
/// ```
/// let kind = leakcheck::ReportKind::default();
/// assert_eq!(kind, leakcheck::ReportKind::EndOfTest);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReportKind {
    /// Tasks still alive after the test body returned and the grace ran out.
    #[default]
    EndOfTest,
    /// Tasks still alive at a `verify_none()` / `find_leaks()` call.
    Check {
        /// Where the check was called.
        at: &'static Location<'static>,
    },
    /// Tasks that can never wake (`Tracker::find_never_waking`).
    NeverWakes,
    /// Tasks and threads still running when a test binary checked by
    /// `verify_test_main!()` ended.
    EndOfBinary,
}

/// Leaked tasks with the same spawn site and call chain, spawned by the
/// same group one level up (or by the checked code), and the groups they
/// spawned in turn.
///
/// ```
/// let group = leakcheck::LeakGroup::default();
/// assert!(group.tasks.is_empty() && group.children.is_empty());
/// ```
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct LeakGroup {
    /// Where they were spawned.
    pub spawn_site: Option<SpawnSite>,
    /// The tasks, ordered by id.
    pub tasks: Vec<TaskInfo>,
    /// Groups of leaked tasks that these tasks spawned.
    pub children: Vec<LeakGroup>,
}

impl LeakGroup {
    fn leaked(&self) -> usize {
        self.tasks.len() + self.children.iter().map(LeakGroup::leaked).sum::<usize>()
    }

    fn collect<'a>(&'a self, out: &mut Vec<&'a TaskInfo>) {
        out.extend(&self.tasks);
        for child in &self.children {
            child.collect(out);
        }
    }
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
        self.groups.iter().map(LeakGroup::leaked).sum::<usize>() + self.unidentified
    }

    /// Every leaked task with detail, roots first, depth first.
    ///
    /// ```
    /// assert_eq!(leakcheck::Report::default().tasks().count(), 0);
    /// ```
    pub fn tasks(&self) -> impl Iterator<Item = &TaskInfo> {
        let mut all = Vec::new();
        for group in &self.groups {
            group.collect(&mut all);
        }
        all.into_iter()
    }

    pub(crate) fn is_failure(&self) -> bool {
        self.leaked() > 0 || self.blocking > 0 || self.fanout.is_some() || !self.threads.is_empty()
    }

    /// Moves what every task shares into [`Report::notes`]: an await-trace
    /// gap that applies to all of them, a build without line tables, what
    /// await traces cannot show.
    pub(crate) fn gather_notes(&mut self) {
        let tasks: Vec<&TaskInfo> = self.tasks().collect();
        let shared_gap = match tasks.first().map(|t| &t.waiting) {
            Some(AwaitTrace::Unavailable(why))
                if tasks.iter().all(|t| t.waiting == tasks[0].waiting) =>
            {
                Some(why.clone())
            }
            _ => None,
        };
        let no_lines = tasks.iter().any(|t| t.chain_has_lines() == Some(false));
        let traced = tasks
            .iter()
            .any(|t| matches!(t.waiting, AwaitTrace::Tree(_)));
        if let Some(why) = shared_gap {
            self.notes.push(format!("no await traces: {why}"));
        }
        if no_lines {
            self.notes.push(NO_LINES.to_owned());
        }
        if traced {
            self.notes.push(PARTIAL_TRACES.to_owned());
        }
    }

    fn headline(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let leaked = self.leaked();
        let tasks = count(leaked, "task");
        let name = &self.name;
        match self.kind {
            ReportKind::NeverWakes => writeln!(
                f,
                "leakcheck: {tasks} in `{name}` can never wake: idle, not scheduled, and no \
                 waker is left anywhere to wake {}",
                if leaked == 1 { "it" } else { "them" }
            ),
            ReportKind::EndOfBinary => {
                let threads = count(self.threads.len(), "thread");
                let what = match (self.threads.len(), leaked) {
                    (_, 0) => threads,
                    (0, _) => tasks,
                    _ => format!("{threads} and {tasks}"),
                };
                let waited = human(self.grace);
                writeln!(f, "leakcheck: `{name}` leaves {what} running after its tests (waited {waited})")
            }
            _ if leaked == 0 => writeln!(f, "leakcheck: `{name}` failed its task checks"),
            ReportKind::EndOfTest => writeln!(
                f,
                "leakcheck: {tasks} leaked by `{name}`: still alive {} after the test body returned",
                human(self.grace)
            ),
            ReportKind::Check { at } => writeln!(
                f,
                "leakcheck: {tasks} leaked by `{name}`: alive at this check ({}:{}:{}), after a \
                 grace of {}",
                crate::paths::short(at.file()),
                at.line(),
                at.column(),
                human(self.grace)
            ),
        }
    }

    fn advice(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.kind == ReportKind::EndOfBinary {
            return self.binary_advice(f);
        }
        if self.leaked() == 0 && self.blocking == 0 {
            return Ok(());
        }
        let (when, held) = match self.kind {
            ReportKind::Check { .. } => (
                "before this check",
                "; a client, sender or handle the test still holds at this line keeps its \
                 task alive: drop it first",
            ),
            _ => ("before the test body returns", ""),
        };
        writeln!(f)?;
        write!(
            f,
            "To fix: stop these tasks {when} (abort or await their JoinHandles, drop the \
             senders they wait on, or signal shutdown and await it{held})."
        )?;
        match self.groups.first().and_then(|g| g.spawn_site) {
            Some(site) => writeln!(
                f,
                " To accept one and every task it spawned, ignore it: \
                 `ignore_spawn_site = \"{site}\"`, as an argument of #[leakcheck::test] or in \
                 leakcheck.toml."
            ),
            None => writeln!(f),
        }
    }

    /// What to do about threads and tasks a test binary left behind.
    fn binary_advice(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rule = match (self.threads.first(), self.groups.first()) {
            (Some(thread), _) if thread.name.is_some() => {
                format!(
                    "ignore_name(\"{}\")",
                    thread.name.as_deref().unwrap_or_default()
                )
            }
            (_, Some(group)) if group.spawn_site.is_some() => {
                let site = group.spawn_site.map(|s| s.to_string()).unwrap_or_default();
                format!("ignore_spawn_site(\"{site}\")")
            }
            _ => "ignore_fn(\"...\")".to_owned(),
        };
        writeln!(f)?;
        writeln!(
            f,
            "To fix: join the threads and stop the tasks before the test that started them \
             returns. To accept one, ignore it by name, function or site: \
             `leakcheck::verify_test_main!(leakcheck::Options::new().{rule})`, or in \
             leakcheck.toml."
        )
    }
}

/// The note for reports with await traces: what a trace cannot show, so
/// that a `select!` whose other arm waits on a socket is not misread.
const PARTIAL_TRACES: &str = "await traces leave out what tokio's task dump cannot see: a branch \
    waiting on socket readiness (`accept`, `readable()`) or inside a hand-written future";

/// The note for binaries whose call chains have no file and line.
const NO_LINES: &str = "call chains show functions without file:line, and inlined callers are \
    missing: this binary has no debug info. For full chains build the tests with line tables, \
    e.g. `[profile.release] debug = \"line-tables-only\"`";

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.headline(f)?;
        for thread in &self.threads {
            writeln!(f)?;
            write_thread(f, thread)?;
        }
        let shared = Shared {
            gap: self
                .notes
                .iter()
                .any(|n| n.starts_with("no await traces: ")),
            grace: self.grace,
            woke: &self.woke_in_grace,
        };
        for group in &self.groups {
            writeln!(f)?;
            write_group(f, group, "", None, &shared)?;
        }
        if self.unidentified > 0 {
            writeln!(f)?;
            let what = match self.out_of_sight {
                true => "spawned out of leakcheck's sight, alive or not",
                false => "alive that leakcheck knows only by count",
            };
            let n = count(self.unidentified, "task");
            writeln!(f, "── {n} {what} (the note below says why)")?;
        }
        if self.blocking > 0 {
            writeln!(f)?;
            write_blocking(f, self)?;
        }
        if let Some(fanout) = &self.fanout {
            writeln!(f)?;
            write_fanout(f, fanout)?;
        }
        if !self.notes.is_empty() {
            writeln!(f)?;
        }
        for note in &self.notes {
            writeln!(f, "note: {note}")?;
        }
        self.advice(f)
    }
}

/// Why count mode knows leaked tasks only by number.
pub(crate) const COUNT_MODE: &str = "spawn sites are unknown: this build lacks `--cfg \
    tokio_unstable`, so only tokio's live-task count is available. To see where each task was \
    spawned, add to .cargo/config.toml:\n\n    [build]\n    rustflags = [\"--cfg\", \
    \"tokio_unstable\", \"-C\", \"force-frame-pointers=yes\"]";

/// What every group of a report is printed with.
struct Shared<'a> {
    /// The await-trace gap is said once, as a note.
    gap: bool,
    /// How long the check waited.
    grace: Duration,
    /// Tasks polled again during the grace.
    woke: &'a BTreeSet<u64>,
}

/// One group and, indented under it, the groups its tasks spawned.
/// `spawner` is the group one level up, if any.
fn write_group(
    f: &mut fmt::Formatter<'_>,
    group: &LeakGroup,
    indent: &str,
    spawner: Option<&LeakGroup>,
    shared: &Shared<'_>,
) -> fmt::Result {
    let n = group.tasks.len();
    let site = group
        .spawn_site
        .map_or_else(|| "an unknown site".to_owned(), |s| s.to_string());
    let (mark, body) = match spawner {
        None => ("── ", format!("{indent}   ")),
        Some(_) => ("└── ", format!("{indent}    ")),
    };
    let by = match spawner {
        Some(up) if up.tasks.len() == 1 => format!(" by task {} (above)", up.tasks[0].id),
        Some(_) => " by the tasks above".to_owned(),
        None => String::new(),
    };
    let home = match &group.tasks[0].home {
        crate::snapshot::Home::ThisRuntime => String::new(),
        elsewhere => format!(" {elsewhere}"),
    };
    let tasks = count(n, "task");
    writeln!(f, "{indent}{mark}{tasks} spawned at {site}{home}{by}")?;
    write_tasks(f, group, &body)?;
    let first = &group.tasks[0];
    if spawner.is_none() {
        writeln!(f, "{body}spawned by: {}", first.lineage())?;
    }
    write_waiting(f, first, &body, shared.gap)?;
    if let Some(wake) = first.next_wake {
        writeln!(f, "{body}{}", wake_line(wake, first, shared))?;
    }
    let chain = first.call_chain();
    if !chain.is_empty() {
        writeln!(f, "{body}call chain (innermost first):")?;
        for frame in &chain {
            writeln!(f, "{body}    {frame}")?;
        }
    }
    for child in &group.children {
        write_group(f, child, &body, Some(group), shared)?;
    }
    Ok(())
}

/// What a pending timer means for a leaked task. One that woke during the
/// grace (polled again since the check's first look) and went back to
/// waiting, a loop on a timer most likely, will not be ended by a longer
/// grace; one that has not may end when its timer fires.
fn wake_line(wake: Duration, task: &TaskInfo, shared: &Shared<'_>) -> String {
    let wake = human(wake);
    match shared.woke.contains(&task.id) {
        true => format!(
            "next wake in {wake}: it already woke during the {} grace and went back to \
             waiting, so a longer grace is unlikely to end it (stop the task)",
            human(shared.grace)
        ),
        false => format!(
            "next wake in {wake}: a timer is pending, so it may end on its own (raise the grace \
             past it, or stop the task)"
        ),
    }
}

/// The first few tasks of a group, one per line, then the rest by id.
fn write_tasks(f: &mut fmt::Formatter<'_>, group: &LeakGroup, body: &str) -> fmt::Result {
    for task in group.tasks.iter().take(SHOWN_PER_GROUP) {
        writeln!(f, "{body}{}, age {}", task.headline(), human(task.age))?;
    }
    let rest = &group.tasks[SHOWN_PER_GROUP.min(group.tasks.len())..];
    if !rest.is_empty() {
        let ids: Vec<String> = rest.iter().take(8).map(|t| t.id.to_string()).collect();
        let more = if rest.len() > 8 { ", …" } else { "" };
        writeln!(
            f,
            "{body}… and {} more: tasks {}{more}",
            rest.len(),
            ids.join(", ")
        )?;
    }
    let orphans = group
        .tasks
        .iter()
        .filter(|t| matches!(t.parent, crate::Parent::Task { alive: false, .. }))
        .count();
    if orphans > 0 && orphans < group.tasks.len() {
        writeln!(f, "{body}({orphans} of them outlived their parent task)")?;
    }
    Ok(())
}

fn write_waiting(
    f: &mut fmt::Formatter<'_>,
    task: &TaskInfo,
    body: &str,
    shared_gap: bool,
) -> fmt::Result {
    match &task.waiting {
        AwaitTrace::NotTaken => Ok(()),
        AwaitTrace::Unavailable(_) if shared_gap => Ok(()),
        waiting => {
            for (i, line) in waiting.to_string().lines().enumerate() {
                let pad = if i == 0 { "" } else { "    " };
                // the trace's own indent, once: deeper levels keep theirs
                writeln!(
                    f,
                    "{body}{pad}{}",
                    line.strip_prefix("    ").unwrap_or(line)
                )?;
            }
            Ok(())
        }
    }
}

fn write_thread(f: &mut fmt::Formatter<'_>, thread: &ThreadInfo) -> fmt::Result {
    let name = thread.name.as_deref().unwrap_or("an unnamed thread");
    write!(f, "── thread \"{name}\" (tid {})", thread.tid)?;
    match &thread.test {
        Some(test) => writeln!(f, ", started by test `{test}`")?,
        None => writeln!(f)?,
    }
    let chain = thread.call_chain();
    match chain.first() {
        Some(first) => writeln!(f, "   started at {first}")?,
        None => writeln!(f, "   started where its call chain is unknown")?,
    }
    if chain.len() > 1 {
        writeln!(f, "   call chain (innermost first):")?;
        for frame in &chain {
            writeln!(f, "       {frame}")?;
        }
    }
    Ok(())
}

fn write_blocking(f: &mut fmt::Formatter<'_>, report: &Report) -> fmt::Result {
    writeln!(
        f,
        "── {} still running on runtime `{}` after {}",
        count(report.blocking, "spawn_blocking task"),
        report.name,
        human(report.grace)
    )?;
    writeln!(
        f,
        "   (blocking tasks fire no spawn hook, so their spawn sites are unknown; the runtime \
         was shut down without waiting for them)"
    )
}

fn write_fanout(f: &mut fmt::Formatter<'_>, fanout: &Fanout) -> fmt::Result {
    writeln!(
        f,
        "── {} were alive at once; max_tasks = {}",
        count(fanout.peak, "spawned task"),
        fanout.limit
    )?;
    writeln!(f, "   at the peak:")?;
    for (site, n) in &fanout.sites {
        writeln!(f, "   {n:>6} spawned at {site}")?;
    }
    writeln!(
        f,
        "   To fix: bound the fan-out (a Semaphore, a JoinSet drained as it goes, or \
         buffer_unordered), or raise max_tasks if this many is expected."
    )
}
