//! Passing on an event whose parent is given explicitly
//! (`event!(parent: &span, ..)`): the parent must be the inner's id for that
//! span, and an `Event`'s values cannot be re-wrapped, so the event is
//! rebuilt from a copy of its values. Values that are neither numbers nor
//! strings arrive as their `Debug` text.

use std::fmt;

use tracing_core::field::{Field, Value, Visit};
use tracing_core::span::Id;
use tracing_core::{Dispatch, Event};

/// The most fields an event can carry on the way through.
const MAX_FIELDS: usize = 32;

/// Sends `event` to `inner` as a child of `parent` (`None`: a root event).
pub(super) fn event(inner: &Dispatch, event: &Event<'_>, parent: Option<Id>) {
    let meta = event.metadata();
    let mut copy = Copy::default();
    event.record(&mut copy);
    let Some(first) = copy.0.first().map(|(f, _)| f.clone()) else {
        let values = meta
            .fields()
            .value_set(&[] as &[(&Field, Option<&dyn Value>); 0]);
        inner.event(&Event::new_child_of(parent, meta, &values));
        return;
    };
    let mut pairs: [(&Field, Option<&dyn Value>); MAX_FIELDS] = [(&first, None); MAX_FIELDS];
    for (slot, (field, value)) in pairs.iter_mut().zip(&copy.0) {
        *slot = (field, Some(&**value as &dyn Value));
    }
    let values = meta.fields().value_set(&pairs);
    inner.event(&Event::new_child_of(parent, meta, &values));
}

/// A `Debug` text passed on as it is.
struct Text(String);

impl fmt::Debug for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The event's values, owned.
#[derive(Default)]
struct Copy(Vec<(Field, Box<dyn Value>)>);

impl Copy {
    fn push(&mut self, field: &Field, value: Box<dyn Value>) {
        if self.0.len() < MAX_FIELDS {
            self.0.push((field.clone(), value));
        }
    }
}

impl Visit for Copy {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.push(
            field,
            Box::new(tracing::field::debug(Text(format!("{value:?}")))),
        );
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.push(field, Box::new(value.to_owned()));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.push(field, Box::new(value));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.push(field, Box::new(value));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.push(field, Box::new(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.push(field, Box::new(value));
    }
    fn record_u128(&mut self, field: &Field, value: u128) {
        self.push(field, Box::new(value));
    }
    fn record_i128(&mut self, field: &Field, value: i128) {
        self.push(field, Box::new(value));
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.push(field, Box::new(tracing::field::display(value.to_string())));
    }
}
