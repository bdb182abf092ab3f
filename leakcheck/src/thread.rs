//! [`ThreadInfo`]: an OS thread a report names.

use std::sync::{Arc, OnceLock};

use parking_lot::Mutex;
use rustc_hash::FxHashMap;

use crate::frame::Frame;

/// An OS thread still running when a test binary checked by
/// `verify_test_main!()` ended.
///
/// ```
/// let report = leakcheck::Report::default();
/// assert!(report.threads.is_empty());
/// ```
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct ThreadInfo {
    /// The name the kernel knows it by (the first 15 bytes of its Rust name).
    pub name: Option<String>,
    /// The kernel's id of the thread.
    pub tid: i32,
    /// The test whose code started it, if a test's did.
    pub test: Option<String>,
    pub(crate) chain: u32,
    /// The chain from the DWARF unwinder, when the frame-pointer walk found
    /// nothing (`chain` is 0): return addresses, innermost first.
    pub(crate) unwound: Option<Arc<[usize]>>,
}

impl ThreadInfo {
    /// The call chain that started the thread, innermost first, as
    /// `function at path:line:col` lines, with std/tokio/leakcheck frames
    /// left out.
    ///
    /// ```
    /// assert!(leakcheck::ThreadInfo::default().call_chain().is_empty());
    /// ```
    pub fn call_chain(&self) -> Vec<String> {
        crate::frame::user_frames(&self.frames())
            .filter(|f| !is_unwinder(&f.function))
            .map(ToString::to_string)
            .collect()
    }

    /// Every frame of the chain that started the thread, innermost first:
    /// from the frame-pointer walk, or else from the DWARF unwinder.
    pub(crate) fn frames(&self) -> Arc<[Frame]> {
        match (&self.unwound, self.chain) {
            (Some(ips), 0) => resolve_unwound(ips),
            _ => crate::chain::resolve(self.chain),
        }
    }

    /// Whether any call chain is known for the thread (none: leakcheck
    /// cannot tell whether it is a runtime's own).
    #[cfg_attr(not(feature = "process"), allow(dead_code))]
    pub(crate) fn chain_known(&self) -> bool {
        !self.frames().is_empty()
    }

    /// Whether tokio's blocking pool started it: a runtime's own worker or
    /// blocking thread, which belongs to its runtime. Decided by the
    /// innermost frame that is not std's, leakcheck's or the unwinder's, so
    /// that a thread a `spawn_blocking` closure starts (tokio's frames
    /// further out) is not.
    #[cfg_attr(not(feature = "process"), allow(dead_code))]
    pub(crate) fn is_runtime_thread(&self) -> bool {
        const STARTERS: [&str; 7] = [
            "std::",
            "core::",
            "alloc::",
            "leakcheck::",
            "<std::",
            "<core::",
            "<alloc::",
        ];
        self.frames()
            .iter()
            .map(|f| f.function.as_str())
            // C frames (the interposed `pthread_create`) have no path
            .find(|f| {
                f.contains("::") && !STARTERS.iter().any(|s| f.starts_with(s)) && !is_unwinder(f)
            })
            .is_some_and(|f| f.starts_with("tokio::runtime::blocking::pool::"))
    }
}

/// The `backtrace` crate's own frames, innermost in a DWARF-unwound chain.
fn is_unwinder(function: &str) -> bool {
    function.starts_with("backtrace::") || function.starts_with("<backtrace::")
}

/// The frames of a DWARF-unwound chain, symbolized once per chain (a
/// report asks several times per thread) and once per return address
/// (threads started the same way share most of theirs).
fn resolve_unwound(ips: &Arc<[usize]>) -> Arc<[Frame]> {
    type Cache<K> = OnceLock<Mutex<FxHashMap<K, Arc<[Frame]>>>>;
    static CHAINS: Cache<Arc<[usize]>> = OnceLock::new();
    static ADDRESSES: Cache<usize> = OnceLock::new();
    let chains = CHAINS.get_or_init(Default::default);
    if let Some(frames) = chains.lock().get(ips) {
        return frames.clone();
    }
    let addresses = ADDRESSES.get_or_init(Default::default);
    let mut frames = Vec::new();
    for &ip in ips.iter() {
        let known = addresses.lock().get(&ip).cloned();
        let at = known.unwrap_or_else(|| {
            // symbolized outside the lock: it can take a while
            let at: Arc<[Frame]> = crate::chain::resolve_ip(ip).into();
            addresses.lock().insert(ip, at.clone());
            at
        });
        frames.extend(at.iter().cloned());
    }
    let frames: Arc<[Frame]> = frames.into();
    chains.lock().insert(ips.clone(), frames.clone());
    frames
}
