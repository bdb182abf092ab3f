//! `max_tasks`: the peak number of spawned tasks alive at once, counted in
//! the spawn and terminate hooks, and which spawn sites made it up (kept
//! by interned site index, resolved for the report).

use rustc_hash::FxHashMap;

use parking_lot::Mutex;

use crate::site::{self, SpawnSite};

/// The moment the most spawned tasks were alive, when over `max_tasks`.
///
/// ```
/// let fanout = leakcheck::Fanout::default();
/// assert_eq!(fanout.peak, 0);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Fanout {
    /// The limit that was set.
    pub limit: usize,
    /// The most tasks alive at once.
    pub peak: usize,
    /// How many of the peak came from each spawn site, most first.
    pub sites: Vec<(SpawnSite, usize)>,
}

/// Live tasks per spawn site, and their make-up at the highest peak seen.
#[derive(Debug)]
pub(crate) struct FanoutCounts {
    limit: usize,
    /// Live count per spawn-site index.
    live: FxHashMap<u32, usize>,
    total: usize,
    peak: usize,
    at_peak: Vec<(u32, usize)>,
}

impl FanoutCounts {
    pub(crate) fn new(limit: usize) -> Mutex<FanoutCounts> {
        Mutex::new(FanoutCounts {
            limit,
            live: FxHashMap::default(),
            total: 0,
            peak: 0,
            at_peak: Vec::new(),
        })
    }

    #[cfg_attr(not(tokio_unstable), allow(dead_code))]
    pub(crate) fn spawned(&mut self, at: u32) {
        *self.live.entry(at).or_insert(0) += 1;
        self.total += 1;
        if self.total > self.peak {
            self.peak = self.total;
            if self.peak > self.limit {
                self.at_peak = self
                    .live
                    .iter()
                    .filter(|(_, n)| **n > 0)
                    .map(|(site, n)| (*site, *n))
                    .collect();
            }
        }
    }

    #[cfg_attr(not(tokio_unstable), allow(dead_code))]
    pub(crate) fn ended(&mut self, at: u32) {
        if let Some(n) = self.live.get_mut(&at) {
            *n = n.saturating_sub(1);
            self.total = self.total.saturating_sub(1);
        }
    }

    /// Starts counting afresh (a new baseline).
    pub(crate) fn reset(&mut self) {
        self.live.clear();
        self.total = 0;
        self.peak = 0;
        self.at_peak.clear();
    }

    /// The failure, if the limit was exceeded.
    pub(crate) fn failure(&self) -> Option<Fanout> {
        if self.peak <= self.limit {
            return None;
        }
        let mut sites: Vec<(SpawnSite, usize)> = self
            .at_peak
            .iter()
            .filter_map(|&(at, n)| Some((site::indexed(at)?, n)))
            .collect();
        sites.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        Some(Fanout {
            limit: self.limit,
            peak: self.peak,
            sites,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fanout_remembers_the_peak_make_up() {
        let (a, b) = (
            std::panic::Location::caller(),
            std::panic::Location::caller(),
        );
        let (ia, ib) = (site::intern(a), site::intern(b));
        let f = FanoutCounts::new(2);
        let mut f = f.lock();
        f.spawned(ia);
        f.spawned(ia);
        f.spawned(ib);
        f.ended(ia);
        f.ended(ia);
        f.spawned(ib);
        let failure = f.failure().unwrap();
        assert_eq!(failure.peak, 3);
        let (a, b) = (SpawnSite::from(a), SpawnSite::from(b));
        assert_eq!(failure.sites, vec![(a, 2), (b, 1)]);
    }
}
