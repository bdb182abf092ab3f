//! Phase one: read `key = value` arguments into one slot per key.
//!
//! Each value is checked on its own here (type, range, syntax); checks that
//! involve two keys wait for [`RawArgs::build`](crate::config).

use std::time::Duration;

use proc_macro2::{Span, TokenStream};
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::{Meta, Token};

use crate::errors::Errors;
use crate::keys::Key;
use crate::values::{
    boolean, crate_path, flavor, grace, patterns, positive, ungroup, unhandled_panic,
};

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
