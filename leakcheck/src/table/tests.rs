//! The table against a `HashMap` model, its two arrays' edge cases, and
//! concurrent writers, snapshots and resizes.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};

use super::archive::Archive;
use super::*;

/// A record whose payload is derived from its id, so a copy can be
/// checked for tearing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct T {
    id: u64,
    v: u64,
}

// SAFETY: all-zero is `T { id: 0, v: 0 }`, the empty record.
unsafe impl Record for T {
    fn id(&self) -> u64 {
        self.id
    }
}

fn t(id: u64) -> T {
    T {
        id,
        v: id.wrapping_mul(31) ^ 0xabcd,
    }
}

/// xorshift64*: deterministic, no dependencies.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn sorted_ids(table: &Table<T>) -> Vec<u64> {
    let mut ids: Vec<u64> = table.records().iter().map(|r| r.id).collect();
    ids.sort_unstable();
    ids
}

#[test]
fn insert_get_remove() {
    let table = Table::with_shards(4);
    assert_eq!(table.get(7), None);
    assert_eq!(table.remove(7), None, "unknown ids are a no-op");
    table.insert(t(7));
    table.insert(t(8));
    assert_eq!(table.get(7), Some(t(7)));
    assert_eq!(table.len(), 2);
    assert_eq!(table.with(8, |r| r.v = 1), Some(()));
    assert_eq!(table.get(8).map(|r| r.v), Some(1));
    assert_eq!(table.remove(7), Some(t(7)));
    assert_eq!(table.remove(7), None, "a second remove is a no-op");
    assert_eq!(table.get(7), None);
    assert_eq!(table.len(), 1);
    assert_eq!(table.max_id(), 8);
}

#[test]
fn id_zero_is_never_stored() {
    let table = Table::with_shards(1);
    table.insert(t(0));
    assert_eq!(table.len(), 0);
    assert_eq!(table.get(0), None);
    assert_eq!(table.remove(0), None);
}

#[test]
fn a_ring_collision_moves_the_older_record_to_the_archive() {
    let c = MIN_CAPACITY as u64;
    let table = Table::with_shards(1);
    for id in [1, 1 + c, 1 + 2 * c, 2] {
        table.insert(t(id));
    }
    assert_eq!(table.archived(), 2, "1 and 1+c left the ring");
    assert_eq!(sorted_ids(&table), [1, 2, 1 + c, 1 + 2 * c]);
    assert_eq!(table.remove(1 + c), Some(t(1 + c)));
    assert_eq!(table.remove(1 + 2 * c), Some(t(1 + 2 * c)), "from the ring");
    assert_eq!(table.get(1), Some(t(1)), "from the archive");
    // An older id arriving after a lap-newer one goes to the archive.
    table.insert(t(3 + c));
    table.insert(t(3));
    assert_eq!(table.get(3), Some(t(3)));
    assert_eq!(table.get(3 + c), Some(t(3 + c)));
    assert_eq!(table.len(), 4);
    assert_eq!(table.archived(), 2);
}

#[test]
fn visits_above_a_floor_skip_an_archive_that_cannot_hold_them() {
    let c = MIN_CAPACITY as u64;
    let table = Table::with_shards(1);
    table.insert(t(1));
    table.insert(t(1 + c)); // 1 leaves the ring
    let above = |floor: u64| {
        let mut ids = Vec::new();
        table.visit(floor, |r| ids.push(r.id));
        ids.sort_unstable();
        ids
    };
    assert_eq!(above(0), [1, 1 + c]);
    assert_eq!(above(1), [1 + c], "the archive holds nothing above 1");
    assert_eq!(table.shards[0].0.lock().copy_len(1), MIN_CAPACITY);
    table.insert(t(1 + 2 * c)); // 1 + c leaves the ring
    assert_eq!(above(c), [1 + c, 1 + 2 * c], "from the archive too");
    assert_eq!(above(1 + 2 * c), Vec::<u64>::new());
}

/// Archive probe runs, including one that wraps from the last slot to
/// the first, stay intact through deletes from their middle.
#[test]
fn archive_probe_runs_survive_deletes() {
    let mut archive = Archive::<T>::new(0);
    archive.resize(MIN_CAPACITY);
    let last = MIN_CAPACITY - 1;
    let with_home = |home: usize, n: usize| -> Vec<u64> {
        (1..)
            .filter(|&id| archive.home(id) == home)
            .take(n)
            .collect()
    };
    let ids: Vec<u64> = [with_home(5, 4), with_home(6, 2), with_home(last, 3)].concat();
    for &id in &ids {
        archive.insert(t(id));
    }
    let reachable = |a: &Archive<T>, ids: &[u64]| {
        for &id in ids {
            let i = a.find(id).unwrap_or_else(|| panic!("{id} lost"));
            assert_eq!(a.slots[i], t(id));
        }
    };
    reachable(&archive, &ids);
    assert!(archive.find(ids[3] + 1_000_000).is_none());
    let mut left = ids.clone();
    for id in [ids[1], ids[6], ids[4], ids[0]] {
        let i = archive.find(id).unwrap();
        assert_eq!(archive.remove_at(i), t(id));
        left.retain(|&x| x != id);
        reachable(&archive, &left);
        assert!(archive.find(id).is_none());
    }
    assert_eq!(archive.len, left.len());
}

