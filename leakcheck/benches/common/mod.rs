//! The workload shared by `spawn.rs` (criterion), `ratios.rs` (round-robin
//! table) and `scale.rs`, the one leakcheck's budgets were set on. A driver
//! task spawns `async {}` tasks in batches of 1000 and awaits every
//! JoinHandle; the time is taken inside the driver, so runtime
//! construction, `block_on` and the driver's own spawn are not counted.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use leakcheck::Tracker;
use leakcheck::{Capture, Options};
use tokio::runtime::{Builder, Runtime};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// Tasks spawned before the driver awaits them all.
pub const BATCH: u64 = 1000;

/// The runtime flavors measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// `new_current_thread` (W2).
    CurrentThread,
    /// `new_multi_thread` with 2 workers (W1).
    MultiThread2,
}

impl Flavor {
    pub const ALL: [Flavor; 2] = [Flavor::CurrentThread, Flavor::MultiThread2];

    pub fn name(self) -> &'static str {
        match self {
            Flavor::CurrentThread => "current_thread",
            Flavor::MultiThread2 => "multi_thread_2",
        }
    }

    fn builder(self) -> Builder {
        match self {
            Flavor::CurrentThread => Builder::new_current_thread(),
            Flavor::MultiThread2 => {
                let mut b = Builder::new_multi_thread();
                b.worker_threads(2);
                b
            }
        }
    }
}

/// What is installed on the runtime.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    /// No hooks (same `--cfg tokio_unstable` build).
    Plain,
    /// Four empty hooks, no leakcheck: what tokio's hook dispatch costs
    /// by itself, the floor under any hook-based tracker.
    EmptyHooks,
    /// leakcheck with `Capture::SpawnSites`.
    Sites,
    /// leakcheck with `Capture::Polls`.
    SitesPolls,
    /// leakcheck with `Capture::CallChains` (everything, as `#[leakcheck::test]`).
    Chains,
    /// The `process` feature's path, no hooks: tokio's task spans read by
    /// leakcheck's per-thread tracing default, what a plain
    /// `#[tokio::test]` pays for `verify_none()`.
    #[cfg(feature = "process")]
    Spans,
    /// `#[leakcheck::test]` with the `process` feature: `call_chains` and
    /// the task spans.
    #[cfg(feature = "process")]
    ChainsSpans,
}

impl Variant {
    /// Every variant; the span variants only in a `--features process` build.
    pub const ALL: &[Variant] = &[
        Variant::Plain,
        Variant::EmptyHooks,
        Variant::Sites,
        Variant::SitesPolls,
        Variant::Chains,
        #[cfg(feature = "process")]
        Variant::Spans,
        #[cfg(feature = "process")]
        Variant::ChainsSpans,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Variant::Plain => "plain",
            Variant::EmptyHooks => "empty_hooks",
            Variant::Sites => "spawn_sites",
            Variant::SitesPolls => "sites_and_polls",
            Variant::Chains => "call_chains",
            #[cfg(feature = "process")]
            Variant::Spans => "spans",
            #[cfg(feature = "process")]
            Variant::ChainsSpans => "chains_and_spans",
        }
    }

    fn capture(self) -> Option<Capture> {
        match self {
            Variant::Plain | Variant::EmptyHooks => None,
            Variant::Sites => Some(Capture::SpawnSites),
            Variant::SitesPolls => Some(Capture::Polls),
            Variant::Chains => Some(Capture::CallChains),
            #[cfg(feature = "process")]
            Variant::Spans => None,
            #[cfg(feature = "process")]
            Variant::ChainsSpans => Some(Capture::CallChains),
        }
    }

    /// Whether tokio's task spans reach leakcheck. In a `process` build
    /// every thread starts with leakcheck's tracing default; the other
    /// variants run under a dispatcher that takes nothing instead, so the
    /// spans cost them only tokio's "is anyone listening" check.
    pub fn spans(self) -> bool {
        #[cfg(feature = "process")]
        return matches!(self, Variant::Spans | Variant::ChainsSpans);
        #[cfg(not(feature = "process"))]
        false
    }
}

/// A dispatcher that takes nothing. Made with `Dispatch::new`, unlike
/// `Dispatch::none()`, so that tracing knows of two dispatchers: with one,
/// a callsite first hit under this one would be disabled for good.
#[cfg(feature = "process")]
fn nobody() -> &'static tracing::Dispatch {
    static NOBODY: std::sync::OnceLock<tracing::Dispatch> = std::sync::OnceLock::new();
    NOBODY.get_or_init(|| tracing::Dispatch::new(tracing::subscriber::NoSubscriber::default()))
}

