//! [`Tracker`]: one runtime's live tasks, its baseline, and the leak check.

use std::fmt;
use std::pin::pin;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering::*};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[cfg(tokio_unstable)]
use parking_lot::Mutex;
use tokio::runtime::{Builder, Handle};
use tokio::sync::Notify;

use crate::context;
use crate::metrics;
use crate::options::Options;
use crate::report::Report;
#[cfg(tokio_unstable)]
use crate::snapshot::site;
use crate::snapshot::{Snapshot, TaskInfo};
use crate::wait::{Alarm, Waiting};

/// State shared by a [`Tracker`] and its runtime's hooks.
pub(crate) struct Shared {
    pub(crate) name: String,
    pub(crate) options: Options,
    /// Bumped by each baseline; tasks spawned in the current one are checked.
    pub(crate) generation: AtomicU32,
    /// Checks waiting for tasks to end; the terminate hook notifies only if > 0.
    pub(crate) waiters: AtomicUsize,
    pub(crate) notify: Notify,
    blocking_baseline: AtomicUsize,
    #[cfg(tokio_unstable)]
    pub(crate) table: crate::registry::Table,
    #[cfg(tokio_unstable)]
    pub(crate) chains: bool,
    /// The poll hooks are installed.
    #[cfg(tokio_unstable)]
    pub(crate) polls: bool,
    #[cfg(tokio_unstable)]
    pub(crate) fanout: Option<Mutex<crate::hooks::FanoutCounts>>,
    #[cfg(not(tokio_unstable))]
    alive_baseline: AtomicUsize,
}

/// Slots in a runtime's direct-mapped task table (more live tasks than this
/// still work, through a slower overflow map).
#[cfg(tokio_unstable)]
const TABLE_BITS: u32 = 14;

/// The live tasks of one instrumented runtime.
///
/// Made by [`instrument`] (or [`Options::instrument`]) before the runtime is
/// built. Cheap to clone. Tracks every task spawned on that runtime, with
/// spawn site, call chain, parent and poll state, and frees each record when
/// its task ends.
///
/// ```
/// # #[cfg(tokio_unstable)] {
/// let mut builder = tokio::runtime::Builder::new_current_thread();
/// let tracker = leakcheck::instrument(&mut builder);
/// let rt = builder.enable_all().build().unwrap();
/// rt.block_on(async {
///     let task = tokio::spawn(async {});
///     task.await.unwrap();
///     tracker.verify_none().await; // passes: the task ended
/// });
/// # }
/// ```
#[derive(Clone)]
pub struct Tracker {
    shared: Arc<Shared>,
}

impl fmt::Debug for Tracker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tracker")
            .field("name", &self.shared.name)
            .field("generation", &self.shared.generation.load(Relaxed))
            .finish_non_exhaustive()
    }
}

/// Hooks `builder`'s runtime into a new [`Tracker`] with default [`Options`].
///
/// Installs tokio's task hooks (`on_task_spawn`, `on_task_terminate`,
/// `on_before_task_poll`, `on_after_task_poll`) and `on_thread_start`/`stop`,
/// replacing any set before; set your own after this call only if you don't
/// need [`verify_none`] to find the tracker from the runtime's threads.
///
/// Without `--cfg tokio_unstable` no hooks exist: the tracker counts tasks
/// through tokio's stable metrics and has no per-task detail.
///
/// ```
/// let mut builder = tokio::runtime::Builder::new_multi_thread();
/// let tracker = leakcheck::instrument(&mut builder);
/// let rt = builder.worker_threads(2).build().unwrap();
/// # #[cfg(tokio_unstable)]
/// assert_eq!(tracker.live_count(), 0);
/// # drop(rt);
/// ```
pub fn instrument(builder: &mut Builder) -> Tracker {
    Options::new().instrument(builder)
}

