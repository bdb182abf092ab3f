//! leakcheck's main demo: three classic leaks in a small "service", the
//! report leakcheck prints for each, and the live-task dump.
//!
//! Run it with `cargo run --example demo`.
//!
//! It runs on a current_thread runtime, where leakcheck also shows where
//! each task waits (its await chain, from tokio's task dump).
//!
//! In a test suite you would write `#[leakcheck::test]` instead of
//! `#[tokio::test]` and get the same report as the test's failure; here a
//! runtime is instrumented by hand so the program can print the reports.

use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::mpsc;

/// A metrics flusher that ticks forever: nobody kept a way to stop it.
fn start_flusher() {
    tokio::spawn(async {
        let mut tick = tokio::time::interval(Duration::from_millis(10));
        loop {
            tick.tick().await;
        }
    });
}

/// An actor that keeps a sender to its own mailbox, so `recv` never returns
/// `None` and the actor never ends, even after every handle is dropped.
fn start_cache_actor() -> mpsc::Sender<String> {
    let (tx, mut rx) = mpsc::channel::<String>(8);
    let myself = tx.clone();
    tokio::spawn(async move {
        let _keepalive = myself;
        while let Some(key) = rx.recv().await {
            let _ = key;
        }
    });
    tx
}

/// A server started for a test and never shut down; each accepted
/// connection gets its own handler task.
async fn start_server() -> std::io::Result<std::net::SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 64];
                let _ = socket.readable().await;
                let _ = socket.try_read(&mut buf);
                std::future::pending::<()>().await;
            });
        }
    });
    Ok(addr)
}

async fn service_under_test() -> std::io::Result<()> {
    start_flusher();
    let cache = start_cache_actor();
    cache.send("warm-up".into()).await.ok();
    let addr = start_server().await?;
    let mut clients = Vec::new();
    for _ in 0..3 {
        clients.push(tokio::net::TcpStream::connect(addr).await?);
    }
    tokio::task::yield_now().await;
    std::mem::forget(clients); // keep the connections open, as a pool would
    Ok(())
}

fn main() -> std::io::Result<()> {
    let mut builder = tokio::runtime::Builder::new_current_thread();
    let tracker = leakcheck::Options::new()
        .grace(Duration::from_millis(200))
        .instrument(&mut builder);
    let runtime = builder.enable_all().build()?;

    runtime.block_on(async {
        tracker.set_baseline();
        service_under_test().await?;

        println!("== The live-task dump (what a debug endpoint serves) ==\n");
        println!("{:#}", tracker.snapshot());

        println!("== The leak report (what fails a #[leakcheck::test]) ==\n");
        match tracker.find_leaks().await {
            Ok(()) => println!("no leaks"),
            Err(report) => println!("{report}"),
        }
        Ok(())
    })
}
