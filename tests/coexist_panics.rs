//! A suite whose own global subscriber panics in a callback (here: its
//! writer, on a line that says "boom") keeps a working leakcheck on that
//! thread afterwards, with the `process` feature on: what leakcheck sets
//! around a call into the user's subscriber comes back when it unwinds.
#![cfg(all(tokio_unstable, target_os = "linux"))]

use std::future::pending;
use std::io::Write;
use std::panic::{catch_unwind, AssertUnwindSafe};

use leakcheck_tests::{assert_contains, assert_headline, Source};
use tokio::runtime::Runtime;
use tracing_subscriber::fmt::format::FmtSpan;
use tracing_subscriber::layer::SubscriberExt;

const SRC: Source = Source::new(file!(), include_str!("coexist_panics.rs"));

/// Panics on a line that says "boom"; drops everything else.
struct Boom;

impl Write for Boom {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        if String::from_utf8_lossy(bytes).contains("boom") {
            panic!("the suite's writer panics");
        }
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[ctor::ctor(unsafe)]
fn set_up_logging() {
    tracing_subscriber::fmt()
        .with_writer(|| Boom)
        .with_span_events(FmtSpan::CLOSE)
        .with_ansi(false)
        .init();
}

fn current_thread() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
}

#[test]
fn a_subscriber_panicking_on_an_event_leaves_leakcheck_unmuted() {
    // leakcheck mutes its own layers while it passes the event on
    let boom = catch_unwind(|| tracing::info!("boom"));
    assert!(boom.is_err(), "the writer panicked");
    // a scoped subscriber with leakcheck's layer, on this same thread
    let rt = current_thread();
    let scoped = tracing_subscriber::registry().with(leakcheck::layer());
    let parked = tracing::subscriber::with_default(scoped, || {
        rt.spawn(pending::<()>()) // leak:unmuted
    });
    let report = rt
        .block_on(leakcheck::find_leaks())
        .unwrap_err()
        .to_string();
    assert_headline(&report, 1);
    assert_contains(&report, &SRC.spawned_at("// leak:unmuted"));
    parked.abort();
    rt.block_on(async {
        let _ = parked.await;
        leakcheck::verify_none().await;
    });
}

#[test]
fn a_subscriber_panicking_on_a_close_leaves_span_closing_working() {
    // leakcheck routes the closes the user's registry makes while it
    // closes a span of its own
    let span = tracing::info_span!("boom");
    let boom = catch_unwind(AssertUnwindSafe(move || drop(span)));
    assert!(boom.is_err(), "the writer panicked");
    // a task's span, closed on this same thread, still reaches leakcheck
    let rt = current_thread();
    rt.block_on(async { tokio::spawn(async {}).await.unwrap() });
    rt.block_on(leakcheck::verify_none());
}
