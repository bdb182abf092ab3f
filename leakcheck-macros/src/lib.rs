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
#[doc = include_str!("arguments.md")]
///
/// The same keys in `leakcheck.toml`, next to your `Cargo.toml`, set them
/// for a whole crate (top level) or one test target (`[tests.<target>]`);
/// a test's own arguments win, and ignore rules add up.
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
