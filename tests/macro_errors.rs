//! Compile-time behaviour of `#[leakcheck::test]`.
//!
//! trybuild builds each `ui/` file as a binary, outside `cfg(test)`, where
//! the generated `#[test]` functions are dropped before type checking. The
//! `ui/fail` cases therefore cover the macro's own errors (and the return
//! type check it keeps outside `cfg(test)`); the `expansion` module below
//! compiles and runs the same forwarding cases as real tests.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("ui/fail/*.rs");
    t.pass("ui/pass/*.rs");
}

/// The pass cases again, compiled as tests so their expansions are type
/// checked and run.
mod expansion {
    use std::num::ParseIntError;

    // `max_tasks` is counted in tokio's spawn hook, behind `--cfg tokio_unstable`.
    #[cfg(tokio_unstable)]
    #[leakcheck::test(
        flavor = "multi_thread",
        worker_threads = 2,
        grace = "500ms",
        max_tasks = 10,
        ignore_spawn_site = "src/metrics.rs",
        ignore_fn = ["hyper::client", "my_crate::pool"],
        ignore_name = ["flusher"],
    )]
    async fn every_argument() {
        let worker = tokio::spawn(async { 2 + 2 });
        assert_eq!(worker.await.unwrap(), 4);
    }

    #[leakcheck::test(
        flavor = "multi_thread",
        worker_threads = 2,
        grace = "500ms",
        ignore_spawn_site = "src/metrics.rs",
        ignore_fn = ["hyper::client", "my_crate::pool"],
        ignore_name = ["flusher"],
    )]
    async fn every_argument_but_max_tasks() {
        let worker = tokio::spawn(async { 2 + 2 });
        assert_eq!(worker.await.unwrap(), 4);
    }

    #[leakcheck::test(start_paused = true, grace = "0s")]
    async fn paused_clock() {
        let start = tokio::time::Instant::now();
        tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
        assert!(start.elapsed() >= std::time::Duration::from_secs(3600));
    }

    // `LocalRuntime` is behind `--cfg tokio_unstable`.
    #[cfg(tokio_unstable)]
    #[leakcheck::test(flavor = "local")]
    async fn local_flavor() {
        let value = std::rc::Rc::new(5);
        let task = tokio::task::spawn_local(async move { *value });
        assert_eq!(task.await.unwrap(), 5);
    }

    #[leakcheck::test]
    async fn question_mark() -> Result<(), ParseIntError> {
        let n: u32 = "7".parse()?;
        assert_eq!(n, 7);
        Ok(())
    }

    #[leakcheck::test]
    #[should_panic(expected = "boom")]
    async fn should_panic() {
        panic!("boom");
    }

    #[leakcheck::test]
    #[ignore = "only checks that `#[ignore]` is kept"]
    async fn ignored() {
        panic!("ignored tests do not run");
    }

    #[leakcheck::test(crate = "leakcheck")]
    async fn crate_path() {}

    #[leakcheck::test(grace = "20ms")]
    #[should_panic]
    async fn leak_fails_the_test() {
        tokio::spawn(std::future::pending::<()>());
    }
}
