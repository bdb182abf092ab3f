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

/// The environment variable that overrides `leakcheck.toml`'s grace for
/// every test check (a test's own `grace` still wins).
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
        let mut settings = match manifest_dir.and_then(|dir| find_file(dir).zip(Some(dir))) {
            Some((path, dir)) => {
                let file = parsed(&path)?;
                // a crate's own file names its own targets; a shared one
                // higher up may name other crates' too
                if path.parent() == Some(dir) {
                    checked_targets(&file, dir, &path)?;
                }
                file.for_target(target)
            }
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

/// [`File::check_targets`], once per process for each file.
fn checked_targets(file: &File, dir: &Path, path: &Path) -> Result<(), String> {
    type Cache = Mutex<HashMap<PathBuf, Result<(), String>>>;
    static CACHE: OnceLock<Cache> = OnceLock::new();
    let mut cache = CACHE.get_or_init(Default::default).lock();
    cache
        .entry(path.to_owned())
        .or_insert_with(|| file.check_targets(dir, path))
        .clone()
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

/// The names of the crate's targets in `dir` (`-` as `_`), if it has a
/// readable manifest: its library and
/// binaries, `tests/`, `benches/`, `examples/` and `src/bin/` files, and the
/// `[[test]]`-style tables of its `Cargo.toml`.
fn crate_targets(dir: &Path) -> Option<std::collections::BTreeSet<String>> {
    let mut names = std::collections::BTreeSet::new();
    let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).ok()?;
    let manifest: toml::Table = toml::from_str(&manifest).ok()?;
    let name_of = |t: &toml::Value| {
        t.get("name")
            .and_then(toml::Value::as_str)
            .map(str::to_owned)
    };
    names.extend(manifest.get("package").and_then(name_of));
    names.extend(manifest.get("lib").and_then(name_of));
    for kind in ["test", "bin", "bench", "example"] {
        if let Some(tables) = manifest.get(kind).and_then(toml::Value::as_array) {
            names.extend(tables.iter().filter_map(name_of));
        }
    }
    for sub in ["tests", "benches", "examples", "src/bin"] {
        let Ok(entries) = std::fs::read_dir(dir.join(sub)) else {
            continue;
        };
        for path in entries.flatten().map(|e| e.path()) {
            let target = match path.is_dir() {
                true => path.join("main.rs").is_file(),
                false => path.extension().is_some_and(|e| e == "rs"),
            };
            if let (true, Some(stem)) = (target, path.file_stem()) {
                names.insert(stem.to_string_lossy().into_owned());
            }
        }
    }
    Some(names.into_iter().map(|n| n.replace('-', "_")).collect())
}

/// humantime's reason, where it helps ("time unit needed"), not where it
/// only gives a position ("expected number at 0").
fn why(e: &humantime::DurationError) -> String {
    match e {
        humantime::DurationError::NumberExpected(_)
        | humantime::DurationError::InvalidCharacter(_) => String::new(),
        other => format!(" ({other})"),
    }
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
                "leakcheck: {GRACE_ENV}={v:?} is not a duration{}; write a number with a \
                 unit, such as `500ms` or `2s`",
                why(&e)
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
    max_tasks: Option<toml::Spanned<usize>>,
    #[serde(default)]
    ignore_spawn_site: Option<toml::Spanned<Patterns>>,
    #[serde(default)]
    ignore_fn: Option<toml::Spanned<Patterns>>,
    #[serde(default)]
    ignore_name: Option<toml::Spanned<Patterns>>,
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

    /// An error if a `[tests.<target>]` table names no target of the crate
    /// in `dir` (a typo there would silently apply nothing).
    fn check_targets(&self, dir: &Path, path: &Path) -> Result<(), String> {
        if self.tests.is_empty() {
            return Ok(());
        }
        let Some(targets) = crate_targets(dir) else {
            return Ok(()); // no manifest to tell the targets: nothing to say
        };
        let Some(unknown) = self.tests.keys().find(|t| !targets.contains(*t)) else {
            return Ok(());
        };
        let list: Vec<&str> = targets.iter().map(String::as_str).collect();
        Err(format!(
            "leakcheck: {}: `[tests.{unknown}]` names no test target of this crate (its \
             targets: {}); a table is named after a test file, e.g. `[tests.pool]` for \
             tests/pool.rs",
            path.display(),
            list.join(", ")
        ))
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
        let line = |span: std::ops::Range<usize>| text[..span.start].lines().count().max(1);
        let grace = match self.grace {
            None => None,
            Some(spanned) => {
                let line = line(spanned.span());
                let value = spanned.into_inner();
                Some(humantime::parse_duration(value.trim()).map_err(|e| {
                    format!(
                        "line {line}: `{prefix}grace = {value:?}` is not a duration{}; \
                         write e.g. `grace = \"2s\"`",
                        why(&e)
                    )
                })?)
            }
        };
        if let Some(zero) = self.max_tasks.as_ref().filter(|m| *m.get_ref() == 0) {
            return Err(format!(
                "line {}: `{prefix}max_tasks` must be at least 1, e.g. `max_tasks = 100`",
                line(zero.span())
            ));
        }
        let patterns = |key: &str, spanned: Option<toml::Spanned<Patterns>>| {
            let Some(spanned) = spanned else {
                return Ok(Vec::new());
            };
            match spanned.get_ref().0.iter().any(|p| p.trim().is_empty()) {
                true => Err(format!(
                    "line {}: an empty `{prefix}{key}` pattern would match every task; remove it",
                    line(spanned.span())
                )),
                false => Ok(spanned.into_inner().0),
            }
        };
        let ignore_spawn_site = patterns("ignore_spawn_site", self.ignore_spawn_site)?;
        let ignore_fn = patterns("ignore_fn", self.ignore_fn)?;
        let ignore_name = patterns("ignore_name", self.ignore_name)?;
        Ok(Settings {
            grace,
            max_tasks: self.max_tasks.map(toml::Spanned::into_inner),
            ignore_spawn_site,
            ignore_fn,
            ignore_name,
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
    fn a_table_must_name_a_target_of_the_crate() {
        let dir = std::env::temp_dir().join(format!("leakcheck-targets-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("tests")).unwrap();
        std::fs::write(dir.join("Cargo.toml"), "[package]\nname = \"my-pool\"\n").unwrap();
        std::fs::write(dir.join("tests/pool_api.rs"), "").unwrap();
        let path = dir.join(FILE_NAME);
        let good = File::parse("[tests.pool_api]\ngrace = \"1s\"\n[tests.my_pool]\n").unwrap();
        assert_eq!(good.check_targets(&dir, &path), Ok(()));
        let typo = File::parse("[tests.pool-apy]\ngrace = \"1s\"\n").unwrap();
        let err = typo.check_targets(&dir, &path).unwrap_err();
        assert!(
            err.contains("`[tests.pool_apy]` names no test target"),
            "{err}"
        );
        assert!(err.contains("its targets: my_pool, pool_api"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
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
        let err = File::parse("grace = \"1s\"\nmax_tasks = 0").unwrap_err();
        assert!(
            err.contains("line 2: `max_tasks` must be at least 1"),
            "{err}"
        );
        let err = File::parse("\n\nignore_name = [\"a\", \" \"]").unwrap_err();
        assert!(
            err.contains("line 3: an empty `ignore_name` pattern"),
            "{err}"
        );
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
