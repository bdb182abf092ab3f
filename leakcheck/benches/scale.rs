//! What tracking costs with many live tasks: spawn+complete ratios, memory
//! per live task, and how long a snapshot stalls the runtime.
//!
//! ```sh
//! cargo bench -p leakcheck --bench scale                 # all three sections
//! cargo bench -p leakcheck --bench scale -- --memory     # only memory
//! cargo bench -p leakcheck --bench scale -- --stall      # only the snapshot stall
//! cargo bench -p leakcheck --bench scale -- --spawn --sizes 1000,1000000 --rounds 9
//! ```
//!
//! Flags: `--sizes a,b,c` (live tasks; default 1000,100000,1000000),
//! `--rounds R` (measured rounds after one warm-up; default 7), `--only
//! <variant>` (spawn section: one variant, e.g. for a profiler), `--tasks K`
//! (short tasks per repetition; default 300000), `--flavor
//! current_thread|multi_thread_2`, `--samples S` (memory: fresh processes
//! per variant and size; default 3), `--stall-size N` (default: the
//! largest size), `--stall-secs T` (per phase; default 3). Run directly
//! without `--bench` (as `cargo test --benches` does) it is a smoke run.
//!
//! * **spawn**: per flavor and live-task count N, one runtime per variant
//!   (plain, spawn_sites, sites_and_polls, call_chains) with N tasks parked
//!   on a `Notify`; then the variants run round-robin (the starting one
//!   rotated each round), each repetition spawning and joining K `async {}`
//!   tasks in batches of 1000 from a driver task (as `ratios.rs`). Medians
//!   of ns/task and their ratio to plain.
//! * **memory**: one variant at one N per process (the bench re-runs itself
//!   with `--memory-child`), multi_thread(2): RSS (`/proc/self/statm`) and
//!   glibc `mallinfo2` in-use bytes before and after parking N tasks, per
//!   live task; again after K short tasks have churned through (the
//!   tracker's steady state). Δ = variant − plain of the same sample round.
//! * **stall**: call_chains with N parked tasks. First, alone: `census()`,
//!   `snapshot()`, and a clean `find_leaks()` with the N tasks older than
//!   the baseline (one look of a check's wait loop). Then a ticker task on
//!   a 1 ms interval that also spawns and joins one task per tick: the
//!   largest gap between ticks and the slowest spawn+join while another
//!   thread (a) does nothing, (b) burns CPU without touching the tracker,
//!   (c) calls `tracker.snapshot()` in a loop, (d) calls `tracker.census()`
//!   in a loop (the table copy plus a count per record, no `TaskInfo`).

use std::fmt::Write as _;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[path = "common/mod.rs"]
mod common;
#[path = "common/rss.rs"]
mod rss;

use common::{Bench, Flavor, Variant};
use leakcheck::Tracker;

/// The variants measured: every one but `empty_hooks` (a reference row
/// for `ratios.rs`) and the span variants of a `process` build, plain first.
fn variants() -> Vec<Variant> {
    let only = ONLY.get().and_then(Option::as_deref);
    Variant::ALL
        .iter()
        .copied()
        .filter(|&v| v != Variant::EmptyHooks && !v.spans())
        .filter(|v| only.is_none_or(|name| name == v.name()))
        .collect()
}

/// `--only <variant>`: measure one variant (e.g. under a profiler).
static ONLY: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();

struct Args {
    sizes: Vec<usize>,
    rounds: usize,
    tasks: u64,
    flavor: Option<String>,
    samples: usize,
    stall_size: Option<usize>,
    stall_secs: f64,
    spawn: bool,
    memory: bool,
    stall: bool,
    smoke: bool,
}

