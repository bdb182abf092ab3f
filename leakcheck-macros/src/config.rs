//! Phase two: turn the arguments into a [`Config`], checking the keys that
//! only make sense together.

use std::time::Duration;

use crate::args::{Arg, Flavor, RawArgs};
use crate::errors::{between, Errors};

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
        })
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
