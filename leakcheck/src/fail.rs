//! Failing a test at the user's line.

use std::panic::Location;

/// Fails the calling test at `at`, the user's line: prints the panic line
/// the way the default hook would, then unwinds with `message` as the
/// payload (what `#[should_panic(expected = ..)]` matches).
pub(crate) fn fail_at(at: &'static Location<'static>, message: String) -> ! {
    let thread = std::thread::current();
    let name = thread.name().unwrap_or("<unnamed>");
    eprintln!(
        "\nthread '{name}' panicked at {}:{}:{}:\n{message}",
        at.file(),
        at.line(),
        at.column()
    );
    std::panic::resume_unwind(Box::new(message))
}
