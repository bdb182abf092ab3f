//! What a leak check waits for and what it ignores.

use std::sync::Arc;
use std::time::Duration;

/// The grace used when neither the test nor `LEAKCHECK_GRACE` sets one.
pub(crate) const DEFAULT_GRACE: Duration = Duration::from_secs(1);

/// The environment variable that overrides the default grace.
pub(crate) const GRACE_ENV: &str = "LEAKCHECK_GRACE";

/// Settings for a leak check: how long to wait and which tasks to ignore.
///
/// The tasks alive when the baseline was taken (the start of a
/// `#[leakcheck::test]` body) are always ignored. Ignore rules need task
/// identities, so in count mode (no `--cfg tokio_unstable`) they match nothing.
///
/// ```
/// use std::time::Duration;
/// let options = leakcheck::Options::new()
///     .grace(Duration::from_millis(250))
///     .ignore_spawn_site("src/metrics.rs")
///     .ignore_fn("my_app::telemetry::start")
///     .ignore_name("flusher");
/// assert_eq!(options.grace_duration(), Duration::from_millis(250));
/// ```
#[derive(Debug, Clone, Default)]
pub struct Options {
    grace: Option<Duration>,
    max_tasks: Option<usize>,
    ignore: Arc<Ignore>,
}

/// The ignore rules, shared cheaply between clones of [`Options`].
#[derive(Debug, Clone, Default)]
pub(crate) struct Ignore {
    pub(crate) spawn_sites: Vec<String>,
    pub(crate) fns: Vec<String>,
    pub(crate) names: Vec<String>,
}

impl Options {
    /// Default options: grace from `LEAKCHECK_GRACE` or 1 s, no ignore rules.
    pub fn new() -> Options {
        Options::default()
    }

    /// How long to wait for spawned tasks to end before calling them leaked.
    ///
    /// Waiting ends the moment the last task ends; a clean test pays nothing.
    /// An explicit grace wins over `LEAKCHECK_GRACE`, which wins over the
    /// default of 1 s.
    pub fn grace(mut self, grace: Duration) -> Options {
        self.grace = Some(grace);
        self
    }

    /// The grace this check will use.
    ///
    /// # Panics
    ///
    /// If `LEAKCHECK_GRACE` is set to something that is not a duration; the
    /// message names the variable and the value.
    ///
    /// ```
    /// let options = leakcheck::Options::new();
    /// // 1 s unless LEAKCHECK_GRACE says otherwise
    /// let _ = options.grace_duration();
    /// ```
    pub fn grace_duration(&self) -> Duration {
        match self.grace {
            Some(grace) => grace,
            None => grace_from_env().unwrap_or_else(|e| panic!("{e}")),
        }
    }

    /// Fail if more than `max` tasks spawned after the baseline were ever
    /// alive at the same time. Exact: counted in the spawn hook.
    ///
    /// ```
    /// let options = leakcheck::Options::new().max_tasks(64);
    /// assert_eq!(options.max_task_limit(), Some(64));
    /// ```
    pub fn max_tasks(mut self, max: usize) -> Options {
        self.max_tasks = Some(max);
        self
    }

    /// The `max_tasks` limit, if one is set.
    ///
    /// ```
    /// assert_eq!(leakcheck::Options::new().max_task_limit(), None);
    /// ```
    pub fn max_task_limit(&self) -> Option<usize> {
        self.max_tasks
    }

    /// Ignore tasks whose spawn site (`path:line:col`) contains `text`.
    ///
    /// ```
    /// let options = leakcheck::Options::new().ignore_spawn_site("src/metrics.rs:40");
    /// # let _ = options;
    /// ```
    pub fn ignore_spawn_site(mut self, text: impl Into<String>) -> Options {
        Arc::make_mut(&mut self.ignore)
            .spawn_sites
            .push(text.into());
        self
    }

    /// Ignore tasks with a function in their spawn call chain whose name
    /// contains `name`, e.g. `my_app::telemetry::start` or `hyper::`.
    ///
    /// ```
    /// let options = leakcheck::Options::new().ignore_fn("my_app::telemetry::start");
    /// # let _ = options;
    /// ```
    pub fn ignore_fn(mut self, name: impl Into<String>) -> Options {
        Arc::make_mut(&mut self.ignore).fns.push(name.into());
        self
    }

    /// Ignore tasks named exactly `name` (see `tokio::task::Builder::name`).
    ///
    /// ```
    /// let options = leakcheck::Options::new().ignore_name("flusher");
    /// # let _ = options;
    /// ```
    pub fn ignore_name(mut self, name: impl Into<String>) -> Options {
        Arc::make_mut(&mut self.ignore).names.push(name.into());
        self
    }

    /// The rules; count mode has no task identities to match them against.
    #[cfg_attr(not(tokio_unstable), allow(dead_code))]
    pub(crate) fn ignore(&self) -> &Ignore {
        &self.ignore
    }
}

/// Reads `LEAKCHECK_GRACE`. Unset or empty: the default.
pub(crate) fn grace_from_env() -> Result<Duration, String> {
    match std::env::var(GRACE_ENV) {
        Err(std::env::VarError::NotPresent) => Ok(DEFAULT_GRACE),
        Err(std::env::VarError::NotUnicode(v)) => Err(format!(
            "leakcheck: {GRACE_ENV}={v:?} is not valid UTF-8; write a duration such as `500ms` or `2s`"
        )),
        Ok(v) if v.trim().is_empty() => Ok(DEFAULT_GRACE),
        Ok(v) => parse_grace(&v),
    }
}

fn parse_grace(value: &str) -> Result<Duration, String> {
    humantime::parse_duration(value.trim()).map_err(|e| {
        format!(
            "leakcheck: {GRACE_ENV}={value:?} is not a duration ({e}); \
             write a number with a unit, such as `500ms` or `2s`"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grace_parses_units() {
        assert_eq!(parse_grace("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_grace(" 2s "), Ok(Duration::from_secs(2)));
    }

    #[test]
    fn bad_grace_names_the_variable_and_value() {
        let err = parse_grace("soon").unwrap_err();
        assert!(err.contains("LEAKCHECK_GRACE=\"soon\""), "{err}");
        assert!(err.contains("500ms"), "{err}");
    }

    #[test]
    fn explicit_grace_wins() {
        let o = Options::new().grace(Duration::from_millis(3));
        assert_eq!(o.grace_duration(), Duration::from_millis(3));
    }
}
