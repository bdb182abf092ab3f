//! The keys `#[leakcheck::test]` accepts, with what each takes.

use quote::ToTokens;

/// The keys the attribute accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Key {
    Flavor,
    WorkerThreads,
    StartPaused,
    UnhandledPanic,
    Crate,
    Grace,
    MaxTasks,
    IgnoreSpawnSite,
    IgnoreFn,
    IgnoreName,
}

impl Key {
    pub(crate) const ALL: [Key; 10] = [
        Key::Flavor,
        Key::WorkerThreads,
        Key::StartPaused,
        Key::UnhandledPanic,
        Key::Crate,
        Key::Grace,
        Key::MaxTasks,
        Key::IgnoreSpawnSite,
        Key::IgnoreFn,
        Key::IgnoreName,
    ];

    /// The key, and an example of the whole argument.
    fn spelling(self) -> (&'static str, &'static str) {
        match self {
            Key::Flavor => ("flavor", r#"flavor = "multi_thread""#),
            Key::WorkerThreads => ("worker_threads", "worker_threads = 4"),
            Key::StartPaused => ("start_paused", "start_paused = true"),
            Key::UnhandledPanic => ("unhandled_panic", r#"unhandled_panic = "shutdown_runtime""#),
            Key::Crate => ("crate", r#"crate = "my_leakcheck""#),
            Key::Grace => ("grace", r#"grace = "500ms""#),
            Key::MaxTasks => ("max_tasks", "max_tasks = 10"),
            Key::IgnoreSpawnSite => (
                "ignore_spawn_site",
                r#"ignore_spawn_site = "src/metrics.rs""#,
            ),
            Key::IgnoreFn => ("ignore_fn", r#"ignore_fn = "hyper::client""#),
            Key::IgnoreName => ("ignore_name", r#"ignore_name = "flusher""#),
        }
    }

    pub(crate) fn name(self) -> &'static str {
        self.spelling().0
    }

    pub(crate) fn example(self) -> &'static str {
        self.spelling().1
    }

    /// What the value must be, for "`key` takes ..." messages.
    pub(crate) fn expects(self) -> &'static str {
        match self {
            Key::WorkerThreads | Key::MaxTasks => "a positive integer",
            Key::StartPaused => "`true` or `false`",
            Key::Grace => "a duration string",
            Key::Crate => "a path in a string",
            Key::Flavor | Key::UnhandledPanic => "a string",
            Key::IgnoreSpawnSite | Key::IgnoreFn | Key::IgnoreName => {
                "a string or an array of strings"
            }
        }
    }

    pub(crate) fn from_path(path: &syn::Path) -> syn::Result<Key> {
        let found = path.to_token_stream().to_string().replace(' ', "");
        if let Some(key) = Key::ALL.into_iter().find(|key| key.name() == found) {
            return Ok(key);
        }
        let guess = Key::ALL
            .into_iter()
            .map(|key| (distance(&found, key.name()), key.name()))
            .min()
            .filter(|&(d, name)| d <= (name.len() / 3).max(1))
            .map(|(_, name)| format!(" (did you mean `{name}`?)"))
            .unwrap_or_default();
        let valid: Vec<_> = Key::ALL.iter().map(|k| format!("`{}`", k.name())).collect();
        let msg = format!(
            "unknown argument `{found}`{guess}; `#[leakcheck::test]` takes {}",
            valid.join(", ")
        );
        Err(syn::Error::new_spanned(path, msg))
    }
}

/// The Levenshtein distance between `a` and `b`, to suggest a key for a typo.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (diagonal + usize::from(ca != cb))
                .min(row[j] + 1)
                .min(above + 1);
            diagonal = above;
        }
    }
    row[b.len()]
}
