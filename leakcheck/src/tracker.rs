//! [`Tracker`]: the public face of one runtime's live-task tracking, and
//! the wait-then-report loop behind every leak check.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::future::Future;
use std::panic::Location;
use std::sync::atomic::Ordering::{Relaxed, SeqCst};
use std::sync::Arc;
use std::time::Instant;

use tokio::runtime::{Builder, Handle};
use tokio::sync::Notify;

use crate::census::Census;
use crate::fail::fail_at;
use crate::local;
use crate::metrics;
use crate::mode::{self, Which};
use crate::options::Options;
use crate::report::{Report, ReportKind};
use crate::snapshot::{Snapshot, TaskInfo, TaskState};
use crate::state::State;
use crate::wait::{settle, Look, Waiting};

/// The live tasks of one instrumented runtime.
///
/// Made by [`instrument`] (or [`Options::instrument`]) before the runtime is
/// built. Cheap to clone. Tracks every task spawned on that runtime, with
/// spawn site, parent, poll state and call chain (as the
/// [`Capture`](crate::Capture) level says), and frees each record when its
/// task ends.
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
    state: Arc<State>,
    data: Arc<mode::Data>,
}

thread_local! {
    /// The tracker this thread belongs to: set on a test's thread while its
    /// body runs, and on every thread of an instrumented runtime. Nothing
    /// here is process-global, so parallel tests never see each other's.
    static CURRENT: std::cell::RefCell<Option<Tracker>> = const { std::cell::RefCell::new(None) };
}

/// Restores the thread's previous tracker when dropped.
pub(crate) struct Entered {
    previous: Option<Tracker>,
    was_test: bool,
}

impl Drop for Entered {
    fn drop(&mut self) {
        let previous = self.previous.take();
        let _ = CURRENT.try_with(|c| *c.borrow_mut() = previous);
        local::set_test_thread(self.was_test);
    }
}

fn set_current(tracker: Option<Tracker>) {
    let _ = CURRENT.try_with(|c| *c.borrow_mut() = tracker);
}

impl fmt::Debug for Tracker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tracker")
            .field("name", &self.state.name)
            .field("baseline", &self.state.baseline.load(Relaxed))
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
    /// Like [`instrument`], with these options for the tracker.
    ///
    /// ```
    /// use leakcheck::{Capture, Options};
    /// let mut builder = tokio::runtime::Builder::new_current_thread();
    /// let tracker = Options::new().capture(Capture::SpawnSites).instrument(&mut builder);
    /// # let _ = tracker;
    /// ```
    pub fn instrument(self, builder: &mut Builder) -> Tracker {
        Tracker::install(builder, "instrumented runtime".into(), self)
    }
}

impl Tracker {
    pub(crate) fn install(builder: &mut Builder, name: String, options: Options) -> Tracker {
        let data = Arc::new(mode::Data::new(options.capture_level()));
        let state = Arc::new(State::new(name, options));
        mode::install(builder, &state, &data);
        let tracker = Tracker { state, data };
        // so that `verify_none()` finds this tracker on the runtime's threads
        let theirs = tracker.clone();
        builder.on_thread_start(move || {
            set_current(Some(theirs.clone()));
            #[cfg(all(tokio_unstable, feature = "tracing", not(feature = "process")))]
            crate::layer::enter_test_default();
        });
        builder.on_thread_stop(|| set_current(None));
        tracker
    }

    /// Makes this the tracker `verify_none()` finds on the test thread,
    /// and marks the thread as running a test body, until dropped.
    pub(crate) fn enter(&self) -> Entered {
        #[cfg(feature = "tracing")]
        if let Some(owner) = crate::owner::of_thread() {
            let _ = self.state.owner.set(owner.id);
        }
        let previous = CURRENT.with(|c| c.replace(Some(self.clone())));
        let was_test = local::set_test_thread(true);
        Entered { previous, was_test }
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
        CURRENT.try_with(|c| c.borrow().clone()).ok().flatten()
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
        mode::live_count(&self.data)
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
        let tasks = mode::live_tasks(&self.state, &self.data, Which::All);
        debug_assert!(tasks.windows(2).all(|w| w[0].id < w[1].id));
        Snapshot {
            tasks,
            capture: self.state.options.capture_level(),
        }
    }

