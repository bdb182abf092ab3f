//! Unit tests of the argument parser and the expansion.

use std::time::Duration;

use proc_macro2::TokenStream;
use quote::quote;

use crate::args::{self, Config, Flavor};

fn config(args: TokenStream) -> syn::Result<Config> {
    args::parse(args).and_then(|raw| raw.build())
}

fn error(args: TokenStream) -> String {
    match config(args) {
        Ok(_) => panic!("expected an error"),
        Err(e) => e
            .into_iter()
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join("\n"),
    }
}

fn squash(text: &str) -> String {
    text.split_whitespace().collect()
}

#[test]
fn defaults() {
    let c = config(quote!()).unwrap();
    assert_eq!(c.flavor, Flavor::CurrentThread);
    assert_eq!(c.worker_threads, None);
    assert!(!c.start_paused && !c.shutdown_on_unhandled_panic);
    assert_eq!((c.grace, c.max_tasks), (None, None));
    assert!(
        c.ignore_fns.is_empty() && c.ignore_names.is_empty() && c.ignore_spawn_sites.is_empty()
    );
    let path = &c.crate_path;
    assert_eq!(squash(&quote!(#path).to_string()), "::leakcheck");
}

#[test]
fn every_argument() {
    let c = config(quote!(
        flavor = "multi_thread",
        worker_threads = 2,
        grace = "1s 500ms",
        max_tasks = 10usize,
        ignore_fn = ["a::b", "c"],
        ignore_name = "flusher",
        ignore_spawn_site = ["src/x.rs"],
        crate = "my::leakcheck",
    ))
    .unwrap();
    assert_eq!(c.flavor, Flavor::MultiThread);
    assert_eq!(c.worker_threads, Some(2));
    assert_eq!(c.grace, Some(Duration::from_millis(1500)));
    assert_eq!(c.max_tasks, Some(10));
    assert_eq!(c.ignore_fns, ["a::b", "c"]);
    assert_eq!(c.ignore_names, ["flusher"]);
    assert_eq!(c.ignore_spawn_sites, ["src/x.rs"]);
    let path = &c.crate_path;
    assert_eq!(squash(&quote!(#path).to_string()), "my::leakcheck");
}

#[test]
fn single_threaded_options() {
    let c = config(quote!(
        flavor = "local",
        start_paused = true,
        unhandled_panic = "shutdown_runtime"
    ))
    .unwrap();
    assert_eq!(c.flavor, Flavor::Local);
    assert!(c.start_paused && c.shutdown_on_unhandled_panic);
    assert_eq!(
        config(quote!(grace = "0s")).unwrap().grace,
        Some(Duration::ZERO)
    );
}

#[test]
fn value_errors() {
    for (args, expected) in [
        (
            quote!(grace = 5),
            "`grace` takes a duration string, not an integer",
        ),
        (quote!(max_tasks = "10"), "write `max_tasks = 10`"),
        (
            quote!(start_paused = "yes"),
            "`start_paused` takes `true` or `false`, not a string",
        ),
        (quote!(grace = "5 parsecs"), "unknown time unit \"parsecs\""),
        (quote!(max_tasks = 0), "`max_tasks` must be at least 1"),
        (quote!(worker_threads = 2u8), "write `worker_threads = 2`"),
        (quote!(ignore_fn = ""), "an empty `ignore_fn` pattern"),
        (
            quote!(ignore_name = ["a", 1]),
            "`ignore_name` takes a string or an array of strings",
        ),
        (
            quote!(ignore_name = []),
            "`ignore_name = []` ignores nothing",
        ),
        (
            quote!(flavor = "threaded_scheduler"),
            "write `flavor = \"multi_thread\"`",
        ),
        (quote!(flavor = "fast"), "unknown flavor `fast`"),
        (
            quote!(crate = "not a path"),
            "`crate` takes the path of the leakcheck crate",
        ),
    ] {
        let message = error(args.clone());
        assert!(message.contains(expected), "{args}: {message}");
    }
}

#[test]
fn key_errors() {
    let message = error(quote!(graze = "1s"));
    assert!(
        message.starts_with("unknown argument `graze` (did you mean `grace`?);"),
        "{message}"
    );
    let message = error(quote!(ignore_fns = "a"));
    assert!(message.contains("(did you mean `ignore_fn`?)"), "{message}");
    let message = error(quote!(timeout = "1s"));
    assert!(
        message.starts_with("unknown argument `timeout`; "),
        "{message}"
    );
    assert!(
        message.contains("`ignore_spawn_site`, `ignore_fn`, `ignore_name`"),
        "{message}"
    );
    assert_eq!(
        error(quote!(grace)),
        "`grace` needs a value, e.g. `grace = \"500ms\"`"
    );
    let message = error(quote!(grace = "1s", grace = "2s"));
    assert!(
        message.starts_with("`grace` is set more than once"),
        "{message}"
    );
}

#[test]
fn every_error_is_reported() {
    let message = error(quote!(grace = 5, max_tasks = "x", bogus = 1));
    assert_eq!(message.lines().count(), 3, "{message}");
}

#[test]
fn combination_errors() {
    let message = error(quote!(worker_threads = 2));
    assert!(
        message.contains("add `flavor = \"multi_thread\"`"),
        "{message}"
    );
    let message = error(quote!(flavor = "current_thread", worker_threads = 2));
    assert!(
        message.contains("not `flavor = \"current_thread\"`"),
        "{message}"
    );
    let message = error(quote!(flavor = "multi_thread", start_paused = true));
    assert!(
        message.contains("`start_paused` only on a single-threaded runtime"),
        "{message}"
    );
    let message = error(quote!(flavor = "multi_thread", unhandled_panic = "ignore"));
    assert!(message.contains("remove `unhandled_panic`"), "{message}");
}

#[test]
fn expansion() {
    let item = quote! {
        /// Docs.
        #[should_panic]
        pub async fn my_test() -> Result<(), String> { #![allow(unused)] Ok(()) }
    };
    let out = squash(&crate::entry::test(quote!(grace = "500ms"), item).to_string());
    let expected = [
        "#[::core::prelude::v1::test]#[doc=r\" Docs.\"]#[should_panic]",
        "pubfnmy_test()->Result<(),String>{",
        "asyncfnmy_test()->Result<(),String>{#![allow(unused)]Ok(())}",
        "letbody=my_test();",
        "::leakcheck::__private::run_test(::leakcheck::__private::TestConfig{",
        "name:::core::concat!(::core::module_path!(),\"::\",\"my_test\"),",
        "grace:::core::option::Option::Some(::core::time::Duration::new(0u64,500000000u32)),",
        "ignore_fns:&[],",
        "},body)}",
        "#[cfg(not(test))]const_:()={fnsupported_return_type<T:::leakcheck::__private::TestResult>(){}",
    ];
    for part in expected {
        assert!(out.contains(&squash(part)), "{part}\nnot in\n{out}");
    }
    assert!(!out.contains("compile_error"), "{out}");
}

#[test]
fn signature_errors_keep_the_function() {
    let out = crate::entry::test(
        quote!(),
        quote!(
            #[test]
            fn plain(x: u8) {}
        ),
    )
    .to_string();
    for part in [
        "remove `#[test]`",
        "write `async fn plain()`",
        "take no parameters",
    ] {
        assert!(out.contains(part), "{part} not in {out}");
    }
    assert!(
        squash(&out).contains("#[allow(unused)]fnplain(x:u8){}"),
        "{out}"
    );
}

#[test]
fn the_argument_table_lists_every_key() {
    let table = include_str!("arguments.md");
    for key in crate::args::Key::ALL {
        let row = format!("| `{}` |", key.name());
        assert!(table.contains(&row), "arguments.md lacks {row}");
    }
}
