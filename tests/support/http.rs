//! Shared by the endpoint tests: an instrumented service with leakcheck's
//! standalone server in front, and a real HTTP client.
#![allow(dead_code)] // each test file uses its own part

use std::time::{Duration, Instant};

use leakcheck::{Capture, Options, ServeOptions, Server, Tracker};
use tokio::runtime::Runtime;

/// An instrumented multi_thread runtime and `leakcheck::serve` on 127.0.0.1:0.
pub struct Service {
    pub rt: Runtime,
    pub tracker: Tracker,
    pub server: Server,
}

impl Service {
    pub fn start(capture: Capture) -> Service {
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        let tracker = Options::new().capture(capture).instrument(&mut builder);
        let rt = builder.worker_threads(2).enable_all().build().unwrap();
        let options = ServeOptions::new()
            .addr("127.0.0.1:0".parse().unwrap())
            .runtime(rt.handle().clone());
        let server = leakcheck::serve(tracker.clone(), options).unwrap();
        Service {
            rt,
            tracker,
            server,
        }
    }

    /// `http://127.0.0.1:PORT/debug/<path>`.
    pub fn url(&self, path: &str) -> String {
        format!("{}/{path}", self.server.url())
    }

    /// Waits until `n` live tasks spawned on line `line` of this file are
    /// idle (polled and parked), so the views show a settled state.
    pub fn wait_idle(&self, file: &str, line: u32, n: usize) {
        wait_until(&format!("{n} idle tasks from {file}:{line}"), || {
            let snapshot = self.tracker.snapshot();
            let idle = snapshot.tasks().iter().filter(|t| {
                t.spawn_site
                    .is_some_and(|s| s.file().ends_with(file) && s.line() == line)
                    && t.state == leakcheck::TaskState::Idle
            });
            idle.count() == n
        });
    }
}

/// Waits for `condition`, re-checking every millisecond; panics after 60 s.
pub fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// A response: status and body.
pub struct Reply {
    pub status: u16,
    pub content_type: String,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn text(&self) -> String {
        String::from_utf8(self.body.clone()).expect("a UTF-8 body")
    }
}

/// `GET url`, with `Authorization: Bearer <token>` if a token is given;
/// any status is a reply, not an error.
pub fn get_with(url: &str, token: Option<&str>) -> Reply {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(120)))
        .build()
        .into();
    let mut request = agent.get(url);
    if let Some(token) = token {
        request = request.header("Authorization", &format!("Bearer {token}"));
    }
    let mut response = request.call().unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let body = response
        .body_mut()
        .with_config()
        .limit(u64::MAX)
        .read_to_vec()
        .unwrap();
    Reply {
        status: response.status().as_u16(),
        content_type,
        body,
    }
}

pub fn get(url: &str) -> Reply {
    get_with(url, None)
}

/// `GET url`, asserting a 200, as text.
#[track_caller]
pub fn get_ok(url: &str) -> String {
    let reply = get(url);
    let text = reply.text();
    assert_eq!(reply.status, 200, "GET {url}: {text}");
    text
}
