//! Where a leaked task waits: its await tree, from tokio's task dumps.
//!
//! current_thread runtimes are dumped from inside (the check runs in the
//! test body), with a real-time bound. multi_thread runtimes are never
//! dumped: the dump makes every worker meet at a barrier with a 250 ms
//! timeout, and a worker that misses it (busy in a poll, or just not
//! scheduled by a loaded OS in time) is left stuck. Measured here: with both
//! workers idle, on a loaded 2-core machine, 3 test runs in 24 had a dump
//! time out and left an aborted task uncancelled, which would fail a clean
//! test. The report says so, once, and how to get the trace instead.

#[cfg(all(tokio_unstable, feature = "taskdump", target_os = "linux"))]
pub(crate) use dump::attach;

/// Without task dumps there is nothing to attach.
#[cfg(not(all(tokio_unstable, feature = "taskdump", target_os = "linux")))]
pub(crate) async fn attach(_: &mut [crate::TaskInfo]) {}

#[cfg(all(tokio_unstable, feature = "taskdump", target_os = "linux"))]
mod dump {
    use std::collections::{BTreeMap, HashMap};
    use std::time::{Duration, Instant};

    use tokio::runtime::{Handle, RuntimeFlavor};

    use crate::frame::Frame;
    use crate::snapshot::{AwaitNode, AwaitTrace, Home, TaskInfo, TaskState};

    /// The longest a dump may take before the report gives up on traces.
    const DUMP_TIMEOUT: Duration = Duration::from_secs(2);

    /// Dumps taken at most, while some idle task still has no frames.
    const DUMP_ATTEMPTS: usize = 3;

    /// Why multi_thread reports have no await traces.
    const MULTI_THREAD: &str = "tokio's task dump is not taken on multi_thread runtimes: a \
        worker that misses the dump's 250ms barrier is left stuck, which could hang the runtime \
        or keep an aborted task alive; run the test with flavor = \"current_thread\" to see \
        where each task waits";

    /// Why a binary without debug info shows no await trees.
    const NO_DEBUG_INFO: &str = "this binary has no debug info, so the dump's frames (inlined \
        into tokio's) cannot be told apart; build the tests with \
        `debug = \"line-tables-only\"` or more to see where each task waits";

    /// Attaches an await trace (or the reason there is none) to each task.
    pub(crate) async fn attach(tasks: &mut [TaskInfo]) {
        // a dump covers the runtime it is taken on, and only its owned tasks
        let (here, elsewhere): (Vec<_>, Vec<_>) =
            tasks.iter_mut().partition(|t| t.home == Home::ThisRuntime);
        for task in elsewhere {
            task.waiting = AwaitTrace::Unavailable(format!(
                "it lives {}, and tokio's task dump covers the tasks of the runtime it is \
                 taken on",
                task.home
            ));
        }
        attach_here(here).await;
    }

    async fn attach_here(mut tasks: Vec<&mut TaskInfo>) {
        if tasks.is_empty() {
            return;
        }
        let Ok(handle) = Handle::try_current() else {
            return set_all(
                &mut tasks,
                "the check ran outside the runtime, which a dump needs",
            );
        };
        if handle.runtime_flavor() == RuntimeFlavor::MultiThread {
            return set_all(&mut tasks, MULTI_THREAD);
        }
        let Some(mut traced) = dump(&handle, &tasks).await else {
            let why = "the task dump did not finish within 2s and was abandoned";
            return set_all(&mut tasks, why);
        };
        for task in tasks {
            task.waiting = match traced.remove(&task.id) {
                Some(trace) => trace,
                None if task.state == TaskState::Running => {
                    AwaitTrace::Unavailable("it was running; tokio traces idle tasks only".into())
                }
                None => AwaitTrace::Unavailable("it was not in the task dump".into()),
            };
        }
    }

    /// Dumps until every idle leaked task has frames (a task that was
    /// scheduled when tokio traced it can come back empty), or the attempts
    /// or time run out. `None` if no dump finished.
    async fn dump(handle: &Handle, tasks: &[&mut TaskInfo]) -> Option<HashMap<u64, AwaitTrace>> {
        let deadline = Instant::now() + DUMP_TIMEOUT;
        let mut traced: HashMap<u64, AwaitTrace> = HashMap::new();
        let mut dumped_any = false;
        let has_tree = |t: Option<&AwaitTrace>| matches!(t, Some(AwaitTrace::Tree(_)));
        for _ in 0..DUMP_ATTEMPTS {
            let mut dump = std::pin::pin!(handle.dump());
            let Some(dump) = crate::wait::until(deadline, dump.as_mut()).await else {
                break;
            };
            dumped_any = true;
            for task in dump.tasks().iter() {
                let id = crate::mode::id_u64(task.id());
                // symbolizing costs milliseconds: only leaked tasks still without frames
                if tasks.iter().any(|t| t.id == id) && !has_tree(traced.get(&id)) {
                    traced.insert(id, tree(task.trace()));
                }
            }
            let complete = tasks
                .iter()
                .all(|t| t.state == TaskState::Running || has_tree(traced.get(&t.id)));
            if complete {
                break;
            }
        }
        dumped_any.then_some(traced)
    }

    fn set_all(tasks: &mut [&mut TaskInfo], why: &str) {
        for task in tasks {
            task.waiting = AwaitTrace::Unavailable(why.to_owned());
        }
    }