fn parse_args() -> Args {
    let mut a = Args {
        sizes: vec![1_000, 100_000, 1_000_000],
        rounds: 7,
        tasks: 300_000,
        flavor: None,
        samples: 3,
        stall_size: None,
        stall_secs: 3.0,
        spawn: false,
        memory: false,
        stall: false,
        smoke: true,
    };
    let mut it = std::env::args().skip(1);
    let num = |v: Option<String>, name: &str| -> u64 {
        v.and_then(|v| v.replace('_', "").parse().ok())
            .unwrap_or_else(|| panic!("{name} needs a number"))
    };
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--sizes" => {
                a.sizes = it
                    .next()
                    .expect("--sizes a,b,c")
                    .split(',')
                    .map(|s| num(Some(s.into()), "--sizes") as usize)
                    .collect();
                a.smoke = false;
            }
            "--rounds" => a.rounds = (num(it.next(), "--rounds") as usize).max(1),
            "--tasks" => {
                a.tasks = num(it.next(), "--tasks").max(1);
                a.smoke = false;
            }
            "--flavor" => a.flavor = it.next(),
            "--only" => {
                let _ = ONLY.set(it.next());
            }
            "--samples" => a.samples = (num(it.next(), "--samples") as usize).max(1),
            "--stall-size" => a.stall_size = Some(num(it.next(), "--stall-size") as usize),
            "--stall-secs" => {
                a.stall_secs = it
                    .next()
                    .and_then(|v| v.parse().ok())
                    .expect("--stall-secs needs seconds")
            }
            "--spawn" => a.spawn = true,
            "--memory" => a.memory = true,
            "--stall" => a.stall = true,
            "--memory-child" => {
                let variant = it.next().expect("variant");
                let n = num(it.next(), "size") as usize;
                let churn = num(it.next(), "churn");
                memory_child(&variant, n, churn);
                std::process::exit(0);
            }
            // `cargo bench` passes `--bench`; anything else is ignored.
            "--bench" => a.smoke = false,
            _ => {}
        }
    }
    if !(a.spawn || a.memory || a.stall) {
        (a.spawn, a.memory, a.stall) = (true, true, true);
    }
    if a.smoke {
        println!("smoke run (no --bench, --sizes or --tasks): tiny sizes, 1 round");
        a.sizes = vec![1_000];
        a.rounds = 1;
        a.tasks = 2_000;
        a.samples = 1;
        a.stall_size = Some(10_000);
        a.stall_secs = 0.2;
    }
    a
}

fn main() {
    let args = parse_args();
    println!("# leakcheck at scale: spawn cost, memory and snapshot stalls\n");
    println!("machine: {}", machine());
    if !cfg!(tokio_unstable) {
        println!("WARNING: built without --cfg tokio_unstable: the hooks do not exist");
    }
    let start = Instant::now();
    if args.spawn {
        spawn_section(&args);
    }
    if args.memory {
        memory_section(&args);
    }
    if args.stall {
        stall_section(&args);
    }
    println!("\ntotal time: {:.0} s", start.elapsed().as_secs_f64());
}

fn flavors(args: &Args) -> Vec<Flavor> {
    // multi_thread(2) first: the budgets are set on it.
    Flavor::ALL
        .into_iter()
        .rev()
        .filter(|f| args.flavor.as_deref().is_none_or(|n| n == f.name()))
        .collect()
}

/// Budgets (ratio of medians to plain) for multi_thread(2).
fn budget(variant: Variant) -> Option<f64> {
    match variant {
        Variant::Sites => Some(1.15),
        Variant::Chains => Some(1.6),
        _ => None,
    }
}

