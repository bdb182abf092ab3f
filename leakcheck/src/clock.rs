//! [`Clock`]: the coarse `u32` clock task records keep their times in.

use std::time::Duration;

/// A coarse clock in units of 1/1024 s since the tracker was made, read
/// from `CLOCK_MONOTONIC_COARSE` (a few ns; jiffy resolution, 1–4 ms).
///
/// A `u32` of these wraps after 2^22 s ≈ 48.5 days. Ages and idle times
/// are wrapping differences, so they are right for anything younger than
/// that and taken modulo 48.5 days beyond; busy time saturates instead.
#[derive(Debug)]
pub(crate) struct Clock {
    epoch: u64,
}

/// coarsetime ticks are 32.32 fixed-point seconds; >> 22 gives 1/1024 s.
const TICK_SHIFT: u32 = 22;

fn coarse_ticks() -> u64 {
    coarsetime::Instant::now_without_cache_update().as_ticks()
}

impl Clock {
    pub(crate) fn new() -> Clock {
        Clock {
            epoch: coarse_ticks(),
        }
    }

    /// Units since the clock was made (wrapping).
    #[inline]
    pub(crate) fn now(&self) -> u32 {
        (coarse_ticks().wrapping_sub(self.epoch) >> TICK_SHIFT) as u32
    }
}

/// A number of clock units as a `Duration`.
pub(crate) fn ticks(t: u32) -> Duration {
    Duration::from_nanos(u64::from(t) * 1_000_000_000 / 1024)
}

/// The time from `then` to `now`, both read from one [`Clock`].
pub(crate) fn since(now: u32, then: u32) -> Duration {
    ticks(now.wrapping_sub(then))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_counts_1024ths_of_a_second() {
        assert_eq!(ticks(1024), Duration::from_secs(1));
        assert_eq!(since(3, u32::MAX), ticks(4), "across the wrap");
        let clock = Clock::new();
        assert!(clock.now() < 1024, "a fresh clock reads near zero");
    }
}
