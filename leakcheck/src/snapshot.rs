//! A point-in-time view of a runtime's live tasks: [`Snapshot`],
//! [`TaskInfo`] and the types in its fields.

use std::fmt;
use std::time::Duration;

use crate::capture::Capture;
use crate::site::SpawnSite;
use crate::text::{count, human};

/// One live task.
///
/// ```
/// # #[cfg(tokio_unstable)] {
/// let mut builder = tokio::runtime::Builder::new_current_thread();
/// let tracker = leakcheck::instrument(&mut builder);
/// let rt = builder.enable_all().build().unwrap();
/// rt.block_on(async {
///     let (_tx, rx) = tokio::sync::oneshot::channel::<()>();
///     let _parked = tokio::spawn(async move { rx.await.ok() });
///     tokio::task::yield_now().await;
///     let snapshot = tracker.snapshot();
///     let task = &snapshot.tasks()[0];
///     assert!(task.spawn_site.unwrap().file().ends_with(".rs"));
///     assert_eq!(task.state, leakcheck::TaskState::Idle);
///     assert_eq!(task.polls, 1);
/// });
/// # }
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct TaskInfo {
    /// tokio's task id (as `tokio::task::Id` prints it).
    pub id: u64,
    /// Its name, for tasks spawned with `tokio::task::Builder::name` (needs
    /// the `tracing` feature).
    pub name: Option<String>,
    /// Where it was spawned. `None` in count mode.
    pub spawn_site: Option<SpawnSite>,
    /// Who spawned it.
    pub parent: Parent,
    /// Who spawned the parent, and so on up to the root, as far as those
    /// tasks are still alive to ask.
    pub ancestors: Vec<Parent>,
    /// Whether it runs, waits to run, or waits to be woken.
    pub state: TaskState,
    /// How many times it has been polled (0 when poll state is not captured).
    pub polls: u64,
    /// Time since it was spawned.
    pub age: Duration,
    /// Time since its last poll ended (its age if never polled; zero while
    /// running). `None` when poll state is not captured.
    pub idle: Option<Duration>,
    /// Total time spent inside its polls.
    pub busy: Duration,
    /// Wakers of this task alive anywhere (needs the `tracing` feature).
    pub wakers: Option<usize>,
    /// When its next timer fires, from now (needs the `tracing` feature):
    /// a task waiting on a `sleep` or an `Interval` may end on its own.
    pub next_wake: Option<Duration>,
    /// Spawned after the tracker's baseline.
    pub since_baseline: bool,
    /// Where it lives: the checked runtime, a `LocalSet`, or another runtime.
    pub home: Home,
    /// The test whose code spawned it, when tokio's tracing spans showed
    /// the spawn (the `tracing` feature).
    pub test: Option<String>,
    /// Where it waits. Filled in for leaked tasks when leakcheck's
    /// `taskdump` feature is on; [`AwaitTrace::NotTaken`] otherwise.
    pub waiting: AwaitTrace,
    pub(crate) chain: u32,
}

/// What a task is doing, from tokio's poll hooks (and wakes, with the
/// `tracing` feature).
///
/// ```
/// assert_eq!(leakcheck::TaskState::Idle.to_string(), "idle");
/// assert_eq!(leakcheck::TaskState::NeverWakes.as_str(), "never_wakes");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TaskState {
    /// Poll state is not captured ([`Capture::SpawnSites`](crate::Capture::SpawnSites),
    /// or count mode).
    Unknown,
    /// Spawned, not polled yet.
    NotPolled,
    /// A poll is running right now.
    Running,
    /// Woken and waiting for a worker to poll it (known with the `tracing`
    /// feature; without it such a task shows as idle).
    Scheduled,
    /// Parked after its last poll, waiting to be woken.
    Idle,
    /// Parked, and no waker for it exists anywhere: nothing can ever wake
    /// it (needs the `tracing` feature).
    NeverWakes,
}

impl TaskState {
    /// A stable machine-readable name: `unknown`, `not_polled`, `running`,
    /// `scheduled`, `idle`, `never_wakes`.
    ///
    /// ```
    /// assert_eq!(leakcheck::TaskState::NotPolled.as_str(), "not_polled");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            TaskState::Unknown => "unknown",
            TaskState::NotPolled => "not_polled",
            TaskState::Running => "running",
            TaskState::Scheduled => "scheduled",
            TaskState::Idle => "idle",
            TaskState::NeverWakes => "never_wakes",
        }
    }
}

impl fmt::Display for TaskState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.as_str().replace('_', " "))
    }
}

