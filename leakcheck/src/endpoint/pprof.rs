//! `GET tasks/pprof`: live tasks as a gzipped pprof profile that `go tool
//! pprof` reads. One sample per distinct stack and labels, its value the
//! number of tasks; the stack is the call chain with the spawn site as the
//! innermost frame; labels `state` and `name`.
//!
//! At most `limit` samples, the largest: with unique task names there is
//! about one sample per task. The tasks of the samples left out are counted
//! in one more sample (labelled `left_out`, its one frame saying how many
//! samples it stands for), so totals stay right, and the profile's comment
//! says so too (`go tool pprof -top` prints it in its header).
//!
//! Only the messages of pprof's `profile.proto` this needs, and only their
//! fields this writes, with the proto's field numbers.

use std::collections::BTreeMap;
use std::io::Write;

use flate2::write::GzEncoder;
use rustc_hash::FxHashMap;

use crate::census::Census;
use crate::site::SpawnSite;
use crate::text::count;

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
    #[prost(int64, tag = "9")]
    time_nanos: i64,
    #[prost(message, optional, tag = "11")]
    period_type: Option<ValueType>,
    #[prost(int64, tag = "12")]
    period: i64,
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
    #[prost(int64, tag = "3")]
    system_name: i64,
    #[prost(int64, tag = "4")]
    filename: i64,
}

/// The profile of `census` (counted by name too), gzipped: its `limit`
/// largest samples, and one for the rest (see the module docs).
pub(crate) fn profile(census: &Census, limit: usize) -> Vec<u8> {
    let mut builder = Builder::default();
    builder.profile.string_table.push(String::new());
    let tasks = builder.string("tasks");
    let count = builder.string("count");
    builder.profile.sample_type = vec![ValueType {
        r#type: tasks,
        unit: count,
    }];
    builder.profile.period_type = Some(ValueType {
        r#type: tasks,
        unit: count,
    });
    builder.profile.period = 1;
    builder.profile.time_nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX));
    let (kept, cut) = largest(samples(census), limit);
    for (key, n) in &kept {
        builder.sample(key, *n);
    }
    if let Some(cut) = cut {
        builder.left_out(&cut, kept.len());
    }
    gzip(&prost::Message::encode_to_vec(&builder.profile))
}

/// What [`largest`] left out.
#[derive(Debug, PartialEq, Eq)]
struct Cut {
    samples: usize,
    tasks: usize,
}

/// The `limit` largest samples, ties in key order, and what is left out.
fn largest(
    samples: BTreeMap<SampleKey, usize>,
    limit: usize,
) -> (Vec<(SampleKey, usize)>, Option<Cut>) {
    let mut samples: Vec<(SampleKey, usize)> = samples.into_iter().collect();
    if samples.len() <= limit {
        return (samples, None);
    }
    // stable: equal counts stay in key order
    samples.sort_by_key(|(_, n)| std::cmp::Reverse(*n));
    let rest = samples.split_off(limit);
    let cut = Cut {
        samples: rest.len(),
        tasks: rest.iter().map(|(_, n)| n).sum(),
    };
    (samples, Some(cut))
}

/// What makes two tasks the same sample.
#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct SampleKey {
    site: Option<SpawnSite>,
    chain: Vec<String>,
    state: &'static str,
    name: Option<String>,
}

/// Tasks counted per sample key: one per group of the census and state
/// (the census counted by site, chain id and name), each chain symbolized
/// once; groups whose chains read the same are merged.
fn samples(census: &Census) -> BTreeMap<SampleKey, usize> {
    let mut out = BTreeMap::new();
    for group in &census.groups {
        let chain = group.call_chain();
        for (state, n) in group.states() {
            let key = SampleKey {
                site: group.spawn_site,
                chain: chain.clone(),
                state: state.as_str(),
                name: group.name.as_deref().map(str::to_owned),
            };
            *out.entry(key).or_insert(0) += n;
        }
    }
    out
}

/// Builds the profile's tables, interning strings, functions and locations.
#[derive(Default)]
struct Builder {
    profile: Profile,
    strings: FxHashMap<String, i64>,
    locations: FxHashMap<String, u64>,
}

impl Builder {
    fn string(&mut self, s: &str) -> i64 {
        if let Some(&i) = self.strings.get(s) {
            return i;
        }
        let i = i64::try_from(self.profile.string_table.len()).unwrap_or(i64::MAX);
        self.profile.string_table.push(s.to_owned());
        self.strings.insert(s.to_owned(), i);
        i
    }

