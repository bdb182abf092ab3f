//! A point-in-time view of a runtime's live tasks.

use std::fmt;
use std::panic::Location;
use std::time::Duration;

/// One live task, as seen by the hooks.
///
/// ```
/// # #[cfg(tokio_unstable)] {
/// let mut builder = tokio::runtime::Builder::new_current_thread();
/// let tracker = leakcheck::instrument(&mut builder);
/// let rt = builder.enable_all().build().unwrap();
/// rt.block_on(async {
///     let _parked = tokio::spawn(std::future::pending::<()>());
///     tokio::task::yield_now().await;
///     let snapshot = tracker.snapshot();
///     let task = &snapshot.tasks()[0];
///     assert!(task.spawn_site.unwrap().file().ends_with(".rs"));
///     assert_eq!(task.polls, 1);
/// });
/// # }
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct TaskInfo {
    /// tokio's task id (as `tokio::task::Id` prints it).
    pub id: u64,
    /// Where `spawn` was called. `None` in count mode.
    pub spawn_site: Option<&'static Location<'static>>,
    /// Who spawned it.
    pub parent: Parent,
    /// Who spawned the parent, and so on up to the root, as far as those
    /// tasks are still alive to ask (the test body or an ended task ends it).
    pub ancestors: Vec<Parent>,
    /// Time since it was spawned.
    pub age: Duration,
    /// Whether a poll is running right now.
    pub running: bool,
    /// Woken and waiting for a worker to poll it. Known only with the
    /// `tracing` feature (tokio reports wakes there); `false` otherwise.
    pub scheduled: bool,
    /// How many times it has been polled.
    pub polls: u64,
    /// Time since its last poll ended (its age if never polled).
    pub idle: Duration,
    /// Total time spent inside its polls.
    pub busy: Duration,
    /// Its name, for tasks spawned with `tokio::task::Builder::name`.
    pub name: Option<String>,
    /// Spawned after the tracker's baseline.
    pub since_baseline: bool,
    /// Wakers of this task alive anywhere, with the `tracing` feature.
    pub wakers: Option<usize>,
    /// Idle, not woken, polled at least once, and no waker left anywhere:
    /// nothing can ever wake it. Needs the `tracing` feature.
    pub never_wakes: bool,
    /// Where it waits. Filled in for leaked tasks when leakcheck's
    /// `taskdump` feature is on; [`AwaitTrace::NotTaken`] otherwise.
    pub waiting: AwaitTrace,
    pub(crate) chain: u32,
}

/// Where a task is suspended: the await chain from tokio's task dump.
///
/// ```
/// let trace = leakcheck::AwaitTrace::Frames(vec![
///     "tokio::sync::notify::Notified".into(),
///     "my_app::worker::run::{{closure}} at src/worker.rs:51:28".into(),
/// ]);
/// assert!(trace.to_string().contains("src/worker.rs:51:28"));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum AwaitTrace {
    /// No trace was asked for (the `taskdump` feature is off, or this is a
    /// snapshot rather than a leak report).
    #[default]
    NotTaken,
    /// The await chain, innermost first: the tokio future it waits on, then
    /// the user's frames (tokio/std/leakcheck frames in between left out).
    Frames(Vec<String>),
    /// The task waits on something tokio cannot trace: a future that is not
    /// a tokio resource (`std::future::pending()`, a hand-written future,
    /// another library's channel).
    Opaque,
    /// No trace could be taken, and why.
    Unavailable(String),
}

impl fmt::Display for AwaitTrace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AwaitTrace::NotTaken => {
                f.write_str("not traced (enable leakcheck's `taskdump` feature)")
            }
            AwaitTrace::Frames(lines) => {
                f.write_str("waiting at (innermost first):")?;
                lines.iter().try_for_each(|l| write!(f, "\n    {l}"))
            }
            AwaitTrace::Opaque => f.write_str(
                "waiting on something tokio's task dump has no frames for: a future tokio \
                 does not trace (std::future::pending(), a hand-written future, another \
                 library's channel), or a tokio future spawned directly with no async fn \
                 above it (e.g. tokio::spawn(sleep(..)))",
            ),
            AwaitTrace::Unavailable(why) => write!(f, "no await trace: {why}"),
        }
    }
}