fn spawn_section(args: &Args) {
    println!(
        "\n## Spawn + complete with N live tasks\n\n{} short tasks per repetition in batches of {}, 1 warm-up + {} measured rounds, variants round-robin",
        args.tasks,
        common::BATCH,
        args.rounds
    );
    for flavor in flavors(args) {
        for &n in &args.sizes {
            let cpu = cpu_jiffies();
            let mut busy = 0;
            let benches: Vec<Bench> = variants().iter().map(|&v| Bench::new(flavor, v)).collect();
            let mut handles: Vec<Vec<_>> = Vec::new();
            let mut park_ns = Vec::new();
            for b in &benches {
                let mut h = Vec::with_capacity(n);
                let t = Instant::now();
                b.park(n, &mut h);
                park_ns.push(t.elapsed().as_nanos() as f64 / n as f64);
                handles.push(h);
            }
            let mut ns: Vec<Vec<f64>> = vec![Vec::new(); benches.len()];
            for round in 0..1 + args.rounds {
                for k in 0..benches.len() {
                    let i = (k + round) % benches.len();
                    let elapsed = benches[i].run(args.tasks);
                    if rustc_running() > 0 {
                        busy += 1;
                    }
                    if round > 0 {
                        ns[i].push(elapsed.as_nanos() as f64 / args.tasks as f64);
                    }
                }
            }
            let bytes: Vec<Option<usize>> = benches
                .iter()
                .map(|b| b.tracker().map(Tracker::table_bytes))
                .collect();
            for (b, h) in benches.iter().zip(handles) {
                b.unpark(h);
            }
            drop(benches);
            let mut out = String::new();
            let _ = writeln!(
                out,
                "\n### {}, N = {n} live tasks (steal {}; rustc running after {busy} of {} repetitions)\n",
                flavor.name(),
                steal_since(cpu),
                (1 + args.rounds) * variants().len()
            );
            let _ = writeln!(
                out,
                "| variant | median ns/task | min–max | ratio vs plain (medians) | per-round ratio: median (min–max) | budget (multi_thread_2) | parking ns/task | table B/live task |"
            );
            let _ = writeln!(out, "|---|---:|---:|---:|---:|---|---:|---:|");
            // Without plain (`--only`), ratios are against the variant itself.
            let plain = &ns[variants()
                .iter()
                .position(|&v| v == Variant::Plain)
                .unwrap_or(0)];
            for (i, &v) in variants().iter().enumerate() {
                let xs = &ns[i];
                let m = median(xs);
                let (lo, hi) = min_max(xs);
                let ratio = m / median(plain);
                let rounds: Vec<f64> = xs.iter().zip(plain).map(|(x, p)| x / p).collect();
                let (rlo, rhi) = min_max(&rounds);
                let verdict = match budget(v) {
                    Some(b) if ratio <= b => format!("≤ {b}x: holds"),
                    Some(b) => format!("≤ {b}x: EXCEEDED"),
                    None => String::new(),
                };
                let table =
                    bytes[i].map_or("–".into(), |b| format!("{:.1}", b as f64 / n as f64));
                let _ = writeln!(
                    out,
                    "| {} | {m:.0} | {lo:.0}–{hi:.0} | {ratio:.2}x | {:.2}x ({rlo:.2}–{rhi:.2}) | {verdict} | {:.0} | {table} |",
                    v.name(),
                    median(&rounds),
                    park_ns[i],
                );
            }
            let _ = writeln!(out, "\nraw ns/task per measured round:");
            for (i, &v) in variants().iter().enumerate() {
                let row: Vec<String> = ns[i].iter().map(|x| format!("{x:.0}")).collect();
                let _ = writeln!(out, "- {}: {}", v.name(), row.join(" "));
            }
            print!("{out}");
        }
    }
}

/// (resident bytes, malloc in-use bytes) of this process.
fn memory_now() -> (u64, u64) {
    let heap = {
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        {
            // SAFETY: mallinfo2 has no preconditions.
            let m = unsafe { libc::mallinfo2() };
            (m.uordblks + m.hblkhd) as u64
        }
        #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
        0
    };
    (rss::resident_bytes(), heap)
}

