//! Small wording helpers shared by reports and snapshots.

use std::time::Duration;

/// `1.2s`, `350ms`, `12µs`, `2m5s`: short and stable enough to read at a glance.
pub(crate) fn human(d: Duration) -> String {
    if d >= Duration::from_secs(3600) {
        format!("{}h{}m", d.as_secs() / 3600, d.as_secs() % 3600 / 60)
    } else if d >= Duration::from_secs(60) {
        format!("{}m{}s", d.as_secs() / 60, d.as_secs() % 60)
    } else if d >= Duration::from_millis(995) {
        // from here on it reads "1.0s", as a grace of one second does
        format!("{:.1}s", d.as_secs_f64())
    } else if d >= Duration::from_millis(1) {
        format!("{}ms", d.as_millis())
    } else if d.is_zero() {
        "0ms".into()
    } else {
        format!("{}µs", d.as_micros())
    }
}

/// `1 task`, `3 tasks`.
pub(crate) fn count(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_well() {
        assert_eq!(human(Duration::from_millis(1200)), "1.2s");
        assert_eq!(human(Duration::from_millis(350)), "350ms");
        assert_eq!(
            human(Duration::from_millis(999)),
            "1.0s",
            "as a 1s grace reads"
        );
        assert_eq!(human(Duration::from_millis(994)), "994ms");
        assert_eq!(human(Duration::from_secs(125)), "2m5s");
        assert_eq!(human(Duration::from_secs(7260)), "2h1m");
        assert_eq!(count(1, "poll"), "1 poll");
        assert_eq!(count(2, "poll"), "2 polls");
    }
}
