//! Ratio table: ns/task of every variant and its ratio to plain tokio, per
//! runtime flavor, as a markdown table. Needs no criterion.
//!
//! `cargo bench -p leakcheck --bench ratios [-- --tasks N --rounds R --warmup W]`
//! (`--flavor current_thread|multi_thread_2` and `--only <variant>` narrow
//! the run, e.g. for a profiler.) Run directly without `--bench` or
//! `--tasks`, as `cargo test --benches` does, it only smoke-tests each
//! variant with 2000 tasks.
//!
//! Method: one runtime per variant, built once; each
//! repetition spawns and joins N tasks (default 1,000,000) in batches of 1000
//! from a driver task and is timed inside it; variants run round-robin, one
//! warm-up round then R measured rounds (default 1 + 5), with the starting
//! variant rotated every round so drift in machine load spreads over all of
//! them. After every repetition the tracker must drain back to empty.

use std::fmt::Write as _;

#[path = "common/mod.rs"]
mod common;

use common::{Bench, Flavor, Variant, BATCH};

struct Args {
    tasks: u64,
    warmup: usize,
    rounds: usize,
    /// Only this flavor (`current_thread` or `multi_thread_2`).
    flavor: Option<String>,
    /// Only this variant (no ratios unless it is plain), e.g. for a profiler.
    only: Option<String>,
}

fn parse_args() -> Args {
    let mut args = Args {
        tasks: 1_000_000,
        warmup: 1,
        rounds: 5,
        flavor: None,
        only: None,
    };
    let mut bench = false;
    let mut tasks_given = false;
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| -> u64 {
            it.next()
                .and_then(|v| v.replace('_', "").parse().ok())
                .unwrap_or_else(|| panic!("{name} needs a number"))
        };
        match arg.as_str() {
            "--tasks" => {
                args.tasks = value("--tasks").max(1);
                tasks_given = true;
            }
            "--warmup" => args.warmup = value("--warmup") as usize,
            "--rounds" => args.rounds = (value("--rounds") as usize).max(1),
            "--flavor" => args.flavor = it.next(),
            "--only" => args.only = it.next(),
            // `cargo bench` passes `--bench`; anything else is ignored.
            "--bench" => bench = true,
            _ => {}
        }
    }
    // Without `--bench` (`cargo test --benches`) or `--tasks`: a smoke run.
    if !bench && !tasks_given {
        println!("smoke run (no --bench or --tasks): 2000 tasks, 1 round");
        (args.tasks, args.warmup, args.rounds) = (2000, 0, 1);
    }
    args
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
            // `pid (comm) state ...`; zombies don't count.
            stat.rsplit_once(") ")
                .is_some_and(|(head, tail)| head.ends_with("(rustc") && !tail.starts_with('Z'))
        })
        .count()
}

fn median(xs: &[f64]) -> f64 {
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

/// Budgets (ratio of medians to plain), per flavor.
fn budget(flavor: Flavor, variant: Variant) -> Option<f64> {
    match (flavor, variant) {
        (Flavor::CurrentThread, Variant::Sites) => Some(1.15),
        (Flavor::CurrentThread, Variant::SitesPolls) => Some(1.3),
        (_, Variant::Chains) => Some(2.0),
        _ => None,
    }
}

fn main() {
    let args = parse_args();
    println!("# leakcheck spawn+complete ratios\n");
    println!("machine: {}", machine());
    println!(
        "workload: {} tasks per repetition, batches of {BATCH}, {} warm-up + {} measured rounds, variants round-robin",
        args.tasks, args.warmup, args.rounds
    );
    if !cfg!(tokio_unstable) {
        println!("WARNING: built without --cfg tokio_unstable: the hooks do not exist");
    }
    let rustc = rustc_running();
    if rustc > 0 {
        println!("WARNING: {rustc} rustc process(es) running beside this benchmark");
    }
    let variants: Vec<Variant> = Variant::ALL
        .iter()
        .copied()
        .filter(|v| {
            let only = args.only.as_deref();
            only.is_none_or(|name| name == v.name())
        })
        .collect();
    let flavors = Flavor::ALL
        .into_iter()
        .filter(|f| args.flavor.as_deref().is_none_or(|name| name == f.name()));
    for flavor in flavors {
        let benches: Vec<(Variant, Bench)> = variants
            .iter()
            .map(|&v| (v, Bench::new(flavor, v)))
            .collect();
        let mut ns: Vec<Vec<f64>> = vec![Vec::new(); benches.len()];
        let cpu_start = cpu_jiffies();
        // Repetitions after which a rustc was running (a build beside us).
        let mut busy = 0;
        for round in 0..args.warmup + args.rounds {
            for k in 0..benches.len() {
                let i = (k + round) % benches.len();
                let elapsed = benches[i].1.run(args.tasks);
                if rustc_running() > 0 {
                    busy += 1;
                }
                if round >= args.warmup {
                    ns[i].push(elapsed.as_nanos() as f64 / args.tasks as f64);
                }
            }
        }
        let steal = steal_since(cpu_start);
        drop(benches);

        // Without plain (`--only`), ratios are left blank.
        let plain = variants
            .iter()
            .position(|&v| v == Variant::Plain)
            .map(|i| &ns[i]);
        let mut out = String::new();
        let _ = writeln!(
            out,
            "\n## {} (host steal during the block: {steal}; rustc running after {busy} of {} repetitions)\n",
            flavor.name(),
            (args.warmup + args.rounds) * variants.len(),
        );
        let _ = writeln!(
            out,
            "| variant | median ns/task | min–max ns/task | spread | ratio vs plain (medians) | per-round ratio: median (min–max) | budget |"
        );
        let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---|");
        for (i, &variant) in variants.iter().enumerate() {
            let xs = &ns[i];
            let m = median(xs);
            let (lo, hi) = min_max(xs);
            let spread = 100.0 * (hi - lo) / m;
            let (ratio, per_round, verdict) = match plain {
                Some(plain) => {
                    let ratio = m / median(plain);
                    let rounds: Vec<f64> = xs.iter().zip(plain).map(|(x, p)| x / p).collect();
                    let (rlo, rhi) = min_max(&rounds);
                    let verdict = match budget(flavor, variant) {
                        Some(b) if ratio <= b => format!("≤ {b}x: holds"),
                        Some(b) => format!("≤ {b}x: FAILS"),
                        None => String::new(),
                    };
                    (
                        format!("{ratio:.2}x"),
                        format!("{:.2}x ({rlo:.2}–{rhi:.2})", median(&rounds)),
                        verdict,
                    )
                }
                None => ("–".into(), "–".into(), String::new()),
            };
            let _ = writeln!(
                out,
                "| {} | {m:.0} | {lo:.0}–{hi:.0} | {spread:.0}% | {ratio} | {per_round} | {verdict} |",
                variant.name(),
            );
        }
        let _ = writeln!(out, "\nraw ns/task per measured round:");
        for (i, &variant) in variants.iter().enumerate() {
            let row: Vec<String> = ns[i].iter().map(|x| format!("{x:.0}")).collect();
            let _ = writeln!(out, "- {}: {}", variant.name(), row.join(" "));
        }
        print!("{out}");
    }
}
