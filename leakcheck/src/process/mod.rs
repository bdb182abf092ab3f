//! Watching the whole test process (the `process` feature).
//!
//! Every thread gets leakcheck's tracing default (the [`tee`]) as it
//! starts, so tokio's task spans show every task of every runtime and
//! `LocalSet` with no setup, and every OS thread is known with the call
//! chain that started it ([`threads`]). This is what lets `verify_none()`
//! work in a plain `#[tokio::test]`, and `verify_test_main!()` check the
//! whole binary when it ends ([`exit`]).
//!
//! It interposes `pthread_create` in every binary that links it, so it is
//! meant for test binaries: a dev-dependency feature.

pub(crate) mod exit;
mod forward;
mod tee;
pub(crate) mod threads;

/// The main thread gets the tee before `main` (and libtest) start.
#[ctor::ctor(unsafe)]
fn watch_main_thread() {
    tee::install_here();
}
