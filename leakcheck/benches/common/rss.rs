//! Resident memory of this process, for the benchmarks that measure what
//! leakcheck keeps per task (`scale.rs`, `endpoint.rs`).

/// Resident bytes of this process (Linux: `/proc/self/statm`; 0 elsewhere).
pub fn resident_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as u64;
    pages * page
}
