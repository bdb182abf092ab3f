//! The test function: parsed, checked, and rebuilt as written on error.

use proc_macro2::TokenStream;
use quote::{quote, ToTokens};
use syn::parse::{Parse, ParseStream};
use syn::{braced, Attribute, Signature, Token, Visibility};

use crate::errors::Errors;

/// The test function. The body is kept as tokens, pasted unparsed into the
/// expansion, so a syntax error in it is reported once, by rustc.
pub(crate) struct TestFn {
    pub(crate) attrs: Vec<Attribute>,
    pub(crate) vis: Visibility,
    pub(crate) sig: Signature,
    pub(crate) inner_attrs: Vec<Attribute>,
    pub(crate) body: TokenStream,
}

impl Parse for TestFn {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let attrs = input.call(Attribute::parse_outer)?;
        let vis = input.parse()?;
        let starts_fn = input.peek(Token![async])
            || input.peek(Token![fn])
            || input.peek(Token![unsafe])
            || input.peek(Token![const])
            || input.peek(Token![extern]);
        if !starts_fn {
            return Err(input.error("`#[leakcheck::test]` goes on an `async fn`"));
        }
        let sig = input.parse()?;
        let content;
        braced!(content in input);
        let inner_attrs = content.call(Attribute::parse_inner)?;
        let body = content.parse()?;
        Ok(TestFn {
            attrs,
            vis,
            sig,
            inner_attrs,
            body,
        })
    }
}

/// The test function as written, without other test attributes, which
/// would only add errors of their own.
pub(crate) fn fallback(test_fn: TestFn) -> TokenStream {
    let TestFn {
        attrs,
        vis,
        sig,
        inner_attrs,
        body,
    } = test_fn;
    let attrs = attrs.iter().filter(|a| !is_test_attr(a));
    quote! {
        #(#attrs)*
        #vis #sig {
            #(#inner_attrs)*
            #body
        }
    }
}

/// `#[test]`, `#[tokio::test]`, `#[leakcheck::test]` and the like.
fn is_test_attr(attr: &Attribute) -> bool {
    attr.path()
        .segments
        .last()
        .is_some_and(|s| s.ident == "test")
}

pub(crate) fn check_signature(test_fn: &TestFn, errors: &mut Errors) {
    for attr in test_fn.attrs.iter().filter(|a| is_test_attr(a)) {
        let path = attr.path().to_token_stream().to_string().replace(' ', "");
        let msg = format!(
            "`#[leakcheck::test]` already makes this a test: remove `#[{path}]` \
             (or the `#[leakcheck::test]` above it)"
        );
        errors.push(syn::Error::new_spanned(attr, msg));
    }
    let sig = &test_fn.sig;
    let name = &sig.ident;
    if sig.asyncness.is_none() {
        let msg = format!("`#[leakcheck::test]` runs an async body: write `async fn {name}()`");
        errors.push(syn::Error::new_spanned(sig.fn_token, msg));
    }
    if let Some(unsafety) = sig.unsafety {
        let msg =
            "test functions cannot be `unsafe`: remove it and use an `unsafe` block in the body";
        errors.push(syn::Error::new_spanned(unsafety, msg));
    }
    if let Some(abi) = &sig.abi {
        errors.push(syn::Error::new_spanned(
            abi,
            "test functions cannot have an ABI: remove it",
        ));
    }
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        let msg = format!("test functions cannot be generic: write `async fn {name}()`");
        errors.push(syn::Error::new_spanned(&sig.generics, msg));
    }
    if !sig.inputs.is_empty() {
        let msg = format!(
            "test functions take no parameters: write `async fn {name}()` and build the values in the body"
        );
        errors.push(syn::Error::new_spanned(&sig.inputs, msg));
    }
}
