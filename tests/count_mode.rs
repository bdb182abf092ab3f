//! What leakcheck says with and without `--cfg tokio_unstable`.
//!
//! These tests run in both builds and assert what each one reports. With
//! the flag, the task hooks give every leak a spawn site; without it
//! ("count mode"), leakcheck only has tokio's live-task count, still fails
//! the test with the right number, and says how to get spawn sites. CI runs
//! count mode with:
//!
//! ```text
//! RUSTFLAGS="-C force-frame-pointers=yes" cargo test -p leakcheck-tests --target-dir target/count-mode
//! ```

use std::future::pending;

use tokio::task::JoinHandle;

use leakcheck_tests::{
    assert_contains, assert_headline, assert_lacks, leak_report, spawn_line, Flavor,
};

const SPAWN_SITES: bool = cfg!(tokio_unstable);

/// Two tasks parked forever, from one line.
#[inline(never)]
fn park_two() -> Vec<JoinHandle<()>> {
    (0..2).map(|_| tokio::spawn(pending::<()>())).collect() // leak:two
}

fn check_report(report: &str) {
    assert_headline(report, 2);
    let site = format!(
        "── 2 tasks spawned at {}:{}:",
        file!(),
        spawn_line(include_str!("count_mode.rs"), "// leak:two")
    );
    if SPAWN_SITES {
        assert_contains(report, &site);
        assert_contains(report, "spawned by: the test body");
        assert_lacks(report, "spawn sites are unknown");
    } else {
        assert_contains(report, "note: spawn sites are unknown");
        assert_contains(
            report,
            r#"rustflags = ["--cfg", "tokio_unstable", "-C", "force-frame-pointers=yes"]"#,
        );
        assert_lacks(report, "spawned at");
    }
}

#[test]
fn report_says_what_this_build_knows() {
    check_report(&leak_report(Flavor::CurrentThread, 100, async {
        park_two();
    }));
}

#[test]
fn report_says_what_this_build_knows_on_multi_thread() {
    check_report(&leak_report(Flavor::MultiThread, 100, async {
        park_two();
    }));
}

#[leakcheck::test(grace = "50ms")]
async fn report_value_matches_the_build() {
    let parked = park_two();
    let report = leakcheck::find_leaks().await.unwrap_err();
    assert_eq!(report.leaked(), 2);
    if SPAWN_SITES {
        assert_eq!((report.unidentified, report.groups.len()), (0, 1));
        assert_eq!(report.groups[0].tasks.len(), 2);
    } else {
        assert_eq!((report.unidentified, report.groups.len()), (2, 0));
    }
    let tracker = leakcheck::Tracker::current().expect("a #[leakcheck::test] has a tracker");
    assert_eq!(tracker.live_count(), 2);
    assert_eq!(
        tracker.snapshot().tasks().len(),
        if SPAWN_SITES { 2 } else { 0 }
    );
    for task in parked {
        task.abort(); // so the test itself passes
    }
}

#[leakcheck::test]
async fn clean_test_passes_in_both_builds() {
    let mut workers = tokio::task::JoinSet::new();
    for i in 0..4 {
        workers.spawn(async move { i + 1 });
    }
    let mut sum = 0;
    while let Some(done) = workers.join_next().await {
        sum += done.unwrap();
    }
    assert_eq!(sum, 10);
}

/// `max_tasks` from `leakcheck.toml` is counted with the flag, and without
/// it fails the test at its start saying what to add, instead of passing
/// unchecked (the attribute's own `max_tasks` is a compile error there).
#[test]
fn max_tasks_from_leakcheck_toml_needs_the_flag() {
    let dir = std::env::temp_dir().join(format!("leakcheck-count-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("Cargo.lock"), "").unwrap(); // the search stops here
    std::fs::write(dir.join("leakcheck.toml"), "max_tasks = 1\n").unwrap();
    let config = leakcheck::__private::TestConfig {
        manifest_dir: Some(Box::leak(dir.display().to_string().into_boxed_str())),
        ..leakcheck_tests::config(Flavor::CurrentThread, 50)
    };
    let outcome = leakcheck_tests::run(config, async {
        let two: Vec<_> = (0..2).map(|_| tokio::spawn(async {})).collect();
        for task in two {
            task.await.unwrap();
        }
    });
    let message = outcome.unwrap_err();
    if SPAWN_SITES {
        assert_contains(&message, "max_tasks");
        assert_lacks(&message, "needs `--cfg tokio_unstable`");
    } else {
        assert_contains(
            &message,
            "`max_tasks` (from the attribute or leakcheck.toml) needs `--cfg tokio_unstable`",
        );
    }
}

/// A subscriber of a plain test's own, without leakcheck's layer, made
/// this thread's default.
#[cfg(target_os = "linux")]
fn own_subscriber() -> tracing::subscriber::DefaultGuard {
    use tracing_subscriber::layer::SubscriberExt;
    let logs = tracing_subscriber::fmt::layer().with_writer(std::io::sink);
    tracing::subscriber::set_default(tracing_subscriber::registry().with(logs))
}

/// A plain `#[tokio::test]` whose own subscriber lacks leakcheck's layer,
/// and that cleans up. Without the flag it passes: leakcheck sees no spawn
/// in either case, and tokio's live-task count is the evidence (counting
/// task ids that went by unseen would fail every such test). With the
/// flag, that subscriber hid the test's spawns: the check fails and says
/// what to add.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn plain_test_with_its_own_subscriber_and_no_leak() {
    let _logs = own_subscriber();
    let done: Vec<_> = (0..3).map(|i| tokio::spawn(async move { i })).collect();
    for task in done {
        task.await.unwrap();
    }
    let found = leakcheck::find_leaks().await;
    if SPAWN_SITES {
        let report = found.unwrap_err().to_string();
        assert_contains(&report, "spawned out of leakcheck's sight, alive or not");
        assert_contains(
            &report,
            "add `.with(leakcheck::layer())` to that subscriber",
        );
        assert_lacks(&report, "enable leakcheck's `process` feature");
    } else if let Err(report) = found {
        panic!("a clean test failed:\n{report}");
    }
}

/// Its leaky twin fails in both builds: by tokio's count on its runtime.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn plain_test_with_its_own_subscriber_and_a_leak() {
    let _logs = own_subscriber();
    let parked = park_two();
    let report = leakcheck::find_leaks().await.unwrap_err();
    if SPAWN_SITES {
        // another test's hidden ids may count here too: this check is blind
        assert!(report.leaked() >= 2, "{report}");
    } else {
        assert_eq!(report.leaked(), 2, "{report}");
        assert_contains(
            &report.to_string(),
            "── 2 tasks alive that leakcheck knows only by count",
        );
    }
    for task in parked {
        task.abort();
    }
}
