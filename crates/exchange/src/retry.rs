//! Retry policy of the real-time push: exponential backoff with full jitter, and which failures
//! are worth retrying.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// How a push is retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetryPolicy {
    /// Attempts in all, the first included; after the last one the entry is dead-lettered.
    pub max_attempts: u32,
    /// Delay before the second attempt, in milliseconds; doubles with every attempt.
    pub base_delay_ms: u64,
    /// Upper bound of any delay, in milliseconds.
    pub max_delay_ms: u64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 8,
            base_delay_ms: 200,
            max_delay_ms: 60_000,
        }
    }
}

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Try again after this delay.
    RetryAfter(Duration),
    /// Stop: dead-letter the entry.
    GiveUp,
}

/// The kind of a push failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// Worth retrying: timeouts, connection errors, HTTP 408, 429 and 5xx.
    Transient,
    /// Not worth retrying: any other 4xx (the payload itself is refused).
    Permanent,
}

impl Failure {
    /// Classifies an HTTP status (`None` = no response: connection error or timeout).
    pub fn classify(status: Option<u16>) -> Self {
        match status {
            None | Some(408 | 425 | 429) => Self::Transient,
            Some(s) if s >= 500 => Self::Transient,
            Some(_) => Self::Permanent,
        }
    }
}

impl RetryPolicy {
    /// Decides what follows failed attempt number `attempt` (1-based). `random` is a value in
    /// `[0, 1)` from the caller's RNG: the delay is drawn uniformly from `[cap/2, cap]` where
    /// `cap = min(max_delay, base · 2^(attempt-1))` ("equal jitter"), so retries of many orders
    /// spread out but never come back sooner than half the backoff.
    pub fn next(&self, attempt: u32, failure: Failure, random: f64) -> Next {
        if failure == Failure::Permanent || attempt >= self.max_attempts {
            return Next::GiveUp;
        }
        let exp = attempt.saturating_sub(1).min(32);
        let cap = self
            .base_delay_ms
            .saturating_mul(1u64 << exp)
            .min(self.max_delay_ms);
        let random = if random.is_finite() {
            random.clamp(0.0, 1.0)
        } else {
            0.0
        };
        let half = cap / 2;
        // Jitter is a fraction of at most a minute: the float keeps millisecond precision.
        #[allow(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            clippy::cast_precision_loss
        )]
        let jitter = ((cap - half) as f64 * random) as u64;
        Next::RetryAfter(Duration::from_millis(half + jitter))
    }

    /// Checks the policy.
    pub fn validate(&self) -> Result<(), String> {
        if self.max_attempts == 0 {
            return Err("push max_attempts must be at least 1".into());
        }
        if self.base_delay_ms > self.max_delay_ms {
            return Err("push base_delay_ms must not exceed max_delay_ms".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn classifies_failures() {
        assert_eq!(Failure::classify(None), Failure::Transient);
        assert_eq!(Failure::classify(Some(503)), Failure::Transient);
        assert_eq!(Failure::classify(Some(429)), Failure::Transient);
        assert_eq!(Failure::classify(Some(400)), Failure::Permanent);
        assert_eq!(Failure::classify(Some(401)), Failure::Permanent);
    }

    #[test]
    fn gives_up_on_permanent_and_after_the_last_attempt() {
        let p = RetryPolicy::default();
        assert_eq!(p.next(1, Failure::Permanent, 0.5), Next::GiveUp);
        assert_eq!(p.next(8, Failure::Transient, 0.5), Next::GiveUp);
        assert!(matches!(
            p.next(7, Failure::Transient, 0.5),
            Next::RetryAfter(_)
        ));
    }

    proptest! {
        #[test]
        fn delays_stay_within_bounds(attempt in 1u32..100, random in 0.0f64..1.0,
                                     base in 1u64..10_000, max in 10_000u64..1_000_000) {
            let p = RetryPolicy { max_attempts: 1000, base_delay_ms: base, max_delay_ms: max };
            let Next::RetryAfter(d) = p.next(attempt, Failure::Transient, random) else {
                return Err(TestCaseError::fail("expected a retry"));
            };
            let cap = base.saturating_mul(1u64 << (attempt - 1).min(32)).min(max);
            let ms = u64::try_from(d.as_millis()).unwrap();
            prop_assert!(ms >= cap / 2 && ms <= cap, "{ms} not in [{}, {cap}]", cap / 2);
        }

        #[test]
        fn delays_grow_with_attempts(attempt in 1u32..20) {
            let p = RetryPolicy { max_attempts: 1000, base_delay_ms: 100, max_delay_ms: u64::MAX / 4 };
            let lo = |a| match p.next(a, Failure::Transient, 0.0) { Next::RetryAfter(d) => d, Next::GiveUp => Duration::ZERO };
            let hi = |a| match p.next(a, Failure::Transient, 0.999_999) { Next::RetryAfter(d) => d, Next::GiveUp => Duration::ZERO };
            prop_assert!(lo(attempt + 1) >= hi(attempt));
        }
    }
}
