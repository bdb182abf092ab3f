//! An axum service with leakcheck's debug endpoint, and a leak to find
//! with it.
//!
//! ```text
//! cargo run --example http_service -- --addr 127.0.0.1:3000
//! curl http://127.0.0.1:3000/leak            # starts a session refresher nobody stops
//! curl http://127.0.0.1:3000/ok              # starts one and stops it
//! curl http://127.0.0.1:3000/debug/tasks     # live tasks by spawn site, largest first
//! curl 'http://127.0.0.1:3000/debug/tasks/growth?seconds=30'   # what grows
//! ```
//!
//! `GET /leak` is a realistic forgotten background task: each request
//! starts a per-session "refresher" loop that renews the session every 30
//! seconds, and nothing ever stops it. `GET /ok` starts the same refresher
//! and aborts it before answering.
//!
//! It uses `Capture::CallChains`: both handlers start their refresher
//! through the same helper, so the spawn site alone names the helper for
//! both, while the call chain names the handler that forgot to stop it
//! (`http_service::leak`). Call chains cost a frame-pointer walk per spawn
//! (see BENCHMARKS.md); a service that spawns at very high rates can use
//! `Capture::SpawnSites` and still get the grouped view, growth and pprof by
//! spawn site.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::routing::get;
use axum::Router;
use leakcheck::{Capture, Options, Tracker};
use tokio::task::JoinHandle;

/// A logged-in session whose token must be renewed now and then.
struct Session {
    renewals: AtomicU64,
}

impl Session {
    fn renew(&self) {
        self.renewals.fetch_add(1, Ordering::Relaxed);
    }
}

/// Renews `session` every 30 seconds, for as long as the task lives.
fn start_refresher(session: Arc<Session>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(30));
        loop {
            every.tick().await;
            session.renew();
        }
    })
}

fn new_session() -> Arc<Session> {
    Arc::new(Session {
        renewals: AtomicU64::new(0),
    })
}

/// The leak: the refresher's handle is dropped, so nothing can stop it.
async fn leak() -> &'static str {
    start_refresher(new_session());
    "session started\n"
}

/// The fix: the request keeps the handle and stops the refresher.
async fn ok() -> &'static str {
    let refresher = start_refresher(new_session());
    tokio::task::yield_now().await; // the request's work
    refresher.abort();
    "session started and closed\n"
}

async fn run(addr: SocketAddr, tracker: Tracker) -> std::io::Result<()> {
    let app = Router::new()
        .route("/leak", get(leak))
        .route("/ok", get(ok))
        .nest("/debug", leakcheck::endpoint::router(tracker));
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    println!("listening on http://{local} (try /leak, /ok, /debug/tasks)");
    axum::serve(listener, app).await
}

/// `--addr HOST:PORT` (or `--addr=HOST:PORT`), default 127.0.0.1:3000.
fn addr() -> Result<SocketAddr, String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let value = match args.as_slice() {
        [] => return Ok(SocketAddr::from(([127, 0, 0, 1], 3000))),
        [flag, value] if flag == "--addr" => value.as_str(),
        [one] if one.starts_with("--addr=") => &one["--addr=".len()..],
        _ => {
            return Err(format!(
                "usage: http_service [--addr HOST:PORT]; got {args:?}"
            ))
        }
    };
    value
        .parse()
        .map_err(|e| format!("bad --addr `{value}`: {e} (expected HOST:PORT, e.g. 127.0.0.1:0)"))
}

fn main() {
    let addr = addr().unwrap_or_else(|message| {
        eprintln!("{message}");
        std::process::exit(2);
    });
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    let tracker = Options::new()
        .capture(Capture::CallChains)
        .instrument(&mut builder);
    let runtime = builder.enable_all().build().expect("a tokio runtime");
    if let Err(e) = runtime.block_on(run(addr, tracker)) {
        eprintln!("http_service: {e}");
        std::process::exit(1);
    }
}