/// Who spawned a task.
///
/// ```
/// let parent = leakcheck::Parent::TestBody;
/// assert_eq!(parent.to_string(), "the test body");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Parent {
    /// The `#[leakcheck::test]` body, outside any task.
    TestBody,
    /// Another task of the same runtime.
    Task {
        /// The parent's id.
        id: u64,
        /// The parent's spawn site.
        spawn_site: &'static Location<'static>,
        /// False if the parent has already ended: this task outlived it.
        alive: bool,
    },
    /// Code outside any task of this runtime (`block_on`, another thread,
    /// a `spawn_blocking` closure), or unknown.
    Outside,
}

impl fmt::Display for Parent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Parent::TestBody => f.write_str("the test body"),
            Parent::Outside => f.write_str("code outside any task of this runtime"),
            Parent::Task {
                id,
                spawn_site,
                alive: true,
            } => {
                write!(f, "task {id} (spawned at {})", site(spawn_site))
            }
            Parent::Task {
                id,
                spawn_site,
                alive: false,
            } => write!(
                f,
                "task {id} (spawned at {}), which has ended: this task outlived its parent",
                site(spawn_site)
            ),
        }
    }
}

/// `path:line:col`.
pub(crate) fn site(l: &Location<'_>) -> String {
    format!("{}:{}:{}", l.file(), l.line(), l.column())
}

impl TaskInfo {
    /// The call chain that spawned this task, innermost first, as
    /// `function at path:line:col` lines, with tokio/std/leakcheck frames
    /// left out. Empty without frame pointers or in count mode.
    ///
    /// Symbolizes on first use (milliseconds), then comes from a cache.
    ///
    /// ```
    /// # #[cfg(tokio_unstable)] {
    /// let mut builder = tokio::runtime::Builder::new_current_thread();
    /// let tracker = leakcheck::instrument(&mut builder);
    /// let rt = builder.build().unwrap();
    /// rt.block_on(async {
    ///     let _t = tokio::spawn(std::future::pending::<()>());
    ///     let chain = tracker.snapshot().tasks()[0].call_chain();
    ///     assert!(chain.iter().any(|f| f.contains("rust_out")), "{chain:?}");
    /// });
    /// # }
    /// ```
    pub fn call_chain(&self) -> Vec<String> {
        crate::chain::resolve(self.chain)
            .iter()
            .filter(|f| !f.is_internal())
            .map(ToString::to_string)
            .collect()
    }

    /// `task 7 (spawned at src/server.rs:30:5), spawned by the test body`.
    pub(crate) fn lineage(&self) -> String {
        std::iter::once(&self.parent)
            .chain(&self.ancestors)
            .map(Parent::to_string)
            .collect::<Vec<_>>()
            .join(", spawned by ")
    }

    /// `task 12 [idle 1.2s, 3 polls]`, the short form used in reports.
    pub(crate) fn headline(&self) -> String {
        let state = if self.running {
            format!("running, {}", polls(self.polls))
        } else if self.scheduled {
            format!("scheduled, {}", polls(self.polls))
        } else if self.polls == 0 {
            format!("never polled, {} old", human(self.age))
        } else {
            format!("idle {}, {}", human(self.idle), polls(self.polls))
        };
        let state = if self.never_wakes {
            format!("{state}, never wakes")
        } else {
            state
        };
        let name = self
            .name
            .as_deref()
            .map(|n| format!(" \"{n}\""))
            .unwrap_or_default();
        format!("task {}{name} [{state}]", self.id)
    }
}

fn polls(n: u64) -> String {
    if n == 1 {
        "1 poll".into()
    } else {
        format!("{n} polls")
    }
}