impl Options {
    /// Like [`instrument`], with these options for the tracker's checks.
    ///
    /// ```
    /// let mut builder = tokio::runtime::Builder::new_current_thread();
    /// let tracker = leakcheck::Options::new().max_tasks(10).instrument(&mut builder);
    /// # let _ = tracker;
    /// ```
    pub fn instrument(self, builder: &mut Builder) -> Tracker {
        Tracker::install(builder, "instrumented runtime".into(), self, Capture::ALL)
    }
}

/// Which hooks a tracker installs. Everything, except in benchmarks that
/// measure the parts separately.
#[derive(Debug, Clone, Copy)]
#[cfg_attr(not(tokio_unstable), allow(dead_code))]
pub(crate) struct Capture {
    pub(crate) chains: bool,
    pub(crate) polls: bool,
}

impl Capture {
    pub(crate) const ALL: Capture = Capture {
        chains: true,
        polls: true,
    };
}

impl Tracker {
    pub(crate) fn install(
        builder: &mut Builder,
        name: String,
        options: Options,
        capture: Capture,
    ) -> Tracker {
        let tracker = Tracker {
            shared: Arc::new(Shared {
                name,
                generation: AtomicU32::new(0),
                waiters: AtomicUsize::new(0),
                notify: Notify::new(),
                blocking_baseline: AtomicUsize::new(0),
                #[cfg(tokio_unstable)]
                table: crate::registry::Table::new(TABLE_BITS),
                #[cfg(tokio_unstable)]
                chains: capture.chains,
                #[cfg(tokio_unstable)]
                polls: capture.polls,
                #[cfg(tokio_unstable)]
                fanout: options
                    .max_task_limit()
                    .map(crate::hooks::FanoutCounts::new),
                #[cfg(not(tokio_unstable))]
                alive_baseline: AtomicUsize::new(0),
                options,
            }),
        };
        #[cfg(tokio_unstable)]
        crate::hooks::install(builder, &tracker, capture.polls);
        #[cfg(not(tokio_unstable))]
        {
            let _ = capture;
            let t = tracker.clone();
            builder.on_thread_start(move || context::set_for_thread(Some(t.clone())));
            builder.on_thread_stop(|| context::set_for_thread(None));
        }
        tracker
    }

    /// The tracker behind a `#[leakcheck::test]`.
    pub(crate) fn for_test(builder: &mut Builder, name: &str, options: Options) -> Tracker {
        Tracker::install(builder, name.to_owned(), options, Capture::ALL)
    }

    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Makes this the tracker `verify_none()` finds on the test thread.
    pub(crate) fn enter(&self) -> context::Guard {
        context::enter(self, true)
    }

    /// The tracker of the runtime the calling thread belongs to: the
    /// `#[leakcheck::test]` runtime, or a runtime made with [`instrument`]
    /// when called from one of its threads.
    ///
    /// ```
    /// let mut builder = tokio::runtime::Builder::new_multi_thread();
    /// let _tracker = leakcheck::instrument(&mut builder);
    /// let rt = builder.worker_threads(1).build().unwrap();
    /// let on_worker = rt.block_on(rt.spawn(async { leakcheck::Tracker::current().is_some() }));
    /// assert!(on_worker.unwrap());
    /// assert!(leakcheck::Tracker::current().is_none(), "not on this thread");
    /// ```
    pub fn current() -> Option<Tracker> {
        context::current()
    }

    /// Number of tasks alive on the runtime (all of them, baseline included).
    ///
    /// In count mode (no `tokio_unstable`) this reads tokio's metrics and
    /// must be called from inside the runtime; elsewhere it returns 0.
    ///
    /// ```
    /// # #[cfg(tokio_unstable)] {
    /// let mut builder = tokio::runtime::Builder::new_current_thread();
    /// let tracker = leakcheck::instrument(&mut builder);
    /// let rt = builder.build().unwrap();
    /// let task = rt.spawn(std::future::pending::<()>());
    /// assert_eq!(tracker.live_count(), 1);
    /// task.abort();
    /// # }
    /// ```
    pub fn live_count(&self) -> usize {
        #[cfg(tokio_unstable)]
        return self.shared.table.records().len();
        #[cfg(not(tokio_unstable))]
        return Handle::try_current().map_or(0, |h| metrics::read(&h).alive);
    }