/// Where a task is suspended: the await tree from tokio's task dump.
///
/// ```
/// use leakcheck::{AwaitNode, AwaitTrace};
/// let mut run = AwaitNode::leaf("my_app::worker::run at src/worker.rs:51:28");
/// run.children.push(AwaitNode::leaf("tokio::sync::notify::Notified"));
/// let trace = AwaitTrace::Tree(vec![run]);
/// assert_eq!(
///     trace.to_string(),
///     "waiting at:\n    my_app::worker::run at src/worker.rs:51:28\n    └─ tokio::sync::notify::Notified"
/// );
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum AwaitTrace {
    /// No trace was asked for (the `taskdump` feature is off, or this is a
    /// snapshot rather than a leak report).
    #[default]
    NotTaken,
    /// The await tree, outermost first: the task's own future at the root,
    /// one branch per future it awaits at once (`select!`, `join!`), down to
    /// the tokio resource each branch waits on. tokio/std/leakcheck frames
    /// in between are left out; branches are in a stable order.
    Tree(Vec<AwaitNode>),
    /// The task waits on something tokio's dump cannot see.
    Opaque,
    /// No trace could be taken, and why.
    Unavailable(String),
}

/// One frame of an [`AwaitTrace::Tree`] and the frames it awaits.
///
/// ```
/// let leaf = leakcheck::AwaitNode::leaf("tokio::time::sleep::Sleep");
/// assert!(leaf.children.is_empty());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
#[non_exhaustive]
pub struct AwaitNode {
    /// `function at path:line:col`, or just the function for tokio's leaf
    /// futures.
    pub frame: String,
    /// What this frame awaits: one child normally, several for `select!`
    /// and `join!`.
    pub children: Vec<AwaitNode>,
}

impl AwaitNode {
    /// A node with no children.
    ///
    /// ```
    /// assert_eq!(leakcheck::AwaitNode::leaf("x").frame, "x");
    /// ```
    pub fn leaf(frame: impl Into<String>) -> AwaitNode {
        AwaitNode {
            frame: frame.into(),
            children: Vec::new(),
        }
    }

    /// Lines of the tree, each prefixed with its branch drawing.
    pub(crate) fn lines(&self, prefix: &str, last: bool, root: bool, out: &mut Vec<String>) {
        let (here, below) = match (root, last) {
            (true, _) => (String::new(), String::new()),
            (false, true) => ("└─ ".to_owned(), "   ".to_owned()),
            (false, false) => ("├─ ".to_owned(), "│  ".to_owned()),
        };
        out.push(format!("{prefix}{here}{}", self.frame));
        let n = self.children.len();
        for (i, child) in self.children.iter().enumerate() {
            child.lines(&format!("{prefix}{below}"), i + 1 == n, false, out);
        }
    }
}

/// The one line a report prints for a task tokio's dump has no frames for.
pub(crate) const OPAQUE: &str = "no await trace: it waits on something tokio's task dump cannot \
    see: futures-util's FuturesUnordered or join_all, socket readiness (accept, readable()), a \
    hand-written future, or std::future::pending()";

impl fmt::Display for AwaitTrace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AwaitTrace::NotTaken => {
                f.write_str("not traced (enable leakcheck's `taskdump` feature)")
            }
            AwaitTrace::Tree(roots) => {
                f.write_str("waiting at:")?;
                let mut lines = Vec::new();
                for root in roots {
                    root.lines("", true, true, &mut lines);
                }
                lines.iter().try_for_each(|l| write!(f, "\n    {l}"))
            }
            AwaitTrace::Opaque => f.write_str(OPAQUE),
            AwaitTrace::Unavailable(why) => write!(f, "no await trace: {why}"),
        }
    }
}

/// Where a task lives, as seen from the check that found it.
///
/// ```
/// let home = leakcheck::Home::LocalSet;
/// assert_eq!(home.to_string(), "on a LocalSet");
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Home {
    /// The runtime the check belongs to: the test's own, or the one the
    /// tracker instruments.
    #[default]
    ThisRuntime,
    /// A `tokio::task::LocalSet` (tokio runs no task hooks there; such tasks
    /// are seen through tokio's tracing spans).
    LocalSet,
    /// Another runtime: one kept in a static, or reached through a `Handle`
    /// kept elsewhere.
    OtherRuntime {
        /// tokio's id of that runtime, when it has polled the task.
        id: Option<String>,
        /// The name of the thread that first polled the task.
        thread: Option<String>,
    },
}

impl fmt::Display for Home {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Home::ThisRuntime => f.write_str("on this runtime"),
            Home::LocalSet => f.write_str("on a LocalSet"),
            Home::OtherRuntime { id, thread } => {
                f.write_str("on another runtime")?;
                if let Some(id) = id {
                    write!(f, " (runtime {id}")?;
                    match thread {
                        Some(t) => write!(f, ", thread \"{t}\")")?,
                        None => f.write_str(")")?,
                    }
                }
                Ok(())
            }
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
    /// The checked code itself (a `#[leakcheck::test]` body), outside any task.
    TestBody,
    /// Another task.
    Task {
        /// The parent's id.
        id: u64,
        /// The parent's spawn site, where known.
        spawn_site: Option<SpawnSite>,
        /// False if the parent has already ended: this task outlived it.
        alive: bool,
    },
    /// Code outside any task of this runtime (`block_on`, another thread,
    /// a `spawn_blocking` closure), or unknown.
    Outside,
}