#[test]
fn long_lived_records_leave_the_ring_once_and_stay_reachable() {
    let table = Table::with_shards(4);
    let parked = 50_000u64;
    for id in 1..=parked {
        table.insert(t(id));
    }
    // A window of 500 short-lived records sliding far past them.
    let mut next = parked + 1;
    for _ in 0..300_000 {
        table.insert(t(next));
        if next > parked + 500 {
            assert_eq!(table.remove(next - 500), Some(t(next - 500)));
        }
        next += 1;
    }
    assert_eq!(
        table.archived(),
        parked as usize,
        "every parked record archived"
    );
    assert_eq!(table.len(), parked as usize + 500);
    for id in (1..=parked).step_by(7) {
        assert_eq!(table.get(id), Some(t(id)));
    }
    for id in next - 500..next {
        assert_eq!(table.remove(id), Some(t(id)));
    }
    for id in 1..=parked {
        assert_eq!(table.remove(id), Some(t(id)));
    }
    assert_eq!(table.len(), 0);
}

#[test]
fn grows_and_shrinks_with_the_live_count() {
    let shards = 4;
    let table = Table::with_shards(shards);
    let n = 200_000u64;
    for id in 1..=n {
        table.insert(t(id));
    }
    assert_eq!(table.len(), n as usize);
    let per_record = table.allocated_bytes() as f64 / n as f64;
    let size = size_of::<T>() as f64;
    assert!(
        per_record <= size * 16.0 / 7.0 + 1.0,
        "load at least 7/16: {per_record} bytes per record"
    );
    for id in (1..=n).step_by(97) {
        assert_eq!(table.get(id), Some(t(id)));
    }
    for id in 1..=n {
        assert_eq!(table.remove(id), Some(t(id)));
    }
    assert_eq!(table.len(), 0);
    assert!(
        table.allocated_bytes() <= shards * 2 * MIN_CAPACITY * size_of::<T>(),
        "shrunk back to the minimum: {} bytes",
        table.allocated_bytes()
    );
}

/// Random operations against a `HashMap`: every answer must match.
fn against_model(shards: usize, seed: u64, mut pick: impl FnMut(&mut Rng, u64) -> u64) {
    let table = Table::with_shards(shards);
    let mut model: HashMap<u64, T> = HashMap::new();
    let mut rng = Rng(seed);
    let mut max = 0;
    for step in 0..200_000u64 {
        let id = pick(&mut rng, step).max(1);
        match rng.below(10) {
            // Ids are unique: a present id is updated in place instead.
            0..=3 if !model.contains_key(&id) => {
                let r = T { id, v: rng.next() };
                table.insert(r);
                model.insert(id, r);
                max = max.max(id);
            }
            0..=3 => assert_eq!(table.get(id), model.get(&id).copied()),
            4..=7 => assert_eq!(table.remove(id), model.remove(&id), "remove {id}"),
            8 => assert_eq!(table.get(id), model.get(&id).copied(), "get {id}"),
            _ => {
                let v = rng.next();
                let touched = table.with(id, |r| r.v = v);
                assert_eq!(touched.is_some(), model.contains_key(&id));
                if let Some(r) = model.get_mut(&id) {
                    r.v = v;
                }
            }
        }
        if step % 20_000 == 0 {
            assert_eq!(table.len(), model.len());
        }
    }
    let mut expected: Vec<T> = model.values().copied().collect();
    expected.sort_by_key(|r| r.id);
    let mut got = table.records();
    got.sort_by_key(|r| r.id);
    assert_eq!(got, expected);
    assert_eq!(table.max_id(), max);
    for r in expected {
        assert_eq!(table.remove(r.id), Some(r));
    }
    assert_eq!(table.len(), 0);
}

#[test]
fn model_dense_ids_with_many_collisions() {
    // Few distinct ids: long probe runs, constant deletes inside them.
    against_model(1, 1, |rng, _| rng.below(300));
    against_model(4, 2, |rng, _| rng.below(5_000));
}

#[test]
fn model_sliding_window_of_ids() {
    // Monotonic ids with random lifetimes, like task ids.
    against_model(2, 3, |rng, step| step.saturating_sub(rng.below(2_000)));
    against_model(16, 4, |rng, step| step.saturating_sub(rng.below(50_000)));
}

#[test]
fn model_mixed_old_and_new_ids() {
    // A fixed set of old ids plus a moving window: runs of survivors.
    against_model(1, 5, |rng, step| {
        if rng.below(3) == 0 {
            rng.below(1_000)
        } else {
            1_000 + step / 2 - rng.below(100).min(step / 2)
        }
    });
}

