//! Checks in a plain `#[tokio::test]`: no tracker and no task hooks, so the
//! test's tasks are the ones tokio's tracing spans show it spawned.

use std::panic::Location;
use std::path::PathBuf;
use std::time::Instant;

use tokio::runtime::Handle;

use crate::fail::fail_at;
use crate::layer::tasks;
use crate::options::Options;
use crate::report::{Report, ReportKind};
use crate::settings::Settings;
use crate::snapshot::TaskInfo;
use crate::spans::{Hidden, Scope};
use crate::wait::{settle, Look};

/// What a plain check found still alive.
struct Found {
    leaked: Vec<TaskInfo>,
    /// Alive on the test's runtime, but never seen spawn.
    unseen: usize,
    /// Task ids that went by unseen since the test built a subscriber.
    hidden: Hidden,
}

/// Waits out the grace for the calling test's tasks, then reports them.
pub(crate) async fn check(at: &'static Location<'static>) -> Result<(), Report> {
    let options = options().unwrap_or_else(|e| fail_at(at, e));
    let Some(owner) = crate::owner::of_thread() else {
        fail_at(
            at,
            "leakcheck: the check ran while its thread was exiting".into(),
        )
    };
    let grace = options.grace_duration();
    let handle = Handle::try_current().ok();
    let here = crate::spans::this_runtime();
    let blind = crate::spans::blind_here();
    // a check called from a task of the test's is not its own leak
    let me = tokio::task::try_id().map(crate::mode::id_u64);
    let hidden_below = hidden_below(owner.id);
    let _waiting = tasks::Waiting::new();
    let look = || {
        let scope = Scope {
            owner: Some(owner.id),
            baseline: 0,
            this_runtime: here,
            blocking: true,
        };
        let leaked = crate::spans::leaked(&scope, |_| false);
        let leaked: Vec<TaskInfo> = leaked.into_iter().filter(|t| Some(t.id) != me).collect();
        let leaked = without_ignored(&options, leaked);
        let unseen = handle
            .as_ref()
            .map_or(0, |h| crate::spans::unseen_on(h, owner.id));
        let hidden = hidden(owner.id, hidden_below);
        let clean = leaked.is_empty() && unseen == 0 && hidden.counted(blind.is_some()) == 0;
        let found = Found {
            leaked,
            unseen,
            hidden,
        };
        // tasks never seen end without an event: look again on a timer
        Look {
            found,
            clean,
            poll: unseen > 0,
        }
    };
    let ring = || tasks::ended().notify_waiters();
    let mut found = settle(Instant::now() + grace, &[tasks::ended()], ring, look).await;
    crate::trace::attach(&mut found.leaked).await;
    let name = match test_target() {
        Some(target) => format!("{target}::{}", owner.name),
        None => owner.name.to_string(),
    };
    let report = report(name, ReportKind::Check { at }, grace, found, blind);
    match report.is_failure() {
        true => Err(report),
        false => Ok(()),
    }
}

/// The report of what a check found, with a note on what it could not see.
fn report(
    name: String,
    kind: ReportKind,
    grace: std::time::Duration,
    found: Found,
    blind: Option<&'static str>,
) -> Report {
    let counted = found.hidden.counted(blind.is_some());
    let mut report = Report {
        name,
        kind,
        grace,
        groups: crate::tree::build(found.leaked),
        unidentified: found.unseen.max(counted),
        out_of_sight: counted > found.unseen,
        ..Report::default()
    };
    if counted > 0 {
        report.notes.push(hidden_note(&found.hidden, blind));
    } else if found.unseen > 0 {
        let why = blind.unwrap_or(
            "they were spawned where tokio's spans did not reach leakcheck: on a thread whose \
             tracing subscriber lacks leakcheck's layer (one set with `set_default` or \
             `with_default`); add `.with(leakcheck::layer())` to it",
        );
        report
            .notes
            .push(format!("leakcheck did not see those tasks spawn: {why}"));
    }
    report.gather_notes();
    if report.is_failure() && counted == 0 && found.hidden.count > 0 {
        // not evidence against this test, but worth knowing beside a failure
        report.notes.push(shared_note(&found.hidden));
    }
    report
}