    /// Every live task, ordered by id. Empty in count mode.
    ///
    /// ```
    /// # #[cfg(tokio_unstable)] {
    /// let mut builder = tokio::runtime::Builder::new_current_thread();
    /// let tracker = leakcheck::instrument(&mut builder);
    /// let rt = builder.build().unwrap();
    /// let task = rt.spawn(std::future::pending::<()>());
    /// let snapshot = tracker.snapshot();
    /// assert_eq!(snapshot.tasks()[0].id.to_string(), task.id().to_string());
    /// task.abort();
    /// # }
    /// ```
    pub fn snapshot(&self) -> Snapshot {
        let mut tasks = self.tasks(|_| true);
        tasks.sort_by_key(|t| t.id);
        Snapshot { tasks }
    }

    /// Starts a new baseline: tasks alive now are ignored by later checks,
    /// and the `max_tasks` peak starts from zero. `#[leakcheck::test]` takes
    /// one right before the body runs.
    ///
    /// ```
    /// # #[cfg(tokio_unstable)] {
    /// let mut builder = tokio::runtime::Builder::new_current_thread();
    /// let tracker = leakcheck::instrument(&mut builder);
    /// let rt = builder.enable_all().build().unwrap();
    /// rt.block_on(async {
    ///     let background = tokio::spawn(std::future::pending::<()>());
    ///     tracker.set_baseline();
    ///     tracker.verify_none().await; // `background` predates the baseline
    ///     background.abort();
    /// });
    /// # }
    /// ```
    pub fn set_baseline(&self) {
        let s = &self.shared;
        s.generation.fetch_add(1, SeqCst);
        #[cfg(tokio_unstable)]
        if let Some(fanout) = &s.fanout {
            fanout.lock().reset();
        }
        if let Ok(handle) = Handle::try_current() {
            let counts = metrics::read(&handle);
            s.blocking_baseline
                .store(counts.blocking.unwrap_or(0), SeqCst);
            #[cfg(not(tokio_unstable))]
            s.alive_baseline.store(counts.alive, SeqCst);
        }
    }

    /// Waits up to the grace for every task spawned since the baseline to
    /// end; panics with the [`Report`] if any survive.
    ///
    /// ```
    /// # #[cfg(tokio_unstable)] {
    /// let mut builder = tokio::runtime::Builder::new_current_thread();
    /// let tracker = leakcheck::instrument(&mut builder);
    /// let rt = builder.enable_all().build().unwrap();
    /// rt.block_on(async {
    ///     let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    ///     tokio::spawn(async move { rx.await.ok() });
    ///     drop(tx); // the task ends once its sender is gone
    ///     tracker.verify_none().await;
    /// });
    /// # }
    /// ```
    pub async fn verify_none(&self) {
        if let Err(report) = self.find_leaks().await {
            panic!("{report}");
        }
    }

