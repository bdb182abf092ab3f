//! `GET tasks/pprof`, decoded against pprof's `profile.proto` (the messages
//! below are written from the proto, independently of leakcheck's), and read
//! by the real `go tool pprof` when `go` is installed.

use std::io::Read;

use super::*;

/// This file, for the markers of its own spawns.
const PPROF_SRC: Source = Source::new(file!(), include_str!("pprof.rs"));

#[derive(Clone, PartialEq, prost::Message)]
struct Profile {
    #[prost(message, repeated, tag = "1")]
    sample_type: Vec<ValueType>,
    #[prost(message, repeated, tag = "2")]
    sample: Vec<Sample>,
    #[prost(message, repeated, tag = "4")]
    location: Vec<Location>,
    #[prost(message, repeated, tag = "5")]
    function: Vec<Function>,
    #[prost(string, repeated, tag = "6")]
    string_table: Vec<String>,
    #[prost(int64, repeated, tag = "13")]
    comment: Vec<i64>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct ValueType {
    #[prost(int64, tag = "1")]
    r#type: i64,
    #[prost(int64, tag = "2")]
    unit: i64,
}

#[derive(Clone, PartialEq, prost::Message)]
struct Sample {
    #[prost(uint64, repeated, tag = "1")]
    location_id: Vec<u64>,
    #[prost(int64, repeated, tag = "2")]
    value: Vec<i64>,
    #[prost(message, repeated, tag = "3")]
    label: Vec<Label>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct Label {
    #[prost(int64, tag = "1")]
    key: i64,
    #[prost(int64, tag = "2")]
    str: i64,
}

#[derive(Clone, PartialEq, prost::Message)]
struct Location {
    #[prost(uint64, tag = "1")]
    id: u64,
    #[prost(message, repeated, tag = "4")]
    line: Vec<Line>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct Line {
    #[prost(uint64, tag = "1")]
    function_id: u64,
    #[prost(int64, tag = "2")]
    line: i64,
}

#[derive(Clone, PartialEq, prost::Message)]
struct Function {
    #[prost(uint64, tag = "1")]
    id: u64,
    #[prost(int64, tag = "2")]
    name: i64,
    #[prost(int64, tag = "4")]
    filename: i64,
}

impl Profile {
    fn string(&self, i: i64) -> &str {
        &self.string_table[usize::try_from(i).unwrap()]
    }

    /// The function names of a sample's stack, leaf first.
    fn stack(&self, sample: &Sample) -> Vec<&str> {
        let name = |location_id: &u64| {
            let location = self.location.iter().find(|l| l.id == *location_id).unwrap();
            let function_id = location.line[0].function_id;
            let function = self.function.iter().find(|f| f.id == function_id).unwrap();
            self.string(function.name)
        };
        sample.location_id.iter().map(name).collect()
    }

    fn labels(&self, sample: &Sample) -> Vec<(&str, &str)> {
        let pair = |l: &Label| (self.string(l.key), self.string(l.str));
        sample.label.iter().map(pair).collect()
    }

    fn comments(&self) -> Vec<&str> {
        self.comment.iter().map(|&i| self.string(i)).collect()
    }

