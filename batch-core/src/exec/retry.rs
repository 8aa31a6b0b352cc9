//! The retry and rate-limit decision, and backoff.
//!
//! [`decide`] is a pure function of the failed attempt's error, the task's
//! budget, the rate-limit gate and whether the run is stopping; the
//! dispatcher applies its [`Decision`].
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

/// What a task may still spend, and the backoff policy.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Budget {
    /// Retries allowed after the first attempt (`--retries`, `retries:`).
    pub(crate) retries: u32,
    /// Failed attempts that already spent the budget.
    pub(crate) spent: u32,
    /// Time the task already waited on rate limits.
    pub(crate) rate_wait: Duration,
    /// The most it may wait on rate limits (`--max-wait`).
    pub(crate) max_wait: Duration,
    /// First retry delay.
    pub(crate) base: Duration,
    /// Longest retry delay.
    pub(crate) cap: Duration,
    /// The jitter factor in (0.5, 1] for this decision ([`jitter`]).
    pub(crate) jitter: f64,
}

/// The rate-limit gate.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Gate {
    /// Rate limits hit in a row so far (a success resets it).
    pub(crate) hits: u32,
}

/// Whether the run is stopping, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stopping {
    /// It is not.
    No,
    /// Interrupted (Ctrl-C, a cancelled token).
    Interrupted,
    /// `--fail-fast` or a fatal error: no new attempts, running ones finish.
    NoNewWork,
}

/// What to do after a failed attempt.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Decision {
    /// The attempt was interrupted: the task ends interrupted.
    Interrupted,
    /// The task has failed for good.
    Fail,
    /// The task has failed for good and the whole run stops (`Fatal`).
    FailAndStop,
    /// The task has failed: rate limited for longer than `max_wait`.
    FailMaxWait,
    /// Retry after `delay`, spending one retry of the budget.
    Retry {
        /// The wait before the next attempt.
        delay: Duration,
    },
    /// The account is rate limited: pause every launch for `pause`, then
    /// retry without spending the budget.
    RateLimited {
        /// The pause (and the wait before this task's next attempt).
        pause: Duration,
    },
}

/// Decides what follows a failed attempt with error `e`.
pub(crate) fn decide(e: &RunError, budget: &Budget, gate: &Gate, stopping: Stopping) -> Decision {
    let wait = |n| {
        e.retry_after
            .unwrap_or_else(|| backoff(budget.base, budget.cap, n, budget.jitter))
    };
    if e.kind == ErrorKind::Cancelled
        || (stopping == Stopping::Interrupted && e.kind == ErrorKind::Timeout)
    {
        return Decision::Interrupted;
    }
    if e.kind == ErrorKind::Fatal {
        return Decision::FailAndStop;
    }
    if stopping != Stopping::No {
        return Decision::Fail;
    }
    if e.kind == ErrorKind::Transient && e.rate_limited {
        let pause = wait(gate.hits + 1);
        if budget.rate_wait + pause > budget.max_wait {
            return Decision::FailMaxWait;
        }
        return Decision::RateLimited { pause };
    }
    if retryable(e.kind) && budget.spent < budget.retries {
        return Decision::Retry {
            delay: wait(budget.spent + 1),
        };
    }
    Decision::Fail
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget(retries: u32, spent: u32) -> Budget {
        Budget {
            retries,
            spent,
            rate_wait: Duration::ZERO,
            max_wait: Duration::from_secs(600),
            base: Duration::from_secs(1),
            cap: Duration::from_secs(60),
            jitter: 1.0,
        }
    }

    fn err(kind: ErrorKind) -> RunError {
        RunError::new(kind, "x")
    }

    #[test]
    fn a_failure_is_retried_with_doubling_delays_until_the_budget_is_spent() {
        let g = Gate::default();
        let s = Duration::from_secs;
        let e = err(ErrorKind::Failed);
        assert_eq!(
            decide(&e, &budget(2, 0), &g, Stopping::No),
            Decision::Retry { delay: s(1) }
        );
        assert_eq!(
            decide(&e, &budget(2, 1), &g, Stopping::No),
            Decision::Retry { delay: s(2) }
        );
        assert_eq!(decide(&e, &budget(2, 2), &g, Stopping::No), Decision::Fail);
        assert_eq!(decide(&e, &budget(0, 0), &g, Stopping::No), Decision::Fail);
        let mut half = budget(2, 0);
        half.jitter = 0.5;
        assert_eq!(
            decide(&err(ErrorKind::Timeout), &half, &g, Stopping::No),
            Decision::Retry {
                delay: Duration::from_millis(500)
            }
        );
    }

    #[test]
    fn fatal_stops_the_run_and_cancelled_is_an_interruption() {
        let g = Gate::default();
        let b = budget(5, 0);
        assert_eq!(
            decide(&err(ErrorKind::Fatal), &b, &g, Stopping::No),
            Decision::FailAndStop
        );
        assert_eq!(
            decide(&err(ErrorKind::Fatal), &b, &g, Stopping::Interrupted),
            Decision::FailAndStop
        );
        assert_eq!(
            decide(&err(ErrorKind::Cancelled), &b, &g, Stopping::No),
            Decision::Interrupted
        );
    }

    #[test]
    fn a_stopping_run_retries_nothing_and_a_timeout_during_an_interrupt_is_an_interruption() {
        let g = Gate::default();
        let b = budget(5, 0);
        let limited = err(ErrorKind::Transient).rate_limited(true);
        for e in [err(ErrorKind::Failed), limited] {
            assert_eq!(decide(&e, &b, &g, Stopping::NoNewWork), Decision::Fail);
            assert_eq!(decide(&e, &b, &g, Stopping::Interrupted), Decision::Fail);
        }
        assert_eq!(
            decide(&err(ErrorKind::Timeout), &b, &g, Stopping::Interrupted),
            Decision::Interrupted
        );
        assert_eq!(
            decide(&err(ErrorKind::Timeout), &b, &g, Stopping::NoNewWork),
            Decision::Fail
        );
    }

    #[test]
    fn a_rate_limit_pauses_without_spending_the_budget_until_max_wait() {
        let s = Duration::from_secs;
        let limited = err(ErrorKind::Transient).rate_limited(true);
        // The budget is spent, yet a rate limit is still waited out.
        let spent = budget(1, 1);
        assert_eq!(
            decide(&limited, &spent, &Gate { hits: 0 }, Stopping::No),
            Decision::RateLimited { pause: s(1) }
        );
        // The pause doubles with the hits in a row; retry-after wins.
        assert_eq!(
            decide(&limited, &spent, &Gate { hits: 3 }, Stopping::No),
            Decision::RateLimited { pause: s(8) }
        );
        let after = limited.clone().with_retry_after(Some(s(42)));
        assert_eq!(
            decide(&after, &spent, &Gate { hits: 3 }, Stopping::No),
            Decision::RateLimited { pause: s(42) }
        );
        // Past max-wait the task fails.
        let mut waited = budget(1, 0);
        waited.rate_wait = s(590);
        assert_eq!(
            decide(&after, &waited, &Gate { hits: 0 }, Stopping::No),
            Decision::FailMaxWait
        );
        // A transient error that is not a rate limit spends the budget.
        assert_eq!(
            decide(
                &err(ErrorKind::Transient),
                &spent,
                &Gate::default(),
                Stopping::No
            ),
            Decision::Fail
        );
    }

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
}
