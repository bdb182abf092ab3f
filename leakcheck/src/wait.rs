//! Waiting in real time: a check sleeps on `Notify`s that fire when a task
//! ends (the terminate hook, a task span closing), or on one [`Alarm`]
//! thread at its deadline, so it keeps driving the runtime (current_thread
//! too) and ignores paused clocks.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering::SeqCst;
use std::sync::Arc;
use std::task::Poll;
use std::time::Instant;

use parking_lot::{Condvar, Mutex};

use tokio::sync::Notify;

use crate::state::State;

/// One look at what is still alive: what was found, whether that is
/// nothing, and whether the next look must come on a timer (what it counts
/// fires no event when it ends).
pub(crate) struct Look<T> {
    pub(crate) found: T,
    pub(crate) clean: bool,
    pub(crate) poll: bool,
}

/// Looks until a look comes back clean or one begins at or after
/// `deadline`, and returns the last look's findings. Between looks it sleeps until one of
/// `notifies` fires, the alarm rings (`ring` must wake one of them), or a
/// backoff elapses when the look asked to poll.
pub(crate) async fn settle<T>(
    deadline: Instant,
    notifies: &[&Notify],
    ring: impl Fn() + Send + 'static,
    mut look: impl FnMut() -> Look<T>,
) -> T {
    // started on the first look that is not clean: a clean check pays nothing
    let (mut ring, mut alarm) = (Some(ring), None);
    let mut backoff = std::time::Duration::from_millis(1);
    loop {
        let mut woken: Vec<Pin<Box<tokio::sync::futures::Notified<'_>>>> =
            notifies.iter().map(|n| Box::pin(n.notified())).collect();
        for notified in &mut woken {
            notified.as_mut().enable();
        }
        // A look can take long (the first symbolization of call chains on
        // a loaded machine): only one that began at or after the deadline
        // is the verdict, so a task that ended during a slow look is never
        // reported for what that look saw before it ended.
        let began = Instant::now();
        let seen = look();
        if seen.clean || began >= deadline {
            return seen.found;
        }
        let now = Instant::now();
        if now >= deadline {
            continue; // it passed during the look: look once more
        }
        let wake_at = match seen.poll {
            true => deadline.min(now + backoff),
            false => deadline,
        };
        backoff = (backoff * 2).min(std::time::Duration::from_millis(50));
        let alarm = alarm.get_or_insert_with(|| ring.take().and_then(Alarm::start));
        let Some(alarm) = alarm else {
            return seen.found; // no thread for the alarm: report what we see
        };
        alarm.set(wake_at);
        std::future::poll_fn(
            |cx| match woken.iter_mut().any(|n| n.as_mut().poll(cx).is_ready()) {
                true => Poll::Ready(()),
                false => Poll::Pending,
            },
        )
        .await;
    }
}

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

/// What an alarm does when it rings.
type Ring = Box<dyn Fn() + Send>;

#[derive(Default)]
struct Armed {
    at: Option<Instant>,
    stopped: bool,
}

impl Alarm {
    /// Starts the alarm thread, unarmed; it calls `ring` each time it
    /// rings. `None` if no thread can be started.
    pub(crate) fn start(ring: impl Fn() + Send + 'static) -> Option<Alarm> {
        let shared = Arc::new((Mutex::new(Armed::default()), Condvar::new()));
        let theirs = shared.clone();
        let ring: Ring = Box::new(ring);
        std::thread::Builder::new()
            .name("leakcheck-alarm".into())
            .spawn(move || run(&theirs, &ring))
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

fn run(shared: &(Mutex<Armed>, Condvar), ring: &Ring) {
    let (lock, cv) = shared;
    let mut armed = lock.lock();
    while !armed.stopped {
        match armed.at {
            Some(at) if Instant::now() >= at => {
                armed.at = None;
                ring();
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
    deadline: Instant,
    mut future: F,
) -> Option<F::Output> {
    let notify = Arc::new(Notify::new());
    let theirs = notify.clone();
    let alarm = Alarm::start(move || theirs.notify_waiters());
    if let Some(alarm) = &alarm {
        alarm.set(deadline);
    }
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

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::{settle, Look};

    /// A look that outlasts the deadline (the first symbolization on a
    /// loaded machine) saw a task that has ended since: unless that look
    /// itself began after the deadline, the verdict is the next look's.
    #[tokio::test]
    async fn a_look_that_outlasts_the_deadline_is_not_the_verdict() {
        let notify = tokio::sync::Notify::new();
        let deadline = Instant::now() + Duration::from_millis(20);
        let mut began = Vec::new();
        let found = settle(
            deadline,
            &[&notify],
            || {},
            || {
                began.push(Instant::now());
                if began.len() == 1 {
                    std::thread::sleep(Duration::from_millis(40)); // the slow look
                }
                Look {
                    found: began.len(),
                    clean: began.len() > 1, // the task ended during the slow look
                    poll: false,
                }
            },
        )
        .await;
        let verdict = if began[0] < deadline { 2 } else { 1 };
        assert_eq!(
            found, verdict,
            "looks began at {began:?}, deadline {deadline:?}"
        );
    }

    /// Past the deadline, what is still there is the verdict: the first
    /// look that began at or after it.
    #[tokio::test]
    async fn a_look_that_begins_after_the_deadline_is_the_verdict() {
        let notify = std::sync::Arc::new(tokio::sync::Notify::new());
        let theirs = notify.clone();
        let deadline = Instant::now() + Duration::from_millis(5);
        let mut began = Vec::new();
        let ring = move || theirs.notify_waiters();
        let found = settle(deadline, &[&notify], ring, || {
            began.push(Instant::now());
            Look {
                found: began.len(),
                clean: false,
                poll: false,
            }
        })
        .await;
        let first_after = began.iter().position(|b| *b >= deadline).map(|i| i + 1);
        assert_eq!(Some(found), first_after, "looks began at {began:?}");
    }
}
