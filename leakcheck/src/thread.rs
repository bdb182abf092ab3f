//! [`ThreadInfo`]: an OS thread a report names.

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
        crate::chain::resolve(self.chain)
            .iter()
            .filter(|f| !f.is_internal())
            .map(ToString::to_string)
            .collect()
    }

    /// Whether tokio's blocking pool started it: a runtime's own worker or
    /// blocking thread, which belongs to its runtime.
    #[cfg_attr(not(feature = "process"), allow(dead_code))]
    pub(crate) fn is_runtime_thread(&self) -> bool {
        crate::chain::resolve(self.chain)
            .iter()
            .any(|f| f.function.contains("tokio::runtime::blocking::pool"))
    }
}
