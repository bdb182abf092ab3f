//! What real code showed about reports, one test per finding: the root
//! cause first (a tree), ignoring a root ignores its subtree, crate-wide
//! settings with a bad key, timers, a dependency's spawn site, mid-test
//! checks, the once-only multi_thread note, and stable `select!`/`join!`
//! trees. Elsewhere: a test file named `test.rs` keeps its frames
//! (`test.rs`), release builds (`release/profiles.rs`), the one-line "no frames"
//! note (`stuck.rs`).
#![cfg(tokio_unstable)]

use std::future::pending;
use std::time::Duration;

use leakcheck::__private::TestConfig;
use leakcheck_tests::{
    assert_contains, assert_headline, assert_lacks, config, group_lines, leak_report, run, Flavor,
    Source,
};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

const SRC: Source = Source::new(file!(), include_str!("report.rs"));

const GRACE_MS: u64 = 100;

/// `text` as a `&'static str`, for a [`TestConfig`] built at run time.
fn leak(text: String) -> &'static str {
    Box::leak(text.into_boxed_str())
}

// ── 1. Root cause first ─────────────────────────────────────────────────────

/// A server task that spawns one parked task per "connection".
#[inline(never)]
fn start_server(connections: usize) -> JoinHandle<()> {
    tokio::spawn(serve(connections)) // leak:server
}

async fn serve(connections: usize) {
    for _ in 0..connections {
        tokio::spawn(pending::<()>()); // leak:connection
    }
    pending::<()>().await;
}

fn check_tree(report: &str) {
    assert_headline(report, 4);
    let groups = group_lines(report);
    assert_eq!(groups.len(), 1, "one root group:\n{report}");
    assert!(
        groups[0].starts_with(&format!("── 1 task {}", SRC.spawned_at("// leak:server"))),
        "the server, the root cause, comes first:\n{report}"
    );
    let nested = format!("   └── 3 tasks {}", SRC.spawned_at("// leak:connection"));
    let child = report.lines().find(|l| l.starts_with(&nested));
    let child = child.unwrap_or_else(|| panic!("connections nested under it:\n{report}"));
    assert!(child.ends_with(" (above)"), "{report}");
    let hint = format!("ignore_spawn_site = \"{}", SRC.site("// leak:server"));
    assert_contains(report, &hint);
    // the advice about handles still in scope is for mid-test checks only
    assert_lacks(report, "still holds at this line");
}

#[test]
fn the_root_cause_is_printed_first_current_thread() {
    check_tree(&leak_report(Flavor::CurrentThread, GRACE_MS, async {
        start_server(3);
    }));
}

#[test]
fn the_root_cause_is_printed_first_multi_thread() {
    check_tree(&leak_report(Flavor::MultiThread, GRACE_MS, async {
        start_server(3);
    }));
}

// ── 2. Ignoring a root ignores its subtree ──────────────────────────────────

/// The server again, but named, for `ignore_name`.
#[cfg(target_os = "linux")]
fn start_named_server() -> JoinHandle<()> {
    tokio::task::Builder::new()
        .name("test-server")
        .spawn(serve(2))
        .unwrap()
}

/// Spawns two children that outlive it, then ends.
fn start_short_lived_parent() -> JoinHandle<()> {
    let spawn_children = async {
        tokio::spawn(pending::<()>());
        tokio::spawn(pending::<()>());
    };
    tokio::spawn(spawn_children) // leak:short-parent
}

fn ignoring(sites: &[String], fns: &[&'static str], names: &[&'static str]) -> TestConfig {
    let sites: Vec<&'static str> = sites.iter().map(|s| leak(s.clone())).collect();
    TestConfig {
        ignore_spawn_sites: Box::leak(sites.into_boxed_slice()),
        ignore_fns: Box::leak(fns.to_vec().into_boxed_slice()),
        ignore_names: Box::leak(names.to_vec().into_boxed_slice()),
        ..config(Flavor::CurrentThread, GRACE_MS)
    }
}

