//! `GET runtime`: the runtime's metrics, from tokio-metrics: gauges as of
//! now, counters over the interval since the previous reading (tokio-metrics
//! reports intervals). Metrics that need `--cfg tokio_unstable` are listed
//! only in builds with it.

use std::fmt::Write;
use std::time::Duration;

use serde_json::{Map, Value};
use tokio_metrics::{RuntimeIntervals, RuntimeMetrics};

use crate::text::human;

/// One metric's value.
enum Metric {
    Count(u64),
    Time(Duration),
}

/// Pushes `(name, Metric::$kind(m.name))` for each field named.
macro_rules! metrics {
    ($out:ident, $m:ident, Count: $($count:ident),* ; Time: $($time:ident),* $(;)?) => {
        $( $out.push((stringify!($count), Metric::Count($m.$count as u64))); )*
        $( $out.push((stringify!($time), Metric::Time($m.$time))); )*
    };
}

/// The metrics of the next interval, in a stable order.
fn read(intervals: &mut RuntimeIntervals) -> Vec<(&'static str, Metric)> {
    let mut out = Vec::new();
    let Some(m) = intervals.next() else {
        return out;
    };
    metrics!(out, m,
        Count: workers_count, live_tasks_count, total_park_count, max_park_count,
            min_park_count, global_queue_depth;
        Time: total_busy_duration, max_busy_duration, min_busy_duration, elapsed);
    unstable(&m, &mut out);
    out
}

#[cfg(tokio_unstable)]
fn unstable(m: &RuntimeMetrics, out: &mut Vec<(&'static str, Metric)>) {
    metrics!(out, m,
        Count: total_noop_count, total_steal_count, total_steal_operations,
            num_remote_schedules, total_local_schedule_count, total_overflow_count,
            total_polls_count, total_local_queue_depth, max_local_queue_depth,
            blocking_queue_depth, blocking_threads_count, idle_blocking_threads_count,
            budget_forced_yield_count, io_driver_ready_count;
        Time: mean_poll_duration, mean_poll_duration_worker_min,
            mean_poll_duration_worker_max);
}

#[cfg(not(tokio_unstable))]
fn unstable(_: &RuntimeMetrics, _: &mut Vec<(&'static str, Metric)>) {}

/// `name  value` lines, durations in human units.
pub(crate) fn text(intervals: &mut RuntimeIntervals) -> String {
    let metrics = read(intervals);
    let width = metrics.iter().map(|(n, _)| n.len()).max().unwrap_or(0);
    let mut out = String::from(
        "runtime metrics (tokio-metrics): gauges now, counters since the previous reading \
         (elapsed)\n\n",
    );
    for (name, metric) in metrics {
        let value = match metric {
            Metric::Count(n) => n.to_string(),
            Metric::Time(d) => human(d),
        };
        let _ = writeln!(out, "{name:width$}  {value}");
    }
    out
}

/// `{"version": 1, "metrics": {...}}`; durations as `<name>_us`, in
/// microseconds.
pub(crate) fn json(intervals: &mut RuntimeIntervals) -> String {
    let mut metrics = Map::new();
    for (name, metric) in read(intervals) {
        let (key, value) = match metric {
            Metric::Count(n) => (name.to_owned(), n),
            Metric::Time(d) => (
                format!("{name}_us"),
                u64::try_from(d.as_micros()).unwrap_or(u64::MAX),
            ),
        };
        metrics.insert(key, Value::from(value));
    }
    let doc = serde_json::json!({ "version": 1, "metrics": metrics });
    serde_json::to_string_pretty(&doc).unwrap_or_default()
}
