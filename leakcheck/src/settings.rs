//! Crate-wide settings for test checks: `leakcheck.toml` and `LEAKCHECK_GRACE`.
//!
//! `leakcheck.toml` sits next to the crate's `Cargo.toml` (or in an ancestor
//! directory up to the workspace root; the nearest file wins). Top-level keys
//! apply to every check of the crate; a `[tests.<target>]` table applies to
//! one test target (`tests/<target>.rs`, or the crate's own unit tests):
//!
//! ```toml
//! grace = "2s"
//! ignore_fn = ["my_pool::reaper"]
//!
//! [tests.pool]
//! grace = "31s"
//! ```
//!
//! A test's own arguments win over `LEAKCHECK_GRACE`, which wins over the
//! file, which wins over the defaults. Ignore rules from all three add up.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use parking_lot::Mutex;
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::Deserialize;

use crate::options::Options;

/// The environment variable that overrides the grace for every check.
pub(crate) const GRACE_ENV: &str = "LEAKCHECK_GRACE";

/// The settings file's name.
pub(crate) const FILE_NAME: &str = "leakcheck.toml";

/// What `leakcheck.toml` and the environment say for one test target.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Settings {
    grace: Option<Duration>,
    max_tasks: Option<usize>,
    ignore_spawn_site: Vec<String>,
    ignore_fn: Vec<String>,
    ignore_name: Vec<String>,
}

impl Settings {
    /// The settings for test target `target` of the crate in `manifest_dir`.
    /// An error names the file or variable and the key, and says what to write.
    pub(crate) fn load(
        manifest_dir: Option<&Path>,
        target: Option<&str>,
    ) -> Result<Settings, String> {
        let mut settings = match manifest_dir.and_then(find_file) {
            Some(path) => parsed(&path)?.for_target(target),
            None => Settings::default(),
        };
        if let Some(grace) = grace_from_env()? {
            settings.grace = Some(grace);
        }
        Ok(settings)
    }

    /// `options` (a test's own arguments) completed with these settings.
    pub(crate) fn apply(&self, mut options: Options) -> Options {
        if let (false, Some(grace)) = (options.has_grace(), self.grace) {
            options = options.grace(grace);
        }
        if let (None, Some(max)) = (options.max_task_limit(), self.max_tasks) {
            options = options.max_tasks(max);
        }
        for s in &self.ignore_spawn_site {
            options = options.ignore_spawn_site(s.clone());
        }
        for s in &self.ignore_fn {
            options = options.ignore_fn(s.clone());
        }
        for s in &self.ignore_name {
            options = options.ignore_name(s.clone());
        }
        options
    }
}

/// The nearest `leakcheck.toml` from `dir` up to the workspace root.
fn find_file(dir: &Path) -> Option<PathBuf> {
    for ancestor in dir.ancestors() {
        let candidate = ancestor.join(FILE_NAME);
        if candidate.is_file() {
            return Some(candidate);
        }
        if ancestor.join("Cargo.lock").is_file() {
            break; // the workspace root: don't wander out of the project
        }
    }
    None
}

/// `path`, parsed once per process.
fn parsed(path: &Path) -> Result<Arc<File>, String> {
    type Cache = Mutex<HashMap<PathBuf, Result<Arc<File>, String>>>;
    static CACHE: OnceLock<Cache> = OnceLock::new();
    let mut cache = CACHE.get_or_init(Default::default).lock();
    cache
        .entry(path.to_owned())
        .or_insert_with(|| File::read(path).map(Arc::new))
        .clone()
}

/// `LEAKCHECK_GRACE`: unset or empty means "not set".
pub(crate) fn grace_from_env() -> Result<Option<Duration>, String> {
    match std::env::var(GRACE_ENV) {
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(v)) => Err(format!(
            "leakcheck: {GRACE_ENV}={v:?} is not valid UTF-8; write a duration such as `500ms` or `2s`"
        )),
        Ok(v) if v.trim().is_empty() => Ok(None),
        Ok(v) => humantime::parse_duration(v.trim()).map(Some).map_err(|e| {
            format!(
                "leakcheck: {GRACE_ENV}={v:?} is not a duration ({e}); write a number with a \
                 unit, such as `500ms` or `2s`"
            )
        }),
    }
}

/// The keys of `leakcheck.toml`: the top level, and each `[tests.<target>]`
/// table (which holds no `tests` of its own).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Keys {
    grace: Option<toml::Spanned<String>>,
    max_tasks: Option<usize>,
    #[serde(default)]
    ignore_spawn_site: Patterns,
    #[serde(default)]
    ignore_fn: Patterns,
    #[serde(default)]
    ignore_name: Patterns,
    #[serde(default)]
    tests: BTreeMap<String, Keys>,
}

/// A parsed and checked `leakcheck.toml`.
#[derive(Debug, Default)]
struct File {
    all: Settings,
    tests: BTreeMap<String, Settings>,
}

