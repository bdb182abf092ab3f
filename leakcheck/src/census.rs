//! [`Census`]: live tasks counted by spawn site and call chain, straight
//! from the hooks' records, with no [`TaskInfo`](crate::TaskInfo) built
//! per task: what a debug endpoint needs for a million tasks in well
//! under a second.

use std::cmp::Reverse;
use std::hash::Hash;
use std::sync::Arc;
use std::time::Duration;

use rustc_hash::FxHashMap;

use crate::capture::Capture;
use crate::site::SpawnSite;
use crate::snapshot::TaskState;

/// The states in the order [`TaskGroup`] keeps their counts.
const STATES: [TaskState; 6] = [
    TaskState::Unknown,
    TaskState::NotPolled,
    TaskState::Running,
    TaskState::Scheduled,
    TaskState::Idle,
    TaskState::NeverWakes,
];

fn index(state: TaskState) -> usize {
    match state {
        TaskState::Unknown => 0,
        TaskState::NotPolled => 1,
        TaskState::Running => 2,
        TaskState::Scheduled => 3,
        TaskState::Idle => 4,
        TaskState::NeverWakes => 5,
    }
}

/// Every live task of a runtime at one moment, counted by spawn site and
/// call chain: what [`Tracker::census`](crate::Tracker::census) returns.
///
/// Much cheaper than a [`Snapshot`](crate::Snapshot) when there are many tasks and only
/// the totals matter (a dashboard, a debug endpoint's grouped view, a
/// periodic "what is piling up" log line).
///
/// ```
/// # #[cfg(tokio_unstable)] {
/// let mut builder = tokio::runtime::Builder::new_current_thread();
/// let tracker = leakcheck::instrument(&mut builder);
/// let rt = builder.build().unwrap();
/// let parked: Vec<_> = (0..3).map(|_| rt.spawn(std::future::pending::<()>())).collect();
/// let census = tracker.census();
/// assert_eq!(census.total, 3);
/// assert_eq!(census.groups.len(), 1, "one spawn site, one call chain");
/// assert_eq!(census.groups[0].count, 3);
/// # parked.iter().for_each(|t| t.abort());
/// # }
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Census {
    /// Live tasks counted. 0 in count mode, where tasks are not known one
    /// by one.
    pub total: usize,
    /// What the tracker captures per task.
    pub capture: Capture,
    /// One group per spawn site and call chain, largest first, then by
    /// spawn site.
    pub groups: Vec<TaskGroup>,
}

/// The live tasks spawned at one site through one call chain.
///
/// ```
/// # #[cfg(tokio_unstable)] {
/// use leakcheck::TaskState;
/// let mut builder = tokio::runtime::Builder::new_current_thread();
/// let tracker = leakcheck::instrument(&mut builder);
/// let rt = builder.build().unwrap();
/// let parked = rt.spawn(std::future::pending::<()>());
/// let group = tracker.census().groups.remove(0);
/// assert_eq!(group.count, 1);
/// assert_eq!(group.count_in(TaskState::NotPolled), 1, "not polled yet");
/// assert!(group.spawn_site.unwrap().file().ends_with(".rs"));
/// assert!(group.oldest < std::time::Duration::from_secs(60));
/// # parked.abort();
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TaskGroup {
    /// Where its tasks were spawned. `None` if unknown.
    pub spawn_site: Option<SpawnSite>,
    /// How many live tasks.
    pub count: usize,
    /// Age of the oldest.
    pub oldest: Duration,
    states: [usize; 6],
    pub(crate) chain: u32,
    /// Set only in the census the pprof view takes (one group per name).
    pub(crate) name: Option<Arc<str>>,
}

