//! `#[leakcheck::test]` on `proc_macro2`: parse, check, expand.

use proc_macro2::TokenStream;
use quote::quote;

use crate::errors::Errors;
use crate::item::{check_signature, fallback, TestFn};

/// Expands `#[leakcheck::test(args)] item`. On any error, the function is
/// still emitted (as written, minus `#[test]`-like attributes) so that IDEs
/// keep resolving it, next to one `compile_error!` per mistake.
pub(crate) fn test(args: TokenStream, item: TokenStream) -> TokenStream {
    let test_fn = match syn::parse2::<TestFn>(item.clone()) {
        Ok(test_fn) => test_fn,
        Err(e) => return with_errors(&item, &e),
    };
    let mut errors = Errors::default();
    let config = errors.take(crate::args::parse(args).and_then(crate::args::RawArgs::build));
    check_signature(&test_fn, &mut errors);
    match errors.finish(config) {
        Ok(Some(config)) => crate::expand::expand(&test_fn, &config),
        Ok(None) => unreachable!("a config is missing only after an error"),
        Err(e) => with_errors(&fallback(test_fn), &e),
    }
}

fn with_errors(item: &TokenStream, errors: &syn::Error) -> TokenStream {
    let errors = errors.to_compile_error();
    quote! {
        #[allow(unused)]
        #item
        #errors
    }
}