/// Runs `f` with [`nobody`] as this thread's dispatcher unless `spans`.
fn quiet<T>(spans: bool, f: impl FnOnce() -> T) -> T {
    #[cfg(feature = "process")]
    if !spans {
        return tracing::dispatcher::with_default(nobody(), f);
    }
    let _ = spans;
    f()
}

/// One runtime (built once) with its tracker, if any.
pub struct Bench {
    rt: Runtime,
    spans: bool,
    tracker: Option<Tracker>,
    /// Tasks parked by [`Bench::park`] (the tracker drains back to this).
    parked: AtomicUsize,
    notify: Arc<Notify>,
}

impl Bench {
    /// Builds the runtime and checks that the variant records what it should.
    pub fn new(flavor: Flavor, variant: Variant) -> Bench {
        Self::build(flavor, variant, false)
    }

    /// The same, with tokio's timer enabled.
    #[allow(dead_code)]
    pub fn with_timer(flavor: Flavor, variant: Variant) -> Bench {
        Self::build(flavor, variant, true)
    }

    fn build(flavor: Flavor, variant: Variant, timer: bool) -> Bench {
        let mut builder = flavor.builder();
        if timer {
            builder.enable_time();
        }
        #[cfg(tokio_unstable)]
        if variant == Variant::EmptyHooks {
            builder
                .on_task_spawn(|_| {})
                .on_task_terminate(|_| {})
                .on_before_task_poll(|_| {})
                .on_after_task_poll(|_| {});
        }
        let spans = variant.spans();
        let tracker = variant
            .capture()
            .map(|capture| Options::new().capture(capture).instrument(&mut builder));
        // Replaces the tracker's own thread-start hook, which only lets
        // `verify_none()` find it from a worker; the benches never ask.
        #[cfg(feature = "process")]
        builder.on_thread_start(move || quiet_thread(spans));
        let rt = builder.build().expect("build runtime");
        let bench = Bench {
            rt,
            spans,
            tracker,
            parked: AtomicUsize::new(0),
            notify: Arc::new(Notify::new()),
        };
        bench.self_check(variant);
        bench
    }

