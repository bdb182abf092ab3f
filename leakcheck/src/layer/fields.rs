//! The fields leakcheck reads from tokio's spans and events.

use std::fmt::Debug;

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
    pub(super) kind: Option<String>,
    /// `loc.file`, `loc.line`, `loc.col`: where a task was spawned.
    pub(super) file: Option<String>,
    pub(super) line: Option<u32>,
    pub(super) col: Option<u32>,
    /// `duration` of a `state_update` event, in `duration.unit`s.
    pub(super) duration: Option<u64>,
    pub(super) unit: Option<String>,
    /// `op_name` and `is_ready` of a `poll_op` event.
    pub(super) op_name: Option<String>,
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
            "kind" => self.kind = Some(value.to_owned()),
            "loc.file" => self.file = Some(value.to_owned()),
            "duration.unit" => self.unit = Some(value.to_owned()),
            "op_name" => self.op_name = Some(value.to_owned()),
            _ => {}
        }
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
        let text = format!("{value:?}");
        self.text(field.name(), text.trim_matches('"'));
    }
}
