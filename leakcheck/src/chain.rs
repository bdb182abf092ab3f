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
    let n = walk::walk(&mut buf);
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
            let ok = walk::self_check();
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

/// One symbolized frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Frame {
    /// Demangled function name without the hash suffix.
    pub(crate) function: String,
    /// `path:line:col` where known.
    pub(crate) location: Option<String>,
}

impl std::fmt::Display for Frame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.location {
            Some(at) => write!(f, "{} at {at}", self.function),
            None => f.write_str(&self.function),
        }
    }
}

impl Frame {
    /// tokio, std, core, alloc, libtest and leakcheck's own frames, and
    /// frames without a symbol: never what a user needs to read first.
    pub(crate) fn is_internal(&self) -> bool {
        const INTERNAL: &[&str] = &[
            "tokio::",
            "std::",
            "core::",
            "alloc::",
            "leakcheck::",
            "test::",
            "__rust",
            "__libc",
            // tokio's `tracing` feature wraps every task in `Instrumented`
            "tracing::",
        ];
        // `<&dyn core::ops::Fn<..> as ..>::call_once` names its self type first
        let f = self
            .function
            .trim_start_matches(['<', '&'])
            .trim_start_matches("mut ")
            .trim_start_matches("dyn ");
        let in_toolchain = self
            .location
            .as_deref()
            .is_some_and(|l| l.starts_with("/rustc/"));
        f.is_empty()
            || in_toolchain
            || INTERNAL.iter().any(|p| f.starts_with(p))
            || matches!(f, "_start" | "main" | "clone" | "clone3" | "start_thread")
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

fn resolve_ip(ip: usize) -> Vec<Frame> {
    let mut frames = Vec::new();
    // `resolve` looks up `ip - 1`, which is right for return addresses.
    backtrace::resolve(ip as *mut std::ffi::c_void, |symbol| {
        let function = symbol.name().map(|n| format!("{n:#}")).unwrap_or_default();
        let location = symbol.filename().zip(symbol.lineno()).map(|(file, line)| {
            let file = relative(file).display();
            match symbol.colno() {
                Some(col) => format!("{file}:{line}:{col}"),
                None => format!("{file}:{line}"),
            }
        });
        frames.push(Frame { function, location });
    });
    frames
}

/// `path` relative to the workspace root when it is under it; a file of a
/// crates.io dependency as `crate-1.2.3/src/file.rs`.
pub(crate) fn relative(path: &std::path::Path) -> &std::path::Path {
    if let Ok(inside) = path.strip_prefix(workspace_root()) {
        return inside;
    }
    // ~/.cargo/registry/src/<index>/<crate-version>/...
    let mut parts = path.components();
    while let Some(part) = parts.next() {
        if part.as_os_str() == "registry" && parts.next().is_some_and(|p| p.as_os_str() == "src") {
            parts.next(); // the index directory
            return parts.as_path();
        }
    }
    path
}

/// Where paths in reports are relative to: the nearest ancestor of the
/// working directory holding a `Cargo.lock` (the workspace root, where
/// spawn sites' paths start), else the working directory.
fn workspace_root() -> &'static std::path::Path {
    static ROOT: OnceLock<std::path::PathBuf> = OnceLock::new();
    ROOT.get_or_init(|| {
        let cwd = std::env::current_dir().unwrap_or_default();
        cwd.ancestors()
            .find(|dir| dir.join("Cargo.lock").is_file())
            .unwrap_or(&cwd)
            .to_path_buf()
    })
}

#[cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]
mod walk {
    use std::cell::Cell;

    thread_local! {
        /// Highest address of this thread's stack; 0 until looked up, 1 if unknown.
        static STACK_TOP: Cell<usize> = const { Cell::new(0) };
    }

    fn stack_top() -> usize {
        STACK_TOP
            .try_with(|top| {
                if top.get() == 0 {
                    top.set(lookup_stack_top().unwrap_or(1));
                }
                top.get()
            })
            .unwrap_or(1)
    }

