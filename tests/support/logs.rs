//! A suite's own log output, kept in memory: `Sink` is the writer its
//! tracing subscriber writes to, `logged()` what it wrote.

use std::io::Write;
use std::sync::{Condvar, Mutex};
use std::time::Duration;

/// Everything the suite's subscriber wrote, and a signal per write.
static LOGS: Mutex<Vec<u8>> = Mutex::new(Vec::new());
static WRITTEN: Condvar = Condvar::new();

/// The writer: `fmt().with_writer(|| Sink)`.
pub struct Sink;

impl Write for Sink {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        LOGS.lock().unwrap().extend_from_slice(bytes);
        WRITTEN.notify_all();
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// What the suite's subscriber wrote so far.
pub fn logged() -> String {
    String::from_utf8_lossy(&LOGS.lock().unwrap()).into_owned()
}

/// Waits for a write that makes the logs contain `needle`, up to `limit`.
#[allow(dead_code)] // not every file waits
pub fn wait_for(needle: &str, limit: Duration) -> bool {
    let logs = LOGS.lock().unwrap();
    let (logs, _) = WRITTEN
        .wait_timeout_while(logs, limit, |logs| {
            !String::from_utf8_lossy(logs).contains(needle)
        })
        .unwrap();
    String::from_utf8_lossy(&logs).contains(needle)
}
