//! [`Dump`]: the JSON document of `GET tasks?format=json` (schema version
//! 1), also what `leakcheck save` writes and [`growth`](super::growth) reads.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// The schema version this build writes and reads.
pub(crate) const VERSION: u32 = 1;

/// Live tasks grouped by spawn site and call chain, and with `debug=2`
/// every task: the body of `GET tasks?format=json`.
///
/// The schema is described in the [module docs](super#json-schema-version-1).
/// Lists longer than the request's `limit` are cut: compare `groups.len()`
/// with `total_groups` (and `tasks` with `total_tasks`).
///
/// ```
/// let text = r#"{"version": 1, "capture": "call_chains", "per_task": true,
///     "total_tasks": 3, "total_groups": 1, "limit": 10000,
///     "groups": [{"count": 3, "spawn_site": "src/main.rs:10:5",
///                 "call_chain": [], "states": {"idle": 3}, "oldest_ms": 1200}]}"#;
/// let dump = leakcheck::endpoint::Dump::parse(text).unwrap();
/// assert_eq!(dump.groups[0].count, 3);
/// assert!(dump.tasks.is_none(), "tasks come with debug=2 only");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Dump {
    /// Always 1 for this schema.
    pub version: u32,
    /// What the tracker captures per task: `spawn_sites`, `polls` or
    /// `call_chains`.
    pub capture: String,
    /// Whether tasks are known one by one. False in a build without
    /// `--cfg tokio_unstable`, where every list is empty.
    pub per_task: bool,
    /// Live tasks at the moment of the snapshot.
    pub total_tasks: usize,
    /// Groups those tasks form.
    pub total_groups: usize,
    /// The most groups (and tasks) listed.
    pub limit: usize,
    /// The groups, largest first, then by spawn site and call chain.
    pub groups: Vec<Group>,
    /// Every task, by id (only with `debug=2`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tasks: Option<Vec<Task>>,
}

/// Live tasks spawned at one site through one call chain.
///
/// ```
/// let text = r#"{"count": 2, "spawn_site": null, "call_chain": [],
///     "states": {"idle": 1, "running": 1}, "oldest_ms": 5}"#;
/// let group: leakcheck::endpoint::Group = serde_json::from_str(text).unwrap();
/// assert_eq!(group.states["running"], 1);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Group {
    /// How many live tasks.
    pub count: usize,
    /// `path:line:col`; null when unknown.
    pub spawn_site: Option<String>,
    /// `function at path:line:col` lines, innermost first; empty when not
    /// captured.
    pub call_chain: Vec<String>,
    /// Tasks per state ([`TaskState::as_str`](crate::TaskState::as_str)
    /// names); states with no task are left out.
    pub states: BTreeMap<String, usize>,
    /// Age of the oldest task, in milliseconds.
    pub oldest_ms: u64,
}

/// One live task, as `debug=2` lists it.
///
/// ```
/// let text = r#"{"id": 7, "name": null, "state": "idle", "age_ms": 1500,
///     "idle_ms": 1400, "busy_ms": 0, "polls": 1,
///     "parent": {"kind": "task", "id": 3, "spawn_site": "src/lib.rs:4:9", "alive": true},
///     "spawn_site": "src/lib.rs:20:5", "call_chain": []}"#;
/// let task: leakcheck::endpoint::Task = serde_json::from_str(text).unwrap();
/// assert_eq!(task.parent.id, Some(3));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Task {
    /// tokio's task id.
    pub id: u64,
    /// Its name (`tokio::task::Builder::name`, with the `tracing` feature).
    pub name: Option<String>,
    /// [`TaskState::as_str`](crate::TaskState::as_str).
    pub state: String,
    /// Time since it was spawned, in milliseconds.
    pub age_ms: u64,
    /// Time since its last poll ended; null when polls are not captured.
    pub idle_ms: Option<u64>,
    /// Time spent inside its polls; null when polls are not captured.
    pub busy_ms: Option<u64>,
    /// Polls so far; null when polls are not captured.
    pub polls: Option<u64>,
    /// Who spawned it.
    pub parent: TaskParent,
    /// `path:line:col`; null when unknown.
    pub spawn_site: Option<String>,
    /// As in [`Group::call_chain`].
    pub call_chain: Vec<String>,
}

/// Who spawned a [`Task`].
///
/// ```
/// let text = r#"{"kind": "outside", "id": null, "spawn_site": null, "alive": null}"#;
/// let parent: leakcheck::endpoint::TaskParent = serde_json::from_str(text).unwrap();
/// assert_eq!(parent.kind, "outside");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TaskParent {
    /// `task`, `test_body` (a `#[leakcheck::test]` body) or `outside`
    /// (code outside any task of the runtime, or unknown).
    pub kind: String,
    /// The parent task's id, for `task`.
    pub id: Option<u64>,
    /// The parent task's spawn site, for `task`.
    pub spawn_site: Option<String>,
    /// Whether the parent task is still alive, for `task`.
    pub alive: Option<bool>,
}

/// Why a saved [`Dump`] could not be read.
///
/// ```
/// let err = leakcheck::endpoint::Dump::parse(r#"{"version": 9}"#).unwrap_err();
/// assert!(err.to_string().contains("version 9"), "{err}");
/// ```
#[derive(Debug)]
pub struct ParseError(String);

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ParseError {}

impl Dump {
    /// Reads a dump saved from `GET tasks?format=json` (or by `leakcheck
    /// save`), checking its schema version first.
    ///
    /// ```
    /// let err = leakcheck::endpoint::Dump::parse("not json").unwrap_err();
    /// assert!(err.to_string().starts_with("not a leakcheck task dump"), "{err}");
    /// ```
    pub fn parse(text: &str) -> Result<Dump, ParseError> {
        #[derive(Deserialize)]
        struct Versioned {
            version: u32,
        }
        let head: Versioned = serde_json::from_str(text).map_err(|e| {
            ParseError(format!(
                "not a leakcheck task dump (JSON with a version): {e}"
            ))
        })?;
        if head.version != VERSION {
            return Err(ParseError(format!(
                "a task dump of schema version {}, but this leakcheck reads version {VERSION}",
                head.version
            )));
        }
        serde_json::from_str(text).map_err(|e| {
            ParseError(format!(
                "not a leakcheck task dump of version {VERSION}: {e}"
            ))
        })
    }

    /// The dump as pretty-printed JSON, as `GET tasks?format=json` serves it.
    ///
    /// ```
    /// let text = r#"{"version": 1, "capture": "polls", "per_task": true, "total_tasks": 0,
    ///     "total_groups": 0, "limit": 10, "groups": []}"#;
    /// let dump = leakcheck::endpoint::Dump::parse(text).unwrap();
    /// assert_eq!(leakcheck::endpoint::Dump::parse(&dump.to_json()).unwrap(), dump);
    /// ```
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a dump is plain data")
    }

    /// Whether some groups (or tasks) were left out by the limit.
    pub(crate) fn is_cut(&self) -> bool {
        self.groups.len() < self.total_groups
    }
}
