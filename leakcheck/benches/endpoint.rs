//! How long `GET /debug/tasks` takes with many parked tasks, and how long
//! a task that ticks every millisecond on the same runtime stalls meanwhile.
//!
//! `cargo bench -p leakcheck --features endpoint --bench endpoint`
//! (`-- 100000` for one size). Not a criterion benchmark: each case is
//! one big request, timed once per run, plus its parts:
//!
//! - `snapshot`: `Tracker::snapshot()` alone (what `?debug=2` builds);
//! - `census`: `Tracker::census()` alone (what the grouped view, pprof,
//!   the flame graph and growth build);
//! - `serve`: the request through `leakcheck::serve` (its own thread and
//!   runtime), over TCP, whole body read;
//! - `debug=2`: `GET /debug/tasks?debug=2` through `serve` (every task,
//!   the first 10000 listed: the default limit), whole body read;
//! - `router`: the same request through `endpoint::router` running as a
//!   task of the measured runtime itself (the `app.nest` case), whole body.
//!
//! The stall is the worst gap between two wake-ups of a 1 ms interval task
//! during the request, next to the worst gap in as long a quiet period.
//!
//! `-- --console` (with `--features endpoint,console`) measures instead
//! what console-subscriber costs alongside leakcheck: spawn + complete per
//! task on the instrumented runtime before and after `console::init()`,
//! and the memory it keeps per finished task (see BENCHMARKS.md).

#[cfg(tokio_unstable)]
mod bench {
    use std::future::pending;
    use std::io::{Read, Write};
    use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use leakcheck::{Capture, Options, ServeOptions, Tracker};
    use tokio::runtime::Runtime;
    use tower::ServiceExt;

    /// The worst gap between wake-ups of a 1 ms ticker, in µs.
    #[derive(Clone, Default)]
    struct Stall(Arc<AtomicU64>);

    impl Stall {
        fn start(&self, rt: &Runtime) {
            let worst = self.0.clone();
            rt.spawn(async move {
                let mut every = tokio::time::interval(Duration::from_millis(1));
                every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                let mut last = Instant::now();
                loop {
                    every.tick().await;
                    let gap = last.elapsed().as_micros() as u64;
                    worst.fetch_max(gap, Relaxed);
                    last = Instant::now();
                }
            });
        }

        /// Runs `f`, returning its time and the worst gap meanwhile.
        fn during<T>(&self, f: impl FnOnce() -> T) -> (Duration, Duration, T) {
            self.0.store(0, Relaxed);
            let start = Instant::now();
            let out = f();
            let took = start.elapsed();
            (took, Duration::from_micros(self.0.load(Relaxed)), out)
        }
    }

