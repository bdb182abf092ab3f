//! The attribute's arguments, in two phases: [`parse`] reads `key = value`
//! pairs into one slot per key, checking each value on its own (type, range,
//! syntax, in [`values`]); [`RawArgs::build`] checks the keys that only make
//! sense together and fills in defaults. The keys and what each takes are
//! listed once, in [`keys`].

mod keys;
mod values;

use std::time::Duration;

use proc_macro2::{Span, TokenStream};
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::{Meta, Token};

use crate::errors::{between, Errors};
pub(crate) use keys::Key;
pub(crate) use values::Flavor;
use values::{boolean, crate_path, flavor, grace, patterns, positive, ungroup, unhandled_panic};

/// One parsed argument: its value and where it was written.
pub(crate) struct Arg<T> {
    pub(crate) value: T,
    /// The whole `key = value`, for errors about a combination of keys.
    pub(crate) span: (Span, Span),
}

/// Every argument the attribute was given; `None` where a key was left out.
#[derive(Default)]
pub(crate) struct RawArgs {
    pub(crate) flavor: Option<Arg<Flavor>>,
    pub(crate) worker_threads: Option<Arg<usize>>,
    pub(crate) start_paused: Option<Arg<bool>>,
    pub(crate) shutdown_on_unhandled_panic: Option<Arg<bool>>,
    pub(crate) crate_path: Option<Arg<syn::Path>>,
    pub(crate) grace: Option<Arg<Duration>>,
    pub(crate) max_tasks: Option<Arg<usize>>,
    pub(crate) ignore_spawn_sites: Option<Arg<Vec<String>>>,
    pub(crate) ignore_fns: Option<Arg<Vec<String>>>,
    pub(crate) ignore_names: Option<Arg<Vec<String>>>,
}

/// Parses the attribute's arguments, reporting every bad one at once.
pub(crate) fn parse(args: TokenStream) -> syn::Result<RawArgs> {
    let metas = Punctuated::<Meta, Token![,]>::parse_terminated.parse2(args)?;
    let mut raw = RawArgs::default();
    let mut seen = Vec::new();
    let mut errors = Errors::default();
    for meta in &metas {
        if let Err(e) = raw.add(meta, &mut seen) {
            errors.push(e);
        }
    }
    errors.finish(raw)
}

impl RawArgs {
    fn add(&mut self, meta: &Meta, seen: &mut Vec<Key>) -> syn::Result<()> {
        let key = Key::from_path(meta.path())?;
        if seen.contains(&key) {
            return Err(syn::Error::new_spanned(meta, duplicate(key)));
        }
        seen.push(key);
        let value = match meta {
            Meta::NameValue(nv) => ungroup(&nv.value),
            Meta::Path(path) => {
                let msg = format!("`{}` needs a value, e.g. `{}`", key.name(), key.example());
                return Err(syn::Error::new_spanned(path, msg));
            }
            Meta::List(list) => {
                let msg = format!(
                    "write `{}` as `key = value`, e.g. `{}`",
                    key.name(),
                    key.example()
                );
                return Err(syn::Error::new_spanned(list, msg));
            }
        };
        let at = crate::errors::ends(meta);
        match key {
            Key::Flavor => set(&mut self.flavor, at, flavor(value)),
            Key::WorkerThreads => set(&mut self.worker_threads, at, positive(key, value)),
            Key::StartPaused => set(&mut self.start_paused, at, boolean(key, value)),
            Key::UnhandledPanic => set(
                &mut self.shutdown_on_unhandled_panic,
                at,
                unhandled_panic(value),
            ),
            Key::Crate => set(&mut self.crate_path, at, crate_path(value)),
            Key::Grace => set(&mut self.grace, at, grace(value)),
            Key::MaxTasks => set(&mut self.max_tasks, at, positive(key, value)),
            Key::IgnoreSpawnSite => set(&mut self.ignore_spawn_sites, at, patterns(key, value)),
            Key::IgnoreFn => set(&mut self.ignore_fns, at, patterns(key, value)),
            Key::IgnoreName => set(&mut self.ignore_names, at, patterns(key, value)),
        }
    }
}

/// Fills a key's slot with its checked value.
fn set<T>(slot: &mut Option<Arg<T>>, span: (Span, Span), value: syn::Result<T>) -> syn::Result<()> {
    *slot = Some(Arg {
        value: value?,
        span,
    });
    Ok(())
}

fn duplicate(key: Key) -> String {
    let hint = match key {
        Key::IgnoreSpawnSite | Key::IgnoreFn | Key::IgnoreName => {
            format!(
                "; list every pattern in one array, e.g. `{} = [\"a\", \"b\"]`",
                key.name()
            )
        }
        _ => "; keep only one".to_owned(),
    };
    format!("`{}` is set more than once{hint}", key.name())
}