#[test]
fn ignore_spawn_site_of_the_root_takes_its_subtree() {
    let site = SRC.site("// leak:server");
    let outcome = run(ignoring(&[site], &[], &[]), async {
        start_server(2);
        tokio::task::yield_now().await;
    });
    assert_eq!(outcome, Ok(()));
}

#[test]
fn ignore_fn_of_the_root_takes_its_subtree() {
    // the connections' own call chains run through `serve`, not `start_server`
    let outcome = run(ignoring(&[], &["report::start_server"], &[]), async {
        start_server(2);
        tokio::task::yield_now().await;
    });
    assert_eq!(outcome, Ok(()));
}

#[cfg(target_os = "linux")] // task names need `tracing`, which the suite turns on there
#[test]
fn ignore_name_of_the_root_takes_its_subtree() {
    let outcome = run(ignoring(&[], &[], &["test-server"]), async {
        start_named_server();
        tokio::task::yield_now().await;
    });
    assert_eq!(outcome, Ok(()));
}

#[test]
fn ignoring_a_parent_that_ended_still_takes_its_children() {
    let site = SRC.site("// leak:short-parent");
    let outcome = run(ignoring(&[site], &[], &[]), async {
        start_short_lived_parent().await.unwrap();
    });
    assert_eq!(outcome, Ok(()));
}

#[test]
fn without_the_ignore_the_children_of_an_ended_parent_leak() {
    let report = leak_report(Flavor::CurrentThread, GRACE_MS, async {
        start_short_lived_parent().await.unwrap();
    });
    assert_headline(&report, 2);
    assert_contains(&report, "which has ended: this task outlived its parent");
}

// ── 3. Crate-wide settings ──────────────────────────────────────────────────

/// A crate directory holding `leakcheck.toml` with `text`.
fn crate_with_settings(text: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "leakcheck-settings-{}-{}",
        std::process::id(),
        text.len()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("Cargo.lock"), "").unwrap(); // the search stops here
    std::fs::write(dir.join("leakcheck.toml"), text).unwrap();
    dir
}

#[test]
fn a_bad_key_in_leakcheck_toml_names_the_file_line_and_key() {
    let dir = crate_with_settings("grace = \"2s\"\ngrase = \"3s\"\n");
    let config = TestConfig {
        manifest_dir: Some(leak(dir.display().to_string())),
        ..config(Flavor::CurrentThread, GRACE_MS)
    };
    let message = run(config, async {}).unwrap_err();
    assert_contains(
        &message,
        &format!("{}", dir.join("leakcheck.toml").display()),
    );
    assert_contains(&message, "line 2");
    assert_contains(&message, "unknown field `grase`");
    assert_contains(&message, "`grace`");
}

#[test]
fn leakcheck_toml_ignores_apply_to_the_test() {
    let dir = crate_with_settings("[tests.report]\nignore_fn = \"report::start_server\"\n");
    let config = TestConfig {
        manifest_dir: Some(leak(dir.display().to_string())),
        target: Some("report"),
        ..config(Flavor::CurrentThread, GRACE_MS)
    };
    let outcome = run(config, async {
        start_server(1);
        tokio::task::yield_now().await;
    });
    assert_eq!(outcome, Ok(()));
}

// ── 4. Timers ───────────────────────────────────────────────────────────────

/// The seconds in the "next wake in" line of the group of `task`.
fn next_wake(report: &str, task: &JoinHandle<()>) -> f64 {
    let headline = format!("task {} [", task.id());
    let group = report.split("\n──").find(|g| g.contains(&headline));
    let group = group.unwrap_or_else(|| panic!("no group for {headline}:\n{report}"));
    let line = group.lines().find(|l| l.contains("next wake in "));
    let line = line.unwrap_or_else(|| panic!("no wake line for {headline}:\n{report}"));
    let secs = line
        .split("next wake in ")
        .nth(1)
        .unwrap()
        .split('s')
        .next();
    secs.unwrap().parse().unwrap()
}

