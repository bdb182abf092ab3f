//! Where a leaked task waits: its await chain, from tokio's task dumps.
//!
//! current_thread runtimes are dumped from inside (the check runs in the
//! test body). A multi_thread dump makes every worker meet at a barrier; a
//! worker stuck in a long poll misses it and can leave the runtime wedged
//! (tokio#7478, `shared/notes/tokio-facts.md` §3). So a multi_thread dump
//! is taken only when the poll hooks show no task mid-poll, and abandoned
//! if it does not finish in time; the report then says why there is no trace.

use std::time::Duration;

#[cfg(all(tokio_unstable, feature = "taskdump", target_os = "linux"))]
use crate::snapshot::AwaitTrace;
use crate::snapshot::TaskInfo;

/// The longest a dump may take before the report gives up on traces.
#[cfg(all(tokio_unstable, feature = "taskdump", target_os = "linux"))]
const DUMP_TIMEOUT: Duration = Duration::from_secs(2);

/// Attaches an await trace (or the reason there is none) to each task.
#[cfg(all(tokio_unstable, feature = "taskdump", target_os = "linux"))]
pub(crate) async fn attach(tracker: &crate::Tracker, tasks: &mut [TaskInfo]) {
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
        if let Some(why) = busy_worker(tracker) {
            return set_all(tasks, &why);
        }
    }
    let Some(dump) = with_timeout(tracker, handle.dump()).await else {
        return set_all(
            tasks,
            "the task dump did not finish within 2s and was abandoned",
        );
    };
    let mut traces: std::collections::HashMap<u64, &tokio::runtime::dump::Trace> = dump
        .tasks()
        .iter()
        .map(|t| (crate::hooks::id_u64(t.id()), t.trace()))
        .collect();
    if traces.is_empty() {
        return set_all(
            tasks,
            "the dump came back empty (taken from outside this runtime?)",
        );
    }
    for task in tasks {
        task.waiting = match traces.remove(&task.id) {
            Some(trace) => frames(trace),
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

/// A reason not to dump a multi_thread runtime: some task is mid-poll (the
/// calling task aside), so a worker may not reach the dump's barrier.
#[cfg(all(tokio_unstable, feature = "taskdump", target_os = "linux"))]
fn busy_worker(tracker: &crate::Tracker) -> Option<String> {
    let me = tokio::task::try_id().map(crate::hooks::id_u64);
    let busy = tracker
        .snapshot()
        .tasks
        .into_iter()
        .filter(|t| t.running && Some(t.id) != me)
        .max_by_key(|t| t.busy)?;
    Some(format!(
        "task {} was mid-poll on a worker; a multi_thread dump waits for every worker \
         and can wedge the runtime when one is busy (tokio#7478), so none was taken",
        busy.id
    ))
}

/// Runs `future` until it finishes or the dump timeout passes (real time).
#[cfg(all(tokio_unstable, feature = "taskdump", target_os = "linux"))]
async fn with_timeout<F: std::future::Future>(
    tracker: &crate::Tracker,
    future: F,
) -> Option<F::Output> {
    let deadline = std::time::Instant::now() + DUMP_TIMEOUT;
    let mut future = std::pin::pin!(future);
    tracker.wait_until(deadline, future.as_mut()).await
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