    /// Like [`Tracker::verify_none`], returning the report instead of panicking.
    ///
    /// ```
    /// # #[cfg(tokio_unstable)] {
    /// let mut builder = tokio::runtime::Builder::new_current_thread();
    /// let tracker = leakcheck::Options::new()
    ///     .grace(std::time::Duration::from_millis(20))
    ///     .instrument(&mut builder);
    /// let rt = builder.enable_all().build().unwrap();
    /// rt.block_on(async {
    ///     let stuck = tokio::spawn(std::future::pending::<()>());
    ///     let report = tracker.find_leaks().await.unwrap_err();
    ///     assert_eq!(report.groups[0].tasks[0].id.to_string(), stuck.id().to_string());
    ///     stuck.abort();
    /// });
    /// # }
    /// ```
    pub async fn find_leaks(&self) -> Result<(), Report> {
        let grace = self.shared.options.grace_duration();
        let deadline = Instant::now() + grace;
        let handle = Handle::try_current().ok();
        #[allow(unused_mut)]
        let (mut leaked, blocking) = self.settle(deadline, handle.as_ref()).await;
        #[cfg(tokio_unstable)]
        crate::trace::attach(self, &mut leaked).await;
        let mut report = Report {
            name: self.shared.name.clone(),
            grace,
            blocking,
            ..Report::default()
        };
        #[cfg(tokio_unstable)]
        {
            report.groups = Report::group(leaked);
            report.fanout = self.shared.fanout.as_ref().and_then(|f| f.lock().failure());
        }
        #[cfg(not(tokio_unstable))]
        {
            report.unidentified = leaked;
        }
        if report.is_failure() {
            Err(report)
        } else {
            Ok(())
        }
    }

    /// Tasks that can never run again, baseline or not: each was polled, is
    /// idle, was not woken, and no waker for it exists anywhere. A certain
    /// leak that needs no baseline and no grace, so it suits production
    /// checks (call it from a periodic task or a debug endpoint).
    ///
    /// Needs the `tracing` feature (and its layer, see [`crate::layer`]);
    /// without it this always returns `Ok`. A candidate is confirmed by a
    /// second look after yielding, so a task caught between a wake and its
    /// next poll is not reported.
    ///
    /// ```
    /// # #[cfg(all(tokio_unstable, feature = "tracing"))] {
    /// use tracing_subscriber::layer::SubscriberExt;
    /// let _guard = tracing::subscriber::set_default(
    ///     tracing_subscriber::registry().with(leakcheck::layer()),
    /// );
    /// let mut builder = tokio::runtime::Builder::new_current_thread();
    /// let tracker = leakcheck::instrument(&mut builder);
    /// let rt = builder.enable_all().build().unwrap();
    /// rt.block_on(async {
    ///     let lost = tokio::spawn(std::future::pending::<()>());
    ///     tokio::task::yield_now().await;
    ///     let report = tracker.find_never_waking().await.unwrap_err();
    ///     assert!(report.to_string().contains("can never wake"));
    ///     lost.abort();
    /// });
    /// # }
    /// ```
    pub async fn find_never_waking(&self) -> Result<(), Report> {
        let candidates: Vec<TaskInfo> = self
            .tasks(|_| true)
            .into_iter()
            .filter(|t| t.never_wakes)
            .collect();
        if candidates.is_empty() {
            return Ok(());
        }
        tokio::task::yield_now().await;
        let again = self.tasks(|_| true);
        let confirmed: Vec<TaskInfo> = candidates
            .into_iter()
            .filter(|c| {
                again
                    .iter()
                    .any(|t| t.id == c.id && t.never_wakes && t.polls == c.polls)
            })
            .collect();
        if confirmed.is_empty() {
            return Ok(());
        }
        Err(Report {
            name: self.shared.name.clone(),
            groups: Report::group(confirmed),
            never_wakes: true,
            ..Report::default()
        })
    }

    /// `spawn_blocking` work started since the baseline and still running;
    /// `None` in count mode, where tokio does not expose it.
    pub(crate) fn blocking_in_flight(&self, handle: &Handle) -> Option<usize> {
        let now = metrics::read(handle).blocking?;
        Some(now.saturating_sub(self.shared.blocking_baseline.load(Relaxed)))
    }