impl Parent {
    /// The parent task's spawn site, if the parent is a task and it is known.
    pub(crate) fn spawn_site(&self) -> Option<SpawnSite> {
        match self {
            Parent::Task { spawn_site, .. } => *spawn_site,
            _ => None,
        }
    }
}

impl fmt::Display for Parent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Parent::TestBody => f.write_str("the test body"),
            Parent::Outside => f.write_str("code outside any task of this runtime"),
            Parent::Task {
                id,
                spawn_site,
                alive,
            } => {
                write!(f, "task {id}")?;
                if let Some(site) = spawn_site {
                    write!(f, " (spawned at {site})")?;
                }
                if !alive {
                    f.write_str(", which has ended: this task outlived its parent")?;
                }
                Ok(())
            }
        }
    }
}

impl TaskInfo {
    /// The call chain that spawned this task, innermost first, as
    /// `function at path:line:col` lines, with tokio/std/leakcheck frames
    /// left out. Empty without frame pointers, in count mode, or below
    /// [`Capture::CallChains`](crate::Capture::CallChains).
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
        crate::chain::user_chain(self.chain)
    }

    /// Whether the user's frames in the call chain carry file and line (the
    /// binary has line tables). `None` when there are no such frames.
    pub(crate) fn chain_has_lines(&self) -> Option<bool> {
        let frames = crate::chain::resolve(self.chain);
        let mut user = crate::frame::user_frames(&frames).peekable();
        user.peek()?;
        Some(user.any(|f| f.position.is_some()))
    }

    /// `task 7 (spawned at src/server.rs:30:5), spawned by the test body`.
    pub(crate) fn lineage(&self) -> String {
        let mut line = std::iter::once(&self.parent)
            .chain(&self.ancestors)
            .map(Parent::to_string)
            .collect::<Vec<_>>()
            .join(", spawned by ");
        if let Some(test) = &self.test {
            line.push_str(&format!(" (test `{test}`)"));
        }
        line
    }

    /// `task 12 "name" [idle 1.2s, 3 polls]`, the short form in reports.
    pub(crate) fn headline(&self) -> String {
        let polls = count(self.polls as usize, "poll");
        let state = match self.state {
            TaskState::Unknown => "poll state not captured".to_owned(),
            TaskState::NotPolled => format!("never polled, {} old", human(self.age)),
            TaskState::Running | TaskState::Scheduled => format!("{}, {polls}", self.state),
            TaskState::Idle => format!("idle {}, {polls}", human(self.idle.unwrap_or_default())),
            TaskState::NeverWakes => format!(
                "idle {}, {polls}, never wakes",
                human(self.idle.unwrap_or_default())
            ),
        };
        let name = self
            .name
            .as_deref()
            .map(|n| format!(" \"{n}\""))
            .unwrap_or_default();
        format!("task {}{name} [{state}]", self.id)
    }

    /// The spawn site as reports print it.
    pub(crate) fn site_text(&self) -> String {
        self.spawn_site
            .map_or_else(|| "an unknown site".to_owned(), |s| s.to_string())
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
    pub(crate) capture: Capture,
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

    /// What the tracker that took it captures per task.
    ///
    /// ```
    /// let snapshot = leakcheck::Snapshot::default();
    /// assert_eq!(snapshot.capture(), leakcheck::Capture::CallChains);
    /// ```
    pub fn capture(&self) -> Capture {
        self.capture
    }

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
            let indent = "    ".repeat(depth);
            let by = match depth {
                0 => format!(", by {}", t.parent),
                _ => String::new(),
            };
            writeln!(
                f,
                "  {indent}└ {} spawned at {}, age {}{by}",
                t.headline(),
                t.site_text(),
                human(t.age)
            )?;
            for child in children.get(&Some(t.id)).into_iter().flatten().rev() {
                stack.push((child, depth + 1));
            }
        }
        Ok(())
    }
}

impl fmt::Display for Snapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.tasks.len();
        writeln!(f, "{} live task{}", n, if n == 1 { "" } else { "s" })?;
        if f.alternate() {
            return self.write_tree(f);
        }
        for t in &self.tasks {
            writeln!(
                f,
                "  {}, age {}, spawned at {} by {}",
                t.headline(),
                human(t.age),
                t.site_text(),
                t.parent
            )?;
        }
        Ok(())
    }
}

#[cfg(tokio_unstable)]
mod records;
#[cfg(all(tokio_unstable, feature = "tracing"))]
pub(crate) use records::refined;
#[cfg(tokio_unstable)]
pub(crate) use records::{from_records, poll_state, View};

#[cfg(feature = "tracing")]
mod seen;
#[cfg(feature = "tracing")]
pub(crate) use seen::from_seen;
