//! tokio-console alongside leakcheck (the `console` feature).
//!
//! console-subscriber's layer serves tokio-console; leakcheck's layer gives
//! its trackers task names, "never wakes" and timer wakes. Both read
//! tokio's task spans, so they go on one subscriber: [`init`] installs it,
//! [`layer`] gives the pair for a subscriber of your own.
//!
//! console-subscriber is heavy where leakcheck is light. Measured on the
//! machines this project benchmarks on, it costs about 180µs per spawned
//! task (hundreds of times a plain spawn) and about 50KB per task, kept for
//! an hour after the task ends by default (`TOKIO_CONSOLE_RETENTION`). Turn
//! it on for a debugging session, not in an always-on production service;
//! leakcheck's debug endpoint is what stays on.

use std::net::SocketAddr;

use tracing::Subscriber;
use tracing_subscriber::layer::{Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::{SubscriberInitExt, TryInitError};

/// console-subscriber's layer and leakcheck's, as one layer.
///
/// The console server listens on `addr`, or on what `TOKIO_CONSOLE_BIND`
/// says, or on 127.0.0.1:6669; it starts when this is called, on a thread
/// of its own. Other `TOKIO_CONSOLE_*` variables apply as console-subscriber
/// documents them. Give a fixed port: console-subscriber binds on its own
/// thread and does not say which port it got for port 0 (a bind error
/// there panics that thread, and tokio-console then finds no server).
///
/// ```no_run
/// use tracing_subscriber::layer::SubscriberExt;
/// use tracing_subscriber::util::SubscriberInitExt;
/// tracing_subscriber::registry()
///     .with(leakcheck::console::layer(None))
///     .init();
/// ```
pub fn layer<S>(addr: Option<SocketAddr>) -> impl Layer<S>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    let mut console = console_subscriber::ConsoleLayer::builder().with_default_env();
    if let Some(addr) = addr {
        console = console.server_addr(addr);
    }
    console.spawn().and_then(crate::layer())
}

/// Installs a global tracing subscriber made of [`layer`]: tokio-console
/// attaches to this process, and leakcheck's trackers and debug endpoint
/// get names, "never wakes" and timer wakes.
///
/// # Errors
///
/// If a global subscriber is already set (then add [`layer`] to it).
///
/// ```no_run
/// leakcheck::console::init(Some("127.0.0.1:6669".parse().unwrap())).unwrap();
/// ```
pub fn init(addr: Option<SocketAddr>) -> Result<(), TryInitError> {
    tracing_subscriber::registry().with(layer(addr)).try_init()
}