#[test]
fn model_ids_above_u32() {
    let base = u64::from(u32::MAX) - 500;
    against_model(8, 6, |rng, step| {
        base + step.saturating_sub(rng.below(1_000))
    });
    against_model(8, 7, |rng, _| rng.next() >> rng.below(64));
}

#[test]
fn ids_above_u32_do_not_alias_small_ids() {
    let table = Table::with_shards(16);
    let big = 1u64 << 32;
    for id in [5, big + 5, 2 * big + 5, u64::MAX - 3] {
        table.insert(t(id));
    }
    for id in [5, big + 5, 2 * big + 5, u64::MAX - 3] {
        assert_eq!(table.get(id), Some(t(id)));
    }
    assert_eq!(table.remove(big + 5), Some(t(big + 5)));
    assert_eq!(table.get(5), Some(t(5)));
    assert_eq!(table.get(2 * big + 5), Some(t(2 * big + 5)));
    assert_eq!(table.max_id(), u64::MAX - 3);
}

/// Writers insert and remove concurrently while a reader copies: every
/// record that is alive for the whole copy appears exactly once, no
/// record appears twice, and none is torn.
#[test]
fn concurrent_writers_and_snapshots() {
    const WRITERS: u64 = 4;
    const STABLE: u64 = 20_000;
    let table = Arc::new(Table::<T>::with_shards(8));
    // Stable records: alive throughout.
    for id in 1..=STABLE {
        table.insert(t(id));
    }
    let done = Arc::new(AtomicBool::new(false));
    let start = Arc::new(Barrier::new(WRITERS as usize + 1));
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let (table, done, start) = (table.clone(), done.clone(), start.clone());
            std::thread::spawn(move || {
                start.wait();
                let mut rng = Rng(w + 11);
                let mut live: Vec<u64> = Vec::new();
                // Each writer owns ids ≡ w (mod WRITERS) above STABLE.
                let mut next = STABLE + 1 + w;
                let mut ops = 0u64;
                while !done.load(Ordering::Relaxed) || ops < 50_000 {
                    if live.len() < 5_000 && (live.is_empty() || rng.below(2) == 0) {
                        table.insert(t(next));
                        live.push(next);
                        next += WRITERS;
                    } else {
                        let i = rng.below(live.len() as u64) as usize;
                        let id = live.swap_remove(i);
                        assert_eq!(table.remove(id), Some(t(id)));
                    }
                    ops += 1;
                }
                for id in live {
                    assert_eq!(table.remove(id), Some(t(id)));
                }
                ops
            })
        })
        .collect();
    start.wait();
    for _ in 0..20 {
        let records = table.records();
        let mut seen = HashSet::with_capacity(records.len());
        for r in &records {
            assert_eq!(*r, t(r.id), "torn record");
            assert!(seen.insert(r.id), "{} copied twice", r.id);
        }
        for id in 1..=STABLE {
            assert!(seen.contains(&id), "stable record {id} lost");
        }
    }
    done.store(true, Ordering::Relaxed);
    let ops: u64 = writers.into_iter().map(|w| w.join().unwrap()).sum();
    assert!(ops >= WRITERS * 50_000);
    assert_eq!(sorted_ids(&table), (1..=STABLE).collect::<Vec<_>>());
}

/// Big archive resizes allocate with the lock released; threads racing
/// through that window on one shard lose nothing.
#[test]
fn concurrent_resizes_of_one_shard() {
    const THREADS: u64 = 4;
    const EACH: u64 = 40_000;
    let table = Arc::new(Table::<T>::with_shards(1));
    let run = |remove: bool| {
        let threads: Vec<_> = (0..THREADS)
            .map(|k| {
                let table = table.clone();
                std::thread::spawn(move || {
                    for i in 0..EACH {
                        let id = 1 + k + i * THREADS;
                        if remove {
                            assert_eq!(table.remove(id), Some(t(id)));
                        } else {
                            table.insert(t(id));
                        }
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
    };
    run(false);
    assert_eq!(table.len(), (THREADS * EACH) as usize);
    assert!(
        table.archived() > 100_000,
        "most records went to the archive"
    );
    assert_eq!(sorted_ids(&table), (1..=THREADS * EACH).collect::<Vec<_>>());
    run(true);
    assert_eq!(table.len(), 0);
    // A drained ring of up to 4x the minimum is kept (see `review_ring`),
    // and which size the last review left depends on the interleaving.
    let slots = table.allocated_bytes() / size_of::<T>();
    assert!(slots <= 5 * MIN_CAPACITY, "{slots} slots");
}

#[test]
fn shard_count_is_a_bounded_power_of_two() {
    let s = default_shards();
    assert!(s.is_power_of_two() && (16..=1024).contains(&s));
    assert_eq!(Table::<T>::with_shards(5).shards.len(), 8);
}
