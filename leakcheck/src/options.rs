//! [`Options`]: what a tracker captures, how long a check waits, and which
//! tasks it ignores; with the ignore matching itself.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use crate::capture::Capture;
use crate::snapshot::{Parent, TaskInfo};
use crate::thread::ThreadInfo;

/// The grace used when neither the test nor the crate's settings set one.
pub(crate) const DEFAULT_GRACE: Duration = Duration::from_secs(1);

/// Settings for a tracker and its leak checks: what to capture, how long
/// to wait, and which tasks to ignore.
///
/// The tasks alive when the baseline was taken (the start of a
/// `#[leakcheck::test]` body) are never reported. An ignore rule that
/// matches a task also ignores every task spawned under it (its subtree).
/// Ignore rules need task identities, so in count mode (no
/// `--cfg tokio_unstable`) they match nothing.
///
/// ```
/// use std::time::Duration;
/// let options = leakcheck::Options::new()
///     .grace(Duration::from_millis(250))
///     .ignore_spawn_site("src/metrics.rs")
///     .ignore_fn("my_app::telemetry::start")
///     .ignore_name("flusher");
/// assert_eq!(options.grace_duration(), Duration::from_millis(250));
/// ```
#[derive(Debug, Clone, Default)]
pub struct Options {
    grace: Option<Duration>,
    max_tasks: Option<usize>,
    capture: Capture,
    ignore: Arc<Ignore>,
}

/// How far up the task tree an ignore rule is looked for.
const MAX_DEPTH: usize = 64;

/// The ignore rules, shared cheaply between clones of [`Options`].
#[derive(Debug, Clone, Default)]
pub(crate) struct Ignore {
    pub(crate) spawn_sites: Vec<String>,
    pub(crate) fns: Vec<String>,
    pub(crate) names: Vec<String>,
}

impl Options {
    /// Default options: capture everything, a grace of 1 s, no ignore rules.
    ///
    /// ```
    /// let options = leakcheck::Options::new();
    /// assert_eq!(options.grace_duration(), std::time::Duration::from_secs(1));
    /// ```
    pub fn new() -> Options {
        Options::default()
    }

    /// How much to record per task; see [`Capture`].
    ///
    /// ```
    /// let options = leakcheck::Options::new().capture(leakcheck::Capture::Polls);
    /// assert_eq!(options.capture_level(), leakcheck::Capture::Polls);
    /// ```
    pub fn capture(mut self, capture: Capture) -> Options {
        self.capture = capture;
        self
    }

    /// The capture level these options set.
    ///
    /// ```
    /// assert_eq!(leakcheck::Options::new().capture_level(), leakcheck::Capture::CallChains);
    /// ```
    pub fn capture_level(&self) -> Capture {
        self.capture
    }

    /// How long a check waits for spawned tasks to end before calling them
    /// leaked. Waiting ends the moment the last task ends; a clean check
    /// pays nothing.
    ///
    /// ```
    /// let options = leakcheck::Options::new().grace(std::time::Duration::from_millis(50));
    /// assert_eq!(options.grace_duration().as_millis(), 50);
    /// ```
    pub fn grace(mut self, grace: Duration) -> Options {
        self.grace = Some(grace);
        self
    }

    /// The grace checks will use: the one set, else 1 s.
    ///
    /// ```
    /// assert_eq!(leakcheck::Options::new().grace_duration().as_secs(), 1);
    /// ```
    pub fn grace_duration(&self) -> Duration {
        self.grace.unwrap_or(DEFAULT_GRACE)
    }

    /// Whether a grace was set explicitly.
    pub(crate) fn has_grace(&self) -> bool {
        self.grace.is_some()
    }

    /// Fail if more than `max` tasks spawned after the baseline were ever
    /// alive at the same time. Exact: counted in the spawn hook.
    ///
    /// ```
    /// let options = leakcheck::Options::new().max_tasks(64);
    /// assert_eq!(options.max_task_limit(), Some(64));
    /// ```
    pub fn max_tasks(mut self, max: usize) -> Options {
        self.max_tasks = Some(max);
        self
    }

    /// The `max_tasks` limit, if one is set.
    ///
    /// ```
    /// assert_eq!(leakcheck::Options::new().max_task_limit(), None);
    /// ```
    pub fn max_task_limit(&self) -> Option<usize> {
        self.max_tasks
    }

    /// Ignore tasks whose spawn site contains `text`, and every task spawned
    /// under them. The site is `path:line:col`, with the path as reports
    /// print it (`src/metrics.rs`, `pool-1.2.3/src/pool.rs`) or as rustc
    /// recorded it.
    ///
    /// ```
    /// let options = leakcheck::Options::new().ignore_spawn_site("src/metrics.rs:40");
    /// # let _ = options;
    /// ```
    pub fn ignore_spawn_site(mut self, text: impl Into<String>) -> Options {
        Arc::make_mut(&mut self.ignore)
            .spawn_sites
            .push(text.into());
        self
    }