/// One variant, one size, in a fresh process: prints a `MEMCHILD` line.
fn memory_child(variant: &str, n: usize, churn: u64) {
    let v = variants()
        .into_iter()
        .find(|v| v.name() == variant)
        .unwrap_or_else(|| panic!("unknown variant {variant}"));
    let bench = Bench::new(Flavor::MultiThread2, v);
    // Warm-up: a park/unpark cycle and some short tasks.
    let mut h = Vec::with_capacity(1000);
    bench.park(1000, &mut h);
    bench.unpark(h);
    bench.run(10_000);
    let mut handles = Vec::with_capacity(n);
    let (rss0, heap0) = memory_now();
    bench.park(n, &mut handles);
    let (rss1, heap1) = memory_now();
    let table1 = bench.tracker().map_or(0, Tracker::table_bytes);
    bench.run(churn);
    let (rss2, heap2) = memory_now();
    let table2 = bench.tracker().map_or(0, Tracker::table_bytes);
    bench.unpark(handles);
    let per = |a: u64, b: u64| (a as f64 - b as f64) / n as f64;
    println!(
        "MEMCHILD {:.2} {:.2} {:.2} {:.2} {:.2} {:.2}",
        per(rss1, rss0),
        per(heap1, heap0),
        table1 as f64 / n as f64,
        per(rss2, rss0),
        per(heap2, heap0),
        table2 as f64 / n as f64,
    );
}

fn memory_section(args: &Args) {
    let exe = std::env::current_exe().expect("own path");
    let churn = args.tasks;
    println!(
        "\n## Memory per live task\n\nmulti_thread(2); one variant and size per process, {} sample(s) each, variants interleaved; \"after churn\" = after {churn} more short tasks spawned and joined with the N tasks still parked",
        args.samples
    );
    // samples[size][variant] = Vec<[f64; 6]>
    let mut got = vec![vec![Vec::<[f64; 6]>::new(); variants().len()]; args.sizes.len()];
    for sample in 0..args.samples {
        for (si, &n) in args.sizes.iter().enumerate() {
            for k in 0..variants().len() {
                let vi = (k + sample) % variants().len();
                let out = Command::new(&exe)
                    .args([
                        "--memory-child",
                        variants()[vi].name(),
                        &n.to_string(),
                        &churn.to_string(),
                    ])
                    .output()
                    .expect("run memory child");
                let stdout = String::from_utf8_lossy(&out.stdout);
                let line = stdout
                    .lines()
                    .find_map(|l| l.strip_prefix("MEMCHILD "))
                    .unwrap_or_else(|| {
                        panic!(
                            "memory child failed: {}\n{}",
                            stdout,
                            String::from_utf8_lossy(&out.stderr)
                        )
                    });
                let xs: Vec<f64> = line
                    .split_whitespace()
                    .map(|x| x.parse().expect("number"))
                    .collect();
                got[si][vi].push(xs.try_into().expect("six numbers"));
            }
        }
    }
    for (si, &n) in args.sizes.iter().enumerate() {
        let col =
            |vi: usize, c: usize| median(&got[si][vi].iter().map(|x| x[c]).collect::<Vec<_>>());
        // Δ per sample against plain of the same sample round.
        let delta = |vi: usize, c: usize| {
            let d: Vec<f64> = got[si][vi]
                .iter()
                .zip(&got[si][0])
                .map(|(x, p)| x[c] - p[c])
                .collect();
            let (lo, hi) = min_max(&d);
            format!("{:+.0} ({lo:+.0}…{hi:+.0})", median(&d))
        };
        println!("\n### N = {n} live tasks (bytes per live task; medians, Δ range over samples)\n");
        println!("| variant | RSS | Δ RSS vs plain | heap in use | Δ heap vs plain | table slots | after churn: Δ RSS | Δ heap | table slots |");
        println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
        for (vi, v) in variants().iter().enumerate() {
            let plain = vi == 0;
            let d = |c| {
                if plain {
                    "–".to_string()
                } else {
                    delta(vi, c)
                }
            };
            println!(
                "| {} | {:.0} | {} | {:.0} | {} | {:.1} | {} | {} | {:.1} |",
                v.name(),
                col(vi, 0),
                d(0),
                col(vi, 1),
                d(1),
                col(vi, 2),
                d(3),
                d(4),
                col(vi, 5),
            );
        }
    }
}

