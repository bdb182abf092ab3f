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
    internal: bool,
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
        let internal = internal_function(&function) || raw.as_deref().is_some_and(internal_file);
        Frame {
            function,
            position,
            internal,
        }
    }

    /// tokio, std, libtest, tracing and leakcheck frames, and frames with
    /// no symbol: never what a user needs to read.
    pub(crate) fn is_internal(&self) -> bool {
        self.internal
    }
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
    // libtest: matched exactly, so a test crate named `test` keeps its frames
    "test::__rust_begin_short_backtrace",
    "test::run_test",
    "test::run_tests",
    "test::console::",
    "test::test_main",
    "test::types::",
];

fn internal_function(function: &str) -> bool {
    let f = function
        .trim_start_matches(['<', '&'])
        .trim_start_matches("mut ")
        .trim_start_matches("dyn ");
    f.is_empty()
        || INTERNAL_PREFIXES.iter().any(|p| f.starts_with(p))
        || matches!(
            f,
            "_start" | "main" | "clone" | "clone3" | "start_thread" | "__libc_start_main"
        )
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