    /// Ignore tasks with a function in their spawn call chain whose name
    /// contains `name` (e.g. `my_app::telemetry::start` or `hyper::`), and
    /// every task spawned under them.
    ///
    /// ```
    /// let options = leakcheck::Options::new().ignore_fn("my_app::telemetry::start");
    /// # let _ = options;
    /// ```
    pub fn ignore_fn(mut self, name: impl Into<String>) -> Options {
        Arc::make_mut(&mut self.ignore).fns.push(name.into());
        self
    }

    /// Ignore tasks named exactly `name` (see `tokio::task::Builder::name`),
    /// and every task spawned under them.
    ///
    /// ```
    /// let options = leakcheck::Options::new().ignore_name("flusher");
    /// # let _ = options;
    /// ```
    pub fn ignore_name(mut self, name: impl Into<String>) -> Options {
        Arc::make_mut(&mut self.ignore).names.push(name.into());
        self
    }

    /// The ignore rules.
    pub(crate) fn ignore(&self) -> &Ignore {
        &self.ignore
    }
}

impl Ignore {
    pub(crate) fn is_empty(&self) -> bool {
        self.spawn_sites.is_empty() && self.fns.is_empty() && self.names.is_empty()
    }

    /// Whether a rule matches `task` itself.
    fn matches(&self, task: &TaskInfo) -> bool {
        let by_site = || {
            task.spawn_site
                .is_some_and(|site| self.spawn_sites.iter().any(|s| site.contains(s)))
        };
        let by_name = || {
            let name = task.name.as_deref();
            self.names.iter().any(|n| Some(n.as_str()) == name)
        };
        let by_fn = || {
            !self.fns.is_empty()
                && crate::chain::resolve(task.chain)
                    .iter()
                    .any(|f| self.fns.iter().any(|p| f.matches_fn(p)))
        };
        by_site() || by_name() || by_fn()
    }

    /// Whether a rule matches a thread: its name (`ignore_name`), a function
    /// in the call chain that started it (`ignore_fn`), or where your code
    /// started it (`ignore_spawn_site`).
    #[cfg_attr(not(feature = "process"), allow(dead_code))]
    pub(crate) fn matches_thread(&self, thread: &ThreadInfo) -> bool {
        let chain = thread.call_chain();
        let named = |n: &String| thread.name.as_deref() == Some(n.as_str());
        let by_fn = |p: &String| {
            chain
                .iter()
                .any(|f| f.split(" at ").next().unwrap_or("").contains(p.as_str()))
        };
        let by_site = |s: &String| chain.first().is_some_and(|f| f.contains(s.as_str()));
        self.names.iter().any(named)
            || self.fns.iter().any(by_fn)
            || self.spawn_sites.iter().any(by_site)
    }

    /// The ids of the tasks in `candidates` that a rule matches, directly or
    /// through an ancestor. `live` is every live task (ancestors may be
    /// older than the baseline). Of an ancestor that has ended only its
    /// spawn site is known, so only `ignore_spawn_site` can match it.
    pub(crate) fn subtree_matches<'a>(
        &self,
        live: &'a [TaskInfo],
        candidates: impl Iterator<Item = &'a TaskInfo>,
    ) -> std::collections::HashSet<u64> {
        let mut ignored = std::collections::HashSet::new();
        if self.is_empty() {
            return ignored;
        }
        let by_id: HashMap<u64, &TaskInfo> = live.iter().map(|t| (t.id, t)).collect();
        let mut memo: HashMap<u64, bool> = HashMap::new();
        for task in candidates {
            if self.ignored(task, &by_id, &mut memo) {
                ignored.insert(task.id);
            }
        }
        ignored
    }

    fn ignored(
        &self,
        task: &TaskInfo,
        by_id: &HashMap<u64, &TaskInfo>,
        memo: &mut HashMap<u64, bool>,
    ) -> bool {
        // Walk up to the first ancestor with a known answer, then record
        // the answer for the whole path.
        let mut path = Vec::new();
        let mut current = Some(task);
        let answer = loop {
            let Some(t) = current else { break false };
            if let Some(&known) = memo.get(&t.id) {
                break known;
            }
            path.push(t.id);
            if self.matches(t) {
                break true;
            }
            if path.len() >= MAX_DEPTH {
                break false; // a cycle of reused ids, or absurdly deep
            }
            current = match t.parent {
                Parent::Task { id, .. } => match by_id.get(&id) {
                    Some(parent) => Some(*parent),
                    None => {
                        let ended = t.parent.spawn_site();
                        break ended
                            .is_some_and(|site| self.spawn_sites.iter().any(|s| site.contains(s)));
                    }
                },
                _ => None,
            };
        };
        for id in path {
            memo.insert(id, answer);
        }
        answer
    }
}
