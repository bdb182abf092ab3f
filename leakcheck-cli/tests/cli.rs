//! The built `leakcheck` binary against a real endpoint: `top`, `save`,
//! `diff`, and its errors.

use std::future::pending;
use std::net::SocketAddr;
use std::process::{Command, Output};

use leakcheck::{ServeOptions, Server, Tracker};
use tokio::runtime::Runtime;

/// An instrumented runtime and `leakcheck::serve` in front of it.
fn service(token: Option<&str>) -> (Runtime, Tracker, Server) {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    let tracker = leakcheck::instrument(&mut builder);
    let rt = builder.worker_threads(1).enable_all().build().unwrap();
    let mut options = ServeOptions::new().addr("127.0.0.1:0".parse().unwrap());
    if let Some(token) = token {
        options = options.token(token);
    }
    let server = leakcheck::serve(tracker.clone(), options).unwrap();
    (rt, tracker, server)
}

/// `endpoint::router` mounted at the root of an axum app, served on the
/// instrumented runtime itself.
fn root_service() -> (Runtime, Tracker, SocketAddr) {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    let tracker = leakcheck::instrument(&mut builder);
    let rt = builder.worker_threads(1).enable_all().build().unwrap();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let app = rt.block_on(async { leakcheck::endpoint::router(tracker.clone()) });
    rt.spawn(async move { axum::serve(listener, app).await });
    (rt, tracker, addr)
}

fn leakcheck(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_leakcheck"))
        .args(args)
        .env_remove("LEAKCHECK_TOKEN")
        .output()
        .unwrap()
}

/// stdout of a run that must succeed.
#[track_caller]
fn ok(args: &[&str]) -> String {
    let output = leakcheck(args);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "leakcheck {args:?} failed: {stderr}"
    );
    String::from_utf8(output.stdout).unwrap()
}

/// stderr of a run that must fail with `code`.
#[track_caller]
fn fails(args: &[&str], code: i32) -> String {
    let output = leakcheck(args);
    assert_eq!(output.status.code(), Some(code), "leakcheck {args:?}");
    String::from_utf8(output.stderr).unwrap()
}

#[inline(never)]
fn leak(rt: &Runtime, n: usize) {
    for _ in 0..n {
        rt.spawn(pending::<()>()); // leak:cli
    }
}

/// `leakcheck-cli/tests/cli.rs:LINE:`, the spawn site up to its column.
fn leak_site() -> String {
    let text = include_str!("cli.rs");
    let line = text
        .lines()
        .position(|l| l.trim_end().ends_with("// leak:cli"))
        .unwrap();
    format!("{}:{}:", file!(), line + 1)
}

#[test]
fn top_save_and_diff() {
    let (rt, _tracker, server) = service(None);
    let dir = std::env::temp_dir().join(format!("leakcheck-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (a, b) = (dir.join("a.json"), dir.join("b.json"));
    let (a, b) = (a.to_str().unwrap(), b.to_str().unwrap());
    let url = server.url();
    // one call site for both rounds: the call chain is part of a group's key
    for (round, (n, file)) in [(3, a), (2, b)].into_iter().enumerate() {
        leak(&rt, n);
        let saved = ok(&["save", &url, file]);
        if round == 0 && cfg!(tokio_unstable) {
            assert_eq!(saved, format!("saved 3 live tasks in 1 group to {a}\n"));
            let top = ok(&["top", &server.url()]);
            let expected = format!("3 tasks spawned at {}", leak_site());
            assert!(top.contains(&expected), "{top}");
        }
    }
    let diff = ok(&["diff", a, b]);
    if cfg!(tokio_unstable) {
        let head = "1 group grew, largest growth first (live tasks: 3 → 5)";
        assert!(diff.starts_with(head), "{diff}");
        let grown = format!("+2 (3 → 5) tasks spawned at {}", leak_site());
        assert!(diff.contains(&grown), "{diff}");
    }
    let same = ok(&["diff", b, b]);
    assert!(same.starts_with("no group grew"), "{same}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn errors_say_what_went_wrong() {
    let err = fails(&["top", "127.0.0.1:6060"], 1);
    assert!(
        err.contains("bad URL `127.0.0.1:6060`: not an http:// URL"),
        "{err}"
    );
    let (_rt, _tracker, server) = service(Some("s3cret"));
    let err = fails(&["top", &server.url(), "--token", "wrong"], 1);
    assert!(err.contains("401 Unauthorized"), "{err}");
    assert!(
        err.contains("missing or wrong token"),
        "the server's message: {err}"
    );
    ok(&["top", &server.url(), "--token", "s3cret"]);
    let err = fails(
        &[
            "top",
            &format!("{}/nope", server.url()),
            "--token",
            "s3cret",
        ],
        1,
    );
    assert!(err.contains("404 Not Found"), "{err}");
    let err = fails(&["diff", "/nonexistent/a.json", "b.json"], 1);
    assert!(err.contains("could not read /nonexistent/a.json"), "{err}");
    let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml");
    let err = fails(&["diff", manifest, manifest], 1);
    assert!(err.contains("not a leakcheck task dump"), "{err}");
    let err = fails(&["peek"], 2);
    assert!(
        err.contains("unknown command `peek`") && err.contains("usage:"),
        "{err}"
    );
}

#[test]
fn a_url_is_the_mount_point_as_given() {
    let (rt, _tracker, addr) = root_service();
    leak(&rt, 2);
    for url in [format!("http://{addr}"), format!("http://{addr}/")] {
        let top = ok(&["top", &url]);
        assert!(top.contains(" live task"), "{top}");
        if cfg!(tokio_unstable) {
            let expected = format!("2 tasks spawned at {}", leak_site());
            assert!(top.contains(&expected), "{top}");
        }
    }
    // mounted at the root, nothing is at /debug: no guessing either way
    let err = fails(&["top", &format!("http://{addr}/debug")], 1);
    assert!(err.contains("404 Not Found"), "{err}");
    assert!(
        err.contains("taken as given, e.g. http://127.0.0.1:6060/debug; leakcheck adds /tasks"),
        "{err}"
    );
    let (_rt, _tracker, server) = service(None);
    let err = fails(&["top", &format!("{}/tasks", server.url())], 1);
    assert!(
        err.contains("GET http://") && err.contains("/debug/tasks/tasks: 404"),
        "{err}"
    );
}

#[test]
fn save_warns_when_the_dump_it_saved_was_cut() {
    let (rt, _tracker, server) = service(None);
    leak(&rt, 2);
    let _other = rt.spawn(pending::<()>()); // a second group
    let file = std::env::temp_dir().join(format!("leakcheck-cli-cut-{}.json", std::process::id()));
    let file = file.to_str().unwrap();
    let output = leakcheck(&["save", &server.url(), file, "--limit", "1"]);
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(output.status.success(), "{stderr}");
    if cfg!(tokio_unstable) {
        let expected = format!(
            "leakcheck: warning: the dump was cut: {file} lists the 1 largest of 2 groups \
             (2 of 3 tasks; --limit N for more, at most 100000)"
        );
        assert!(stderr.starts_with(&expected), "{stderr}");
        let saved = String::from_utf8(output.stdout).unwrap();
        assert_eq!(saved, format!("saved 3 live tasks in 2 groups to {file}\n"));
    }
    let output = leakcheck(&["save", &server.url(), file]);
    assert!(output.status.success());
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        "",
        "not cut: no warning"
    );
    let _ = std::fs::remove_file(file);
}