    /// `n` parked tasks from four spawn sites, spawned by a task that then
    /// ends (as a request handler would), so each has a parent to look up.
    fn park(rt: &Runtime, n: usize) {
        let spawner = rt.spawn(async move {
            for i in 0..n {
                match i % 4 {
                    0 => tokio::spawn(pending::<()>()),
                    1 => tokio::spawn(pending::<()>()),
                    2 => tokio::spawn(pending::<()>()),
                    _ => tokio::spawn(pending::<()>()),
                };
                if i % 1024 == 0 {
                    tokio::task::yield_now().await; // let the workers poll them
                }
            }
        });
        rt.block_on(spawner).unwrap();
        while rt.handle().metrics().global_queue_depth() > 0 {
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn http_get(addr: std::net::SocketAddr, path: &str) -> usize {
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        let request = format!("GET {path} HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).unwrap();
        let mut body = Vec::new();
        stream.read_to_end(&mut body).unwrap();
        assert!(
            body.starts_with(b"HTTP/1.1 200"),
            "{}",
            String::from_utf8_lossy(&body[..200.min(body.len())])
        );
        body.len()
    }

    fn via_router(rt: &Runtime, tracker: &Tracker, path: &str) -> usize {
        let app = rt.block_on(async { leakcheck::endpoint::router(tracker.clone()) });
        let request = axum::http::Request::get(path)
            .body(axum::body::Body::empty())
            .unwrap();
        let task = rt.spawn(async move {
            let response = app.oneshot(request).await.unwrap();
            axum::body::to_bytes(response.into_body(), usize::MAX)
                .await
                .unwrap()
                .len()
        });
        rt.block_on(task).unwrap()
    }

    fn case(capture: Capture, n: usize) {
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        let tracker = Options::new().capture(capture).instrument(&mut builder);
        let rt = builder.worker_threads(2).enable_all().build().unwrap();
        let stall = Stall::default();
        stall.start(&rt);
        park(&rt, n);
        let options = ServeOptions::new().addr("127.0.0.1:0".parse().unwrap());
        let server = leakcheck::serve(tracker.clone(), options).unwrap();
        let (snap, snap_stall, _) = stall.during(|| tracker.snapshot().tasks().len());
        let (census, census_stall, _) = stall.during(|| tracker.census().total);
        let (serve, serve_stall, bytes) =
            stall.during(|| http_get(server.local_addr(), "/debug/tasks"));
        let (every, every_stall, every_bytes) =
            stall.during(|| http_get(server.local_addr(), "/debug/tasks?debug=2"));
        let (router, router_stall, _) = stall.during(|| via_router(&rt, &tracker, "/tasks"));
        let (_, quiet, _) = stall.during(|| std::thread::sleep(serve.max(router).max(every)));
        println!(
            "{capture:?} {n:>8} tasks | snapshot {snap:>9.1?} (stall {snap_stall:>7.1?}) | \
             census {census:>9.1?} (stall {census_stall:>7.1?}) | \
             serve {serve:>9.1?} (stall {serve_stall:>7.1?}, {bytes} bytes) | \
             debug=2 {every:>9.1?} (stall {every_stall:>7.1?}, {every_bytes} bytes) | \
             router {router:>9.1?} (stall {router_stall:>7.1?}) | quiet stall {quiet:>7.1?}"
        );
        server.shutdown();
        rt.shutdown_background();
    }

    pub(super) fn main() {
        if std::env::args().any(|a| a == "--console") {
            #[cfg(feature = "console")]
            return super::console::main();
            #[cfg(not(feature = "console"))]
            panic!("--console needs `--features endpoint,console`");
        }
        let sizes: Vec<usize> = match std::env::args().skip(1).find_map(|a| a.parse().ok()) {
            Some(n) => vec![n],
            None => vec![100_000, 1_000_000],
        };
        for capture in [Capture::SpawnSites, Capture::CallChains] {
            for &n in &sizes {
                case(capture, n);
            }
        }
    }
}

#[cfg(all(tokio_unstable, feature = "console"))]
#[path = "common/rss.rs"]
mod rss;

/// `--console`: console-subscriber alongside leakcheck.
#[cfg(all(tokio_unstable, feature = "console"))]
mod console {
    use std::time::Instant;

    use super::rss::resident_bytes;

    use leakcheck::{Capture, Options};
    use tokio::runtime::Runtime;

    /// Tasks per round, spawned and joined in batches of 1000.
    const TASKS: usize = 20_000;
    const ROUNDS: usize = 7;

    /// The ns per task of `ROUNDS` rounds of `TASKS` `async {}` tasks,
    /// spawned and joined in batches of 1000: median, fastest, slowest.
    fn ns_per_task(rt: &Runtime) -> (f64, f64, f64) {
        let mut rounds: Vec<f64> = (0..ROUNDS)
            .map(|_| {
                rt.block_on(async {
                    let start = Instant::now();
                    for _ in 0..TASKS / 1000 {
                        let batch: Vec<_> = (0..1000).map(|_| tokio::spawn(async {})).collect();
                        for task in batch {
                            task.await.unwrap();
                        }
                    }
                    start.elapsed().as_nanos() as f64 / TASKS as f64
                })
            })
            .collect();
        rounds.sort_by(f64::total_cmp);
        (rounds[ROUNDS / 2], rounds[0], rounds[ROUNDS - 1])
    }

    pub(super) fn main() {
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        let _tracker = Options::new()
            .capture(Capture::SpawnSites)
            .instrument(&mut builder);
        let rt = builder.worker_threads(2).enable_all().build().unwrap();
        ns_per_task(&rt); // warm-up
        let (alone, _, _) = ns_per_task(&rt);
        // a port held (bound, not listening, SO_REUSEADDR) until the
        // console's server binds it too: see tests/console.rs
        let reserved = tokio::net::TcpSocket::new_v4().unwrap();
        reserved.set_reuseaddr(true).unwrap();
        reserved.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = reserved.local_addr().unwrap();
        leakcheck::console::init(Some(addr)).unwrap();
        ns_per_task(&rt); // warm-up: the console's aggregator starts
        let before = resident_bytes();
        let (with_console, fastest, slowest) = ns_per_task(&rt);
        let kept = resident_bytes().saturating_sub(before) / (ROUNDS * TASKS) as u64;
        println!(
            "multi_thread(2), Capture::SpawnSites, {TASKS} tasks x {ROUNDS} rounds | \
             hooks only {alone:.0} ns/task | with console::init {with_console:.0} ns/task \
             (rounds {fastest:.0}–{slowest:.0}; {:.1}x) | RSS kept per finished task {kept} bytes",
            with_console / alone
        );
    }
}

fn main() {
    #[cfg(tokio_unstable)]
    bench::main();
    #[cfg(not(tokio_unstable))]
    println!("the endpoint bench needs --cfg tokio_unstable (no per-task snapshot without it)");
}