    fn total(&self) -> i64 {
        self.sample.iter().map(|s| s.value[0]).sum()
    }
}

fn fetch_profile_at(service: &Service, path: &str) -> Vec<u8> {
    let reply = get(&service.url(path));
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    assert_eq!(reply.content_type, "application/octet-stream");
    reply.body
}

/// The profile at `path`, decoded.
fn profile_at(service: &Service, path: &str) -> Profile {
    let mut proto = Vec::new();
    let gz = fetch_profile_at(service, path);
    flate2::read::GzDecoder::new(&gz[..])
        .read_to_end(&mut proto)
        .unwrap();
    prost::Message::decode(&proto[..]).unwrap()
}

#[test]
fn profile_has_one_sample_per_stack_with_counts_and_labels() {
    let (service, _tasks) = leaky(Capture::CallChains);
    let profile = profile_at(&service, "tasks/pprof");
    let kind = &profile.sample_type[0];
    assert_eq!(
        (profile.string(kind.r#type), profile.string(kind.unit)),
        ("tasks", "count")
    );
    let leaf = format!("spawned at {}", site(&service, "// leak:session"));
    let sessions: Vec<&Sample> = profile
        .sample
        .iter()
        .filter(|s| profile.stack(s)[0] == leaf)
        .collect();
    assert_eq!(sessions.len(), 1, "one stack and one state: one sample");
    let sample = sessions[0];
    assert_eq!(sample.value, [3]);
    assert_eq!(profile.labels(sample), [("state", "idle")]);
    let stack = profile.stack(sample);
    assert!(stack[1].starts_with("endpoint::leak_sessions"), "{stack:?}");
    assert!(
        stack.iter().any(|f| f.ends_with("endpoint::leaky")),
        "{stack:?}"
    );
    assert_eq!(profile.total(), 4);
    assert!(profile.comments().is_empty(), "nothing cut");
}

#[test]
fn profile_is_cut_at_the_limit_and_says_so() {
    let (service, _tasks) = leaky(Capture::CallChains);
    let profile = profile_at(&service, "tasks/pprof?limit=1");
    assert_eq!(profile.sample.len(), 2, "the largest sample and the rest");
    let kept = &profile.sample[0];
    let leaf = format!("spawned at {}", site(&service, "// leak:session"));
    assert_eq!(profile.stack(kept)[0], leaf);
    assert_eq!(kept.value, [3]);
    let rest = &profile.sample[1];
    assert_eq!(rest.value, [1], "the other site's one task");
    assert_eq!(
        profile.stack(rest),
        ["1 task in 1 smaller samples left out (?limit=N for more)"]
    );
    assert_eq!(profile.labels(rest), [("left_out", "1")]);
    assert_eq!(profile.total(), 4, "totals stay right");
    assert_eq!(
        profile.comments(),
        ["leakcheck: showing the 1 largest of 2 samples; \
             1 task in 1 smaller samples left out (?limit=N for more)"]
    );
}

/// `n` tasks named `conn-0`, `conn-1`, ..., each waiting on a gate
/// nobody opens.
#[cfg(target_os = "linux")]
fn spawn_named(service: &Service, n: usize) -> Vec<JoinHandle<()>> {
    let gate = Arc::new(Semaphore::new(0));
    (0..n)
        .map(|i| {
            let gate = gate.clone();
            let name = format!("conn-{i}");
            let named = tokio::task::Builder::new().name(&name);
            let task = async move { drop(gate.acquire().await) };
            named.spawn_on(task, service.rt.handle()).unwrap() // leak:named
        })
        .collect()
}

/// Names come with the `tracing` feature, which the suite turns on where
/// tokio supports it (Linux).
#[cfg(target_os = "linux")]
#[test]
fn task_names_show_in_every_view_and_as_the_name_label() {
    let service = Service::start(Capture::Polls);
    let tasks = spawn_named(&service, 2);
    service.wait_idle(PPROF_SRC.path, PPROF_SRC.line("// leak:named"), 2);
    let text = get_ok(&service.url("tasks?debug=2"));
    assert_contains(
        &text,
        &format!("task {} \"conn-0\" [idle], age ", tasks[0].id()),
    );
    let json: serde_json::Value =
        serde_json::from_str(&get_ok(&service.url("tasks?debug=2&format=json"))).unwrap();
    assert_eq!(json["tasks"][1]["name"], "conn-1", "{json}");
    let profile = profile_at(&service, "tasks/pprof");
    let mut labels: Vec<Vec<(&str, &str)>> =
        profile.sample.iter().map(|s| profile.labels(s)).collect();
    labels.sort();
    assert_eq!(
        labels,
        [
            [("state", "idle"), ("name", "conn-0")],
            [("state", "idle"), ("name", "conn-1")]
        ],
        "one sample per name"
    );
}

/// With unique names there is a sample per task: the profile is cut at the
/// default limit all the same.
#[cfg(target_os = "linux")]
#[test]
fn unique_names_are_cut_at_the_default_limit() {
    let service = Service::start(Capture::SpawnSites);
    let n = 10_005;
    let tasks = spawn_named(&service, n);
    http::wait_until("the named tasks", || service.tracker.live_count() == n);
    let profile = profile_at(&service, "tasks/pprof");
    assert_eq!(profile.sample.len(), 10_001, "10000 and the rest");
    assert_eq!(profile.total(), n as i64);
    let rest = profile.sample.last().unwrap();
    assert_eq!(profile.labels(rest), [("left_out", "5")]);
    assert_eq!(rest.value, [5]);
    assert_eq!(
        profile.comments(),
        ["leakcheck: showing the 10000 largest of 10005 samples; \
             5 tasks in 5 smaller samples left out (?limit=N for more)"]
    );
    drop(tasks);
}

#[test]
fn go_tool_pprof_reads_the_profile() {
    let Ok(go) = which_go() else {
        // .ci/run sets this once it has go: there a missing go is a failure
        let required = std::env::var_os("LEAKCHECK_REQUIRE_GO").is_some();
        assert!(
            !required,
            "LEAKCHECK_REQUIRE_GO is set but `go` is not on PATH"
        );
        println!("note: `go` is not on PATH; skipped reading the profile with `go tool pprof`");
        return;
    };
    let (service, _tasks) = leaky(Capture::CallChains);
    let dir = std::env::temp_dir().join(format!("leakcheck-pprof-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // `go tool pprof <how> <the profile at path>`: its stdout
    let pprof = |how: &str, path: &str| {
        let file = dir.join("tasks.pb.gz");
        std::fs::write(&file, fetch_profile_at(&service, path)).unwrap();
        let output = std::process::Command::new(&go)
            .args(["tool", "pprof", how])
            .arg(&file)
            .env("HOME", &dir) // pprof writes its cache under $HOME/pprof
            .output()
            .unwrap();
        let (stdout, stderr) = (
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr),
        );
        assert!(
            output.status.success(),
            "go tool pprof {how} failed:\n{stderr}\n{stdout}"
        );
        stdout
    };
    let top = pprof("-top", "tasks/pprof");
    let leaf = format!("spawned at {}", site(&service, "// leak:session"));
    let line = top.lines().find(|l| l.contains(&leaf));
    let line = line.unwrap_or_else(|| panic!("no {leaf:?} in:\n{top}"));
    assert!(line.trim_start().starts_with("3 "), "3 tasks flat: {line}");
    assert_contains(&top, "Type: tasks");
    // cut: the comment says so in the header, and the rest is one line
    let top = pprof("-top", "tasks/pprof?limit=1");
    assert_contains(&top, "leakcheck: showing the 1 largest of 2 samples");
    let rest = top
        .lines()
        .find(|l| l.contains("smaller samples left out") && !l.starts_with("leakcheck:"));
    let rest = rest.unwrap_or_else(|| panic!("no left-out line in:\n{top}"));
    assert!(rest.trim_start().starts_with("1 "), "1 task flat: {rest}");
    let comments = pprof("-comments", "tasks/pprof?limit=1");
    assert_contains(&comments, "leakcheck: showing the 1 largest of 2 samples");
    let _ = std::fs::remove_dir_all(&dir);
}

fn which_go() -> Result<std::path::PathBuf, ()> {
    let path = std::env::var_os("PATH").ok_or(())?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("go"))
        .find(|candidate| candidate.is_file())
        .ok_or(())
}
