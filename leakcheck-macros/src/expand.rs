//! Writes the `#[test]` function that hands the body to
//! `leakcheck::__private::run_test`.

use proc_macro2::{Delimiter, Group, Span, TokenStream, TokenTree};
use quote::{quote, quote_spanned, ToTokens};
use syn::ext::IdentExt;
use syn::spanned::Spanned;
use syn::ReturnType;

use crate::args::{Config, Flavor};
use crate::item::TestFn;

/// The expansion of a test function whose arguments and signature are valid.
pub(crate) fn expand(test_fn: &TestFn, config: &Config) -> TokenStream {
    let TestFn {
        attrs,
        vis,
        sig,
        inner_attrs,
        body,
    } = test_fn;
    let name = &sig.ident;
    let output = &sig.output;
    // Spanned at the test's name: `run_test` is `#[track_caller]`, so a
    // leak report or a failed check points at the user's test function.
    let span = name.span();
    let krate = &respan(&config.crate_path, span);
    let test_config = test_config(config, krate, &name.unraw().to_string(), span);
    let needs_unstable = needs_unstable(config, krate);
    let (body_span, check) = match output {
        ReturnType::Default => (span, None),
        ReturnType::Type(_, ty) => (ty.span(), Some(return_type_check(krate, ty))),
    };
    // An unsupported return type is reported on the return type.
    // Resolved like the `let body` below (call site), but located at the
    // return type: a name spanned at user tokens alone takes their hygiene,
    // which differs when the test is written by a `macro_rules!` macro.
    let body_arg = proc_macro2::Ident::new("body", Span::call_site().located_at(body_span));
    let run = quote_spanned! {span=>
        #krate::__private::run_test(#test_config, #body_arg)
    };
    quote! {
        #[::core::prelude::v1::test]
        #(#attrs)*
        #vis fn #name() #output {
            // The body, as the `async fn` the user wrote: `?`, `return` and
            // type errors work and read exactly as they would there.
            async fn #name() #output {
                #(#inner_attrs)*
                #body
            }
            let body = #name();
            #run
        }
        #check
        #needs_unstable
    }
}

/// For each argument that needs `--cfg tokio_unstable`, a call to a macro
/// of the leakcheck crate that is empty in a build with the flag and a
/// `compile_error!` without it, spanned at the argument. (The flag is read
/// where leakcheck is compiled, so the user's crate needs no `cfg`.)
fn needs_unstable(config: &Config, krate: &TokenStream) -> TokenStream {
    config
        .needs_unstable
        .iter()
        .map(|(first, last, msg)| {
            // the path at the argument's first token and the parentheses at
            // its last, so the error underlines the whole argument
            let krate = respan(krate, *first);
            let mut args = Group::new(Delimiter::Parenthesis, quote!(#msg));
            args.set_span(*last);
            quote_spanned! {*first=> #krate::__needs_tokio_unstable! #args; }
        })
        .collect()
}

/// Outside `cfg(test)` the `#[test]` function is removed before type
/// checking, so `cargo check` would never see an unsupported return type.
/// This names the type once more, in an item that survives.
fn return_type_check(krate: &TokenStream, ty: &syn::Type) -> TokenStream {
    let krate = respan(krate, ty.span());
    quote_spanned! {ty.span()=>
        #[cfg(not(test))]
        const _: () = {
            fn supported_return_type<T: #krate::__private::TestResult>() {}
            let _ = supported_return_type::<#ty>;
        };
    }
}

fn test_config(config: &Config, krate: &TokenStream, name: &str, span: Span) -> TokenStream {
    let flavor = match config.flavor {
        Flavor::CurrentThread => quote!(CurrentThread),
        Flavor::MultiThread => quote!(MultiThread),
        Flavor::Local => quote!(Local),
    };
    let worker_threads = option(config.worker_threads.map(|n| quote!(#n)));
    let grace = option(config.grace.map(|d| {
        let (secs, nanos) = (d.as_secs(), d.subsec_nanos());
        quote!(::core::time::Duration::new(#secs, #nanos))
    }));
    let max_tasks = option(config.max_tasks.map(|n| quote!(#n)));
    let start_paused = config.start_paused;
    let shutdown = config.shutdown_on_unhandled_panic;
    let (sites, fns, names) = (
        &config.ignore_spawn_sites,
        &config.ignore_fns,
        &config.ignore_names,
    );
    quote_spanned! {span=>
        #krate::__private::TestConfig {
            name: ::core::concat!(::core::module_path!(), "::", #name),
            manifest_dir: ::core::option::Option::Some(::core::env!("CARGO_MANIFEST_DIR")),
            target: ::core::option::Option::Some(::core::env!("CARGO_CRATE_NAME")),
            flavor: #krate::__private::Flavor::#flavor,
            worker_threads: #worker_threads,
            start_paused: #start_paused,
            shutdown_on_unhandled_panic: #shutdown,
            grace: #grace,
            max_tasks: #max_tasks,
            ignore_spawn_sites: &[#(#sites),*],
            ignore_fns: &[#(#fns),*],
            ignore_names: &[#(#names),*],
        }
    }
}

fn option(value: Option<TokenStream>) -> TokenStream {
    value.map_or_else(
        || quote!(::core::option::Option::None),
        |value| quote!(::core::option::Option::Some(#value)),
    )
}

/// `tokens` with every span set to `span`, so that an error in code built
/// around them underlines one place in the user's source.
fn respan(tokens: &impl ToTokens, span: Span) -> TokenStream {
    let respan_tree = |tree: TokenTree| match tree {
        TokenTree::Group(group) => {
            let mut new = Group::new(group.delimiter(), respan(&group.stream(), span));
            new.set_span(span);
            TokenTree::Group(new)
        }
        mut other => {
            other.set_span(span);
            other
        }
    };
    tokens
        .to_token_stream()
        .into_iter()
        .map(respan_tree)
        .collect()
}