    /// The `limit` live tasks with the lowest ids (the oldest), ordered by
    /// id: [`Tracker::snapshot`]'s first `limit` tasks, at a cost beyond
    /// one pass over the table that follows `limit`. For `?debug=2`.
    #[cfg_attr(not(feature = "endpoint"), allow(dead_code))]
    pub(crate) fn first_tasks(&self, limit: usize) -> Vec<TaskInfo> {
        mode::first_tasks(&self.state, &self.data, limit)
    }

    /// Every live task counted by spawn site and call chain, with counts
    /// per state and the oldest age: a [`Snapshot`] summed up, made
    /// straight from the live-task table without a [`TaskInfo`] per task
    /// (about 20 ms for a million tasks, where a snapshot takes about 250 ms). Empty
    /// in count mode.
    ///
    /// ```
    /// # #[cfg(tokio_unstable)] {
    /// let mut builder = tokio::runtime::Builder::new_current_thread();
    /// let tracker = leakcheck::instrument(&mut builder);
    /// let rt = builder.build().unwrap();
    /// let parked = rt.spawn(std::future::pending::<()>());
    /// let census = tracker.census();
    /// assert_eq!((census.total, census.groups[0].count), (1, 1));
    /// parked.abort();
    /// # }
    /// ```
    pub fn census(&self) -> Census {
        mode::census(&self.state, &self.data, false)
    }

    /// [`Tracker::census`] with a group per task name too (names come
    /// with the `tracing` feature), for the pprof view's `name` label.
    #[cfg_attr(not(feature = "endpoint"), allow(dead_code))]
    pub(crate) fn census_by_name(&self) -> Census {
        mode::census(&self.state, &self.data, true)
    }

    /// Bytes the live-task table's arrays hold now: leakcheck's memory for
    /// the tasks it tracks, beyond what tokio itself allocates per task
    /// (0 without `--cfg tokio_unstable`). It grows with the live tasks and
    /// shrinks back after a burst.
    ///
    /// ```
    /// let mut builder = tokio::runtime::Builder::new_current_thread();
    /// let tracker = leakcheck::instrument(&mut builder);
    /// let rt = builder.build().unwrap();
    /// let idle = tracker.table_bytes();
    /// rt.block_on(async {
    ///     let parked: Vec<_> = (0..1000)
    ///         .map(|_| tokio::spawn(std::future::pending::<()>()))
    ///         .collect();
    ///     if cfg!(tokio_unstable) {
    ///         assert!(tracker.table_bytes() > idle);
    ///     }
    ///     parked.iter().for_each(|t| t.abort());
    /// });
    /// ```
    pub fn table_bytes(&self) -> usize {
        mode::table_bytes(&self.data)
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
        let state = &self.state;
        let handle = Handle::try_current().ok();
        mode::set_baseline(state, &self.data, handle.as_ref());
        if let Some(fanout) = &state.fanout {
            fanout.lock().reset();
        }
        if let Some(handle) = &handle {
            let blocking = metrics::read(handle).blocking.unwrap_or(0);
            state.blocking_baseline.store(blocking, SeqCst);
        }
    }

    /// Waits up to the grace for every task spawned since the baseline to
    /// end; panics with the [`Report`], at the caller's line, if any survive.
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
    #[track_caller]
    pub fn verify_none(&self) -> impl Future<Output = ()> + Send + '_ {
        let at = Location::caller();
        async move {
            if let Err(report) = self.check(ReportKind::Check { at }).await {
                fail_at(at, report.to_string());
            }
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
    #[track_caller]
    pub fn find_leaks(&self) -> impl Future<Output = Result<(), Report>> + Send + '_ {
        let at = Location::caller();
        self.check(ReportKind::Check { at })
    }

