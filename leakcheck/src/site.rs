//! [`SpawnSite`]: where a task was spawned, printed the same on every machine.

use std::collections::HashSet;
use std::fmt;
use std::panic::Location;
use std::sync::OnceLock;

use parking_lot::Mutex;

use crate::paths;

mod index;
#[cfg(any(tokio_unstable, test))]
pub(crate) use index::intern;
pub(crate) use index::site as indexed;
#[cfg(tokio_unstable)]
pub(crate) use index::Resolver;

/// Where a task was spawned: the `tokio::spawn` (or `JoinSet::spawn`,
/// `Handle::spawn`, ...) call, as `path:line:col`.
///
/// `Display` prints the short, portable path: relative to the workspace
/// for your own code, `crate-1.2.3/src/file.rs` for a dependency.
///
/// ```
/// let site = leakcheck::SpawnSite::from(std::panic::Location::caller());
/// assert_eq!(site.line(), line!() - 1);
/// assert!(site.to_string().ends_with(&format!(":{}:{}", site.line(), site.column())));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SpawnSite {
    file: &'static str,
    line: u32,
    column: u32,
}

impl SpawnSite {
    /// The file as rustc recorded it (absolute for dependencies).
    ///
    /// ```
    /// let site = leakcheck::SpawnSite::from(std::panic::Location::caller());
    /// assert!(site.file().ends_with(".rs"));
    /// ```
    pub fn file(&self) -> &'static str {
        self.file
    }

    /// The short, portable form of [`file`](SpawnSite::file), as reports print it.
    ///
    /// ```
    /// let site = leakcheck::SpawnSite::from(std::panic::Location::caller());
    /// assert!(!site.short_file().starts_with('/'));
    /// ```
    pub fn short_file(&self) -> String {
        paths::short(self.file).into_owned()
    }

    /// The 1-based line.
    ///
    /// ```
    /// assert!(leakcheck::SpawnSite::from(std::panic::Location::caller()).line() > 0);
    /// ```
    pub fn line(&self) -> u32 {
        self.line
    }

    /// The 1-based column.
    ///
    /// ```
    /// assert!(leakcheck::SpawnSite::from(std::panic::Location::caller()).column() > 0);
    /// ```
    pub fn column(&self) -> u32 {
        self.column
    }

    /// Whether an ignore rule's text names this site: the text is found in
    /// `path:line:col`, in the short or in the recorded form of the path.
    pub(crate) fn contains(&self, text: &str) -> bool {
        let raw = format!("{}:{}:{}", self.file, self.line, self.column);
        raw.contains(text) || self.to_string().contains(text)
    }

    /// A site from parts read at run time (tokio's tracing spans carry the
    /// spawn location as fields), with the file already interned.
    #[cfg_attr(not(feature = "tracing"), allow(dead_code))]
    pub(crate) fn new(file: &'static str, line: u32, column: u32) -> SpawnSite {
        SpawnSite { file, line, column }
    }
}

/// `file` as a `&'static str`: source file names are few and live as long
/// as the program, so each is kept once. tokio hands the same `&'static str`
/// for every spawn from one place, so a small per-thread cache keyed by its
/// address answers most calls without the lock.
#[cfg_attr(not(feature = "tracing"), allow(dead_code))]
pub(crate) fn intern_file(file: &str) -> &'static str {
    thread_local! {
        static RECENT: std::cell::Cell<(usize, usize, Option<&'static str>)> =
            const { std::cell::Cell::new((0, 0, None)) };
    }
    let key = (file.as_ptr() as usize, file.len());
    if let Ok((ptr, len, Some(known))) = RECENT.try_with(std::cell::Cell::get) {
        if (ptr, len) == key {
            return known;
        }
    }
    static FILES: OnceLock<Mutex<HashSet<&'static str>>> = OnceLock::new();
    let mut files = FILES.get_or_init(Default::default).lock();
    let interned = match files.get(file) {
        Some(known) => *known,
        None => {
            let leaked: &'static str = Box::leak(file.to_owned().into_boxed_str());
            files.insert(leaked);
            leaked
        }
    };
    let _ = RECENT.try_with(|r| r.set((key.0, key.1, Some(interned))));
    interned
}

impl From<&'static Location<'static>> for SpawnSite {
    fn from(location: &'static Location<'static>) -> SpawnSite {
        SpawnSite {
            file: location.file(),
            line: location.line(),
            column: location.column(),
        }
    }
}

impl fmt::Display for SpawnSite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}",
            paths::short(self.file),
            self.line,
            self.column
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_sites_print_short_and_match_both_forms() {
        let file =
            "/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/pool-1.2.3/src/pool.rs";
        let site = SpawnSite::new(intern_file(file), 28, 13);
        assert_eq!(site.to_string(), "pool-1.2.3/src/pool.rs:28:13");
        assert!(site.contains("pool-1.2.3/src/pool.rs:28"));
        assert!(site.contains("/root/.cargo/registry"));
        assert!(!site.contains("pool.rs:29"));
    }

    #[test]
    fn interning_keeps_one_copy() {
        let a = intern_file(&String::from("src/a.rs"));
        let b = intern_file(&String::from("src/a.rs"));
        assert!(std::ptr::eq(a, b));
    }
}
