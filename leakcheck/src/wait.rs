//! Waiting in real time: a check sleeps on the tracker's `Notify`, woken
//! by the terminate hook or by an [`Alarm`] thread at its deadline, so it
//! keeps driving the runtime (current_thread too) and ignores paused clocks.

use std::sync::atomic::Ordering::SeqCst;
use std::sync::Arc;
use std::time::Instant;

use parking_lot::{Condvar, Mutex};

use crate::tracker::{Shared, Tracker};

impl Tracker {
    /// Runs `future` until it finishes (`Some`) or `deadline` passes (`None`),
    /// in real time whatever the runtime's clock does.
    #[cfg_attr(not(all(tokio_unstable, feature = "taskdump")), allow(dead_code))]
    pub(crate) async fn wait_until<F: std::future::Future + Unpin>(
        &self,
        deadline: Instant,
        mut future: F,
    ) -> Option<F::Output> {
        use std::future::Future;
        use std::task::Poll;
        let notify = &self.shared().notify;
        let _alarm = Alarm::set(deadline, self.shared().clone());
        let mut notified = Box::pin(notify.notified());
        std::future::poll_fn(|cx| {
            if let Poll::Ready(out) = std::pin::Pin::new(&mut future).poll(cx) {
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
}

/// Decrements the waiter count when a check stops waiting.
pub(crate) struct Waiting<'a>(pub(crate) &'a Shared);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.waiters.fetch_sub(1, SeqCst);
    }
}

/// Wakes a waiting check at a real-time instant, whatever the runtime's
/// clock does (`start_paused` tests included). Cancelled on drop.
pub(crate) struct Alarm {
    cancelled: Arc<(Mutex<bool>, Condvar)>,
}

impl Alarm {
    pub(crate) fn set(at: Instant, shared: Arc<Shared>) -> Option<Alarm> {
        let cancelled = Arc::new((Mutex::new(false), Condvar::new()));
        let c = cancelled.clone();
        std::thread::Builder::new()
            .name("leakcheck-alarm".into())
            .spawn(move || {
                let (lock, cv) = &*c;
                let mut done = lock.lock();
                while !*done && !cv.wait_until(&mut done, at).timed_out() {}
                if !*done {
                    shared.notify.notify_waiters();
                }
            })
            .ok()?;
        Some(Alarm { cancelled })
    }
}

impl Drop for Alarm {
    fn drop(&mut self) {
        let (lock, cv) = &*self.cancelled;
        *lock.lock() = true;
        cv.notify_one();
    }
}
