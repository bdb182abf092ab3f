//! A test file named `test.rs`: its crate is called `test`, like libtest.
//! Its own frames (`test::start_worker`) must stay in call chains; only
//! libtest's frames are left out.
#![cfg(tokio_unstable)]

use leakcheck_tests::{call_chain, frame_index, leak_report, Flavor};

#[inline(never)]
fn start_worker() {
    tokio::spawn(std::future::pending::<()>());
}

#[test]
fn frames_of_a_crate_named_test_are_kept() {
    let report = leak_report(Flavor::CurrentThread, 50, async {
        start_worker();
    });
    let chain = call_chain(&report);
    frame_index(&chain, "test::start_worker");
    assert!(
        chain
            .iter()
            .all(|f| !f.contains("run_test") && !f.contains("test_main")),
        "libtest's own frames are left out:\n{report}"
    );
}