impl TaskGroup {
    /// How many of its tasks are in `state` (all of them are
    /// [`TaskState::Unknown`] when poll state is not captured).
    ///
    /// ```
    /// # #[cfg(tokio_unstable)] {
    /// use leakcheck::{Capture, Options, TaskState};
    /// let mut builder = tokio::runtime::Builder::new_current_thread();
    /// let tracker = Options::new().capture(Capture::SpawnSites).instrument(&mut builder);
    /// let rt = builder.build().unwrap();
    /// let parked = rt.spawn(std::future::pending::<()>());
    /// assert_eq!(tracker.census().groups[0].count_in(TaskState::Unknown), 1);
    /// # parked.abort();
    /// # }
    /// ```
    pub fn count_in(&self, state: TaskState) -> usize {
        self.states[index(state)]
    }

    /// The states its tasks are in, with how many are in each; states
    /// with no task are left out.
    ///
    /// ```
    /// # #[cfg(tokio_unstable)] {
    /// let mut builder = tokio::runtime::Builder::new_current_thread();
    /// let tracker = leakcheck::instrument(&mut builder);
    /// let rt = builder.build().unwrap();
    /// let parked = rt.spawn(std::future::pending::<()>());
    /// let states: Vec<_> = tracker.census().groups[0].states().collect();
    /// assert_eq!(states, [(leakcheck::TaskState::NotPolled, 1)]);
    /// # parked.abort();
    /// # }
    /// ```
    pub fn states(&self) -> impl Iterator<Item = (TaskState, usize)> + '_ {
        STATES
            .iter()
            .zip(self.states)
            .filter(|(_, n)| *n > 0)
            .map(|(s, n)| (*s, n))
    }

    /// The call chain its tasks were spawned through, innermost first, as
    /// [`TaskInfo::call_chain`](crate::TaskInfo::call_chain) prints it (empty below
    /// [`Capture::CallChains`]).
    ///
    /// ```
    /// # #[cfg(tokio_unstable)] {
    /// let mut builder = tokio::runtime::Builder::new_current_thread();
    /// let tracker = leakcheck::instrument(&mut builder);
    /// let rt = builder.build().unwrap();
    /// let parked = rt.spawn(std::future::pending::<()>());
    /// let chain = tracker.census().groups[0].call_chain();
    /// assert!(chain.iter().any(|f| f.contains("rust_out")), "{chain:?}");
    /// # parked.abort();
    /// # }
    /// ```
    pub fn call_chain(&self) -> Vec<String> {
        crate::chain::user_chain(self.chain)
    }
}

impl Census {
    /// The census of a build that sees no task one by one.
    #[cfg_attr(tokio_unstable, allow(dead_code))]
    pub(crate) fn empty(capture: Capture) -> Census {
        Census {
            total: 0,
            capture,
            groups: Vec::new(),
        }
    }
}

/// One group's counts while counting.
#[derive(Debug, Clone, Copy, Default)]
#[cfg_attr(not(tokio_unstable), allow(dead_code))] // counted from hook records
struct Tally {
    count: usize,
    states: [usize; 6],
    oldest: Duration,
}

/// Counts tasks by a key that names their group.
#[cfg_attr(not(tokio_unstable), allow(dead_code))] // counted from hook records
struct Counter<K> {
    groups: FxHashMap<K, Tally>,
    total: usize,
}

impl<K> Default for Counter<K> {
    fn default() -> Self {
        Counter {
            groups: FxHashMap::default(),
            total: 0,
        }
    }
}

/// A group's spawn site, call chain id and name.
#[cfg_attr(not(tokio_unstable), allow(dead_code))] // counted from hook records
type Named = (Option<SpawnSite>, u32, Option<Arc<str>>);

#[cfg_attr(not(tokio_unstable), allow(dead_code))] // counted from hook records
impl<K: Hash + Eq> Counter<K> {
    #[inline]
    fn add(&mut self, key: K, state: TaskState, age: Duration) {
        let tally = self.groups.entry(key).or_default();
        tally.count += 1;
        tally.states[index(state)] += 1;
        tally.oldest = tally.oldest.max(age);
        self.total += 1;
    }