    /// Tasks that can never run again, baseline or not: each was polled, is
    /// idle, was not woken, and no waker for it exists anywhere. A certain
    /// leak that needs no baseline and no grace: a check for a test, a
    /// soak test or a staging service.
    ///
    /// Needs the `tracing` feature (and its layer, see `leakcheck::layer`);
    /// without it this always returns `Ok`. That feature costs 1–2 µs per
    /// spawned task, and this builds every live task twice: not for a busy
    /// production service. A candidate is confirmed by a
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
        let stuck = |tasks: Vec<TaskInfo>| -> Vec<TaskInfo> {
            tasks
                .into_iter()
                .filter(|t| t.state == TaskState::NeverWakes)
                .collect()
        };
        let candidates = stuck(mode::live_tasks(&self.state, &self.data, Which::All));
        if candidates.is_empty() {
            return Ok(());
        }
        tokio::task::yield_now().await;
        let again = stuck(mode::live_tasks(&self.state, &self.data, Which::All));
        let confirmed: Vec<TaskInfo> = candidates
            .into_iter()
            .filter(|c| again.iter().any(|t| t.id == c.id && t.polls == c.polls))
            .collect();
        if confirmed.is_empty() {
            return Ok(());
        }
        Err(Report {
            name: self.state.name.clone(),
            kind: ReportKind::NeverWakes,
            groups: crate::tree::build(confirmed),
            ..Report::default()
        })
    }

    /// Waits out the grace, then reports what is still alive since the baseline.
    pub(crate) async fn check(&self, kind: ReportKind) -> Result<(), Report> {
        let state = &self.state;
        let grace = state.options.grace_duration();
        let handle = Handle::try_current().ok();
        let mut found = self.settle(Instant::now() + grace, handle.as_ref()).await;
        crate::trace::attach(&mut found.leaked).await;
        let mut report = Report {
            name: state.name.clone(),
            kind,
            grace,
            woke_in_grace: std::mem::take(&mut found.woke),
            groups: crate::tree::build(found.leaked),
            unidentified: found.unidentified,
            blocking: found.blocking,
            fanout: state.fanout.as_ref().and_then(|f| f.lock().failure()),
            ..Report::default()
        };
        if report.unidentified > 0 {
            report.notes.push(crate::report::COUNT_MODE.to_owned());
        }
        report.gather_notes();
        match report.is_failure() {
            true => Err(report),
            false => Ok(()),
        }
    }

    /// `spawn_blocking` work started since the baseline and still running;
    /// `None` in count mode, where tokio does not expose it.
    pub(crate) fn blocking_in_flight(&self, handle: &Handle) -> Option<usize> {
        let now = metrics::read(handle).blocking?;
        Some(now.saturating_sub(self.state.blocking_baseline.load(Relaxed)))
    }

    /// Waits until nothing since the baseline is alive, or the deadline.
    /// Woken by the terminate hook (and by task spans closing, for tasks
    /// only spans show); blocking-pool work (no hook fires after the pool's
    /// counters update) and count mode re-check on a backoff.
    async fn settle(&self, deadline: Instant, handle: Option<&Handle>) -> Found {
        let state = &self.state;
        let _waiting = Waiting::new(state);
        #[cfg(feature = "tracing")]
        let _spans = crate::layer::tasks::Waiting::new();
        let theirs = state.clone();
        let ring = move || theirs.notify.notify_waiters();
        // each task's polls at the first look: which ones woke during the grace
        let mut first: Option<HashMap<u64, u64>> = None;
        let look = || {
            let found = self.found(handle);
            first.get_or_insert_with(|| found.leaked.iter().map(|t| (t.id, t.polls)).collect());
            let poll = found.blocking > 0 || !mode::IDENTITIES;
            let clean = found.is_clean();
            Look { found, clean, poll }
        };
        let mut found = settle(deadline, &self.notifies(), ring, look).await;
        let first = first.unwrap_or_default();
        found.woke = found
            .leaked
            .iter()
            // polled before the check and again since: a first poll is no wake
            .filter(|t| {
                first
                    .get(&t.id)
                    .is_some_and(|&polls| polls > 0 && t.polls > polls)
            })
            .map(|t| t.id)
            .collect();
        found
    }

    /// What wakes a waiting check: the terminate hook, and task spans closing.
    fn notifies(&self) -> Vec<&Notify> {
        let state = &self.state.notify;
        #[cfg(feature = "tracing")]
        return vec![state, crate::layer::tasks::ended()];
        #[cfg(not(feature = "tracing"))]
        return vec![state];
    }

    /// What is alive now since the baseline, minus what the options ignore.
    fn found(&self, handle: Option<&Handle>) -> Found {
        let state = &self.state;
        let candidates = mode::live_tasks(state, &self.data, Which::SinceBaseline);
        let ignore = state.options.ignore();
        let leaked = if candidates.is_empty() || ignore.is_empty() {
            candidates
        } else {
            let live = mode::live_tasks(state, &self.data, Which::Lineage);
            let ignored = ignore.subtree_matches(&live, candidates.iter());
            candidates
                .into_iter()
                .filter(|t| !ignored.contains(&t.id))
                .collect()
        };
        #[cfg(feature = "tracing")]
        let leaked = self.with_unhooked(leaked);
        Found {
            leaked,
            unidentified: mode::unidentified(state, &self.data, handle),
            blocking: handle.and_then(|h| self.blocking_in_flight(h)).unwrap_or(0),
            woke: BTreeSet::new(),
        }
    }

    /// `leaked` plus the test's tasks no hook of this runtime sees, which
    /// tokio's spans show: on a `LocalSet`, or on another runtime.
    #[cfg(feature = "tracing")]
    fn with_unhooked(&self, mut leaked: Vec<TaskInfo>) -> Vec<TaskInfo> {
        let Some(owner) = self.state.owner.get() else {
            return leaked; // not a test's tracker
        };
        let baseline = self.state.baseline.load(Relaxed);
        let here = crate::spans::this_runtime();
        let scope = crate::spans::Scope {
            owner: Some(*owner),
            baseline,
            this_runtime: here,
            blocking: false,
        };
        let more = crate::spans::leaked(&scope, |id| mode::is_tracked(&self.data, id));
        let ignore = self.state.options.ignore();
        let ignored = ignore.subtree_matches(&more, more.iter());
        leaked.extend(more.into_iter().filter(|t| !ignored.contains(&t.id)));
        leaked
    }
}