    /// The await tree: one path per backtrace of the trace (one per leaf
    /// future the task waits on), outermost first, merged on common prefixes.
    fn tree(trace: &tokio::runtime::dump::Trace) -> AwaitTrace {
        let mut root = Node::default();
        let (mut frames_seen, mut lines_seen) = (false, false);
        for backtrace in trace.resolve_backtraces() {
            let frames: Vec<Frame> = backtrace
                .frames()
                .flat_map(|f| f.symbols())
                .map(|s| {
                    let name = s.name_demangled().unwrap_or_default();
                    Frame::new(name, s.filename(), s.lineno(), s.colno())
                })
                .collect();
            frames_seen |= !frames.is_empty();
            lines_seen |= frames.iter().any(|f| f.position.is_some());
            let path = user_path(&frames);
            if !path.is_empty() {
                root.insert(&path);
            }
        }
        match (root.children.is_empty(), frames_seen && !lines_seen) {
            (false, _) => AwaitTrace::Tree(root.into_nodes()),
            (true, true) => AwaitTrace::Unavailable(NO_DEBUG_INFO.into()),
            (true, false) => AwaitTrace::Opaque,
        }
    }

    /// The user's frames of one backtrace (innermost first), outermost
    /// first, ending with the tokio future they wait on.
    fn user_path(frames: &[Frame]) -> Vec<Frame> {
        let innermost_user = frames.iter().position(|f| !f.is_internal());
        // what the innermost user frame awaits: the outermost tokio frame
        // below it that is not plumbing (select!, join!, poll_fn, trace)
        let below = &frames[..innermost_user.unwrap_or(frames.len())];
        let leaf = below.iter().rev().find(|f| !is_plumbing(f));
        let Some(innermost_user) = innermost_user else {
            // `tokio::spawn(sleep(..))`, or an optimized build that inlined the
            // task's own async fn into tokio's task root, which the dump cuts off.
            let name = |f: &Frame| format!("{} ({INLINED_AWAY})", leaf_name(f));
            return leaf
                .map(|f| Frame::new(&name(f), None, None, None))
                .into_iter()
                .collect();
        };
        let mut path: Vec<Frame> = Vec::new();
        for frame in frames[innermost_user..].iter().filter(|f| !f.is_internal()) {
            if path.last() != Some(frame) {
                path.push(frame.clone());
            }
        }
        path.reverse();
        path.extend(leaf.map(|f| Frame::new(&leaf_name(f), None, None, None)));
        path
    }

    /// Said of a leaf with no user frame above it.
    const INLINED_AWAY: &str = "no frames of your own above it: the task is a tokio future \
        spawned directly, or the optimizer inlined your frames into tokio's";

    /// Frames between a user's await and the tokio future it waits on that
    /// say nothing about what it waits on.
    fn is_plumbing(frame: &Frame) -> bool {
        let f = frame.function.trim_start_matches('<');
        let file = frame
            .position
            .as_ref()
            .map_or("", |(file, ..)| file.as_str());
        f.starts_with("core::")
            || f.starts_with("std::")
            || f.starts_with("tokio::future::")
            || f.contains("::trace::")
            || file.contains("/src/macros/")
            || file.contains("/src/future/")
    }

    /// The tokio future a task waits on, named so it can be found: a short
    /// name (line tables only keep those for inlined frames) with its file.
    fn leaf_name(frame: &Frame) -> String {
        let name = future_name(&frame.function);
        let path_qualified = name
            .split('<')
            .next()
            .is_some_and(|head| head.contains("::"));
        match (&frame.position, path_qualified) {
            (Some((file, line, _)), false) => format!("{name} at {file}:{line}"),
            _ => name,
        }
    }

    /// `<tokio::time::sleep::Sleep as Future>::poll` → `tokio::time::sleep::Sleep`;
    /// `…::Receiver<T>::recv::{{closure}}` → `…::Receiver<T>::recv`.
    fn future_name(function: &str) -> String {
        let f = function.trim_end_matches("::{{closure}}");
        match f.strip_prefix('<').and_then(|rest| rest.split_once(" as ")) {
            Some((ty, _)) => ty.to_owned(),
            None => f.to_owned(),
        }
    }

    /// A tree under construction; children keyed so their order is stable:
    /// by source position, then name.
    #[derive(Default)]
    struct Node {
        children: BTreeMap<(String, u32, u32, String), (String, Node)>,
    }

    impl Node {
        fn insert(&mut self, path: &[Frame]) {
            let Some((first, rest)) = path.split_first() else {
                return;
            };
            let key = order_key(first);
            let (_, child) = self
                .children
                .entry(key)
                .or_insert_with(|| (first.to_string(), Node::default()));
            child.insert(rest);
        }

        fn into_nodes(self) -> Vec<AwaitNode> {
            self.children
                .into_values()
                .map(|(frame, node)| AwaitNode {
                    frame,
                    children: node.into_nodes(),
                })
                .collect()
        }
    }

    /// (file, line, column, function) of a frame.
    fn order_key(frame: &Frame) -> (String, u32, u32, String) {
        let (file, line, col) = match &frame.position {
            Some((file, line, col)) => (file.clone(), *line, col.unwrap_or(0)),
            None => (String::new(), 0, 0),
        };
        (file, line, col, frame.function.clone())
    }
}
