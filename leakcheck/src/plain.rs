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
use crate::spans::Scope;
use crate::wait::{settle, Look};

/// What a plain check found still alive.
struct Found {
    leaked: Vec<TaskInfo>,
    /// Alive on the test's runtime, but never seen spawn.
    unseen: usize,
    /// Spawned out of leakcheck's sight under a subscriber the test set.
    hidden: Hidden,
}

/// Tasks the test spawned while a tracing subscriber of its own without
/// leakcheck's layer was the default (the `process` feature counts them).
#[derive(Default)]
struct Hidden {
    count: usize,
    /// Where the test built its subscribers, as call chains.
    built_at: Vec<crate::chain::ChainId>,
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
    let me: Option<u64> = tokio::task::try_id().and_then(|id| id.to_string().parse().ok());
    let hidden_below = hidden_below(owner.id, handle.as_ref()).await;
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
        let clean = leaked.is_empty() && unseen == 0 && hidden.count == 0;
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
    let mut report = Report {
        name,
        kind,
        grace,
        groups: crate::tree::build(found.leaked),
        unidentified: found.unseen.max(found.hidden.count),
        ..Report::default()
    };
    if found.hidden.count > 0 {
        let n = found.hidden.count;
        let sites: Vec<String> = found
            .hidden
            .built_at
            .iter()
            .filter_map(|&chain| {
                let frames = crate::chain::resolve(chain);
                let first = frames.iter().find(|f| !f.is_internal())?;
                Some(first.to_string())
            })
            .collect();
        let built = match sites.as_slice() {
            [] => String::new(),
            sites => format!(" (built at {})", sites.join("; ")),
        };
        report.notes.push(format!(
            "leakcheck did not see {} spawn: this test set a tracing subscriber of its own{built} \
             as a thread's default (`set_default`, `with_default`), and one without \
             leakcheck's layer hides tokio's task spans, so leakcheck cannot tell whether \
             {} still running (on a LocalSet or another runtime it cannot even count {}); \
             add `.with(leakcheck::layer())` to that subscriber. (A task spawned out of sight \
             by a test running at the same time is counted here too.)",
            crate::text::count(n, "task"),
            if n == 1 { "it is" } else { "they are" },
            if n == 1 { "it" } else { "them" },
        ));
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
    report
}

/// Where counting hidden spawns stops (see `process::hidden`): past the id
/// of a task spawned now, when the test built a dispatcher of its own
/// (the ids below it were all made before this check).
#[cfg(all(feature = "process", target_os = "linux"))]
async fn hidden_below(owner: u64, handle: Option<&Handle>) -> u64 {
    use crate::process::hidden;
    if !hidden::built_by(owner) {
        return 0;
    }
    match handle {
        Some(handle) => {
            let probe = handle.spawn(async {});
            let below = crate::process::task_number(probe.id());
            let _ = probe.await;
            below
        }
        None => hidden::max_seen() + 1,
    }
}

#[cfg(not(all(feature = "process", target_os = "linux")))]
async fn hidden_below(_: u64, _: Option<&Handle>) -> u64 {
    0
}

/// What the test `owner` hid below task id `below`.
#[cfg(all(feature = "process", target_os = "linux"))]
fn hidden(owner: u64, below: u64) -> Hidden {
    match crate::process::hidden::hidden(owner, below) {
        Some(found) => Hidden {
            count: found.count,
            built_at: found.built_at,
        },
        None => Hidden::default(),
    }
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
