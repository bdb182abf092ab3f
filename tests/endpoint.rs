//! The debug endpoint's views, through a real server and HTTP client: the
//! leaked tasks' spawn site (`tests/endpoint.rs:LINE:COL`, found through
//! marker comments) in every view, with the right counts and states.
#![cfg(tokio_unstable)] // without the spawn hooks every view is empty

#[path = "support/http.rs"]
mod http;

use std::future::pending;
use std::sync::Arc;

use leakcheck::Capture;
use leakcheck_tests::{assert_contains, assert_lacks, Source};
use tokio::runtime::Runtime;
use tokio::sync::oneshot::error::TryRecvError;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

use http::{get, get_ok, Service};

const SRC: Source = Source::new(file!(), include_str!("endpoint.rs"));

/// `n` forgotten session tasks, each waiting on a gate nobody opens.
#[inline(never)]
fn leak_sessions(rt: &Runtime, gate: &Arc<Semaphore>, n: usize) -> Vec<JoinHandle<()>> {
    (0..n)
        .map(|_| {
            let gate = gate.clone();
            rt.spawn(async move { drop(gate.acquire().await) }) // leak:session
        })
        .collect()
}

/// One more task from another site.
#[inline(never)]
fn leak_other(rt: &Runtime, gate: &Arc<Semaphore>) -> JoinHandle<()> {
    let gate = gate.clone();
    rt.spawn(async move { drop(gate.acquire().await) }) // leak:other
}

/// A service with 3 session tasks and 1 other task, all idle.
fn leaky(capture: Capture) -> (Service, Vec<JoinHandle<()>>) {
    let service = Service::start(capture);
    let gate = Arc::new(Semaphore::new(0));
    let mut tasks = leak_sessions(&service.rt, &gate, 3);
    tasks.push(leak_other(&service.rt, &gate));
    service.wait_idle(SRC.path, SRC.line("// leak:session"), 3);
    service.wait_idle(SRC.path, SRC.line("// leak:other"), 1);
    (service, tasks)
}

/// `tests/endpoint.rs:LINE:COL` of a marker, as the views print it.
fn site(service: &Service, marker: &str) -> String {
    let line = SRC.line(marker);
    let snapshot = service.tracker.snapshot();
    let task = snapshot
        .tasks()
        .iter()
        .find(|t| t.spawn_site.is_some_and(|s| s.line() == line))
        .expect("a task from the marker's line");
    let site = task.spawn_site.unwrap().to_string();
    assert!(site.starts_with(&SRC.site(marker)), "{site}");
    site
}

#[test]
fn grouped_view_counts_each_site_largest_first() {
    let (service, _tasks) = leaky(Capture::CallChains);
    let text = get_ok(&service.url("tasks"));
    let (session, other) = (
        site(&service, "// leak:session"),
        site(&service, "// leak:other"),
    );
    assert!(
        text.starts_with("4 live tasks in 2 groups, largest first (capture: call_chains)"),
        "{text}"
    );
    let sessions = format!("3 tasks spawned at {session}\n    states: idle 3; oldest ");
    assert_contains(&text, &sessions);
    assert_contains(&text, &format!("1 task spawned at {other}\n"));
    assert!(
        text.find(&sessions) < text.find(&other),
        "largest first:\n{text}"
    );
    assert_contains(
        &text,
        "call chain (innermost first):\n        endpoint::leak_sessions",
    );
}

#[test]
fn every_task_view_lists_ids_states_and_sites() {
    let (service, tasks) = leaky(Capture::Polls);
    let text = get_ok(&service.url("tasks?debug=2"));
    assert!(
        text.starts_with("4 live tasks, by id (capture: polls)"),
        "{text}"
    );
    let session = site(&service, "// leak:session");
    for task in &tasks[..3] {
        let block = format!("task {} [idle], age ", task.id());
        let at = text
            .find(&block)
            .unwrap_or_else(|| panic!("no {block:?} in:\n{text}"));
        let rest = &text[at..];
        // Capture::Polls records polls: idle time, busy time and poll count
        let head = rest.lines().next().unwrap();
        let (_, after_age) = head.split_once(", age ").unwrap();
        let parts: Vec<&str> = after_age.split(", ").collect();
        assert_eq!(parts.len(), 4, "age, idle, busy, polls: {head}");
        assert!(parts[1].starts_with("idle "), "{head}");
        assert!(parts[2].starts_with("busy "), "{head}");
        assert_eq!(parts[3], "1 poll", "{head}");
        let spawned = format!("\n    spawned at {session}\n    spawned by code outside any task");
        assert!(rest.contains(&spawned), "{rest}");
    }
}

