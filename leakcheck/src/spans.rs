//! A test's tasks as tokio's tracing spans show them: the tasks no task hook
//! sees (on a `LocalSet`, on another runtime), and every task of a plain
//! `#[tokio::test]`, which has no tracker at all.

use tokio::runtime::Handle;

use crate::layer::tasks::{self, Kind, Seen};
use crate::snapshot::TaskInfo;

/// What a check over spans looks at.
pub(crate) struct Scope {
    /// Only tasks of this owner (`None`: every task).
    pub(crate) owner: Option<u64>,
    /// Only tasks spawned after this one.
    pub(crate) baseline: u64,
    /// The id of the checking code's runtime.
    pub(crate) this_runtime: Option<u64>,
    /// `spawn_blocking` work too (a tracker counts it by itself).
    pub(crate) blocking: bool,
}

/// The live tasks in `scope` that `known` does not already cover.
pub(crate) fn leaked(scope: &Scope, known: impl Fn(u64) -> bool) -> Vec<TaskInfo> {
    let owned = |s: &Seen| match scope.owner {
        Some(owner) => s.owner.as_ref().is_some_and(|o| o.id == owner),
        None => true,
    };
    tasks::live()
        .into_iter()
        .filter(|s| owned(s) && s.id > scope.baseline && !known(s.id))
        .filter(|s| counts(s) && (scope.blocking || s.kind != Kind::Blocking))
        .map(|s| crate::snapshot::from_seen(&s, scope.this_runtime, scope.baseline))
        .collect()
}

/// Whether a span stands for work a test can leak: tasks, `LocalSet`
/// tasks, and `spawn_blocking` work the test's code started (not the
/// runtime's own worker threads, which tokio also runs as blocking tasks).
fn counts(seen: &Seen) -> bool {
    match seen.kind {
        Kind::Task | Kind::Local => true,
        Kind::BlockOn => false,
        Kind::Blocking => seen
            .site
            .is_some_and(|s| crate::paths::dependency_crate(&s.short_file()) != Some("tokio")),
    }
}

/// The id of the runtime the calling code runs on.
pub(crate) fn this_runtime() -> Option<u64> {
    tasks::current_runtime()
}

/// Tasks alive on `handle`'s runtime that no span showed: spawned where
/// leakcheck cannot see (a thread whose tracing default lacks its layer),
/// or by a build where tokio emits no spans.
///
/// tokio counts the runtime's live tasks; the ones the spans showed on it
/// are subtracted: those polled there, and those of the test `owner` not
/// polled yet (a not-yet-polled task of another test may be on any
/// runtime, so it must not hide an unseen one here; one of this test's on
/// another runtime is reported by the check anyway).
pub(crate) fn unseen_on(handle: &Handle, owner: u64) -> usize {
    let alive = crate::metrics::read(handle).alive;
    let here = this_runtime();
    let seen = tasks::live()
        .iter()
        .filter(|s| s.kind == Kind::Task)
        .filter(|s| match s.home().and_then(|h| h.runtime) {
            Some(theirs) => Some(theirs) == here,
            None => s.owner.as_ref().is_some_and(|o| o.id == owner),
        })
        .count();
    alive.saturating_sub(seen)
}

/// Why leakcheck cannot see tasks spawned on this thread, if it cannot.
pub(crate) fn blind_here() -> Option<&'static str> {
    if !cfg!(tokio_unstable) {
        return Some(
            "tokio emits task spans only with `--cfg tokio_unstable`: add it to `[build] \
             rustflags` in .cargo/config.toml, as leakcheck's README shows",
        );
    }
    let fed = tracing::dispatcher::get_default(|d| d.is::<crate::layer::TaskLayer>());
    let why = match cfg!(feature = "process") {
        // the tee is every thread's default: only a scoped one displaces it
        true => {
            "this thread's tracing subscriber does not include leakcheck's layer (a subscriber \
             set with `set_default`/`with_default`): add `.with(leakcheck::layer())` to it"
        }
        false => {
            "this thread's tracing subscriber does not include leakcheck's layer (a subscriber \
             set with `set_default`/`with_default`, or a global one set without it): add \
             `.with(leakcheck::layer())` to it, or enable leakcheck's `process` feature"
        }
    };
    (!fed).then_some(why)
}

/// Task ids that went by out of leakcheck's sight since a test first built
/// a tracing subscriber of its own: tasks spawned while a subscriber
/// without leakcheck's layer was a thread's default. The `process`
/// feature counts them (`process::hidden`); a plain check reports them.
#[derive(Debug, Default)]
pub(crate) struct Hidden {
    /// The ids, some of which may be of tasks that ended since.
    pub(crate) count: usize,
    /// Where the test built its subscribers, as call chains.
    pub(crate) built_at: Vec<crate::chain::ChainId>,
    /// Other tests built subscribers meanwhile (or one built earlier on a
    /// thread that still ran): the ids may be theirs.
    pub(crate) others_built: bool,
}

impl Hidden {
    /// The ids a check fails on: all of them when they can only be the
    /// test's, or when the check itself runs where leakcheck cannot see
    /// (`blind`); none when other tests may have hidden them.
    pub(crate) fn counted(&self, blind: bool) -> usize {
        match self.others_built && !blind {
            true => 0,
            false => self.count,
        }
    }
}
