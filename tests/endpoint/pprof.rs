//! `GET tasks/pprof`, decoded against pprof's `profile.proto` (the messages
//! below are written from the proto, independently of leakcheck's), and read
//! by the real `go tool pprof` when `go` is installed.

use std::io::Read;

use super::*;

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
}

fn fetch_profile(service: &Service) -> Vec<u8> {
    let reply = get(&service.url("tasks/pprof"));
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    assert_eq!(reply.content_type, "application/octet-stream");
    reply.body
}

#[test]
fn profile_has_one_sample_per_stack_with_counts_and_labels() {
    let (service, _tasks) = leaky(Capture::CallChains);
    let mut proto = Vec::new();
    let gz = fetch_profile(&service);
    flate2::read::GzDecoder::new(&gz[..])
        .read_to_end(&mut proto)
        .unwrap();
    let profile: Profile = prost::Message::decode(&proto[..]).unwrap();
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
    let total: i64 = profile.sample.iter().map(|s| s.value[0]).sum();
    assert_eq!(total, 4);
}

#[test]
fn go_tool_pprof_reads_the_profile() {
    let Ok(go) = which_go() else {
        println!("note: `go` is not on PATH; skipped reading the profile with `go tool pprof`");
        return;
    };
    let (service, _tasks) = leaky(Capture::CallChains);
    let dir = std::env::temp_dir().join(format!("leakcheck-pprof-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("tasks.pb.gz");
    std::fs::write(&file, fetch_profile(&service)).unwrap();
    let output = std::process::Command::new(go)
        .args(["tool", "pprof", "-top"])
        .arg(&file)
        .env("HOME", &dir) // pprof writes its cache under $HOME/pprof
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    );
    assert!(
        output.status.success(),
        "go tool pprof failed:\n{stderr}\n{stdout}"
    );
    let leaf = format!("spawned at {}", site(&service, "// leak:session"));
    let line = stdout.lines().find(|l| l.contains(&leaf));
    let line = line.unwrap_or_else(|| panic!("no {leaf:?} in:\n{stdout}\n{stderr}"));
    assert!(line.trim_start().starts_with("3 "), "3 tasks flat: {line}");
    assert_contains(&stdout, "Type: tasks");
    let _ = std::fs::remove_dir_all(&dir);
}

fn which_go() -> Result<std::path::PathBuf, ()> {
    let path = std::env::var_os("PATH").ok_or(())?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("go"))
        .find(|candidate| candidate.is_file())
        .ok_or(())
}
