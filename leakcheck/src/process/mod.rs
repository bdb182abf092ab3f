//! Watching the whole test process (the `process` feature).
//!
//! Every thread gets leakcheck's tracing default (the [`tee`]) as it
//! starts, so tokio's task spans show every task of every runtime and
//! `LocalSet` with no setup, and every OS thread is known with the call
//! chain that started it ([`threads`]). This is what lets `verify_none()`
//! work in a plain `#[tokio::test]`, and `verify_test_main!()` check the
//! whole binary when it ends ([`exit`]). What a test's own scoped
//! subscriber hides from the tee is counted by task id ([`hidden`]).
//!
//! It interposes `pthread_create` in every binary that links it, so it is
//! meant for test binaries: a dev-dependency feature.

#[cfg(not(target_os = "linux"))]
compile_error!(
    "leakcheck's `process` feature is Linux-only: it interposes glibc's `pthread_create` and reads \
     /proc. Enable it only for Linux, e.g. under \
     `[target.'cfg(target_os = \"linux\")'.dev-dependencies]` in Cargo.toml"
);

#[cfg(not(target_os = "linux"))]
pub(crate) mod exit {
    /// Never called: the crate does not build on this target.
    pub(crate) fn register(_: &str, _: &str, _: crate::Options) {}
}

#[cfg(target_os = "linux")]
pub(crate) mod exit;
#[cfg(target_os = "linux")]
mod forward;
#[cfg(target_os = "linux")]
mod global;
#[cfg(target_os = "linux")]
pub(crate) mod hidden;
#[cfg(target_os = "linux")]
mod raw;
#[cfg(target_os = "linux")]
mod tee;
#[cfg(target_os = "linux")]
pub(crate) mod threads;

#[cfg(target_os = "linux")]
pub(crate) use linux::*;

#[cfg(target_os = "linux")]
mod linux {
    use std::sync::Arc;

    use crate::owner::Owner;

    /// The main thread gets the tee before `main` (and libtest) start.
    #[ctor::ctor(unsafe)]
    fn watch_main_thread() {
        super::tee::install_here();
    }

    /// The test the code running here belongs to: that of the task being
    /// polled on this thread if leakcheck saw it spawn, else the thread's.
    /// A thread leakcheck started (std has set it up) gets an owner if it
    /// has none yet; another (the main thread, in a constructor before
    /// `main`, say) only has one if it was given one.
    pub(crate) fn current_owner() -> Option<Arc<Owner>> {
        let task = tokio::task::try_id()
            .map(crate::mode::id_u64)
            .and_then(crate::layer::tasks::lookup)
            .and_then(|seen| seen.owner.clone());
        task.or_else(|| match super::threads::started_here() {
            true => crate::owner::of_thread(),
            false => crate::owner::peek(),
        })
    }
}