    /// The census, each key turned into its group's site, chain and name.
    fn finish(self, capture: Capture, group: impl Fn(K) -> Named) -> Census {
        let mut groups: Vec<TaskGroup> = self
            .groups
            .into_iter()
            .map(|(key, t)| {
                let (spawn_site, chain, name) = group(key);
                TaskGroup {
                    spawn_site,
                    count: t.count,
                    oldest: t.oldest,
                    states: t.states,
                    chain,
                    name,
                }
            })
            .collect();
        groups.sort_unstable_by(|a, b| {
            let key = |g: &TaskGroup| (Reverse(g.count), g.spawn_site, g.chain, g.name.clone());
            key(a).cmp(&key(b))
        });
        Census {
            total: self.total,
            capture,
            groups,
        }
    }
}

/// Counts the hooks' records straight into a [`Census`].
#[cfg(tokio_unstable)]
pub(crate) struct RecordCounter {
    counter: Counter<(u32, u32, Option<Arc<str>>)>,
    capture: Capture,
    now: u32,
    #[cfg_attr(not(feature = "tracing"), allow(dead_code))]
    by_name: bool,
}

#[cfg(tokio_unstable)]
impl RecordCounter {
    /// Counts by spawn site and chain, and by task name if `by_name`; `now`
    /// is the tracker's clock.
    pub(crate) fn new(capture: Capture, now: u32, by_name: bool) -> RecordCounter {
        RecordCounter {
            counter: Counter::default(),
            capture,
            now,
            by_name,
        }
    }

    #[inline]
    pub(crate) fn add(&mut self, r: &crate::record::PollRecord) {
        let state = match self.capture.polls() {
            true => crate::snapshot::poll_state(r, self.now).0,
            false => TaskState::Unknown,
        };
        #[cfg(feature = "tracing")]
        let (state, name) = match crate::layer::brief(r.id) {
            Some(facts) => (
                crate::snapshot::refined(state, &facts),
                facts.name.filter(|_| self.by_name),
            ),
            None => (state, None),
        };
        #[cfg(not(feature = "tracing"))]
        let name = None;
        let age = crate::clock::since(self.now, r.spawned);
        self.counter.add((r.site, r.chain, name), state, age);
    }

    /// The census, spawn sites resolved with `sites`.
    pub(crate) fn finish(self, sites: &crate::site::Resolver) -> Census {
        self.counter.finish(self.capture, |(site, chain, name)| {
            (sites.site(site), chain, name)
        })
    }
}

#[cfg(all(test, tokio_unstable))]
mod tests {
    use std::panic::Location;

    use super::*;
    use crate::clock::since;
    use crate::record::PollRecord;
    use crate::site::{self, Resolver};

    fn record(id: u64, site: u32, poll_edges: u32, spawned: u32) -> PollRecord {
        PollRecord {
            id,
            site,
            poll_edges,
            spawned,
            ..PollRecord::default()
        }
    }

    #[test]
    fn records_count_by_site_and_state_largest_first() {
        let (a, b) = (Location::caller(), Location::caller());
        let (ia, ib) = (site::intern(a), site::intern(b));
        let records = [
            record(1, ib, 0, 900),
            record(2, ia, 2, 100),
            record(3, ia, 1, 500),
            record(4, ia, 4, 1000),
        ];
        let count = |capture| {
            let mut counter = RecordCounter::new(capture, 2048, false);
            records.iter().for_each(|r| counter.add(r));
            counter.finish(&Resolver::now())
        };
        let census = count(Capture::Polls);
        assert_eq!(census.total, 4);
        let [first, second] = &census.groups[..] else {
            panic!("{census:?}")
        };
        assert_eq!(first.spawn_site, Some(SpawnSite::from(a)));
        assert_eq!((first.count, first.oldest), (3, since(2048, 100)));
        let states: Vec<_> = first.states().collect();
        assert_eq!(states, [(TaskState::Running, 1), (TaskState::Idle, 2)]);
        assert_eq!(second.count_in(TaskState::NotPolled), 1);
        assert_eq!(second.spawn_site, Some(SpawnSite::from(b)));
        let unknown = count(Capture::SpawnSites);
        assert_eq!(unknown.groups[0].count_in(TaskState::Unknown), 3);
    }
}
