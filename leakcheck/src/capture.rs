//! [`Capture`]: how much a tracker records per task.

/// How much a tracker records per task. Each level includes the ones above
/// it; the cost of each is measured in `BENCHMARKS.md`.
///
/// ```
/// use leakcheck::{Capture, Options};
/// let options = Options::new().capture(Capture::SpawnSites);
/// assert_eq!(options.capture_level(), Capture::SpawnSites);
/// assert_eq!(Options::new().capture_level(), Capture::CallChains);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[non_exhaustive]
pub enum Capture {
    /// Spawn site, parent task and age of every live task: cheap enough to
    /// leave on in production (tokio's spawn and terminate hooks).
    SpawnSites,
    /// Plus poll state: running or idle, poll count, idle and busy time
    /// (tokio's before/after-poll hooks).
    Polls,
    /// Plus the call chain that led to each spawn (a frame-pointer walk per
    /// spawn). The default, and what `#[leakcheck::test]` uses.
    #[default]
    CallChains,
}

impl Capture {
    /// Whether the poll hooks are installed.
    #[cfg_attr(not(tokio_unstable), allow(dead_code))]
    pub(crate) fn polls(self) -> bool {
        self >= Capture::Polls
    }

    /// Whether a call chain is captured per spawn.
    #[cfg_attr(not(tokio_unstable), allow(dead_code))]
    pub(crate) fn chains(self) -> bool {
        self >= Capture::CallChains
    }
}
