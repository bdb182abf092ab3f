//! The debug endpoint is safe by default: unknown paths are 404s, bad query
//! values are 400s that say what is accepted, a public address needs an
//! opt-in and a token, the token is checked on every request, and huge
//! tables are cut and say so.

#[path = "support/http.rs"]
mod http;

use leakcheck::{Capture, ServeOptions};
use leakcheck_tests::assert_contains;

use http::{get, get_with, Service};

#[test]
fn unknown_paths_are_404_and_list_the_routes() {
    let service = Service::start(Capture::SpawnSites);
    for path in ["debug/nope", "debug/tasks/nope", "metrics", ""] {
        let url = format!("http://{}/{path}", service.server.local_addr());
        let reply = get(&url);
        assert_eq!(reply.status, 404, "GET {url}");
        assert_contains(&reply.text(), &format!("no such path: /{path};"));
        assert_contains(&reply.text(), "tasks, tasks/pprof, tasks/growth");
    }
}

#[test]
fn bad_query_values_are_400_naming_the_parameter() {
    let service = Service::start(Capture::SpawnSites);
    let cases = [
        (
            "tasks?debug=3",
            "bad value `3` for `debug`: expected 1 (tasks grouped by spawn site) or 2 (every task)",
        ),
        (
            "tasks?format=xml",
            "bad value `xml` for `format`: expected `text` or `json`",
        ),
        (
            "tasks?limit=0",
            "bad value `0` for `limit`: expected a whole number from 1 to 100000",
        ),
        ("tasks?limit=100001", "bad value `100001` for `limit`"),
        (
            "tasks?fromat=json",
            "unknown query parameter `fromat`: this path accepts debug, format, limit",
        ),
        (
            "tasks/growth?seconds=abc",
            "bad value `abc` for `seconds`: expected a whole number of seconds from 1 to 600",
        ),
        ("tasks/growth?seconds=601", "bad value `601` for `seconds`"),
        (
            "tasks/pprof?debug=1",
            "unknown query parameter `debug`: this path accepts limit",
        ),
        (
            "tasks/pprof?limit=0",
            "bad value `0` for `limit`: expected a whole number from 1 to 100000",
        ),
        (
            "tasks/flamegraph.svg?limit=100001",
            "bad value `100001` for `limit`",
        ),
        (
            "tasks/flamegraph.svg?format=json",
            "unknown query parameter `format`: this path accepts limit",
        ),
        ("runtime?format=yaml", "bad value `yaml` for `format`"),
    ];
    for (path, message) in cases {
        let reply = get(&service.url(path));
        assert_eq!(reply.status, 400, "GET {path}");
        assert_contains(&reply.text(), message);
    }
}

#[test]
fn a_public_address_needs_the_opt_in_and_a_token() {
    let tracker = leakcheck::instrument(&mut tokio::runtime::Builder::new_current_thread());
    let public = ServeOptions::new().addr("0.0.0.0:0".parse().unwrap());
    let err = leakcheck::serve(tracker.clone(), public.clone()).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    assert_contains(
        &err.to_string(),
        "refusing to listen on 0.0.0.0:0, which other machines can reach",
    );
    let err = leakcheck::serve(tracker.clone(), public.clone().allow_remote()).unwrap_err();
    assert_contains(&err.to_string(), "allow_remote() needs a non-empty token");
    let err =
        leakcheck::serve(tracker.clone(), public.clone().allow_remote().token("")).unwrap_err();
    assert_contains(&err.to_string(), "needs a non-empty token");
    let server = leakcheck::serve(tracker, public.allow_remote().token("s3cret")).unwrap();
    let url = format!(
        "http://127.0.0.1:{}/debug/tasks",
        server.local_addr().port()
    );
    assert_eq!(get_with(&url, Some("s3cret")).status, 200);
    server.shutdown();
}