#[test]
fn every_task_view_without_poll_state_shows_no_idle_time() {
    let service = Service::start(Capture::SpawnSites);
    let gate = Arc::new(Semaphore::new(0));
    let tasks = leak_sessions(&service.rt, &gate, 1);
    let text = get_ok(&service.url("tasks?debug=2"));
    let head = format!("task {} [unknown], age ", tasks[0].id());
    let line = text.lines().find(|l| l.starts_with(&head));
    let line = line.unwrap_or_else(|| panic!("no {head:?} in:\n{text}"));
    assert!(!line.contains("idle") && !line.contains("poll"), "{line}");
    let json: serde_json::Value =
        serde_json::from_str(&get_ok(&service.url("tasks?format=json&debug=2"))).unwrap();
    let task = &json["tasks"][0];
    let null = &serde_json::Value::Null;
    assert_eq!(
        (
            &task["state"],
            &task["idle_ms"],
            &task["busy_ms"],
            &task["polls"]
        ),
        (&"unknown".into(), null, null, null),
        "not captured is null, not zero: {task}"
    );
}

#[test]
fn json_has_the_documented_fields() {
    let (service, tasks) = leaky(Capture::CallChains);
    let text = get_ok(&service.url("tasks?format=json&debug=2"));
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(json["version"], 1);
    assert_eq!(json["capture"], "call_chains");
    assert_eq!(
        (json["per_task"].clone(), json["total_tasks"].clone()),
        (true.into(), 4.into())
    );
    assert_eq!(
        (json["total_groups"].clone(), json["limit"].clone()),
        (2.into(), 10000.into())
    );
    let group = &json["groups"][0];
    assert_eq!(group["count"], 3);
    assert_eq!(
        group["spawn_site"],
        site(&service, "// leak:session").as_str()
    );
    assert_eq!(group["states"]["idle"], 3);
    assert!(group["oldest_ms"].is_u64(), "{group}");
    assert!(
        group["call_chain"][0]
            .as_str()
            .unwrap()
            .contains("leak_sessions"),
        "{group}"
    );
    let first = &json["tasks"][0];
    assert_eq!(first["id"].to_string(), tasks[0].id().to_string());
    assert_eq!(
        (first["state"].as_str(), first["polls"].as_u64()),
        (Some("idle"), Some(1))
    );
    assert_eq!(first["parent"]["kind"], "outside");
    for task in json["tasks"].as_array().unwrap() {
        let fields = keys(task);
        assert_eq!(
            fields,
            [
                "age_ms",
                "busy_ms",
                "call_chain",
                "id",
                "idle_ms",
                "name",
                "parent",
                "polls",
                "spawn_site",
                "state"
            ],
            "{task}"
        );
        assert_eq!(task["name"], serde_json::Value::Null, "unnamed: {task}");
        let ms = |field: &str| {
            task[field]
                .as_u64()
                .unwrap_or_else(|| panic!("{field} in milliseconds: {task}"))
        };
        let (age, idle, busy) = (ms("age_ms"), ms("idle_ms"), ms("busy_ms"));
        assert!(idle <= age && busy <= age, "{task}");
        let parent = keys(&task["parent"]);
        assert_eq!(parent, ["alive", "id", "kind", "spawn_site"], "{task}");
    }
    let dump = leakcheck::endpoint::Dump::parse(&text).unwrap();
    assert_eq!(dump.tasks.unwrap().len(), 4);
    let groups_only = get_ok(&service.url("tasks?format=json"));
    assert!(
        !groups_only.contains("\"tasks\""),
        "tasks come with debug=2 only"
    );
}

/// The keys of a JSON object, sorted.
fn keys(object: &serde_json::Value) -> Vec<&str> {
    let mut keys: Vec<&str> = object
        .as_object()
        .unwrap()
        .keys()
        .map(|k| k.as_str())
        .collect();
    keys.sort_unstable();
    keys
}

#[test]
fn flame_graph_shows_the_spawn_site() {
    let (service, _tasks) = leaky(Capture::CallChains);
    let reply = get(&service.url("tasks/flamegraph.svg"));
    assert_eq!(
        (reply.status, reply.content_type.as_str()),
        (200, "image/svg+xml")
    );
    let svg = reply.text();
    assert!(svg.starts_with("<?xml"), "{svg}");
    assert_contains(
        &svg,
        &format!("spawned at {}", site(&service, "// leak:session")),
    );
    assert_contains(&svg, "leak_sessions");
    assert_contains(&svg, "4 live tasks, by call chain");
    assert_lacks(&svg, "left out");
}