#[cfg(target_os = "linux")] // the suite turns on `tracing` there
#[leakcheck::test(grace = "50ms")]
async fn a_sleeping_task_says_when_it_wakes() {
    let sleeper = tokio::spawn(tokio::time::sleep(Duration::from_secs(30)));
    let report = leakcheck::find_leaks().await.unwrap_err().to_string();
    assert!(
        (29.0..=30.0).contains(&next_wake(&report, &sleeper)),
        "{report}"
    );
    assert_contains(&report, "it may end on its own");
    assert_lacks(&report, "already woke");
    sleeper.abort();
}

/// tokio before 1.54 reports an `Interval`'s deadline only until its first
/// tick; `.ci/min-tokio` skips this test there.
#[cfg(target_os = "linux")]
#[leakcheck::test(grace = "50ms")]
async fn a_ticking_task_says_when_it_wakes() {
    let ticker = tokio::spawn(async {
        let mut every = tokio::time::interval(Duration::from_secs(45));
        loop {
            every.tick().await;
        }
    });
    let report = leakcheck::find_leaks().await.unwrap_err().to_string();
    assert!(
        (44.0..=45.0).contains(&next_wake(&report, &ticker)),
        "{report}"
    );
    ticker.abort();
}

/// A fast ticker has woken many times by the check: waiting longer will
/// not end it, and the report says so instead of "it may end on its own".
#[cfg(target_os = "linux")]
#[leakcheck::test(grace = "30ms")]
async fn a_fast_ticker_is_a_loop_not_a_pending_timer() {
    let (ticked, mut three) = tokio::sync::mpsc::channel::<()>(8);
    let ticker = tokio::spawn(async move {
        // a sleep per round, not an `Interval`: tokio before 1.54 reports an
        // interval's deadline only until its first tick
        loop {
            tokio::time::sleep(Duration::from_millis(7)).await;
            let _ = ticked.try_send(());
        }
    });
    for _ in 0..3 {
        three.recv().await;
    }
    // a check may catch it woken, between its timer and its poll: no timer
    // is pending then; most checks catch it parked on the next tick
    let headline = format!("task {} [idle", ticker.id());
    let mut reports = Vec::new();
    while reports.len() < 20 {
        reports.push(leakcheck::find_leaks().await.unwrap_err().to_string());
        let report = reports.last().unwrap();
        if report.contains(&headline) {
            assert_contains(
                report,
                "it already woke during the 30ms grace and went back to waiting",
            );
            assert_lacks(report, "it may end on its own");
            ticker.abort();
            return;
        }
    }
    panic!("no check caught the ticker parked:\n{}", reports.join("\n"));
}

/// A slow ticker that woke before the check but not during its grace may
/// still end at its next tick (a pool's reaper after the pool is dropped).
#[cfg(target_os = "linux")]
#[leakcheck::test(grace = "10ms")]
async fn a_slow_ticker_that_slept_through_the_grace_may_end_on_its_own() {
    let (ticked, mut ticks) = tokio::sync::mpsc::channel::<()>(1);
    let reaper = tokio::spawn(async move {
        loop {
            let _ = ticked.try_send(());
            tokio::time::sleep(Duration::from_millis(150)).await; // as above: not an Interval
        }
    });
    // each check right after a tick: its grace ends long before the next
    let headline = format!("task {} [idle", reaper.id());
    let mut reports = Vec::new();
    while reports.len() < 10 {
        while ticks.try_recv().is_ok() {} // no stale tick: wait for a fresh one
        ticks.recv().await;
        reports.push(leakcheck::find_leaks().await.unwrap_err().to_string());
        let report = reports.last().unwrap();
        if report.contains(&headline) && reports.len() > 1 {
            assert_contains(report, "it may end on its own");
            assert_lacks(report, "already woke");
            reaper.abort();
            return;
        }
    }
    panic!("no check caught the ticker parked:\n{}", reports.join("\n"));
}

// ── 5. A dependency's spawn site, short everywhere ─────────────────────────

/// A `tower` buffer: its worker task lives as long as a handle does.
fn start_buffer() -> tower::buffer::Buffer<u32, futures_ready::Ready> {
    let service = tower::service_fn(|n: u32| futures_ready::ready(n));
    tower::buffer::Buffer::new(service, 8)
}

