//! One symbolized stack frame, and which frames are the user's.
//!
//! Reports show the user's frames only. A frame is internal when its
//! function is tokio's, std's, libtest's, tracing's or leakcheck's, or when
//! its source file is: with `debug = "line-tables-only"` inlined frames carry
//! short names (`poll`, `{closure#0}`), so their file is what tells.

use std::fmt;
use std::path::Path;

use crate::paths;

/// One frame: a demangled function name and, with debug info, where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Frame {
    /// Demangled, without the `::h0123…` hash suffix.
    pub(crate) function: String,
    /// The short path, line and column, when the binary has line tables.
    pub(crate) position: Option<(String, u32, Option<u32>)>,
    /// The function without generic arguments, closures and the `<T as
    /// Trait>` wrapper: `bb8::inner::PoolInner<M>::new::{{closure}}` →
    /// `bb8::inner::PoolInner::new`. What ignore rules and internal-name
    /// lists match.
    pub(crate) plain: String,
    internal: bool,
    boundary: bool,
}

impl fmt::Display for Frame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.function)?;
        match &self.position {
            Some((file, line, Some(col))) => write!(f, " at {file}:{line}:{col}"),
            Some((file, line, None)) => write!(f, " at {file}:{line}"),
            None => Ok(()),
        }
    }
}

impl Frame {
    /// A frame from what a symbolizer found.
    pub(crate) fn new(
        function: &str,
        file: Option<&Path>,
        line: Option<u32>,
        column: Option<u32>,
    ) -> Frame {
        let function = strip_hash(function);
        let raw = file.map(|f| f.to_string_lossy().into_owned());
        let position = raw
            .as_deref()
            .zip(line)
            .map(|(file, line)| (paths::short(file).into_owned(), line, column));
        let plain = plain_name(&function);
        let internal =
            internal_function(&function, &plain) || raw.as_deref().is_some_and(internal_file);
        let boundary = internal && is_task_boundary(&plain, raw.as_deref());
        Frame {
            function,
            position,
            plain,
            internal,
            boundary,
        }
    }

    /// tokio, std, libtest, tracing and leakcheck frames, and frames with
    /// no symbol: never what a user needs to read.
    pub(crate) fn is_internal(&self) -> bool {
        self.internal
    }

    /// Whether an `ignore_fn` pattern matches: a part of the function's
    /// name, with or without its generic arguments (`PoolInner::new`
    /// matches `bb8::inner::PoolInner<M>::new`).
    pub(crate) fn matches_fn(&self, pattern: &str) -> bool {
        self.function.contains(pattern) || self.plain.contains(pattern)
    }

    /// tokio polling a task (or a `block_on` running its future): frames
    /// further out belong to whatever polls, not to the code that spawned.
    pub(crate) fn is_task_boundary(&self) -> bool {
        self.boundary
    }
}

/// The user's frames of a spawn's call chain, innermost first: internal
/// frames left out, and nothing beyond the task (or `block_on`) whose poll
/// made the spawn, which would be the scheduler's caller (a test harness,
/// `main`), not the spawner's.
pub(crate) fn user_frames(frames: &[Frame]) -> impl Iterator<Item = &Frame> {
    let first_user = frames.iter().position(|f| !f.is_internal());
    let from = first_user.unwrap_or(frames.len());
    // a boundary before any user frame (the spawner was inlined away): the
    // frames past it are the poller's, so none are the spawner's
    let cut = |f: &Frame| f.is_task_boundary();
    let clean = !frames[..from].iter().any(cut);
    let to = match clean {
        true => frames[from..]
            .iter()
            .position(cut)
            .map_or(frames.len(), |n| from + n),
        false => from,
    };
    frames[from..to].iter().filter(|f| !f.is_internal())
}

/// Crates whose frames are plumbing between the user's code and a spawn or
/// an await, as the short path's crate names them.
const INTERNAL_CRATES: &[&str] = &[
    "tokio",
    "tracing",
    "tracing-core",
    "tracing-subscriber",
    "futures-core",
    "futures-util",
    "leakcheck",
];

fn internal_file(file: &str) -> bool {
    let short = paths::short(file);
    short.starts_with("rust/library/")
        || paths::dependency_crate(&short).is_some_and(|c| INTERNAL_CRATES.contains(&c))
        || short.starts_with(paths::short(own_source_dir()).as_ref())
}

/// leakcheck's own `src/` as rustc records it (a path in the registry, or
/// `leakcheck/src/` in this workspace).
fn own_source_dir() -> &'static str {
    let this = file!();
    this.rfind("src/").map_or(this, |i| &this[..i + 4])
}

