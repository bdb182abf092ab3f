//! What a report can show in each build profile. CI runs this file in the
//! dev profile and in two release profiles (`.ci/run`), in a package of
//! its own so that those builds stay small:
//!
//! - `release-nodebug` (`debug = false`): no file:line anywhere; the report
//!   says so instead of blaming the task dump, and keeps internals out;
//! - `release-lines` (`debug = "line-tables-only"`): inlined frames carry
//!   short names, so internals are recognised by their file.
#![cfg(tokio_unstable)]

use leakcheck_tests::{assert_contains, assert_lacks, call_chain, leak_report, Flavor, Source};
use tokio::sync::mpsc;

const SRC: Source = Source::new(file!(), include_str!("profiles.rs"));

#[inline(never)]
fn start_listener(rx: mpsc::Receiver<u8>) {
    tokio::spawn(listen(rx)); // leak:listener
}

#[inline(never)]
async fn listen(mut rx: mpsc::Receiver<u8>) {
    let (_keep, idle) = mpsc::channel::<u8>(1);
    tokio::spawn(watch(idle)); // leak:watcher
    while rx.recv().await.is_some() {}
}

/// A child of the listener: its chain ends at the task that spawned it.
#[inline(never)]
async fn watch(mut idle: mpsc::Receiver<u8>) {
    while idle.recv().await.is_some() {}
}

/// Frames that are tokio's, std's, libtest's or leakcheck's own.
fn internal(frame: &str) -> bool {
    let file = frame.split(" at ").nth(1).unwrap_or("");
    [
        "tokio::",
        "std::",
        "core::",
        "leakcheck::",
        "test::run",
        "test::__rust",
    ]
    .iter()
    .any(|p| frame.starts_with(p))
        || ["tokio-1.", "leakcheck/src/", "rust/library/"]
            .iter()
            .any(|p| file.starts_with(p))
}

#[test]
fn reports_say_what_this_build_can_show() {
    let (tx, rx) = mpsc::channel(1);
    let report = leak_report(Flavor::CurrentThread, 50, async move {
        start_listener(rx);
        tokio::task::yield_now().await;
    });
    drop(tx);
    assert_contains(
        &report,
        &format!("── 1 task {}", SRC.spawned_at("// leak:listener")),
    );
    let chain = call_chain(&report);
    assert!(
        chain.iter().all(|f| !internal(f)),
        "internals left in:\n{report}"
    );
    // the watcher's chain stops at the listener task that spawned it: the
    // test function that polls the runtime is not its caller
    let watcher = report
        .split("spawned at ")
        .find(|g| g.starts_with(&SRC.site("// leak:watcher")))
        .unwrap_or_else(|| panic!("the watcher is reported:\n{report}"));
    let past_the_task = ["reports_say_what_this_build_can_show", "test::", "std::"];
    for frame in call_chain(watcher) {
        assert!(
            !past_the_task.iter().any(|p| frame.contains(p)) && !internal(frame),
            "the watcher's chain runs past its task ({frame}):\n{report}"
        );
    }
    assert!(
        chain.len() <= 8,
        "a short chain of the user's frames:\n{report}"
    );
    // what this build must show: `.ci/run` says so for each profile; the dev
    // profile has line tables, a plain `--release` has none
    let expect_lines = match std::env::var("LEAKCHECK_EXPECT_LINES").as_deref() {
        Ok("1") => true,
        Ok("0") => false,
        Ok(other) => panic!("LEAKCHECK_EXPECT_LINES is `{other}`: write 1 or 0"),
        Err(_) => cfg!(debug_assertions),
    };
    let with_lines = chain
        .iter()
        .any(|f| f.contains(concat!(" at ", file!(), ":")));
    assert_eq!(
        with_lines, expect_lines,
        "file:line in the call chain (expected: {expect_lines}):\n{report}"
    );
    if expect_lines {
        assert_lacks(&report, "call chains show functions without file:line");
    } else {
        assert_contains(
            &report,
            "note: call chains show functions without file:line",
        );
    }
    if cfg!(target_os = "linux") {
        // a task parked on `recv` is always traceable: the trace names the
        // tokio future it waits on, with line tables or without
        assert_lacks(
            &report,
            "it waits on something tokio's task dump cannot see",
        );
        let waiting: Vec<&str> = report
            .lines()
            .skip_while(|l| l.trim() != "waiting at:")
            .take_while(|l| !l.contains("call chain"))
            .collect();
        assert!(
            waiting.iter().any(|l| l.contains("recv")),
            "the trace names what it waits on:\n{report}"
        );
    }
}