/// `std::future::Ready` with the error type tower wants.
mod futures_ready {
    pub type Ready = std::future::Ready<Result<u32, std::convert::Infallible>>;
    pub fn ready(n: u32) -> Ready {
        std::future::ready(Ok(n))
    }
}

#[test]
fn a_dependencys_spawn_site_prints_short_and_is_accepted_short() {
    let report = leak_report(Flavor::CurrentThread, GRACE_MS, async {
        std::mem::forget(start_buffer());
    });
    let group = group_lines(&report)[0].to_owned();
    let site = group.split("spawned at ").nth(1).unwrap();
    assert!(site.starts_with("tower-0.5."), "{report}");
    assert!(site.contains("/src/buffer/service.rs:"), "{report}");
    assert_lacks(&report, "/.cargo/registry");
    assert_contains(&report, &format!("ignore_spawn_site = \"{site}\""));
    // the hint, pasted as it is, works; so does the site without its column
    for rule in [site, site.rsplit_once(':').unwrap().0] {
        let outcome = run(ignoring(&[rule.to_owned()], &[], &[]), async {
            std::mem::forget(start_buffer());
        });
        assert_eq!(outcome, Ok(()), "ignore_spawn_site = {rule:?}");
    }
}

// ── 8. Mid-test checks point at the caller ─────────────────────────────────

/// Run only as a child process by the test below.
#[leakcheck::test(grace = "20ms")]
#[ignore = "run by a_failed_mid_test_check_points_at_the_callers_line"]
async fn mid_test_check_probe() {
    let _parked = tokio::spawn(pending::<()>());
    leakcheck::verify_none().await; // check:mid-test
}

#[test]
fn a_failed_mid_test_check_points_at_the_callers_line() {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "mid_test_check_probe",
            "--ignored",
            "--nocapture",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "the probe must fail:\n{stderr}");
    let at = SRC.site("// check:mid-test");
    assert_contains(&stderr, &format!("panicked at {at}"));
    assert_contains(
        &stderr,
        "leaked by `report::mid_test_check_probe`: alive at this check (",
    );
    assert_contains(&stderr, &format!("({at}"));
    assert_lacks(&stderr, "after the test body returned");
}

// ── 9. The multi_thread note, once ──────────────────────────────────────────

#[cfg(target_os = "linux")] // the suite turns on `taskdump` there
#[test]
fn the_multi_thread_note_is_printed_once() {
    let report = leak_report(Flavor::MultiThread, GRACE_MS, async {
        tokio::spawn(pending::<()>()); // leak:mt-one
        tokio::spawn(async { pending::<()>().await }); // leak:mt-two
    });
    assert_eq!(group_lines(&report).len(), 2, "{report}");
    assert_eq!(
        report
            .matches("tokio's task dump is not taken on multi_thread")
            .count(),
        1,
        "{report}"
    );
    assert_contains(
        &report,
        "\nnote: no await traces: tokio's task dump is not taken",
    );
}

// ── 10. select! and join! as stable branches ───────────────────────────────

async fn wait_recv(rx: &mut mpsc::Receiver<u8>) {
    rx.recv().await; // branch:recv
}

async fn wait_sleep() {
    nap().await; // branch:sleep
}

/// One level more under the last branch: trees deeper than two levels
/// keep their indentation.
async fn nap() {
    tokio::time::sleep(Duration::from_secs(30)).await;
}

/// The "waiting at" block of the report's first group.
fn waiting_block(report: &str) -> String {
    let lines: Vec<&str> = report
        .lines()
        .skip_while(|l| l.trim() != "waiting at:")
        .skip(1)
        .take_while(|l| l.starts_with("       "))
        .collect();
    lines.join("\n")
}