    /// Waits until nothing since the baseline is alive, or the deadline.
    /// Woken by the terminate hook; blocking-pool work (no hook fires after
    /// the pool's counters update) and count mode re-check on a backoff.
    async fn settle(&self, deadline: Instant, handle: Option<&Handle>) -> (Leaked, usize) {
        let shared = &self.shared;
        shared.waiters.fetch_add(1, SeqCst);
        let _waiting = Waiting(shared);
        let mut backoff = Duration::from_millis(1);
        loop {
            let mut notified = pin!(shared.notify.notified());
            notified.as_mut().enable();
            let leaked = self.leaked_now(handle);
            let blocking = handle.and_then(|h| self.blocking_in_flight(h)).unwrap_or(0);
            let now = Instant::now();
            if (is_empty(&leaked) && blocking == 0) || now >= deadline {
                return (leaked, blocking);
            }
            let poll = blocking > 0 || cfg!(not(tokio_unstable));
            let wake_at = if poll {
                deadline.min(now + backoff)
            } else {
                deadline
            };
            backoff = (backoff * 2).min(Duration::from_millis(50));
            let Some(_alarm) = Alarm::set(wake_at, shared.clone()) else {
                return (leaked, blocking); // no thread for the alarm: report what we see
            };
            notified.await;
        }
    }

    #[cfg(tokio_unstable)]
    fn leaked_now(&self, _: Option<&Handle>) -> Leaked {
        let generation = self.shared.generation.load(SeqCst);
        let ignore = self.shared.options.ignore();
        self.tasks(|r| r.spawn.generation == generation)
            .into_iter()
            .filter(|t| !is_ignored(t, ignore))
            .collect()
    }

    #[cfg(not(tokio_unstable))]
    fn leaked_now(&self, handle: Option<&Handle>) -> Leaked {
        let alive = handle.map_or(0, |h| metrics::read(h).alive);
        alive.saturating_sub(self.shared.alive_baseline.load(SeqCst))
    }

    #[cfg(tokio_unstable)]
    fn tasks(&self, keep: impl Fn(&crate::registry::Record) -> bool) -> Vec<TaskInfo> {
        use crate::registry::{parent, ticks};
        use crate::snapshot::Parent;
        let table = &self.shared.table;
        let generation = self.shared.generation.load(Relaxed);
        let now = crate::registry::now();
        table
            .records()
            .into_iter()
            .filter(|r| keep(r))
            .map(|r| {
                let s = r.spawn;
                let parent_of =
                    |spawn: &crate::registry::Spawn| match (spawn.parent, spawn.parent_location) {
                        (parent::TEST_BODY, _) => (Parent::TestBody, None),
                        (id, Some(spawn_site)) if id != parent::OUTSIDE => {
                            let record = table.get(id);
                            let alive = record.is_some();
                            (
                                Parent::Task {
                                    id,
                                    spawn_site,
                                    alive,
                                },
                                record,
                            )
                        }
                        _ => (Parent::Outside, None),
                    };
                let (parent, mut up) = parent_of(&s);
                let mut ancestors = Vec::new();
                while let Some(record) = up.filter(|_| ancestors.len() < MAX_ANCESTORS) {
                    let (p, next) = parent_of(&record.spawn);
                    ancestors.push(p);
                    up = next;
                }
                let polls = r.poll_edges.div_ceil(2);
                let running = r.poll_edges % 2 == 1;
                let age = ticks(now.saturating_sub(s.spawned));
                let idle = match (running, polls) {
                    (true, _) => Duration::ZERO,
                    (false, 0) => age,
                    (false, _) => ticks(now.saturating_sub(r.poll_ended)),
                };
                #[cfg(feature = "tracing")]
                let wakes = crate::layer::lookup(r.id);
                #[cfg(not(feature = "tracing"))]
                let wakes: Option<()> = None;
                #[cfg(feature = "tracing")]
                let (name, wakers, scheduled, never_wakes) = match &wakes {
                    Some(w) => (
                        w.name.as_deref().map(str::to_owned),
                        Some(w.wakers()),
                        !running && w.woken(),
                        !running && polls > 0 && w.wakers() == 0 && !w.woken(),
                    ),
                    None => (None, None, false, false),
                };
                #[cfg(not(feature = "tracing"))]
                let (name, wakers, scheduled, never_wakes) = (None, wakes.map(|_| 0), false, false);
                TaskInfo {
                    id: r.id,
                    spawn_site: Some(s.location),
                    parent,
                    ancestors,
                    age,
                    running,
                    scheduled,
                    polls,
                    idle,
                    busy: ticks(r.busy),
                    name,
                    wakers,
                    never_wakes,
                    since_baseline: s.generation == generation,
                    waiting: Default::default(),
                    chain: s.chain,
                }
            })
            .collect()
    }