#[test]
fn the_token_is_checked_on_every_request() {
    let tracker = leakcheck::instrument(&mut tokio::runtime::Builder::new_current_thread());
    let options = ServeOptions::new()
        .addr("127.0.0.1:0".parse().unwrap())
        .token("s3cret");
    let server = leakcheck::serve(tracker, options).unwrap();
    for path in ["tasks", "tasks/pprof", "runtime", "nope"] {
        let url = format!("{}/{path}", server.url());
        for wrong in [None, Some("s3cre"), Some("s3cret2")] {
            let reply = get_with(&url, wrong);
            assert_eq!(reply.status, 401, "GET {path} with {wrong:?}");
            assert_contains(
                &reply.text(),
                "missing or wrong token: send `Authorization: Bearer <token>`",
            );
        }
    }
    assert_eq!(
        get_with(&format!("{}/tasks", server.url()), Some("s3cret")).status,
        200
    );
}

#[test]
fn runtime_metrics_without_a_runtime_say_how_to_pass_one() {
    // serve called outside any runtime and without ServeOptions::runtime:
    // its own runtime is not the service's, so it must not be reported
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    let tracker = leakcheck::instrument(&mut builder);
    let _rt = builder.worker_threads(2).enable_all().build().unwrap();
    let options = ServeOptions::new().addr("127.0.0.1:0".parse().unwrap());
    let server = leakcheck::serve(tracker, options).unwrap();
    let reply = get(&format!("{}/runtime", server.url()));
    assert_eq!(reply.status, 503);
    assert_contains(
        &reply.text(),
        "leakcheck::serve was called outside the service's runtime; pass its handle with \
         ServeOptions::new().runtime(runtime.handle().clone())",
    );
    server.shutdown();
}

#[cfg(tokio_unstable)]
#[test]
fn huge_tables_are_cut_and_say_so() {
    let service = Service::start(Capture::SpawnSites);
    let gate = std::sync::Arc::new(tokio::sync::Semaphore::new(0));
    let tasks: Vec<_> = (0..20_000)
        .map(|_| {
            let gate = gate.clone();
            service.rt.spawn(async move { drop(gate.acquire().await) })
        })
        .collect();
    let _other = service.rt.spawn(std::future::pending::<()>());
    // no ?limit: the default bound, 10000
    let every = http::get_ok(&service.url("tasks?debug=2"));
    assert_contains(
        &every,
        "20001 live tasks, by id (capture: spawn_sites)\n\
         showing 10000 of 20001 tasks; ?limit=N for more\n",
    );
    assert_eq!(every.matches("\ntask ").count(), 10_000);
    let json: serde_json::Value =
        serde_json::from_str(&http::get_ok(&service.url("tasks?format=json&debug=2"))).unwrap();
    assert_eq!(json["tasks"].as_array().unwrap().len(), 10_000);
    assert_eq!(json["limit"], 10_000);
    let every = http::get_ok(&service.url("tasks?debug=2&limit=5"));
    assert_contains(&every, "20001 live tasks, by id (capture: spawn_sites)\nshowing 5 of 20001 tasks; ?limit=N for more\n");
    assert_eq!(every.matches("\ntask ").count(), 5, "{every}");
    assert_contains(&every, &format!("\ntask {} [unknown]", tasks[0].id()));
    let grouped = http::get_ok(&service.url("tasks?limit=1"));
    assert_contains(&grouped, "20001 live tasks in 2 groups, largest first (capture: spawn_sites)\nshowing 1 of 2 groups; ?limit=N for more\n\n20000 tasks spawned at tests/endpoint_input.rs:");
    let json: serde_json::Value = serde_json::from_str(&http::get_ok(
        &service.url("tasks?format=json&debug=2&limit=3"),
    ))
    .unwrap();
    assert_eq!(json["tasks"].as_array().unwrap().len(), 3);
    assert_eq!(
        (json["total_tasks"].as_u64(), json["limit"].as_u64()),
        (Some(20001), Some(3))
    );
}