/// What a check found still alive.
struct Found {
    leaked: Vec<TaskInfo>,
    unidentified: usize,
    blocking: usize,
    /// The leaked tasks polled again since the check's first look (and
    /// polled before it).
    woke: BTreeSet<u64>,
}

impl Found {
    fn is_clean(&self) -> bool {
        self.leaked.is_empty() && self.unidentified == 0 && self.blocking == 0
    }
}

/// The check `verify_none()` and `find_leaks()` run: the current thread's
/// tracker's, or, with no tracker (a plain `#[tokio::test]`), one over the
/// tasks tokio's spans show the test spawned.
#[cfg_attr(feature = "tracing", allow(unused_variables))]
async fn check_here(what: &str, at: &'static Location<'static>) -> Result<(), Report> {
    if let Some(tracker) = Tracker::current() {
        return tracker.check(ReportKind::Check { at }).await;
    }
    #[cfg(feature = "tracing")]
    return crate::plain::check(at).await;
    #[cfg(not(feature = "tracing"))]
    fail_at(
        at,
        format!(
            "leakcheck::{what}() found no tracker on this thread: call it from a \
             #[leakcheck::test] body (or a task of its runtime), call `{what}` on the Tracker \
             returned by leakcheck::instrument, or enable leakcheck's `process` feature to \
             check a plain #[tokio::test]"
        ),
    )
}

/// In a `#[leakcheck::test]`: waits up to the grace for every task spawned
/// since the test started to end, and fails the test, at the line of this
/// call, with the [`Report`] if any survive.
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
#[track_caller]
pub fn verify_none() -> impl Future<Output = ()> + Send {
    let at = Location::caller();
    async move {
        if let Err(report) = check_here("verify_none", at).await {
            fail_at(at, report.to_string());
        }
    }
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
#[track_caller]
pub fn find_leaks() -> impl Future<Output = Result<(), Report>> + Send {
    let at = Location::caller();
    async move { check_here("find_leaks", at).await }
}
