//! Waiting in real time: a check sleeps on its tracker's `Notify`, woken by
//! the terminate hook or by one [`Alarm`] thread at its deadline, so it
//! keeps driving the runtime (current_thread too) and ignores paused clocks.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering::SeqCst;
use std::sync::Arc;
use std::task::Poll;
use std::time::Instant;

use parking_lot::{Condvar, Mutex};

use crate::state::State;

/// Registers a waiting check, so the terminate hook notifies; unregisters on drop.
pub(crate) struct Waiting<'a>(&'a State);

impl<'a> Waiting<'a> {
    pub(crate) fn new(state: &'a State) -> Waiting<'a> {
        state.waiters.fetch_add(1, SeqCst);
        Waiting(state)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.waiters.fetch_sub(1, SeqCst);
    }
}

/// Wakes the waiting checks of a tracker at a real-time instant, whatever
/// the runtime's clock does (`start_paused` tests included). One thread per
/// wait, re-armed with [`Alarm::set`]; stopped on drop.
pub(crate) struct Alarm {
    shared: Arc<(Mutex<Armed>, Condvar)>,
}

#[derive(Default)]
struct Armed {
    at: Option<Instant>,
    stopped: bool,
}

impl Alarm {
    /// Starts the alarm thread, unarmed. `None` if no thread can be started.
    pub(crate) fn start(state: Arc<State>) -> Option<Alarm> {
        let shared = Arc::new((Mutex::new(Armed::default()), Condvar::new()));
        let theirs = shared.clone();
        std::thread::Builder::new()
            .name("leakcheck-alarm".into())
            .spawn(move || ring(&theirs, &state))
            .ok()?;
        Some(Alarm { shared })
    }

    /// Rings at `at` (replacing an earlier time).
    pub(crate) fn set(&self, at: Instant) {
        let (lock, cv) = &*self.shared;
        lock.lock().at = Some(at);
        cv.notify_one();
    }
}

fn ring(shared: &(Mutex<Armed>, Condvar), state: &State) {
    let (lock, cv) = shared;
    let mut armed = lock.lock();
    while !armed.stopped {
        match armed.at {
            Some(at) if Instant::now() >= at => {
                armed.at = None;
                state.notify.notify_waiters();
            }
            Some(at) => {
                cv.wait_until(&mut armed, at);
            }
            None => cv.wait(&mut armed),
        }
    }
}

impl Drop for Alarm {
    fn drop(&mut self) {
        let (lock, cv) = &*self.shared;
        lock.lock().stopped = true;
        cv.notify_one();
    }
}

/// Runs `future` until it finishes (`Some`) or `deadline` passes (`None`),
/// in real time whatever the runtime's clock does.
#[cfg_attr(not(all(tokio_unstable, feature = "taskdump")), allow(dead_code))]
pub(crate) async fn until<F: Future + Unpin>(
    state: &Arc<State>,
    deadline: Instant,
    mut future: F,
) -> Option<F::Output> {
    let alarm = Alarm::start(state.clone());
    if let Some(alarm) = &alarm {
        alarm.set(deadline);
    }
    let notify = &state.notify;
    let mut notified = Box::pin(notify.notified());
    std::future::poll_fn(|cx| {
        if let Poll::Ready(out) = Pin::new(&mut future).poll(cx) {
            return Poll::Ready(Some(out));
        }
        loop {
            if Instant::now() >= deadline {
                return Poll::Ready(None);
            }
            if notified.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            notified.set(notify.notified());
        }
    })
    .await
}