    #[cfg(not(tokio_unstable))]
    fn tasks(&self, _keep: impl Fn(&()) -> bool) -> Vec<TaskInfo> {
        Vec::new()
    }
}

/// How far up the task tree a report follows a task's lineage.
#[cfg(tokio_unstable)]
const MAX_ANCESTORS: usize = 8;

/// What a check found: tasks with detail, or only a count in count mode.
#[cfg(tokio_unstable)]
type Leaked = Vec<TaskInfo>;
#[cfg(not(tokio_unstable))]
type Leaked = usize;

#[cfg(tokio_unstable)]
fn is_empty(leaked: &Leaked) -> bool {
    leaked.is_empty()
}

#[cfg(not(tokio_unstable))]
fn is_empty(leaked: &Leaked) -> bool {
    *leaked == 0
}

#[cfg(tokio_unstable)]
fn is_ignored(task: &TaskInfo, ignore: &crate::options::Ignore) -> bool {
    let by_site = || {
        let at = task.spawn_site.map(site).unwrap_or_default();
        ignore.spawn_sites.iter().any(|s| at.contains(s.as_str()))
    };
    let by_name = || {
        let name = task.name.as_deref();
        ignore.names.iter().any(|n| Some(n.as_str()) == name)
    };
    let by_fn = || {
        !ignore.fns.is_empty()
            && crate::chain::resolve(task.chain)
                .iter()
                .any(|f| ignore.fns.iter().any(|p| f.function.contains(p.as_str())))
    };
    by_site() || by_name() || by_fn()
}

/// The current test's tracker, or a panic that says how to get one.
fn current_or_panic(what: &str) -> Tracker {
    context::current().unwrap_or_else(|| {
        panic!(
            "leakcheck::{what}() found no tracker on this thread: call it from a \
             #[leakcheck::test] body (or a task of its runtime), or call `{what}` on the \
             Tracker returned by leakcheck::instrument"
        )
    })
}

/// In a `#[leakcheck::test]`: waits up to the grace for every task spawned
/// since the test started to end, and panics with the [`Report`] if any
/// survive.
///
/// Returns the moment the last task ends; a clean test never waits.
///
/// # Panics
///
/// With the report if tasks leaked, and with a message saying what to do if
/// called outside a `#[leakcheck::test]` or instrumented runtime.
///
/// ```
/// #[leakcheck::test]
/// async fn workers_are_joined() {
///     let worker = tokio::spawn(async { 6 * 7 });
///     assert_eq!(worker.await.unwrap(), 42);
///     leakcheck::verify_none().await;
/// }
/// ```
pub async fn verify_none() {
    current_or_panic("verify_none").verify_none().await
}

/// Like [`verify_none`], but returns the [`Report`] instead of panicking
/// (goleak's `Find`).
///
/// ```
/// #[leakcheck::test(grace = "20ms")]
/// async fn report_names_the_task() {
///     let stuck = tokio::spawn(std::future::pending::<()>());
///     let report = leakcheck::find_leaks().await.unwrap_err();
///     assert_eq!(report.leaked(), 1);
///     stuck.abort();
/// }
/// ```
pub async fn find_leaks() -> Result<(), Report> {
    current_or_panic("find_leaks").find_leaks().await
}