#[test]
fn flame_graph_is_cut_at_the_limit_and_its_title_says_so() {
    let (service, _tasks) = leaky(Capture::CallChains);
    let svg = get_ok(&service.url("tasks/flamegraph.svg?limit=1"));
    assert_contains(
        &svg,
        "4 live tasks, by call chain: the 1 largest of 2 groups; ?limit=N for more",
    );
    assert_contains(
        &svg,
        &format!("spawned at {}", site(&service, "// leak:session")),
    );
    assert_lacks(&svg, &site(&service, "// leak:other"));
    // the tasks left out keep their width, in one tower
    assert_contains(&svg, "1 task in 1 smaller groups left out");
}

/// Spawns a session task every few milliseconds until the returned sender
/// is dropped: a leak that grows while `growth` watches.
fn grow(rt: &Runtime) -> tokio::sync::oneshot::Sender<()> {
    let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
    rt.spawn(async move {
        while matches!(stopped.try_recv(), Err(TryRecvError::Empty)) {
            tokio::spawn(pending::<()>()); // leak:grower
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    });
    stop
}

#[test]
fn growth_lists_the_site_that_grew() {
    let (service, _tasks) = leaky(Capture::Polls);
    let _growing = grow(&service.rt);
    // growth's contract is a wait: the one fixed wait in these tests
    let text = get_ok(&service.url("tasks/growth?seconds=1"));
    assert!(
        text.starts_with("over 1s: 1 group grew, largest growth first"),
        "{text}"
    );
    assert_contains(
        &text,
        &format!(" spawned at {}", SRC.site("// leak:grower")),
    );
    assert!(
        !text.contains(&SRC.site("// leak:session")),
        "sessions did not grow:\n{text}"
    );

    let json = get_ok(&service.url("tasks/growth?seconds=1&format=json"));
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(value["version"], 1);
    assert_eq!(value["partial"], false);
    let growth: leakcheck::endpoint::Growth = serde_json::from_str(&json).unwrap();
    assert!(growth.after_tasks > growth.before_tasks, "{json}");
    assert_eq!(growth.grown.len(), 1, "{json}");
    let grown = &growth.grown[0];
    let at = grown.spawn_site.as_deref().unwrap();
    assert!(at.starts_with(&SRC.site("// leak:grower")), "{json}");
    assert!(grown.after > grown.before && grown.growth() > 0, "{json}");
    assert!(
        grown.call_chain.is_empty(),
        "Capture::Polls: no chains: {json}"
    );
}

#[test]
fn runtime_metrics_in_text_and_json() {
    let (service, _tasks) = leaky(Capture::Polls);
    let text = get_ok(&service.url("runtime"));
    let value = |name: &str| {
        let line = text
            .lines()
            .find(|l| l.split_whitespace().next() == Some(name));
        let line = line.unwrap_or_else(|| panic!("no {name} in:\n{text}"));
        line.split_whitespace().nth(1).unwrap().to_owned()
    };
    assert_eq!(value("workers_count"), "2");
    let live: u64 = value("live_tasks_count").parse().unwrap();
    assert!(live >= 4, "the 4 parked tasks: {text}");
    // counters since the runtime's monitor began: the tasks' first polls
    let polls: u64 = value("total_polls_count").parse().unwrap();
    assert!(polls >= 4, "{text}");
    for name in [
        "total_park_count",
        "global_queue_depth",
        "total_busy_duration",
        "elapsed",
        "blocking_threads_count",
        "mean_poll_duration",
    ] {
        value(name);
    }

    let json: serde_json::Value =
        serde_json::from_str(&get_ok(&service.url("runtime?format=json"))).unwrap();
    assert_eq!(json["version"], 1);
    let metrics = &json["metrics"];
    assert_eq!(metrics["workers_count"], 2);
    assert!(metrics["live_tasks_count"].as_u64() >= Some(4), "{json}");
    for name in [
        "total_busy_duration_us",
        "elapsed_us",
        "total_park_count",
        "total_polls_count",
        "total_steal_count",
        "mean_poll_duration_us",
        "blocking_queue_depth",
        "budget_forced_yield_count",
    ] {
        assert!(metrics[name].is_u64(), "{name} in {json}");
    }
    assert!(metrics["elapsed_us"].as_u64() > Some(0), "{json}");
}

#[path = "endpoint/pprof.rs"]
mod pprof;