/// Function-name prefixes of internal code (a `<Type as Trait>` impl is
/// judged by its self type).
const INTERNAL_PREFIXES: &[&str] = &[
    "tokio::",
    "std::",
    "core::",
    "alloc::",
    "leakcheck::",
    "tracing::",
    "tracing_core::",
    "tracing_subscriber::",
    "futures_util::",
    "futures_core::",
    "__rust",
    "__libc",
];

/// libtest's own functions, matched whole (closures inside them too), so a
/// test crate named `test` keeps every frame of its own.
const LIBTEST: &[&str] = &[
    "test::__rust_begin_short_backtrace",
    "test::run_test",
    "test::run_test::run_test_inner",
    "test::run_test_in_process",
    "test::run_tests",
    "test::console::run_tests_console",
    "test::test_main",
    "test::test_main_static",
    "test::test_main_with_exit_callback",
    "test::types::RunnableTest::run",
];

fn internal_function(function: &str, plain: &str) -> bool {
    let f = function
        .trim_start_matches(['<', '&'])
        .trim_start_matches("mut ")
        .trim_start_matches("dyn ");
    f.is_empty()
        || INTERNAL_PREFIXES.iter().any(|p| f.starts_with(p))
        || LIBTEST.contains(&plain)
        || matches!(
            f,
            "_start" | "main" | "clone" | "clone3" | "start_thread" | "__libc_start_main"
        )
}

/// `function` without generic arguments, trailing closures, and a `<Self
/// as Trait>` qualification (judged by its self type).
fn plain_name(function: &str) -> String {
    let f = function.trim_start_matches('&');
    // `<A<T> as B>::f` → `A<T>::f`
    let f = match f.strip_prefix('<').and_then(|rest| rest.split_once(" as ")) {
        Some((self_type, rest)) => {
            let after = rest.find(">::").map_or("", |at| &rest[at + 1..]);
            format!("{self_type}{after}")
        }
        None => f.to_owned(),
    };
    let mut plain = String::with_capacity(f.len());
    let mut depth = 0usize;
    for c in f.chars() {
        match c {
            '<' => depth += 1,
            '>' => depth = depth.saturating_sub(1),
            _ if depth == 0 => plain.push(c),
            _ => {}
        }
    }
    let mut plain = plain
        .replace("::::", "::")
        .trim_end_matches("::")
        .to_owned();
    while let Some((up, last)) = plain.rsplit_once("::") {
        if !(last.starts_with("{{closure")
            || last.starts_with("{closure")
            || last.starts_with("{async"))
        {
            break;
        }
        plain.truncate(up.len());
    }
    plain
}

/// tokio functions that poll a task or run a `block_on` future (by name,
/// or, for inlined frames with short names, by name in a tokio file).
fn is_task_boundary(plain: &str, file: Option<&str>) -> bool {
    const POLLERS: &[&str] = &[
        "tokio::runtime::task::harness::",
        "tokio::runtime::task::raw::",
        "tokio::runtime::task::core::Core::poll",
        "tokio::runtime::park::CachedParkThread::block_on",
        "tokio::runtime::runtime::Runtime::block_on",
        "tokio::runtime::local_runtime::runtime::LocalRuntime::block_on",
        "tokio::runtime::blocking::pool::Inner::run",
        "tokio::runtime::blocking::task::BlockingTask::poll",
    ];
    const SHORT: &[&str] = &["poll_future", "poll_inner", "block_on", "run_task"];
    let last = plain.rsplit("::").next().unwrap_or(plain);
    let short_file = file.map(paths::short);
    let in_tokio_runtime = short_file.as_deref().is_some_and(|f| {
        paths::dependency_crate(f) == Some("tokio")
            && [
                "/src/runtime/task/",
                "/src/runtime/scheduler/",
                "/src/runtime/park.rs",
            ]
            .iter()
            .any(|dir| f.contains(dir))
    });
    POLLERS.iter().any(|p| plain.starts_with(p))
        || plain.starts_with("tokio::") && SHORT.contains(&last)
        || in_tokio_runtime && SHORT.contains(&last)
}