/// Largest gap between ticks of a 1 ms interval, and slowest spawn+join,
/// measured by a task on the runtime while `disturb` runs on another thread.
struct Stall {
    ticks: u64,
    max_gap: Duration,
    max_spawn: Duration,
    /// Durations of the disturbing thread's iterations.
    work: Vec<Duration>,
}

fn stall_phase(bench: &Bench, secs: f64, disturb: Option<Box<dyn Fn() + Send>>) -> Stall {
    let stop = Arc::new(AtomicBool::new(false));
    let other = disturb.map(|f| {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut work = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                f();
                work.push(t.elapsed());
            }
            work
        })
    });
    let run_for = Duration::from_secs_f64(secs);
    let (ticks, max_gap, max_spawn) = bench.runtime().block_on(async move {
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(Duration::from_millis(1));
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            interval.tick().await;
            let start = Instant::now();
            let mut last = Instant::now();
            let (mut ticks, mut max_gap, mut max_spawn) = (0, Duration::ZERO, Duration::ZERO);
            while start.elapsed() < run_for {
                interval.tick().await;
                let now = Instant::now();
                max_gap = max_gap.max(now - last);
                tokio::spawn(async {}).await.expect("tick task");
                max_spawn = max_spawn.max(now.elapsed());
                last = Instant::now();
                ticks += 1;
            }
            (ticks, max_gap, max_spawn)
        })
        .await
        .expect("ticker")
    });
    stop.store(true, Ordering::Relaxed);
    let work = other
        .map(|t| t.join().expect("disturber"))
        .unwrap_or_default();
    Stall {
        ticks,
        max_gap,
        max_spawn,
        work,
    }
}

