//! Call chains: which functions led to a `spawn`.
//!
//! Captured in the spawn hook by walking frame pointers (tens of
//! nanoseconds, no allocation once a chain has been seen), interned to a
//! `u32`, and symbolized only when a report needs it, with the result cached.
//! A binary built without frame pointers fails a start-up self-check and
//! gets no chains, never wrong ones.
// Count mode (no tokio_unstable) has no spawn hook to capture from.
#![cfg_attr(not(tokio_unstable), allow(dead_code))]

use std::collections::hash_map::Entry;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, OnceLock};

use parking_lot::{Mutex, RwLock};
use rustc_hash::{FxBuildHasher, FxHashMap};

use crate::frame::Frame;

/// Return addresses kept per chain: enough for the user frames above tokio's
/// spawn path (about ten frames) and a few callers beyond.
const MAX_FRAMES: usize = 32;

/// An interned call chain; `0` means "no chain".
pub(crate) type ChainId = u32;

/// Chains kept at most; past this, new chains are not recorded.
const MAX_CHAINS: usize = 1 << 20;

/// Captures the caller's chain and interns it. Never panics.
#[inline(never)]
pub(crate) fn capture() -> ChainId {
    if !walk_available() {
        return 0;
    }
    let mut buf = [0usize; MAX_FRAMES];
    let n = crate::walk::walk(&mut buf);
    if n == 0 {
        return 0;
    }
    interner().intern(&buf[..n])
}

/// Runs the frame-pointer self-check at load time, so the first spawn hook
/// never pays for it (it unwinds once with the DWARF unwinder, which
/// allocates and can take a millisecond).
#[ctor::ctor(unsafe)]
fn check_walk_at_load() {
    walk_available();
}

/// Whether frame-pointer walking works in this binary (checked once).
pub(crate) fn walk_available() -> bool {
    static STATE: AtomicU8 = AtomicU8::new(0); // 0 unknown, 1 yes, 2 no
    match STATE.load(Ordering::Relaxed) {
        1 => true,
        2 => false,
        _ => {
            let ok = crate::walk::self_check();
            STATE.store(if ok { 1 } else { 2 }, Ordering::Relaxed);
            ok
        }
    }
}

struct Interner {
    shards: [RwLock<FxHashMap<Arc<[usize]>, ChainId>>; 16],
    chains: Mutex<Vec<Arc<[usize]>>>,
}

fn interner() -> &'static Interner {
    static INTERNER: OnceLock<Interner> = OnceLock::new();
    INTERNER.get_or_init(|| Interner {
        shards: Default::default(),
        chains: Mutex::new(Vec::new()),
    })
}

impl Interner {
    fn intern(&self, ips: &[usize]) -> ChainId {
        let shard = &self.shards[(FxBuildHasher.hash_one(ips) >> 60) as usize];
        if let Some(&id) = shard.read().get(ips) {
            return id;
        }
        let mut map = shard.write();
        let key: Arc<[usize]> = ips.into();
        match map.entry(key.clone()) {
            Entry::Occupied(e) => *e.get(),
            Entry::Vacant(e) => {
                let mut chains = self.chains.lock();
                if chains.len() >= MAX_CHAINS {
                    return 0;
                }
                chains.push(key);
                let id = chains.len() as ChainId;
                *e.insert(id)
            }
        }
    }

    fn get(&self, id: ChainId) -> Option<Arc<[usize]>> {
        let index = (id as usize).checked_sub(1)?;
        self.chains.lock().get(index).cloned()
    }
}

/// The frames of a chain, innermost (closest to `spawn`) first.
pub(crate) fn resolve(id: ChainId) -> Arc<[Frame]> {
    static CACHE: OnceLock<Mutex<FxHashMap<ChainId, Arc<[Frame]>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    if let Some(frames) = cache.lock().get(&id) {
        return frames.clone();
    }
    let frames: Arc<[Frame]> = match interner().get(id) {
        Some(ips) => ips.iter().flat_map(|&ip| resolve_ip(ip)).collect(),
        None => Arc::from([]),
    };
    cache.lock().insert(id, frames.clone());
    frames
}

/// The user's frames of a chain as reports print them, innermost first
/// (see [`crate::frame::user_frames`]).
pub(crate) fn user_chain(id: ChainId) -> Vec<String> {
    crate::frame::user_frames(&resolve(id))
        .map(ToString::to_string)
        .collect()
}

/// The frames (inlined ones included) at return address `ip`.
pub(crate) fn resolve_ip(ip: usize) -> Vec<Frame> {
    let mut frames = Vec::new();
    // `resolve` looks up `ip - 1`, which is right for return addresses.
    backtrace::resolve(ip as *mut std::ffi::c_void, |symbol| {
        let function = symbol.name().map(|n| format!("{n:#}")).unwrap_or_default();
        frames.push(Frame::new(
            &function,
            symbol.filename(),
            symbol.lineno(),
            symbol.colno(),
        ));
    });
    frames
}

#[cfg(test)]
mod tests {
    use super::*;

    #[inline(never)]
    fn spawn_like() -> ChainId {
        capture()
    }

    #[inline(never)]
    fn outer_caller() -> ChainId {
        spawn_like()
    }

    #[test]
    fn chain_names_the_callers() {
        assert!(
            walk_available(),
            "this workspace builds with frame pointers"
        );
        let id = outer_caller();
        assert_ne!(id, 0);
        let frames = resolve(id);
        let names: Vec<_> = frames.iter().map(|f| f.function.as_str()).collect();
        let pos = |needle: &str| names.iter().position(|n| n.ends_with(needle));
        let (inner, outer) = (pos("tests::spawn_like"), pos("tests::outer_caller"));
        assert!(inner.is_some() && outer.is_some(), "{names:#?}");
        assert!(inner < outer, "innermost first: {names:#?}");
    }

    #[test]
    fn the_same_chain_interns_once() {
        let ids: Vec<_> = (0..3).map(|_| outer_caller()).collect();
        assert!(ids.windows(2).all(|w| w[0] == w[1]), "{ids:?}");
    }
}