#[cfg(target_os = "linux")] // the suite turns on `taskdump` there
#[leakcheck::test(grace = "20ms")]
async fn join_branches_print_as_a_tree_in_source_order() {
    let (_tx, mut rx) = mpsc::channel::<u8>(1);
    let task = tokio::spawn(async move {
        tokio::join!(wait_recv(&mut rx), wait_sleep()); // await:join
    });
    let first = leakcheck::find_leaks().await.unwrap_err().to_string();
    let second = leakcheck::find_leaks().await.unwrap_err().to_string();
    let (a, b) = (waiting_block(&first), waiting_block(&second));
    assert_eq!(a, b, "the same tree every time:\n{first}\n{second}");
    let lines: Vec<&str> = a.lines().map(str::trim).collect();
    assert!(lines[0].contains(&SRC.site("// await:join")), "{first}");
    let recv = lines
        .iter()
        .position(|l| l.contains(&SRC.site("// branch:recv")));
    let sleep = lines
        .iter()
        .position(|l| l.contains(&SRC.site("// branch:sleep")));
    assert!(recv.is_some() && sleep.is_some(), "both branches:\n{first}");
    assert!(recv < sleep, "branches in source order:\n{first}");
    assert_contains(
        &first,
        "note: await traces leave out what tokio's task dump cannot see",
    );
    assert_contains(
        &first,
        "a client, sender or handle the test still holds at this line",
    );
    assert!(lines.iter().any(|l| l.starts_with("├─ ")), "{first}");
    assert!(lines.iter().any(|l| l.starts_with("└─ ")), "{first}");
    // each level is indented past its parent: root, branch, the leaf it waits on
    let raw: Vec<&str> = a.lines().collect();
    let glyph = |c: &char| matches!(c, ' ' | '│' | '├' | '└' | '─');
    let depth = |l: &str| l.chars().take_while(glyph).count();
    let (recv, sleep) = (recv.unwrap(), sleep.unwrap());
    assert!(depth(raw[0]) < depth(raw[recv]), "{first}");
    assert!(
        depth(raw[recv]) < depth(raw[recv + 1]),
        "the leaf under its branch:\n{first}"
    );
    assert!(raw[sleep + 1].contains("report::nap"), "{first}");
    assert!(
        depth(raw[sleep]) < depth(raw[sleep + 1]),
        "nap under its branch:\n{first}"
    );
    assert!(
        depth(raw[sleep + 1]) < depth(raw[sleep + 2]),
        "the leaf under nap:\n{first}"
    );
    task.abort();
}

#[cfg(target_os = "linux")] // the suite turns on `taskdump` there
#[leakcheck::test(grace = "20ms")]
async fn select_branches_are_stable_across_dumps() {
    let (_tx, mut rx) = mpsc::channel::<u8>(1);
    let task = tokio::spawn(async move {
        tokio::select! {
            _ = rx.recv() => {}
            _ = tokio::time::sleep(Duration::from_secs(30)) => {}
        }
    });
    let mut trees = Vec::new();
    for _ in 0..4 {
        let report = leakcheck::find_leaks().await.unwrap_err().to_string();
        trees.push(waiting_block(&report));
    }
    assert!(trees.windows(2).all(|w| w[0] == w[1]), "{trees:#?}");
    assert!(trees[0].contains("Receiver<T>::recv"), "{}", trees[0]);
    assert!(
        trees[0].contains("tokio::time::sleep::Sleep"),
        "{}",
        trees[0]
    );
    task.abort();
}

/// Run only as a child process, with a bad `LEAKCHECK_GRACE`.
#[leakcheck::test]
#[ignore = "run by a_bad_leakcheck_grace_fails_at_the_start_naming_the_variable"]
async fn bad_grace_probe() {
    panic!("the body must not run with a bad LEAKCHECK_GRACE");
}

#[test]
fn a_bad_leakcheck_grace_fails_at_the_start_naming_the_variable() {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "bad_grace_probe", "--ignored"])
        .env("LEAKCHECK_GRACE", "soon")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "the probe must fail:\n{stdout}");
    assert_contains(
        &stdout,
        "leakcheck: LEAKCHECK_GRACE=\"soon\" is not a duration",
    );
    assert_contains(&stdout, "such as `500ms` or `2s`");
    assert_lacks(&stdout, "the body must not run");
}
