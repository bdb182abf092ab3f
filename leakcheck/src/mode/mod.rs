//! The one seam between the two ways leakcheck can observe tasks.
//!
//! With `--cfg tokio_unstable` ([`hooks`]), tokio's task hooks feed a table
//! of live tasks with spawn sites, parents, poll state and call chains.
//! Without it ([`count`], "count mode"), only tokio's stable live-task count
//! is available: a leak is known by number, not by identity. Both expose the
//! same items, so the rest of the crate has no `cfg` for this.
//!
//! Each mode provides:
//! - `Data`: what a tracker keeps in this mode, and `Data::new(Capture)`;
//! - `install(builder, state, data)`: hooks the runtime up;
//! - `set_baseline(state, data, handle)`: remembers what is alive now;
//! - `live_count(data)`, `live_tasks(state, data, which)`: what is alive;
//! - `census(state, data, by_name)`: what is alive, counted by spawn site
//!   and call chain;
//! - `table_bytes(data)`: memory the live-task table holds;
//! - `unidentified(state, data, handle)`: leaked tasks known only by count;
//! - `IDENTITIES`: whether tasks are known one by one.

use std::hash::{Hash, Hasher};

#[cfg(tokio_unstable)]
mod hooks;
#[cfg(tokio_unstable)]
mod live;
#[cfg(tokio_unstable)]
pub(crate) use hooks::*;

#[cfg(not(tokio_unstable))]
mod count;
#[cfg(not(tokio_unstable))]
pub(crate) use count::*;

#[cfg_attr(not(any(tokio_unstable, feature = "tracing")), allow(dead_code))]
/// `task::Id` as the `u64` it prints as. tokio has no public accessor, but
/// `Id` hashes as exactly that one `u64`.
pub(crate) fn id_u64(id: tokio::task::Id) -> u64 {
    struct Capture(u64);
    impl Hasher for Capture {
        fn finish(&self) -> u64 {
            self.0
        }
        fn write(&mut self, bytes: &[u8]) {
            for b in bytes {
                self.0 = (self.0 << 8) | u64::from(*b);
            }
        }
        fn write_u64(&mut self, n: u64) {
            self.0 = n;
        }
    }
    let mut capture = Capture(0);
    id.hash(&mut capture);
    capture.0
}

/// Which live tasks [`live_tasks`] returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Which {
    /// Every live task.
    All,
    /// Only those spawned after the baseline.
    SinceBaseline,
    /// Those spawned after the baseline and the live tasks they descend
    /// from (what ignore rules that match a whole subtree look at).
    Lineage,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_u64_matches_display() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let handle = rt.spawn(async {});
        assert_eq!(id_u64(handle.id()).to_string(), handle.id().to_string());
    }
}