/// Where the test built its subscribers: " at <site>; <site>", or "".
fn built_at(hidden: &Hidden) -> String {
    let sites: Vec<String> = hidden
        .built_at
        .iter()
        .filter_map(|&chain| {
            let frames = crate::chain::resolve(chain);
            let first = frames.iter().find(|f| !f.is_internal())?;
            Some(first.to_string())
        })
        .collect();
    match sites.as_slice() {
        [] => String::new(),
        sites => format!(" at {}", sites.join("; ")),
    }
}

/// The note of a check that fails on task ids that went by unseen.
fn hidden_note(hidden: &Hidden, blind: Option<&'static str>) -> String {
    let n = hidden.count;
    let ids = crate::text::count(n, "task id");
    let (those, they) = match n {
        1 => ("that task", "it"),
        _ => ("those tasks", "them"),
    };
    let whose = match (hidden.others_built, blind) {
        (true, Some(why)) => format!(
            " This check ran where leakcheck cannot see ({why}), so it fails; other tests built \
             tracing subscribers meanwhile too, and some of those ids may be theirs."
        ),
        (false, Some(why)) => format!(" This check, too, ran where leakcheck cannot see: {why}."),
        _ => String::new(),
    };
    format!(
        "leakcheck did not see {} spawn: a tracing subscriber built{} (by this test) was a \
         thread's default while {ids} went by unseen. One without leakcheck's layer hides \
         tokio's task spans, so leakcheck cannot tell whether {those} still run{} (on a LocalSet \
         or another runtime it cannot even count {they}); add `.with(leakcheck::layer())` to \
         that subscriber.{whose}",
        crate::text::count(n, "task"),
        built_at(hidden),
        if n == 1 { "s" } else { "" },
    )
}

/// The note of a failing check on task ids that went by unseen, but that
/// other tests may have hidden.
fn shared_note(hidden: &Hidden) -> String {
    format!(
        "{} went by unseen since this test built a tracing subscriber{}, but other tests built \
         subscribers meanwhile, so leakcheck cannot tell whose spawns they were and does not \
         count them here. A subscriber without leakcheck's layer hides tokio's task spans \
         while it is a thread's default: if this test's lacks it, add \
         `.with(leakcheck::layer())`.",
        crate::text::count(hidden.count, "task id"),
        built_at(hidden),
    )
}

/// Where counting hidden spawns stops (see `process::hidden`): a task id
/// made now, when the test built a dispatcher of its own (the ids below it
/// were all made before this check). Never waits: any runtime, or none.
#[cfg(all(feature = "process", target_os = "linux"))]
fn hidden_below(owner: u64) -> u64 {
    use crate::process::hidden;
    match hidden::built_by(owner) {
        true => hidden::fresh_id(),
        false => 0,
    }
}

#[cfg(not(all(feature = "process", target_os = "linux")))]
fn hidden_below(_: u64) -> u64 {
    0
}

/// What went by unseen for the test `owner` below task id `below`.
#[cfg(all(feature = "process", target_os = "linux"))]
fn hidden(owner: u64, below: u64) -> Hidden {
    crate::process::hidden::hidden(owner, below).unwrap_or_default()
}

#[cfg(not(all(feature = "process", target_os = "linux")))]
fn hidden(_: u64, _: u64) -> Hidden {
    Hidden::default()
}

fn without_ignored(options: &Options, leaked: Vec<TaskInfo>) -> Vec<TaskInfo> {
    let ignored = options.ignore().subtree_matches(&leaked, leaked.iter());
    leaked
        .into_iter()
        .filter(|t| !ignored.contains(&t.id))
        .collect()
}

/// The crate's settings, found from the running test binary.
fn options() -> Result<Options, String> {
    let dir = std::env::var_os("CARGO_MANIFEST_DIR").map(PathBuf::from);
    let target = test_target();
    Ok(Settings::load(dir.as_deref(), target.as_deref())?.apply(Options::new()))
}

/// The test target this binary was built from: its file name without
/// cargo's `-<hash>` suffix.
fn test_target() -> Option<String> {
    let exe = std::env::current_exe().ok()?;
    let stem = exe.file_stem()?.to_str()?;
    let target = match stem.rsplit_once('-') {
        Some((name, hash)) if hash.len() == 16 && hash.bytes().all(|b| b.is_ascii_hexdigit()) => {
            name
        }
        _ => stem,
    };
    Some(target.to_owned())
}
