//! Token bucket for the `throttle` fault.

use std::time::{Duration, Instant};

/// The burst a bucket allows: 50 ms worth of the rate (at least one byte), so a throttled
/// stream is smooth rather than a second's worth of bytes followed by a pause.
fn burst(rate: u64) -> f64 {
    (rate as f64 / 20.0).max(1.0)
}

/// A token bucket that may go into debt: a write larger than the tokens at hand is let through
/// after the bucket has paid it back. The rate is passed on each call, so a throttle changed
/// at run time applies to the next write.
#[derive(Debug)]
pub(crate) struct TokenBucket {
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    pub(crate) fn new() -> Self {
        TokenBucket {
            tokens: 0.0,
            last: Instant::now(),
        }
    }

    /// The largest piece a writer should take at once: small enough that a rate change or a
    /// cleared throttle applies within about 50 ms.
    pub(crate) fn piece(rate: u64) -> usize {
        burst(rate) as usize
    }

    /// Takes `n` tokens at `rate` bytes per second and returns how long to wait before
    /// writing them (zero when the bucket had enough).
    pub(crate) fn take(&mut self, n: usize, rate: u64) -> Duration {
        let now = Instant::now();
        let rate_f = rate as f64;
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * rate_f).min(burst(rate));
        self.last = now;
        self.tokens -= n as f64;
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.tokens / rate_f)
        }
    }

    /// Forgets any debt, for when the throttle is lifted (the next throttle starts fresh).
    pub(crate) fn reset(&mut self) {
        self.tokens = 0.0;
        self.last = Instant::now();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debt_is_paid_at_the_rate() {
        let mut b = TokenBucket::new();
        // An empty bucket: 1000 bytes at 1000 B/s wait about a second.
        let wait = b.take(1000, 1000);
        assert!(wait >= Duration::from_millis(990), "{wait:?}");
        assert!(wait <= Duration::from_millis(1000), "{wait:?}");
        // Still in debt: the next byte waits longer than the first debt.
        assert!(b.take(500, 1000) >= wait);
    }
}
