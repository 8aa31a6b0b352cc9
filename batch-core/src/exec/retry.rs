//! Retry policy and backoff.
//!
//! Every kind but `Fatal` (and `Cancelled`: the run is stopping) is retried,
//! up to the task's budget (`--retries`, `retries:` hint). The delay before
//! retry `n` (1-based) is `min(cap, base · 2^(n-1))` scaled by a jitter drawn
//! from (0.5, 1], so parallel tasks failing together do not retry in lockstep;
//! a `retry_after` from the provider wins over the backoff.

use std::time::Duration;

use crate::error::{ErrorKind, RunError};

/// Whether an error of this kind may be retried at all.
pub(crate) fn retryable(kind: ErrorKind) -> bool {
    !matches!(kind, ErrorKind::Fatal | ErrorKind::Cancelled)
}

/// The backoff before retry `n` (1-based) with jitter factor `jitter` in (0.5, 1].
pub(crate) fn backoff(base: Duration, cap: Duration, n: u32, jitter: f64) -> Duration {
    let exp = n.saturating_sub(1).min(30);
    let raw = base.saturating_mul(1u32 << exp).min(cap);
    raw.mul_f64(jitter.clamp(0.5, 1.0))
}

/// A jitter factor in (0.5, 1].
pub(crate) fn jitter() -> f64 {
    // `random::<f64>()` is in [0, 1): 1 - x is in (0, 1].
    0.5 + 0.5 * (1.0 - rand::random::<f64>())
}

/// The delay before the next attempt after `err`, retry `n` (1-based).
pub(crate) fn delay(err: &RunError, base: Duration, cap: Duration, n: u32) -> Duration {
    err.retry_after
        .unwrap_or_else(|| backoff(base, cap, n, jitter()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_the_base_and_stops_at_the_cap() {
        let s = Duration::from_secs;
        let b = |n| backoff(s(1), s(60), n, 1.0);
        assert_eq!(
            [b(1), b(2), b(3), b(4), b(7), b(40)],
            [s(1), s(2), s(4), s(8), s(60), s(60)]
        );
        assert_eq!(backoff(s(4), s(60), 1, 0.5), s(2));
    }

    #[test]
    fn jitter_stays_in_its_half_open_interval() {
        for _ in 0..10_000 {
            let j = jitter();
            assert!(j > 0.5 && j <= 1.0, "{j}");
        }
    }

    #[test]
    fn retry_after_wins_and_fatal_is_never_retried() {
        let e = RunError::new(ErrorKind::Transient, "429")
            .with_retry_after(Some(Duration::from_secs(42)));
        assert_eq!(
            delay(&e, Duration::from_secs(1), Duration::from_secs(60), 1),
            Duration::from_secs(42)
        );
        assert!(!retryable(ErrorKind::Fatal));
        assert!(retryable(ErrorKind::Timeout));
    }
}
