//! Spawn sites interned to `u32` indices, so a task record holds 4 bytes
//! for its site: a process-wide, append-only list behind a read-mostly
//! lock, and a small per-thread cache in front of it.

use std::cell::Cell;
use std::panic::Location;

use parking_lot::RwLock;
use rustc_hash::{FxBuildHasher, FxHashMap};

use super::SpawnSite;

/// Spawn sites by index (`list[index - 1]`; 0 means "none").
struct Sites {
    /// By the `Location`'s address.
    index: FxHashMap<usize, u32>,
    list: Vec<SpawnSite>,
}

/// Read-mostly: a thread takes the write lock only for a site nobody has
/// spawned from before.
static SITES: RwLock<Sites> = parking_lot::const_rwlock(Sites {
    index: FxHashMap::with_hasher(FxBuildHasher),
    list: Vec::new(),
});

/// Entries of each thread's cache (direct-mapped; 4 KiB).
const CACHE: usize = 256;

thread_local! {
    /// (`Location` address, index) pairs: a spawn hook finds its site's
    /// index here without touching the global map.
    static RECENT: [Cell<(usize, u32)>; CACHE] = const { [const { Cell::new((0, 0)) }; CACHE] };
}

/// The index of a spawn site (never 0). A few ns when this thread has
/// seen the site recently; a shared lock otherwise, an exclusive one the
/// first time any thread spawns from it.
#[inline]
#[cfg_attr(not(tokio_unstable), allow(dead_code))]
pub(crate) fn intern(at: &'static Location<'static>) -> u32 {
    let key = std::ptr::from_ref(at) as usize;
    let slot = ((key as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 56) as usize % CACHE;
    RECENT
        .try_with(|cache| {
            let (k, index) = cache[slot].get();
            if k == key {
                return index;
            }
            let index = intern_slow(at);
            cache[slot].set((key, index));
            index
        })
        .unwrap_or_else(|_| intern_slow(at))
}

#[cold]
fn intern_slow(at: &'static Location<'static>) -> u32 {
    let key = std::ptr::from_ref(at) as usize;
    if let Some(&index) = SITES.read().index.get(&key) {
        return index;
    }
    let mut sites = SITES.write();
    if let Some(&index) = sites.index.get(&key) {
        return index;
    }
    sites.list.push(SpawnSite::from(at));
    // Spawn sites are places in the code: far fewer than 2^32.
    let index = sites.list.len() as u32;
    sites.index.insert(key, index);
    index
}

/// The spawn site with this index.
pub(crate) fn site(index: u32) -> Option<SpawnSite> {
    let i = (index as usize).checked_sub(1)?;
    SITES.read().list.get(i).copied()
}

/// Every site interned so far, to resolve many indices without the lock.
#[cfg(tokio_unstable)]
#[derive(Debug, Clone)]
pub(crate) struct Resolver(Vec<SpawnSite>);

#[cfg(tokio_unstable)]
impl Resolver {
    /// A copy of the list as it is now (sites are few).
    pub(crate) fn now() -> Resolver {
        Resolver(SITES.read().list.clone())
    }

    /// The spawn site with this index, if it was interned before [`Resolver::now`].
    #[inline]
    pub(crate) fn site(&self, index: u32) -> Option<SpawnSite> {
        self.0.get((index as usize).checked_sub(1)?).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sites_intern_to_stable_indices() {
        let a = Location::caller();
        let b = Location::caller();
        let (ia, ib) = (intern(a), intern(b));
        assert_ne!(ia, 0);
        assert_ne!(ia, ib);
        assert_eq!(intern(a), ia, "cached");
        assert_eq!(intern_slow(a), ia, "global map agrees");
        assert_eq!(site(ia), Some(SpawnSite::from(a)));
        #[cfg(tokio_unstable)]
        assert_eq!(Resolver::now().site(ib), Some(SpawnSite::from(b)));
        assert_eq!(site(0), None);
    }
}