/// A validated `#[leakcheck::test(...)]`: what the expansion writes out.
pub(crate) struct Config {
    pub(crate) crate_path: syn::Path,
    pub(crate) flavor: Flavor,
    pub(crate) worker_threads: Option<usize>,
    pub(crate) start_paused: bool,
    pub(crate) shutdown_on_unhandled_panic: bool,
    pub(crate) grace: Option<Duration>,
    pub(crate) max_tasks: Option<usize>,
    pub(crate) ignore_spawn_sites: Vec<String>,
    pub(crate) ignore_fns: Vec<String>,
    pub(crate) ignore_names: Vec<String>,
    /// Errors for a build without `--cfg tokio_unstable`: (first token,
    /// last token, message) of each argument that needs it.
    pub(crate) needs_unstable: Vec<(Span, Span, String)>,
}

impl RawArgs {
    /// Checks the combinations of keys and fills in the defaults.
    pub(crate) fn build(self) -> syn::Result<Config> {
        let mut errors = Errors::default();
        let flavor = self.flavor.as_ref().map(|f| f.value);
        if let Some(arg) = &self.worker_threads {
            if flavor != Some(Flavor::MultiThread) {
                errors.push(needs_multi_thread(arg, flavor));
            }
        }
        if flavor == Some(Flavor::MultiThread) {
            for (arg, key) in [
                (self.start_paused.as_ref().map(|a| a.span), "start_paused"),
                (
                    self.shutdown_on_unhandled_panic.as_ref().map(|a| a.span),
                    "unhandled_panic",
                ),
            ] {
                if let Some(span) = arg {
                    let msg = format!(
                        "tokio supports `{key}` only on a single-threaded runtime: \
                         write `flavor = \"current_thread\"` or remove `{key}`"
                    );
                    errors.push(between(span, msg));
                }
            }
        }
        let needs_unstable = self.needs_unstable(flavor);
        let crate_path = match self.crate_path {
            Some(arg) => arg.value,
            None => syn::parse_quote!(::leakcheck),
        };
        errors.finish(Config {
            crate_path,
            flavor: flavor.unwrap_or(Flavor::CurrentThread),
            worker_threads: value(self.worker_threads),
            start_paused: value(self.start_paused).unwrap_or(false),
            shutdown_on_unhandled_panic: value(self.shutdown_on_unhandled_panic).unwrap_or(false),
            grace: value(self.grace),
            max_tasks: value(self.max_tasks),
            ignore_spawn_sites: value(self.ignore_spawn_sites).unwrap_or_default(),
            ignore_fns: value(self.ignore_fns).unwrap_or_default(),
            ignore_names: value(self.ignore_names).unwrap_or_default(),
            needs_unstable,
        })
    }

    /// Arguments that only work with `--cfg tokio_unstable`, each with the
    /// error to raise (at the argument) in a build without it.
    fn needs_unstable(&self, flavor: Option<Flavor>) -> Vec<(Span, Span, String)> {
        let why = |key: &str, what: &str| {
            format!(
                "`{key}` needs `--cfg tokio_unstable` ({what}); add it to `[build] rustflags` \
                 in .cargo/config.toml, as leakcheck's README shows"
            )
        };
        let mut found = Vec::new();
        if let Some(arg) = &self.max_tasks {
            let msg = why("max_tasks", "the peak is counted in tokio's spawn hook");
            found.push((arg.span.0, arg.span.1, msg));
        }
        if let Some(arg) = self
            .shutdown_on_unhandled_panic
            .as_ref()
            .filter(|a| a.value)
        {
            let msg = why(
                "unhandled_panic",
                "tokio's `Builder::unhandled_panic` is unstable",
            );
            found.push((arg.span.0, arg.span.1, msg));
        }
        if let (Some(arg), Some(Flavor::Local)) = (&self.flavor, flavor) {
            let msg = why("flavor = \"local\"", "tokio's `LocalRuntime` is unstable");
            found.push((arg.span.0, arg.span.1, msg));
        }
        found
    }
}

fn value<T>(arg: Option<Arg<T>>) -> Option<T> {
    arg.map(|a| a.value)
}

fn needs_multi_thread(arg: &Arg<usize>, flavor: Option<Flavor>) -> syn::Error {
    let msg = match flavor {
        None => "`worker_threads` needs the multi-threaded runtime, and the default flavor is \
                 `current_thread`: add `flavor = \"multi_thread\"`"
            .to_owned(),
        Some(other) => format!(
            "`worker_threads` needs the multi-threaded runtime, not `flavor = \"{}\"`: \
             write `flavor = \"multi_thread\"` or remove `worker_threads`",
            other.name()
        ),
    };
    between(arg.span, msg)
}
