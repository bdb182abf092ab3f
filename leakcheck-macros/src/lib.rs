//! The `#[leakcheck::test]` attribute.
//!
//! Use it through the `leakcheck` crate, which re-exports it as
//! `leakcheck::test` and provides the runtime its expansion calls. This crate
//! only parses the attribute's arguments, checks the test function's
//! signature and writes the `#[test]` function that hands the body to
//! `leakcheck::__private::run_test`.
#![warn(missing_docs, unreachable_pub, rust_2018_idioms)]

mod args;
mod entry;
mod errors;
mod expand;
mod item;
#[cfg(test)]
mod tests;

use proc_macro::TokenStream;

/// Runs an async test on a leak-checked tokio runtime and fails it if any
/// task the body spawned is still alive once the body returned and the grace
/// ran out.
///
/// A drop-in for `#[tokio::test]`: put it on an `async fn` without
/// parameters that returns `()` or a `Result`. Other attributes
/// (`#[should_panic]`, `#[ignore]`, doc comments, lint levels) are kept.
///
/// | argument | values | default |
/// |---|---|---|
/// | `flavor` | `"current_thread"`, `"multi_thread"` or `"local"` | `"current_thread"` |
/// | `worker_threads` | an integer ≥ 1, with `flavor = "multi_thread"` only | tokio's default |
/// | `start_paused` | `true` or `false`, not with `flavor = "multi_thread"` | `false` |
/// | `unhandled_panic` | `"ignore"` or `"shutdown_runtime"`, not with `flavor = "multi_thread"` | `"ignore"` |
/// | `crate` | the path of the `leakcheck` crate, for a renamed dependency | `::leakcheck` |
/// | `grace` | how long tasks may take to end after the body returns, e.g. `"500ms"`, `"2s"` | `LEAKCHECK_GRACE`, else `1s` |
/// | `max_tasks` | an integer ≥ 1: fail if more spawned tasks were ever alive at once | no limit |
/// | `ignore_spawn_site` | a string or an array of strings: ignore tasks whose spawn site contains one | none |
/// | `ignore_fn` | a string or an array of strings: ignore tasks with a matching function in their spawn call chain | none |
/// | `ignore_name` | a string or an array of strings: ignore tasks with one of these names | none |
///
/// Each argument may appear once. leakcheck brings its own tokio, so `crate`
/// names the `leakcheck` crate, never tokio.
///
/// ```ignore
/// #[leakcheck::test(flavor = "multi_thread", worker_threads = 2, grace = "250ms")]
/// async fn joins_its_workers() {
///     let worker = tokio::spawn(async { 2 + 2 });
///     assert_eq!(worker.await.unwrap(), 4);
/// }
/// ```
///
/// Mistakes in the arguments or the signature are compile errors that point
/// at the offending argument and say what to write instead.
#[proc_macro_attribute]
pub fn test(args: TokenStream, item: TokenStream) -> TokenStream {
    entry::test(args.into(), item.into()).into()
}
