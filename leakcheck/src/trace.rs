//! Where a leaked task waits: its await chain, from tokio's task dumps.
//!
//! current_thread runtimes are dumped from inside (the check runs in the
//! test body), with a real-time bound. multi_thread runtimes are never
//! dumped: the dump makes every worker meet at a barrier with a 250 ms
//! timeout, and a worker that misses it (busy in a poll, or just not
//! scheduled by a loaded OS in time) is left stuck (tokio#7478,
//! `shared/notes/tokio-facts.md` §3). Measured here: with both workers
//! idle, on a loaded 2-core machine, 3 test runs in 24 had a dump time out and
//! left an aborted task uncancelled, which would fail a clean test. The
//! report says so and how to get the trace instead.

use std::time::Duration;

#[cfg(all(tokio_unstable, feature = "taskdump", target_os = "linux"))]
use crate::snapshot::AwaitTrace;
use crate::snapshot::TaskInfo;

/// The longest a dump may take before the report gives up on traces.
#[cfg(all(tokio_unstable, feature = "taskdump", target_os = "linux"))]
const DUMP_TIMEOUT: Duration = Duration::from_secs(2);

/// Why multi_thread reports have no await traces.
#[cfg(all(tokio_unstable, feature = "taskdump", target_os = "linux"))]
const MULTI_THREAD: &str = "tokio's task dump is not taken on multi_thread runtimes: a worker \
    that misses the dump's 250ms barrier is left stuck (tokio#7478), which could hang the \
    runtime or keep an aborted task alive; run this test with flavor = \"current_thread\" \
    to see where it waits";

/// Dumps taken at most, while some idle task still has no frames.
#[cfg(all(tokio_unstable, feature = "taskdump", target_os = "linux"))]
const DUMP_ATTEMPTS: usize = 3;

/// Attaches an await trace (or the reason there is none) to each task.
#[cfg(all(tokio_unstable, feature = "taskdump", target_os = "linux"))]
pub(crate) async fn attach(tracker: &crate::Tracker, tasks: &mut [TaskInfo]) {
    use std::collections::HashMap;
    use tokio::runtime::{Handle, RuntimeFlavor};

    if tasks.is_empty() {
        return;
    }
    let Ok(handle) = Handle::try_current() else {
        return set_all(
            tasks,
            "the check ran outside the runtime, which a dump needs",
        );
    };
    if handle.runtime_flavor() == RuntimeFlavor::MultiThread {
        return set_all(tasks, MULTI_THREAD);
    }
    let deadline = std::time::Instant::now() + DUMP_TIMEOUT;
    let mut traced: HashMap<u64, AwaitTrace> = HashMap::new();
    let mut dumped_any = false;
    let has_frames = |t: Option<&AwaitTrace>| matches!(t, Some(AwaitTrace::Frames(_)));
    for _ in 0..DUMP_ATTEMPTS {
        let mut dump = std::pin::pin!(handle.dump());
        let Some(dump) = tracker.wait_until(deadline, dump.as_mut()).await else {
            break;
        };
        dumped_any = true;
        for task in dump.tasks().iter() {
            let id = crate::hooks::id_u64(task.id());
            // symbolizing costs milliseconds: only for leaked tasks still without frames
            let leaked = tasks.iter().any(|t| t.id == id);
            if leaked && !has_frames(traced.get(&id)) {
                traced.insert(id, frames(task.trace()));
            }
        }
        // A task that was scheduled when tokio traced it can come back with
        // no frames; another dump, once it is idle again, has them.
        let complete = tasks
            .iter()
            .all(|t| t.running || has_frames(traced.get(&t.id)));
        if complete {
            break;
        }
    }
    if !dumped_any {
        return set_all(
            tasks,
            "the task dump did not finish within 2s and was abandoned",
        );
    }
    for task in tasks {
        task.waiting = match traced.remove(&task.id) {
            Some(trace) => trace,
            None if task.running => {
                AwaitTrace::Unavailable("it was running; tokio traces idle tasks only".into())
            }
            None => AwaitTrace::Unavailable("it was not in the task dump".into()),
        };
    }
}

#[cfg(not(all(tokio_unstable, feature = "taskdump", target_os = "linux")))]
pub(crate) async fn attach(_: &crate::Tracker, _: &mut [TaskInfo]) {
    let _ = Duration::ZERO;
}

#[cfg(all(tokio_unstable, feature = "taskdump", target_os = "linux"))]
fn set_all(tasks: &mut [TaskInfo], why: &str) {
    for task in tasks {
        task.waiting = AwaitTrace::Unavailable(why.to_owned());
    }
}

/// The await chain, innermost first: the tokio future it waits on, then the
/// user's frames; frames of tokio, std and leakcheck in between are left out.
#[cfg(all(tokio_unstable, feature = "taskdump", target_os = "linux"))]
fn frames(trace: &tokio::runtime::dump::Trace) -> AwaitTrace {
    use crate::chain::Frame;
    let mut lines = Vec::new();
    for backtrace in trace.resolve_backtraces() {
        let mut leaf: Option<Frame> = None;
        let mut user_seen = false;
        for symbol in backtrace.frames().flat_map(|f| f.symbols()) {
            let frame = Frame {
                function: symbol.name_demangled().map(strip_hash).unwrap_or_default(),
                location: symbol.filename().zip(symbol.lineno()).map(|(file, line)| {
                    let file = crate::chain::relative(file).display();
                    match symbol.colno() {
                        Some(col) => format!("{file}:{line}:{col}"),
                        None => format!("{file}:{line}"),
                    }
                }),
            };
            if frame.is_internal() {
                if !user_seen && !frame.function.contains("::trace::") {
                    leaf = Some(frame);
                }
                continue;
            }
            if !user_seen {
                user_seen = true;
                if let Some(leaf) = leaf.take() {
                    lines.push(leaf.function);
                }
            }
            lines.push(frame.to_string());
        }
    }
    if lines.is_empty() {
        AwaitTrace::Opaque
    } else {
        lines.dedup();
        AwaitTrace::Frames(lines)
    }
}

/// `foo::bar::h0123456789abcdef` → `foo::bar`.
#[cfg(all(tokio_unstable, feature = "taskdump", target_os = "linux"))]
fn strip_hash(name: &str) -> String {
    match name.rsplit_once("::h") {
        Some((head, hash)) if hash.len() == 16 && hash.bytes().all(|b| b.is_ascii_hexdigit()) => {
            head.to_owned()
        }
        _ => name.to_owned(),
    }
}
