//! Checks one argument's value on its own: type, range and syntax.

use std::time::Duration;

use syn::spanned::Spanned;
use syn::{Expr, Lit, LitStr};

use super::keys::Key;

/// The runtime flavor, as the harness's `Flavor` spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flavor {
    CurrentThread,
    MultiThread,
    Local,
}

impl Flavor {
    /// The string the attribute takes for this flavor.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Flavor::CurrentThread => "current_thread",
            Flavor::MultiThread => "multi_thread",
            Flavor::Local => "local",
        }
    }
}

/// Looks through the invisible groups `macro_rules!` wraps around `$x:expr`.
pub(crate) fn ungroup(mut expr: &Expr) -> &Expr {
    while let Expr::Group(group) = expr {
        expr = &group.expr;
    }
    expr
}

fn literal(value: &Expr) -> Option<&Lit> {
    match value {
        Expr::Lit(lit) => Some(&lit.lit),
        _ => None,
    }
}

/// "`key` takes <type>, not <what was written>: write <example>".
fn wrong_type(key: Key, value: &Expr) -> syn::Error {
    let (found, example) = match literal(value) {
        Some(Lit::Str(s)) => {
            let text = s.value();
            let unquoted = match key {
                Key::WorkerThreads | Key::MaxTasks => text.parse::<usize>().is_ok_and(|n| n > 0),
                Key::StartPaused => text == "true" || text == "false",
                _ => false,
            };
            let example = unquoted.then(|| format!("{} = {text}", key.name()));
            ("a string", example)
        }
        Some(Lit::Int(_)) => ("an integer", None),
        Some(Lit::Float(_)) => ("a float", None),
        Some(Lit::Bool(_)) => ("a boolean", None),
        Some(_) => ("this literal", None),
        None if matches!(value, Expr::Array(_)) => ("an array", None),
        None => ("an expression", None),
    };
    let example = example.unwrap_or_else(|| key.example().to_owned());
    let msg = format!(
        "`{}` takes {}, not {found}: write `{example}`",
        key.name(),
        key.expects()
    );
    syn::Error::new_spanned(value, msg)
}

fn string(key: Key, value: &Expr) -> syn::Result<LitStr> {
    match literal(value) {
        Some(Lit::Str(s)) => Ok(s.clone()),
        _ => Err(wrong_type(key, value)),
    }
}

pub(crate) fn boolean(key: Key, value: &Expr) -> syn::Result<bool> {
    match literal(value) {
        Some(Lit::Bool(b)) => Ok(b.value),
        _ => Err(wrong_type(key, value)),
    }
}

/// An integer of at least 1, without a suffix other than `usize`.
pub(crate) fn positive(key: Key, value: &Expr) -> syn::Result<usize> {
    let Some(Lit::Int(int)) = literal(value) else {
        return Err(wrong_type(key, value));
    };
    let name = key.name();
    let fail = |msg: String| Err(syn::Error::new(int.span(), msg));
    if !matches!(int.suffix(), "" | "usize") {
        return fail(format!(
            "`{name}` takes a plain integer: write `{name} = {}`",
            int.base10_digits()
        ));
    }
    match int.base10_parse::<usize>() {
        Ok(0) => fail(format!(
            "`{name}` must be at least 1, e.g. `{}`",
            key.example()
        )),
        Ok(n) => Ok(n),
        Err(_) => fail(format!(
            "`{name}` is too large for a `usize`, e.g. `{}`",
            key.example()
        )),
    }
}

/// `crate = "path::to::leakcheck"`.
pub(crate) fn crate_path(value: &Expr) -> syn::Result<syn::Path> {
    string(Key::Crate, value)?.parse().map_err(|_| {
        let msg = "`crate` takes the path of the leakcheck crate, e.g. `crate = \"my_leakcheck\"`";
        syn::Error::new(value.span(), msg)
    })
}

pub(crate) fn flavor(value: &Expr) -> syn::Result<Flavor> {
    let lit = string(Key::Flavor, value)?;
    let renamed = |new: &str| {
        format!(
            "the `{}` flavor was renamed: write `flavor = \"{new}\"`",
            lit.value()
        )
    };
    let msg = match lit.value().as_str() {
        "current_thread" => return Ok(Flavor::CurrentThread),
        "multi_thread" => return Ok(Flavor::MultiThread),
        "local" => return Ok(Flavor::Local),
        "basic_scheduler" => renamed("current_thread"),
        "threaded_scheduler" => renamed("multi_thread"),
        other => format!(
            "unknown flavor `{other}`: write `flavor = \"current_thread\"`, \
             `flavor = \"multi_thread\"` or `flavor = \"local\"`"
        ),
    };
    Err(syn::Error::new(lit.span(), msg))
}

/// `true` for `"shutdown_runtime"`.
pub(crate) fn unhandled_panic(value: &Expr) -> syn::Result<bool> {
    let lit = string(Key::UnhandledPanic, value)?;
    match lit.value().as_str() {
        "ignore" => Ok(false),
        "shutdown_runtime" => Ok(true),
        other => Err(syn::Error::new(
            lit.span(),
            format!(
                "unknown `unhandled_panic` behavior `{other}`: write \
                 `unhandled_panic = \"ignore\"` or `unhandled_panic = \"shutdown_runtime\"`"
            ),
        )),
    }
}

pub(crate) fn grace(value: &Expr) -> syn::Result<Duration> {
    let lit = string(Key::Grace, value)?;
    humantime::parse_duration(lit.value().trim()).map_err(|e| {
        let msg = format!(
            "invalid `grace` duration `{}`: {e}; write e.g. `grace = \"250ms\"`",
            lit.value()
        );
        syn::Error::new(lit.span(), msg)
    })
}

/// A non-empty string, or a non-empty array of them.
pub(crate) fn patterns(key: Key, value: &Expr) -> syn::Result<Vec<String>> {
    let one = |value: &Expr| -> syn::Result<String> {
        let lit = string(key, value)?;
        if lit.value().trim().is_empty() {
            let msg = format!(
                "an empty `{}` pattern would match every task: write `{}`",
                key.name(),
                key.example()
            );
            return Err(syn::Error::new(lit.span(), msg));
        }
        Ok(lit.value())
    };
    let Expr::Array(array) = value else {
        return one(value).map(|s| vec![s]);
    };
    if array.elems.is_empty() {
        let msg = format!(
            "`{} = []` ignores nothing: remove it or write `{}`",
            key.name(),
            key.example()
        );
        return Err(syn::Error::new_spanned(array, msg));
    }
    array.elems.iter().map(|elem| one(ungroup(elem))).collect()
}
