//! `examples/http_service.rs` is a contract for checks outside this repo:
//! `cargo run --example http_service -- --addr 127.0.0.1:0` prints a line
//! holding `http://127.0.0.1:PORT` once it listens, mounts the endpoint
//! (`endpoint::router`, in its axum app) under `/debug`, `GET /leak` leaves
//! one task running per request and `GET /ok` spawns one that ends.
//!
//! This runs the built example (`cargo test` builds a package's examples
//! before its tests) and talks to it over real HTTP.
#![cfg(tokio_unstable)] // without the spawn hooks every view is empty

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use leakcheck::endpoint::Dump;

/// The example's source, to find the line of its one spawn.
const SOURCE: &str = include_str!("../http_service.rs");

/// How long anything here may take.
const DEADLINE: Duration = Duration::from_secs(60);

/// `examples/http_service.rs:LINE:`, the spawn site of the refresher (both
/// handlers start it through the one `tokio::spawn` of the example).
fn refresher_site() -> String {
    let lines: Vec<usize> = SOURCE
        .lines()
        .enumerate()
        .filter(|(_, l)| l.contains("tokio::spawn("))
        .map(|(i, _)| i + 1)
        .collect();
    assert_eq!(lines.len(), 1, "the example has one tokio::spawn");
    format!("examples/http_service.rs:{}:", lines[0])
}

/// The example's binary: `target/<profile>/examples/http_service`, next to
/// this test's own `target/<profile>/deps/`.
fn example_binary() -> PathBuf {
    let test = std::env::current_exe().unwrap();
    let profile = test.parent().and_then(|deps| deps.parent()).unwrap();
    let name = format!("http_service{}", std::env::consts::EXE_SUFFIX);
    let binary = profile.join("examples").join(name);
    let build = "`cargo test -p leakcheck-examples` builds it; with a target filter such as \
                 `--test http_service` run `cargo build -p leakcheck-examples --example \
                 http_service` first";
    let built = std::fs::metadata(&binary)
        .and_then(|m| m.modified())
        .unwrap_or_else(|e| panic!("no example binary at {}: {e}; {build}", binary.display()));
    let source = concat!(env!("CARGO_MANIFEST_DIR"), "/http_service.rs");
    let edited = std::fs::metadata(source).unwrap().modified().unwrap();
    assert!(
        built >= edited,
        "{} is older than {source}; {build}",
        binary.display()
    );
    binary
}

/// The running example; killed when dropped.
struct Example {
    child: Child,
    /// `http://127.0.0.1:PORT`, from its first line.
    url: String,
}

impl Example {
    fn start() -> Example {
        let mut child = Command::new(example_binary())
            .args(["--addr", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .spawn()
            .expect("the example starts");
        let stdout = child.stdout.take().unwrap();
        let (lines, read) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if lines.send(line).is_err() {
                    return;
                }
            }
        });
        let mut example = Example {
            child,
            url: String::new(),
        };
        let deadline = Instant::now() + DEADLINE;
        while example.url.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = read
                .recv_timeout(left)
                .expect("a line with http://127.0.0.1:PORT on stdout");
            if let Some(at) = line.find("http://127.0.0.1:") {
                let url = line[at..].split_whitespace().next().unwrap();
                example.url = url.trim_end_matches('/').to_owned();
            }
        }
        example
    }

    /// `GET path`, asserting a 200: the body.
    #[track_caller]
    fn get(&self, path: &str) -> String {
        let (status, body) = get(&format!("{}{path}", self.url));
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }
}

impl Drop for Example {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `GET url` over a fresh connection: status and body.
fn get(url: &str) -> (u16, String) {
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let mut stream = TcpStream::connect(host).unwrap();
    stream.set_read_timeout(Some(DEADLINE)).unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    let mut reply = Vec::new();
    stream.read_to_end(&mut reply).unwrap();
    let reply = String::from_utf8(reply).unwrap();
    let (head, body) = reply.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    let chunked = head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked");
    (
        status,
        if chunked {
            unchunk(body)
        } else {
            body.to_owned()
        },
    )
}

/// A chunked body, put back together.
fn unchunk(mut body: &str) -> String {
    let mut out = String::new();
    loop {
        let (size, rest) = body.split_once("\r\n").unwrap();
        let size = usize::from_str_radix(size.trim(), 16).unwrap();
        if size == 0 {
            return out;
        }
        out.push_str(&rest[..size]);
        body = &rest[size + 2..];
    }
}

/// Live tasks per call chain spawned at `site`, from the JSON view.
fn at_site(dump: &Dump, site: &str) -> Vec<(usize, Vec<String>)> {
    dump.groups
        .iter()
        .filter(|g| g.spawn_site.as_deref().is_some_and(|s| s.starts_with(site)))
        .map(|g| (g.count, g.call_chain.clone()))
        .collect()
}

#[test]
fn leak_requests_leave_one_task_each_and_ok_requests_none() {
    let example = Example::start();
    assert!(example.get("/leak").starts_with("session started"));
    for _ in 0..2 {
        example.get("/leak");
        assert!(example.get("/ok").starts_with("session started and closed"));
    }
    let site = refresher_site();
    // the /ok refreshers are aborted before the reply; wait until they ended
    let deadline = Instant::now() + DEADLINE;
    let groups = loop {
        let dump = Dump::parse(&example.get("/debug/tasks?format=json")).unwrap();
        let groups = at_site(&dump, &site);
        if groups.iter().map(|(n, _)| n).sum::<usize>() == 3 || Instant::now() > deadline {
            break groups;
        }
        std::thread::yield_now();
    };
    assert_eq!(
        groups.len(),
        1,
        "only /leak's refreshers are left: {groups:?}"
    );
    let (count, chain) = &groups[0];
    assert_eq!(*count, 3, "one per /leak request: {groups:?}");
    assert!(
        chain.iter().any(|f| f.starts_with("http_service::leak")),
        "the call chain names the handler that leaked: {chain:?}"
    );
    assert!(
        !chain.iter().any(|f| f.starts_with("http_service::ok")),
        "{chain:?}"
    );

    let text = example.get("/debug/tasks");
    let blocks: Vec<&str> = text
        .lines()
        .filter(|l| l.contains(&format!(" spawned at {site}")))
        .collect();
    assert_eq!(blocks.len(), 1, "{text}");
    assert!(
        blocks[0].starts_with(&format!("3 tasks spawned at {site}")),
        "{text}"
    );
    assert!(text.contains("http_service::leak"), "{text}");

    let (status, missing) = get(&format!("{}/debug/nope", example.url));
    assert_eq!(status, 404, "{missing}");
}
