//! Microbenchmark of the live-task table alone (no tokio): ns per operation
//! for the access patterns a tracker sees, on one thread.
//!
//! `cargo bench -p leakcheck --bench table [-- --sizes 1000,100000,1000000 --ops N]`
//!
//! For each N: "park" N records with sequential ids (like N tasks spawned in
//! a row that stay alive), then churn short-lived records through the table
//! (insert id, remove the id inserted W earlier: a window of W = 1000
//! in-flight tasks, ids still increasing), then remove the parked records in
//! random order. Prints ns per insert while parking, ns per churn pair
//! (insert + remove) in slices so a slow-down partway through shows, ns per
//! parked remove, and allocated slot bytes per parked record. The worst
//! single insert is the longest a hook spends in its own insert (a grow
//! allocates and rehashes a shard's array); the worst lookup by a second
//! thread meanwhile is the longest anyone waited for a shard lock. With
//! the N records parked, a full copy (`Table::visit`, what a snapshot or
//! census starts with) runs 5 times while another thread looks records up:
//! the median copy time and that thread's slowest lookup, the longest a
//! hook would wait for a shard a copy holds. Run directly without
//! `--bench` (as `cargo test --benches` does) it is a smoke run.

// The table is self-contained, so the bench compiles its source directly.
// (Under `cargo test --benches`, cfg(test) is set but #[test] functions are
// not collected, so the unit tests' imports are unused here.)
#[allow(dead_code, unused_imports)]
#[path = "../src/table/mod.rs"]
mod table;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use table::{Record, Table};

/// 24 bytes, like the `SpawnSites` record (payload written, never read).
#[derive(Clone, Copy)]
#[allow(dead_code)]
struct Rec {
    id: u64,
    parent: u64,
    site: u32,
    spawned: u32,
}

// SAFETY: all-zero is the empty record (id 0).
unsafe impl Record for Rec {
    fn id(&self) -> u64 {
        self.id
    }
}

fn rec(id: u64) -> Rec {
    Rec {
        id,
        parent: 1,
        site: 3,
        spawned: id as u32,
    }
}

fn main() {
    let mut sizes = vec![1_000u64, 100_000, 1_000_000];
    let mut ops = 4_000_000u64;
    let mut bench = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--sizes" => {
                sizes = args
                    .next()
                    .expect("--sizes a,b,c")
                    .split(',')
                    .map(|s| s.replace('_', "").parse().expect("a number"))
                    .collect()
            }
            "--ops" => ops = args.next().and_then(|s| s.parse().ok()).expect("--ops N"),
            "--bench" => bench = true,
            _ => {}
        }
    }
    if !bench {
        sizes = vec![1_000];
        ops = 20_000;
    }
    const WINDOW: u64 = 1000;
    const SLICES: u64 = 8;
    println!(
        "| parked N | insert while parking ns (worst single insert; worst lookup by another thread meanwhile) | full copy ms (worst lookup meanwhile) | churn pair ns, {SLICES} slices of {} pairs | parked remove ns | slot bytes / parked |",
        ops / SLICES
    );
    println!("|---:|---:|---:|---|---:|---:|");
    for &n in &sizes {
        let table: Arc<Table<Rec>> = Arc::new(Table::new());
        // Another thread looks up records in every shard while this one
        // parks: its slowest lookup is the longest it waited for a lock.
        let (stop, prober) = probe(&table);
        let mut next = 1u64;
        let t = Instant::now();
        let mut worst = Duration::ZERO;
        for _ in 0..n {
            let one = Instant::now();
            table.insert(rec(next));
            worst = worst.max(one.elapsed());
            next += 1;
        }
        let park_ns = t.elapsed().as_nanos() as f64 / n as f64;
        stop.store(true, Ordering::Relaxed);
        let waited = prober.join().expect("prober");
        let bytes = table.allocated_bytes() as f64 / n as f64;
        let copy = copies(&table);
        let mut slices = Vec::new();
        let first_short = next;
        for _ in 0..SLICES {
            let t = Instant::now();
            for _ in 0..ops / SLICES {
                table.insert(rec(next));
                if next >= first_short + WINDOW {
                    table.remove(next - WINDOW);
                }
                next += 1;
            }
            slices.push(format!(
                "{:.0}",
                t.elapsed().as_nanos() as f64 / (ops / SLICES) as f64
            ));
        }
        for id in next.saturating_sub(WINDOW).max(first_short)..next {
            table.remove(id);
        }
        // Remove parked records in a scrambled order (an odd multiplier
        // permutes 0..2^k; skip what falls outside 1..=n).
        let span = n.next_power_of_two();
        let t = Instant::now();
        for i in 0..span {
            let id = (i.wrapping_mul(0x9E37_79B9_7F4A_7C15) & (span - 1)) + 1;
            if id <= n {
                table.remove(id);
            }
        }
        let remove_ns = t.elapsed().as_nanos() as f64 / n as f64;
        assert_eq!(table.len(), 0);
        println!(
            "| {n} | {park_ns:.0} ({:.0} µs; {:.0} µs) | {copy} | {} | {remove_ns:.0} | {bytes:.1} |",
            worst.as_secs_f64() * 1e6,
            waited.as_secs_f64() * 1e6,
            slices.join(" ")
        );
    }
}

/// A thread that looks up records 1..=64 (one per shard) until told to
/// stop; it returns its slowest lookup.
fn probe(table: &Arc<Table<Rec>>) -> (Arc<AtomicBool>, std::thread::JoinHandle<Duration>) {
    let stop = Arc::new(AtomicBool::new(false));
    let (table, done) = (table.clone(), stop.clone());
    let prober = std::thread::spawn(move || {
        let mut worst = Duration::ZERO;
        let mut id = 1u64;
        while !done.load(Ordering::Relaxed) {
            let t = Instant::now();
            std::hint::black_box(table.get(id));
            worst = worst.max(t.elapsed());
            id = id % 64 + 1;
        }
        worst
    });
    (stop, prober)
}

/// Five full copies of the table while a prober runs: "median copy ms
/// (prober's slowest lookup µs)".
fn copies(table: &Arc<Table<Rec>>) -> String {
    let (stop, prober) = probe(table);
    let mut ms: Vec<f64> = (0..5)
        .map(|_| {
            let t = Instant::now();
            let mut n = 0usize;
            table.visit(0, |r| n += std::hint::black_box(r.id) as usize & 1);
            std::hint::black_box(n);
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    stop.store(true, Ordering::Relaxed);
    let waited = prober.join().expect("prober");
    ms.sort_by(f64::total_cmp);
    format!("{:.1} ({:.0} µs)", ms[2], waited.as_secs_f64() * 1e6)
}
