//! The `console` feature: tokio-console attaches to a process that also
//! serves leakcheck's debug endpoint, and both show the same leaked task at
//! the same spawn site. The console side is read with console-api's own
//! gRPC client, as tokio-console reads it.
#![cfg(all(tokio_unstable, target_os = "linux"))]

#[path = "support/http.rs"]
mod http;

use std::time::{Duration, Instant};

use console_api::instrument::instrument_client::InstrumentClient;
use console_api::instrument::InstrumentRequest;
use leakcheck::endpoint::Dump;
use leakcheck_tests::Source;

const SRC: Source = Source::new(file!(), include_str!("console.rs"));

/// A port on 127.0.0.1 for the console server, and the socket that holds
/// it until the server has bound it too.
///
/// console-subscriber binds its address on a thread of its own and cannot
/// tell which port it got for port 0, so the port is picked here. Probing
/// with a listener and dropping it would race: another bind to port 0 (a
/// parallel test) could take the port in between. Instead the port stays
/// bound, with `SO_REUSEADDR` and without listening, for as long as the
/// returned socket lives: Linux lets another `SO_REUSEADDR` socket (what
/// `std::net::TcpListener::bind`, and so console-subscriber, uses) bind and
/// listen on it then, while no automatic port choice hands it out.
fn reserved_addr() -> (tokio::net::TcpSocket, std::net::SocketAddr) {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_reuseaddr(true).unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = socket.local_addr().unwrap();
    (socket, addr)
}

/// The spawn site of the task console-subscriber reports at `line` of this
/// file, as `path:line:col`, waiting until it does.
async fn console_site(addr: std::net::SocketAddr, line: u32) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    let url = format!("http://{addr}");
    let mut client = loop {
        match InstrumentClient::connect(url.clone()).await {
            Ok(client) => break client,
            Err(e) if Instant::now() < deadline => {
                let _ = e; // the server is still starting
                tokio::task::yield_now().await;
            }
            Err(e) => panic!("tokio-console's server at {url}: {e}"),
        }
    };
    let mut updates = client
        .watch_updates(InstrumentRequest::default())
        .await
        .unwrap()
        .into_inner();
    while let Some(update) = updates.message().await.unwrap() {
        let tasks = update.task_update.map(|u| u.new_tasks).unwrap_or_default();
        for task in tasks {
            let Some(at) = task.location else { continue };
            if at.file.as_deref() == Some(SRC.path) && at.line == Some(line) {
                return format!("{}:{line}:{}", SRC.path, at.column.unwrap_or(0));
            }
        }
        assert!(
            Instant::now() < deadline,
            "tokio-console never showed the task"
        );
    }
    panic!("tokio-console's update stream ended");
}

#[test]
fn tokio_console_and_the_endpoint_show_the_same_leak() {
    let (_reserved, console) = reserved_addr();
    leakcheck::console::init(Some(console)).unwrap();
    let service = http::Service::start(leakcheck::Capture::CallChains);
    let line = SRC.line("// leak:console");
    let (_open, parked) = tokio::sync::oneshot::channel::<()>();
    let _leaked = service.rt.spawn(parked); // leak:console
    service.wait_idle(SRC.path, line, 1);

    let json = http::get_ok(&service.url("tasks?format=json"));
    let dump = Dump::parse(&json).unwrap();
    let listed: Vec<&str> = dump
        .groups
        .iter()
        .filter_map(|g| g.spawn_site.as_deref())
        .collect();
    let endpoint_site = listed
        .iter()
        .find(|s| s.starts_with(&SRC.site("// leak:console")))
        .unwrap_or_else(|| panic!("the endpoint lists no task at line {line}: {listed:?}"));

    let client = tokio::runtime::Runtime::new().unwrap();
    let console_site = client.block_on(console_site(console, line));
    assert_eq!(&console_site, endpoint_site);
}
