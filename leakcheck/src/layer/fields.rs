//! The fields leakcheck reads from tokio's spans and events, read without
//! allocating where it can: this runs for every span and waker event.

use std::fmt::{self, Debug, Write};

use tracing::field::{Field, Visit};

/// What one span or event says, of the fields leakcheck reads.
#[derive(Debug, Default)]
pub(super) struct Fields {
    /// `task.id`: a task's id on `runtime.spawn` spans; on waker events,
    /// the *tracing span id* of the task's span.
    pub(super) task: Option<u64>,
    pub(super) name: Option<String>,
    /// The waker operation, on `tokio::task::waker` events.
    pub(super) op: Option<WakerOp>,
    /// `kind`: of a task span (`task`, `local`, `blocking`, `block_on`), of
    /// a resource span (`timer`, ...).
    pub(super) kind: Option<&'static str>,
    /// `loc.file` (interned), `loc.line`, `loc.col`: where a task was spawned.
    pub(super) file: Option<&'static str>,
    pub(super) line: Option<u32>,
    pub(super) col: Option<u32>,
    /// `duration` of a `state_update` event, in `duration.unit`s.
    pub(super) duration: Option<u64>,
    pub(super) unit: Option<&'static str>,
    /// A `poll_op` event of a timer (`op_name = "poll_elapsed"`), and its
    /// `is_ready`.
    pub(super) poll_elapsed: bool,
    pub(super) is_ready: Option<bool>,
}

/// What happened to a task's waker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum WakerOp {
    Clone,
    Drop,
    Wake,
    WakeByRef,
}

/// One of `known`, as a `'static` string, if `value` is one.
fn known(value: &str, known: &[&'static str]) -> Option<&'static str> {
    known.iter().copied().find(|k| *k == value)
}

impl Fields {
    fn text(&mut self, name: &str, value: &str) {
        match name {
            "task.name" => self.name = Some(value.to_owned()).filter(|n| !n.is_empty()),
            "op" => {
                self.op = match value {
                    "waker.clone" => Some(WakerOp::Clone),
                    "waker.drop" => Some(WakerOp::Drop),
                    "waker.wake" => Some(WakerOp::Wake),
                    "waker.wake_by_ref" => Some(WakerOp::WakeByRef),
                    _ => None,
                }
            }
            "kind" => {
                let kinds = ["task", "local", "blocking", "block_on", "timer"];
                self.kind = Some(known(value, &kinds).unwrap_or("other"));
            }
            "loc.file" => self.file = Some(crate::site::intern_file(value)),
            "duration.unit" => self.unit = known(value, &["ms", "s", "us", "µs", "ns"]),
            "op_name" => self.poll_elapsed = value == "poll_elapsed",
            _ => {}
        }
    }
}

/// The fields `text` reads from `Display`/`Debug` values.
const TEXT_FIELDS: [&str; 5] = ["task.name", "op", "kind", "duration.unit", "op_name"];

/// A short `Debug` rendering on the stack.
struct Short {
    bytes: [u8; 48],
    len: usize,
    overflow: bool,
}

impl Write for Short {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len + s.len();
        if end > self.bytes.len() {
            self.overflow = true;
            return Err(fmt::Error);
        }
        self.bytes[self.len..end].copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

impl Visit for Fields {
    fn record_u64(&mut self, field: &Field, value: u64) {
        let small = || u32::try_from(value).ok();
        match field.name() {
            "task.id" => self.task = Some(value),
            "duration" => self.duration = Some(value),
            "loc.line" => self.line = small(),
            "loc.col" => self.col = small(),
            _ => {}
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        if let Ok(value) = u64::try_from(value) {
            self.record_u64(field, value);
        }
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        if field.name() == "is_ready" {
            self.is_ready = Some(value);
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.text(field.name(), value);
    }

    fn record_debug(&mut self, field: &Field, value: &dyn Debug) {
        // `%value` fields arrive here as Display-through-Debug: no quotes
        let name = field.name();
        if !TEXT_FIELDS.contains(&name) {
            return;
        }
        let mut short = Short {
            bytes: [0; 48],
            len: 0,
            overflow: false,
        };
        match write!(short, "{value:?}") {
            Ok(()) => {
                let text = std::str::from_utf8(&short.bytes[..short.len]).unwrap_or_default();
                self.text(name, text.trim_matches('"'));
            }
            Err(_) if short.overflow => {
                let text = format!("{value:?}");
                self.text(name, text.trim_matches('"'));
            }
            Err(_) => {}
        }
    }
}