impl File {
    fn read(path: &Path) -> Result<File, String> {
        let shown = path.display();
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("leakcheck: cannot read {shown}: {e}"))?;
        File::parse(&text).map_err(|e| format!("leakcheck: {shown}: {e}"))
    }

    fn parse(text: &str) -> Result<File, String> {
        let mut keys: Keys = toml::from_str(text).map_err(|e| e.to_string())?;
        let mut tests = BTreeMap::new();
        for (target, table) in std::mem::take(&mut keys.tests) {
            let prefix = format!("tests.{target}.");
            if !table.tests.is_empty() {
                return Err(format!(
                    "`{prefix}tests` is not a setting: targets do not nest"
                ));
            }
            tests.insert(target.replace('-', "_"), table.check(text, &prefix)?);
        }
        Ok(File {
            all: keys.check(text, "")?,
            tests,
        })
    }

    /// The top-level settings, overridden and extended by the target's table.
    fn for_target(&self, target: Option<&str>) -> Settings {
        let mut settings = self.all.clone();
        let Some(own) = target.and_then(|t| self.tests.get(&t.replace('-', "_"))) else {
            return settings;
        };
        settings.grace = own.grace.or(settings.grace);
        settings.max_tasks = own.max_tasks.or(settings.max_tasks);
        settings
            .ignore_spawn_site
            .extend(own.ignore_spawn_site.iter().cloned());
        settings.ignore_fn.extend(own.ignore_fn.iter().cloned());
        settings.ignore_name.extend(own.ignore_name.iter().cloned());
        settings
    }
}

impl Keys {
    /// Checks values serde cannot: the grace is a duration, `max_tasks` and
    /// patterns are not empty. `prefix` names the table in messages.
    fn check(self, text: &str, prefix: &str) -> Result<Settings, String> {
        let grace = match self.grace {
            None => None,
            Some(spanned) => {
                let line = text[..spanned.span().start].lines().count().max(1);
                let value = spanned.into_inner();
                Some(humantime::parse_duration(value.trim()).map_err(|e| {
                    format!(
                        "line {line}: `{prefix}grace = {value:?}` is not a duration ({e}); \
                         write e.g. `grace = \"2s\"`"
                    )
                })?)
            }
        };
        if self.max_tasks == Some(0) {
            return Err(format!(
                "`{prefix}max_tasks` must be at least 1, e.g. `max_tasks = 100`"
            ));
        }
        for (key, patterns) in [
            ("ignore_spawn_site", &self.ignore_spawn_site),
            ("ignore_fn", &self.ignore_fn),
            ("ignore_name", &self.ignore_name),
        ] {
            if patterns.0.iter().any(|p| p.trim().is_empty()) {
                return Err(format!(
                    "an empty `{prefix}{key}` pattern would match every task; remove it"
                ));
            }
        }
        Ok(Settings {
            grace,
            max_tasks: self.max_tasks,
            ignore_spawn_site: self.ignore_spawn_site.0,
            ignore_fn: self.ignore_fn.0,
            ignore_name: self.ignore_name.0,
        })
    }
}

/// A string or an array of strings.
#[derive(Debug, Default)]
struct Patterns(Vec<String>);

impl<'de> Deserialize<'de> for Patterns {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Patterns, D::Error> {
        struct OneOrMany;
        impl<'de> Visitor<'de> for OneOrMany {
            type Value = Patterns;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or an array of strings")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Patterns, E> {
                Ok(Patterns(vec![v.to_owned()]))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Patterns, A::Error> {
                let mut all = Vec::new();
                while let Some(one) = seq.next_element::<String>()? {
                    all.push(one);
                }
                Ok(Patterns(all))
            }
        }
        deserializer.deserialize_any(OneOrMany)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_level_and_target_tables_merge() {
        let file = File::parse(
            r#"
            grace = "2s"
            ignore_fn = "pool::reaper"
            [tests.pool-tests]
            grace = "31s"
            ignore_name = ["reaper", "flusher"]
            "#,
        )
        .unwrap();
        let pool = file.for_target(Some("pool_tests"));
        assert_eq!(pool.grace, Some(Duration::from_secs(31)));
        assert_eq!(pool.ignore_fn, ["pool::reaper"]);
        assert_eq!(pool.ignore_name, ["reaper", "flusher"]);
        let other = file.for_target(Some("other"));
        assert_eq!(other.grace, Some(Duration::from_secs(2)));
        assert!(other.ignore_name.is_empty());
    }

    #[test]
    fn unknown_keys_are_named_with_their_line() {
        let err = File::parse("grace = \"1s\"\ngrase = \"2s\"\n").unwrap_err();
        assert!(err.contains("line 2"), "{err}");
        assert!(err.contains("grase"), "{err}");
        assert!(err.contains("`grace`"), "expected keys listed: {err}");
    }

    #[test]
    fn bad_values_say_what_to_write() {
        let err = File::parse("\n[tests.a]\ngrace = \"soon\"\n").unwrap_err();
        assert!(err.contains("line 3"), "{err}");
        assert!(
            err.contains("`tests.a.grace = \"soon\"` is not a duration"),
            "{err}"
        );
        let err = File::parse("max_tasks = 0").unwrap_err();
        assert!(err.contains("`max_tasks` must be at least 1"), "{err}");
        let err = File::parse("ignore_fn = 3").unwrap_err();
        assert!(err.contains("a string or an array of strings"), "{err}");
    }

    #[test]
    fn test_arguments_win_and_ignores_add_up() {
        let settings = Settings {
            grace: Some(Duration::from_secs(5)),
            max_tasks: Some(9),
            ignore_name: vec!["from-file".into()],
            ..Settings::default()
        };
        let options = settings.apply(
            Options::new()
                .grace(Duration::from_millis(20))
                .ignore_name("from-test"),
        );
        assert_eq!(options.grace_duration(), Duration::from_millis(20));
        assert_eq!(options.max_task_limit(), Some(9));
        assert_eq!(options.ignore().names, ["from-test", "from-file"]);
    }
}