    /// The location of one frame, `function at path:line:col` or the spawn
    /// site, made once per distinct frame (one function per location).
    fn location(&mut self, function: &str, file: &str, line: u32) -> u64 {
        let key = format!("{function}\0{file}\0{line}");
        if let Some(&id) = self.locations.get(&key) {
            return id;
        }
        let id = self.profile.location.len() as u64 + 1;
        let (name, filename) = (self.string(function), self.string(file));
        self.profile.function.push(Function {
            id,
            name,
            system_name: name,
            filename,
        });
        self.profile.location.push(Location {
            id,
            line: vec![Line {
                function_id: id,
                line: i64::from(line),
            }],
        });
        self.locations.insert(key, id);
        id
    }

    fn sample(&mut self, key: &SampleKey, n: usize) {
        let mut stack = Vec::with_capacity(key.chain.len() + 1);
        if let Some(site) = key.site {
            let short = site.short_file();
            stack.push(self.location(&format!("spawned at {site}"), &short, site.line()));
        }
        for frame in &key.chain {
            let (function, file, line) = split_frame(frame);
            stack.push(self.location(function, file, line));
        }
        let mut label = vec![self.label("state", key.state)];
        if let Some(name) = &key.name {
            label.push(self.label("name", name));
        }
        self.profile.sample.push(Sample {
            location_id: stack,
            value: vec![i64::try_from(n).unwrap_or(i64::MAX)],
            label,
        });
    }

    /// The one sample for the tasks of the samples left out, and the
    /// comment that says so.
    fn left_out(&mut self, cut: &Cut, kept: usize) {
        let what = format!(
            "{} in {} smaller samples left out (?limit=N for more)",
            count(cut.tasks, "task"),
            cut.samples
        );
        let comment = format!(
            "leakcheck: showing the {kept} largest of {} samples; {what}",
            kept + cut.samples
        );
        let comment = self.string(&comment);
        self.profile.comment.push(comment);
        let stack = vec![self.location(&what, "", 0)];
        let label = vec![self.label("left_out", &cut.samples.to_string())];
        self.profile.sample.push(Sample {
            location_id: stack,
            value: vec![i64::try_from(cut.tasks).unwrap_or(i64::MAX)],
            label,
        });
    }

    fn label(&mut self, key: &str, value: &str) -> Label {
        Label {
            key: self.string(key),
            str: self.string(value),
        }
    }
}

/// `function at path:line:col` → (function, path, line); a frame without a
/// position keeps its whole text as the function.
fn split_frame(frame: &str) -> (&str, &str, u32) {
    let Some((function, at)) = frame.rsplit_once(" at ") else {
        return (frame, "", 0);
    };
    let mut parts = at.rsplitn(3, ':');
    let (last, middle, first) = (parts.next(), parts.next(), parts.next());
    let number = |s: Option<&str>| s.and_then(|s| s.parse::<u32>().ok());
    match (first, number(middle), number(last)) {
        (Some(file), Some(line), Some(_col)) => (function, file, line),
        _ => match (middle, number(last)) {
            (Some(file), Some(line)) => (function, file, line),
            _ => (frame, "", 0),
        },
    }
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), flate2::Compression::default());
    let _ = encoder.write_all(bytes);
    encoder.finish().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(name: &str) -> SampleKey {
        SampleKey {
            site: None,
            chain: Vec::new(),
            state: "idle",
            name: Some(name.to_owned()),
        }
    }

    #[test]
    fn only_the_largest_samples_are_kept() {
        let samples: BTreeMap<SampleKey, usize> =
            [("a", 1), ("b", 5), ("c", 2), ("d", 5), ("e", 1)]
                .into_iter()
                .map(|(name, n)| (key(name), n))
                .collect();
        let (kept, cut) = largest(samples, 3);
        let names: Vec<(&str, usize)> = kept
            .iter()
            .map(|(k, n)| (k.name.as_deref().unwrap(), *n))
            .collect();
        assert_eq!(names, [("b", 5), ("d", 5), ("c", 2)]);
        assert_eq!(
            cut,
            Some(Cut {
                samples: 2,
                tasks: 2
            })
        );
        let one: BTreeMap<SampleKey, usize> = [(key("a"), 1)].into_iter().collect();
        assert_eq!(largest(one, 1).1, None, "nothing cut at the limit");
    }

    #[test]
    fn frames_split_into_function_file_and_line() {
        assert_eq!(
            split_frame("app::run::{{closure}} at src/run.rs:12:5"),
            ("app::run::{{closure}}", "src/run.rs", 12)
        );
        assert_eq!(
            split_frame("app::run at src/run.rs:12"),
            ("app::run", "src/run.rs", 12)
        );
        assert_eq!(split_frame("app::run"), ("app::run", "", 0));
    }
}
