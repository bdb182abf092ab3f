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
    let _waiting = tasks::Waiting::new();
    let look = || {
        let scope = Scope {
            owner: Some(owner.id),
            baseline: 0,
            this_runtime: here,
            blocking: true,
        };
        let leaked = crate::spans::leaked(&scope, |_| false);
        let leaked = without_ignored(&options, leaked);
        let unseen = handle.as_ref().map_or(0, crate::spans::unseen_on);
        let clean = leaked.is_empty() && unseen == 0;
        let found = Found { leaked, unseen };
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
    let mut report = Report {
        name,
        kind: ReportKind::Check { at },
        grace,
        groups: crate::tree::build(found.leaked),
        unidentified: found.unseen,
        ..Report::default()
    };
    if found.unseen > 0 {
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
    match report.is_failure() {
        true => Err(report),
        false => Ok(()),
    }
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