fn stall_section(args: &Args) {
    let n = args
        .stall_size
        .unwrap_or_else(|| args.sizes.iter().copied().max().unwrap_or(1_000_000));
    println!(
        "\n## Snapshot stall: call_chains, N = {n} parked tasks, {:.1} s per phase\n\nA ticker task on a 1 ms interval spawns and joins one task per tick; \"gap\" is the longest time between two ticks (nominal 1 ms), \"spawn\" the slowest spawn+join.",
        args.stall_secs
    );
    for flavor in flavors(args) {
        let bench = Bench::with_timer(flavor, Variant::Chains);
        let mut handles = Vec::with_capacity(n);
        bench.park(n, &mut handles);
        let tracker = bench.tracker().expect("tracker").clone();
        // Cost on its own (nothing else running): `census()` (the table
        // copy and a count per record), then the whole `snapshot()` (copy,
        // sort, a `TaskInfo` per task).
        let time = |f: &dyn Fn()| {
            let ms: Vec<f64> = (0..5)
                .map(|_| {
                    let t = Instant::now();
                    f();
                    t.elapsed().as_secs_f64() * 1e3
                })
                .collect();
            let (lo, hi) = min_max(&ms);
            format!("{:.1} ms ({lo:.1}–{hi:.1})", median(&ms))
        };
        let census_ms = time(&|| {
            std::hint::black_box(tracker.census());
        });
        let snapshot_ms = time(&|| {
            std::hint::black_box(tracker.snapshot());
        });
        // A leak check's look when all N tasks predate the baseline: what
        // its wait loop pays on every wake (nothing leaked: one look).
        tracker.set_baseline();
        let check_ms = time(&|| {
            let clean = bench.runtime().block_on(tracker.find_leaks());
            assert!(clean.is_ok(), "nothing was spawned since the baseline");
        });
        println!(
            "\n{}: with nothing else running, median (min–max) of 5: tracker.census() {census_ms}; tracker.snapshot() {snapshot_ms} (a TaskInfo is {} bytes); a clean find_leaks() with the N tasks older than the baseline {check_ms}",
            flavor.name(),
            size_of::<leakcheck::TaskInfo>()
        );
        // A CPU burner the size of a table copy, touching no tracker state.
        let burn = || {
            let src = vec![1u8; 48 << 20];
            let mut dst = vec![0u8; 48 << 20];
            dst.copy_from_slice(&src);
            std::hint::black_box(&dst);
        };
        let snap = tracker.clone();
        let census = tracker.clone();
        type Disturb = Option<Box<dyn Fn() + Send>>;
        let phases: Vec<(&str, Disturb)> = vec![
            ("quiet (no other thread)", None),
            (
                "CPU burner thread (copies 48 MB in a loop, no tracker)",
                Some(Box::new(burn)),
            ),
            (
                "tracker.snapshot() in a loop",
                Some(Box::new(move || {
                    std::hint::black_box(snap.snapshot());
                })),
            ),
            (
                "tracker.census() in a loop",
                Some(Box::new(move || {
                    std::hint::black_box(census.census());
                })),
            ),
        ];
        println!("\n### {}\n", flavor.name());
        println!("| other thread | ticks | max gap | max spawn+join | its iterations | iteration median | min–max |");
        println!("|---|---:|---:|---:|---:|---:|---:|");
        for (name, disturb) in phases {
            let s = stall_phase(&bench, args.stall_secs, disturb);
            let ms: Vec<f64> = s.work.iter().map(|d| d.as_secs_f64() * 1e3).collect();
            let (lo, hi) = min_max(&ms);
            let work = if ms.is_empty() {
                "– | – | –".to_string()
            } else {
                format!("{} | {:.1} ms | {lo:.1}–{hi:.1} ms", ms.len(), median(&ms))
            };
            println!(
                "| {name} | {} | {:.2} ms | {:.2} ms | {work} |",
                s.ticks,
                s.max_gap.as_secs_f64() * 1e3,
                s.max_spawn.as_secs_f64() * 1e3,
            );
        }
        println!(
            "\nlive records: {}, table slots: {:.1} MB",
            tracker.live_count(),
            tracker.table_bytes() as f64 / 1e6
        );
        bench.unpark(handles);
    }
}

fn median(xs: &[f64]) -> f64 {
    if xs.is_empty() {
        return f64::NAN;
    }
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn min_max(xs: &[f64]) -> (f64, f64) {
    xs.iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &x| {
            (lo.min(x), hi.max(x))
        })
}

/// The `cpu` line of /proc/stat: (steal, total) jiffies, if readable.
fn cpu_jiffies() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().next()?;
    let fields: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .take(8)
        .filter_map(|f| f.parse().ok())
        .collect();
    (fields.len() == 8).then(|| (fields[7], fields.iter().sum()))
}

fn steal_since(start: Option<(u64, u64)>) -> String {
    match (start, cpu_jiffies()) {
        (Some((s0, t0)), Some((s1, t1))) if t1 > t0 => {
            format!("{:.1}%", 100.0 * (s1 - s0) as f64 / (t1 - t0) as f64)
        }
        _ => "n/a".into(),
    }
}

fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|m| m.trim_start_matches([' ', '\t', ':']).to_owned())
        .unwrap_or_else(|| "unknown CPU".into());
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!("{model}, {cpus} CPUs, Linux {}", kernel.trim())
}

/// Other rustc processes now (a build running beside the benchmark skews it).
fn rustc_running() -> usize {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0;
    };
    dir.filter_map(Result::ok)
        .filter(|e| {
            let stat = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
            stat.rsplit_once(") ")
                .is_some_and(|(head, tail)| head.ends_with("(rustc") && !tail.starts_with('Z'))
        })
        .count()
}
