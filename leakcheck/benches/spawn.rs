//! Spawn + complete cost per task, plain tokio vs leakcheck's hook sets.
//!
//! `cargo bench -p leakcheck --bench spawn` (the workspace's
//! `.cargo/config.toml` supplies `--cfg tokio_unstable` and frame pointers).
//! One group per runtime flavor; each benchmark iteration is one task, so
//! criterion's time is ns per task. Each runtime is built once per variant.
//! For the ratio table, see `ratios.rs`.

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

#[path = "common/mod.rs"]
mod common;

use common::{Bench, Flavor, Variant};

fn spawn_complete(c: &mut Criterion) {
    for flavor in Flavor::ALL {
        let mut group = c.benchmark_group(flavor.name());
        group
            .throughput(Throughput::Elements(1))
            .warm_up_time(Duration::from_secs(2))
            .measurement_time(Duration::from_secs(8))
            .sample_size(40);
        for &variant in Variant::ALL {
            let bench = Bench::new(flavor, variant);
            group.bench_function(variant.name(), |b| b.iter_custom(|tasks| bench.run(tasks)));
        }
        group.finish();
    }
}

criterion_group!(benches, spawn_complete);
criterion_main!(benches);