/// `foo::bar::h0123456789abcdef` → `foo::bar`.
fn strip_hash(name: &str) -> String {
    match name.rsplit_once("::h") {
        Some((head, hash)) if hash.len() == 16 && hash.bytes().all(|b| b.is_ascii_hexdigit()) => {
            head.to_owned()
        }
        _ => name.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(name: &str) -> Frame {
        Frame::new(name, None, None, None)
    }

    fn at(name: &str, file: &str) -> Frame {
        Frame::new(name, Some(Path::new(file)), Some(10), Some(5))
    }

    #[test]
    fn internal_names() {
        assert!(named("tokio::runtime::task::spawn").is_internal());
        assert!(named("<core::pin::Pin<P> as core::future::future::Future>::poll").is_internal());
        assert!(named("leakcheck::harness::run_test").is_internal());
        assert!(named("test::run_test_in_process::{closure#0}").is_internal());
        assert!(named(
            "<&dyn core::ops::function::Fn<()> as core::ops::function::FnOnce<()>>::call_once"
        )
        .is_internal());
        assert!(named(
            "<tracing::instrument::Instrumented<T> as core::future::future::Future>::poll"
        )
        .is_internal());
        assert!(!named("my_app::server::run").is_internal());
    }

    #[test]
    fn a_test_crate_named_test_keeps_its_frames() {
        assert!(!named("test::start_server::{{closure}}").is_internal());
        assert!(!named("test::run_test_suite::{{closure}}").is_internal());
        assert!(!named("test::console::setup").is_internal());
        assert!(named("test::run_test::{{closure}}::{{closure}}").is_internal());
        assert!(named("test::types::RunnableTest::run").is_internal());
        assert!(!at("test::helper", "tests/test.rs").is_internal());
    }

    #[test]
    fn inlined_frames_with_short_names_are_judged_by_file() {
        let registry = "/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f";
        assert!(at(
            "poll",
            &format!("{registry}/tokio-1.54.1/src/runtime/task/core.rs")
        )
        .is_internal());
        assert!(at(
            "{closure#0}",
            "/rustc/59807616e1a2/library/core/src/ops/function.rs"
        )
        .is_internal());
        assert!(at("spawn", &format!("{}task.rs", own_source_dir())).is_internal());
        assert!(!at("start", &format!("{registry}/pool-1.2.3/src/pool.rs")).is_internal());
    }

    #[test]
    fn plain_names_have_no_generics_closures_or_trait_wrappers() {
        let plain = |f: &str| named(f).plain;
        assert_eq!(
            plain("bb8::inner::PoolInner<M>::new"),
            "bb8::inner::PoolInner::new"
        );
        assert_eq!(
            plain("test::__rust_begin_short_backtrace::<core::result::Result<(), String>, fn()>"),
            "test::__rust_begin_short_backtrace"
        );
        assert_eq!(
            plain("<tokio::runtime::blocking::task::BlockingTask<T> as core::future::future::Future>::poll"),
            "tokio::runtime::blocking::task::BlockingTask::poll"
        );
        assert_eq!(
            plain("my_app::serve::{{closure}}::{{closure}}"),
            "my_app::serve"
        );
        assert_eq!(plain("my_app::serve::{closure#0}"), "my_app::serve");
        assert!(
            named("test::__rust_begin_short_backtrace::<core::result::Result<(), String>>")
                .is_internal()
        );
    }

    #[test]
    fn chains_stop_at_the_task_that_spawned() {
        let registry = "/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f";
        let frames = [
            named("leakcheck::mode::hooks::on_spawn"),
            named("tokio::task::spawn::spawn"),
            named("my_app::pool::start"),
            named("my_app::pool::Reaper::run::{{closure}}"),
            at(
                "poll_future<T, S>",
                &format!("{registry}/tokio-1.54.1/src/runtime/task/harness.rs"),
            ),
            named("tokio::runtime::scheduler::current_thread::CoreGuard::block_on"),
            named("my_tests::the_test"),
            named("test::__rust_begin_short_backtrace"),
        ];
        let chain: Vec<_> = user_frames(&frames).map(|f| f.function.as_str()).collect();
        assert_eq!(
            chain,
            [
                "my_app::pool::start",
                "my_app::pool::Reaper::run::{{closure}}"
            ]
        );
        // the spawner inlined away: what lies past the boundary is the poller's
        let inlined = [&frames[..2], &frames[4..]].concat();
        assert_eq!(user_frames(&inlined).count(), 0);
        // a spawn from the body of a block_on: the test function is past it
        let from_body = [&frames[..3], &frames[5..]].concat();
        let chain: Vec<_> = user_frames(&from_body)
            .map(|f| f.function.as_str())
            .collect();
        assert_eq!(chain, ["my_app::pool::start"]);
    }

    #[test]
    fn locations_are_short() {
        let f = at(
            "pool::Pool::start::h0123456789abcdef",
            "/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/pool-1.2.3/src/pool.rs",
        );
        assert_eq!(
            f.to_string(),
            "pool::Pool::start at pool-1.2.3/src/pool.rs:10:5"
        );
    }
}