    /// `Runtime::block_on`, with spans reaching leakcheck only if the
    /// variant says so.
    pub fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        quiet(self.spans, || self.rt.block_on(f))
    }

    /// Spawns and joins `tasks` tasks in batches of [`BATCH`]; returns the
    /// time measured inside the driver. Panics if the tracker does not drain
    /// back to empty afterwards.
    pub fn run(&self, tasks: u64) -> Duration {
        let elapsed = self
            .block_on(async move { tokio::spawn(spawn_and_join(tasks)).await })
            .expect("driver task");
        self.wait_drained();
        elapsed
    }

    /// The terminate hook runs after the JoinHandle is woken, so the last
    /// records (and the driver's) may linger for a moment.
    fn wait_drained(&self) {
        let Some(tracker) = &self.tracker else { return };
        let parked = self.parked.load(Ordering::Relaxed);
        let deadline = Instant::now() + Duration::from_secs(5);
        while tracker.live_count() != parked {
            assert!(
                Instant::now() < deadline,
                "registry did not drain: {} records left",
                tracker.live_count()
            );
            std::thread::sleep(Duration::from_micros(100));
        }
    }

    /// The runtime.
    #[allow(dead_code)]
    pub fn runtime(&self) -> &Runtime {
        &self.rt
    }

    /// The tracker, if the variant has one.
    #[allow(dead_code)]
    pub fn tracker(&self) -> Option<&Tracker> {
        self.tracker.as_ref()
    }

    /// Parks `n` tasks on a `Notify` (spawned from a driver task), pushing
    /// their handles into `handles`, and returns once every one has been
    /// polled. Each creates its `notified()` future before it is counted,
    /// so [`Bench::unpark`] wakes them all.
    #[allow(dead_code)]
    pub fn park(&self, n: usize, handles: &mut Vec<JoinHandle<()>>) {
        let polled = Arc::new(AtomicUsize::new(0));
        let (notify, count) = (self.notify.clone(), polled.clone());
        let mut out = std::mem::take(handles);
        *handles = self
            .block_on(async move {
                tokio::spawn(async move {
                    for _ in 0..n {
                        let (notify, count) = (notify.clone(), count.clone());
                        out.push(tokio::spawn(async move {
                            let notified = notify.notified();
                            count.fetch_add(1, Ordering::Relaxed);
                            notified.await;
                        }));
                    }
                    out
                })
                .await
            })
            .expect("parking driver");
        self.wait_polled(&polled, n);
        self.parked.fetch_add(n, Ordering::Relaxed);
        self.wait_drained();
    }

    /// current_thread polls the tasks only while `block_on` yields to them;
    /// multi_thread workers need no help.
    fn wait_polled(&self, polled: &AtomicUsize, n: usize) {
        if self.rt.handle().runtime_flavor() == tokio::runtime::RuntimeFlavor::CurrentThread {
            self.block_on(async {
                while polled.load(Ordering::Relaxed) < n {
                    tokio::task::yield_now().await;
                }
            });
        } else {
            while polled.load(Ordering::Relaxed) < n {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    }

    /// Wakes every parked task and joins them.
    #[allow(dead_code)]
    pub fn unpark(&self, handles: Vec<JoinHandle<()>>) {
        self.notify.notify_waiters();
        self.block_on(async {
            for h in handles {
                h.await.expect("parked task");
            }
        });
        self.parked.store(0, Ordering::Relaxed);
        self.wait_drained();
    }

    /// A parked task shows the variant's hooks at work: no polls counted
    /// without poll hooks, one with them; a call chain only with chains.
    #[cfg(tokio_unstable)]
    fn self_check(&self, variant: Variant) {
        #[cfg(feature = "process")]
        self.check_spans(variant);
        let Some(tracker) = &self.tracker else { return };
        let info = self.block_on(async {
            let (tx, rx) = tokio::sync::oneshot::channel::<()>();
            let parked = tokio::spawn(async move {
                let _ = tx.send(());
                std::future::pending::<()>().await;
            });
            rx.await.expect("parked task polled");
            // On multi_thread the after-poll hook may still be running.
            tokio::task::yield_now().await;
            let id = parked.id().to_string();
            let info = tracker
                .snapshot()
                .tasks()
                .iter()
                .find(|t| t.id.to_string() == id)
                .cloned();
            parked.abort();
            let _ = parked.await;
            info.expect("parked task is in the registry")
        });
        let polls = variant != Variant::Sites;
        assert_eq!(
            info.polls > 0,
            polls,
            "{}: polls = {}",
            variant.name(),
            info.polls
        );
        let chain = info.call_chain();
        let chains = variant.capture() == Some(Capture::CallChains);
        assert_eq!(
            !chain.is_empty(),
            chains,
            "{}: chain = {chain:?}",
            variant.name()
        );
        self.wait_drained();
    }

    /// A parked task is seen through its span only in the span variants.
    #[cfg(all(feature = "process", tokio_unstable))]
    fn check_spans(&self, variant: Variant) {
        let seen = self.block_on(async {
            let (tx, rx) = tokio::sync::oneshot::channel::<()>();
            let parked = tokio::spawn(async move {
                let _ = tx.send(());
                std::future::pending::<()>().await;
            });
            rx.await.expect("parked task polled");
            // a plain check (no tracker on this thread): what the spans show
            let found = leakcheck::find_leaks().await.err();
            parked.abort();
            let _ = parked.await;
            found.map_or(0, |report| report.tasks().count())
        });
        let want = usize::from(variant.spans());
        assert_eq!(seen, want, "{}: tasks seen through spans", variant.name());
    }

    /// Without `--cfg tokio_unstable` there are no hooks to measure.
    #[cfg(not(tokio_unstable))]
    fn self_check(&self, variant: Variant) {
        assert!(
            self.tracker.is_none(),
            "{}: build with --cfg tokio_unstable (the workspace's .cargo/config.toml sets it)",
            variant.name()
        );
    }
}

/// On a runtime thread: no dispatcher for the rest of its life unless
/// `spans`.
#[cfg(feature = "process")]
fn quiet_thread(spans: bool) {
    if !spans {
        std::mem::forget(tracing::dispatcher::set_default(nobody()));
    }
}

async fn spawn_and_join(tasks: u64) -> Duration {
    let mut handles = Vec::with_capacity(BATCH as usize);
    let start = Instant::now();
    let mut left = tasks;
    while left > 0 {
        let n = left.min(BATCH);
        for _ in 0..n {
            handles.push(tokio::spawn(async {}));
        }
        for handle in handles.drain(..) {
            handle.await.expect("task");
        }
        left -= n;
    }
    start.elapsed()
}