    fn lookup_stack_top() -> Option<usize> {
        // SAFETY: pthread_getattr_np fills `attr` for the calling thread; it is
        // destroyed on every path after a successful init.
        unsafe {
            let mut attr: libc::pthread_attr_t = std::mem::zeroed();
            if libc::pthread_getattr_np(libc::pthread_self(), &mut attr) != 0 {
                return None;
            }
            let mut addr: *mut libc::c_void = std::ptr::null_mut();
            let mut size: libc::size_t = 0;
            let rc = libc::pthread_attr_getstack(&attr, &mut addr, &mut size);
            libc::pthread_attr_destroy(&mut attr);
            (rc == 0 && !addr.is_null()).then(|| addr as usize + size)
        }
    }

    #[inline(always)]
    fn frame_pointer() -> usize {
        let fp: usize;
        // SAFETY: reads a register; no memory access.
        unsafe {
            #[cfg(target_arch = "x86_64")]
            std::arch::asm!("mov {}, rbp", out(reg) fp, options(nomem, nostack, preserves_flags));
            #[cfg(target_arch = "aarch64")]
            std::arch::asm!("mov {}, x29", out(reg) fp, options(nomem, nostack, preserves_flags));
        }
        fp
    }

    /// Walks the frame-pointer chain into `buf`, innermost return address
    /// first. Every load is bounded to [this frame, top of this thread's
    /// stack) and each step must move up the stack, so a missing or forged
    /// frame pointer ends the walk instead of faulting.
    #[inline(never)]
    pub(super) fn walk(buf: &mut [usize]) -> usize {
        let top = stack_top();
        if top <= 1 {
            return 0;
        }
        let here = 0u8;
        let low = std::ptr::addr_of!(here) as usize;
        let word = std::mem::size_of::<usize>();
        let mut fp = frame_pointer();
        let mut n = 0;
        while n < buf.len() {
            if fp < low || fp % word != 0 || fp.saturating_add(2 * word) > top {
                break;
            }
            // SAFETY: fp and fp+word lie inside this thread's live stack
            // (checked above), which is mapped and readable.
            let (next, ret) = unsafe {
                (
                    std::ptr::read_volatile(fp as *const usize),
                    std::ptr::read_volatile((fp + word) as *const usize),
                )
            };
            if ret == 0 {
                break;
            }
            buf[n] = ret;
            n += 1;
            if next <= fp {
                break;
            }
            fp = next;
        }
        n
    }

    /// Frame pointers are usable if our walk and the DWARF unwinder agree
    /// on the callers of this function.
    #[inline(never)]
    pub(super) fn self_check() -> bool {
        let mut walked = [0usize; 8];
        let n = walk(&mut walked);
        if n < 3 {
            return false;
        }
        let mut unwound = Vec::with_capacity(16);
        backtrace::trace(|frame| {
            unwound.push(frame.ip() as usize);
            unwound.len() < 16
        });
        walked[1..3].iter().all(|ip| unwound.contains(ip))
    }
}

#[cfg(not(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
)))]
mod walk {
    pub(super) fn walk(_buf: &mut [usize]) -> usize {
        0
    }

    pub(super) fn self_check() -> bool {
        false
    }
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

    #[test]
    fn internal_frames_are_recognised() {
        let f = |name: &str| Frame {
            function: name.into(),
            location: None,
        };
        assert!(f("tokio::runtime::task::spawn").is_internal());
        assert!(f("<core::pin::Pin<P> as core::future::future::Future>::poll").is_internal());
        assert!(f("leakcheck::harness::run_test").is_internal());
        assert!(f(
            "<&dyn core::ops::function::Fn<()> as core::ops::function::FnOnce<()>>::call_once"
        )
        .is_internal());
        assert!(!f("leakcheck_tests::start_ticker").is_internal());
        assert!(!f("my_app::server::run").is_internal());
        assert!(
            f("<tracing::instrument::Instrumented<T> as core::future::future::Future>::poll")
                .is_internal()
        );
    }

    #[test]
    fn registry_paths_shorten_to_the_crate() {
        let p = std::path::Path::new(
            "/root/.cargo/registry/src/index.crates.io-1949/tokio-1.54.1/src/task/spawn.rs",
        );
        assert_eq!(
            relative(p),
            std::path::Path::new("tokio-1.54.1/src/task/spawn.rs")
        );
    }
}