/// `1.2s`, `350ms`, `12µs`: short and stable enough to read at a glance.
pub(crate) fn human(d: Duration) -> String {
    if d >= Duration::from_secs(60) {
        format!("{}m{}s", d.as_secs() / 60, d.as_secs() % 60)
    } else if d >= Duration::from_secs(1) {
        format!("{:.1}s", d.as_secs_f64())
    } else if d >= Duration::from_millis(1) {
        format!("{}ms", d.as_millis())
    } else if d.is_zero() {
        "0ms".into()
    } else {
        format!("{}µs", d.as_micros())
    }
}

/// Every live task of a runtime at one moment.
///
/// `Display` prints one line per task, ordered by id, with its spawn site
/// and parent: the `pprof` goroutine dump of a tokio runtime. The alternate
/// form (`{:#}`) prints the task tree: each task under the task that spawned
/// it, roots (spawned outside any live task) first.
///
/// ```
/// # #[cfg(tokio_unstable)] {
/// let mut builder = tokio::runtime::Builder::new_multi_thread();
/// let tracker = leakcheck::instrument(&mut builder);
/// let rt = builder.worker_threads(1).build().unwrap();
/// let task = rt.spawn(std::future::pending::<()>());
/// let snapshot = tracker.snapshot();
/// assert_eq!(snapshot.tasks().len(), 1);
/// assert!(snapshot.to_string().contains("spawned at"));
/// assert!(format!("{snapshot:#}").starts_with("1 live task"));
/// task.abort();
/// # }
/// ```
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub(crate) tasks: Vec<TaskInfo>,
}

impl Snapshot {
    /// The tasks, ordered by id.
    ///
    /// ```
    /// assert!(leakcheck::Snapshot::default().tasks().is_empty());
    /// ```
    pub fn tasks(&self) -> &[TaskInfo] {
        &self.tasks
    }
}

impl fmt::Display for Snapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.tasks.len();
        writeln!(f, "{n} live task{}", if n == 1 { "" } else { "s" })?;
        if f.alternate() {
            return self.write_tree(f);
        }
        for t in &self.tasks {
            let at = t
                .spawn_site
                .map(site)
                .unwrap_or_else(|| "an unknown site".into());
            writeln!(
                f,
                "  {}, age {}, spawned at {at} by {}",
                t.headline(),
                human(t.age),
                t.parent
            )?;
        }
        Ok(())
    }
}

impl Snapshot {
    fn write_tree(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let live: std::collections::BTreeSet<u64> = self.tasks.iter().map(|t| t.id).collect();
        let parent_of = |t: &TaskInfo| match t.parent {
            Parent::Task { id, .. } if live.contains(&id) => Some(id),
            _ => None,
        };
        let mut children: std::collections::BTreeMap<Option<u64>, Vec<&TaskInfo>> =
            Default::default();
        for t in &self.tasks {
            children.entry(parent_of(t)).or_default().push(t);
        }
        let mut stack: Vec<(&TaskInfo, usize)> = children
            .get(&None)
            .into_iter()
            .flatten()
            .rev()
            .map(|t| (*t, 0))
            .collect();
        while let Some((t, depth)) = stack.pop() {
            let at = t
                .spawn_site
                .map(site)
                .unwrap_or_else(|| "an unknown site".into());
            let indent = "    ".repeat(depth);
            let by = if depth == 0 {
                format!(", by {}", t.parent)
            } else {
                String::new()
            };
            writeln!(
                f,
                "  {indent}└ {} spawned at {at}, age {}{by}",
                t.headline(),
                human(t.age)
            )?;
            for child in children.get(&Some(t.id)).into_iter().flatten().rev() {
                stack.push((child, depth + 1));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_well() {
        assert_eq!(human(Duration::from_millis(1200)), "1.2s");
        assert_eq!(human(Duration::from_millis(350)), "350ms");
        assert_eq!(human(Duration::from_secs(125)), "2m5s");
    }
}
