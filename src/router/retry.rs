//! Retries on the same target: exponential backoff with full jitter and a cap, and the
//! provider's `Retry-After` honoured up to a cap (a longer one falls back instead of waiting).
//!
//! Portkey waits 1, 2, 4, 8 … s with no jitter, so a burst of 5xx makes every client retry in
//! lock-step (Portkey-AI/gateway#1404). Full jitter spreads them: the wait is uniform in
//! `[0, min(cap, base · 2^attempt)]`.

use std::time::Duration;

/// First backoff ceiling.
pub const BACKOFF_BASE: Duration = Duration::from_millis(100);
/// No single backoff waits longer than this.
pub const BACKOFF_CAP: Duration = Duration::from_secs(5);
/// The longest `Retry-After` we wait for; a longer one moves on to the next target.
pub const RETRY_AFTER_CAP: Duration = Duration::from_secs(10);

/// The ceiling of the wait before retry number `attempt` (0-based).
pub fn backoff_ceiling(attempt: u32) -> Duration {
    let factor = 1u32.checked_shl(attempt.min(20)).unwrap_or(u32::MAX);
    BACKOFF_BASE.saturating_mul(factor).min(BACKOFF_CAP)
}

/// The jittered wait before retry number `attempt`, given a uniform sample in `[0, 1)`.
pub fn backoff(attempt: u32, unit_sample: f64) -> Duration {
    let sample = if unit_sample.is_finite() {
        unit_sample.clamp(0.0, 1.0)
    } else {
        0.0
    };
    backoff_ceiling(attempt).mul_f64(sample)
}

/// What to do about a retryable failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryDecision {
    /// Wait this long, then try the same target again.
    WaitThenRetry(Duration),
    /// Do not retry (attempts used up, or the provider asked for a wait beyond the cap).
    GiveUp,
}

/// Decides the next step after failed attempt number `attempt` (0-based) of `max_retries`.
pub fn decide(
    attempt: u32,
    max_retries: u32,
    retry_after: Option<Duration>,
    use_retry_after: bool,
) -> RetryDecision {
    if attempt >= max_retries {
        return RetryDecision::GiveUp;
    }
    match retry_after.filter(|_| use_retry_after) {
        Some(wait) if wait > RETRY_AFTER_CAP => RetryDecision::GiveUp,
        Some(wait) => RetryDecision::WaitThenRetry(wait),
        None => RetryDecision::WaitThenRetry(backoff(attempt, rand::random::<f64>())),
    }
}

/// Parses `Retry-After` (delay-seconds; an HTTP date counts as "too long to wait") and the
/// millisecond variants some providers send.
pub fn parse_retry_after(headers: &http::HeaderMap) -> Option<Duration> {
    let text = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    if let Some(ms) = text("retry-after-ms")
        .or_else(|| text("x-ms-retry-after-ms"))
        .and_then(|v| v.parse::<f64>().ok())
        .filter(|v| v.is_finite() && *v >= 0.0)
    {
        return Some(Duration::from_secs_f64(ms / 1000.0));
    }
    let value = text("retry-after")?;
    match value.parse::<u64>() {
        Ok(secs) => Some(Duration::from_secs(secs)),
        // An HTTP-date: we do not wait for a wall-clock time; treat it as beyond the cap.
        Err(_) => Some(RETRY_AFTER_CAP + Duration::from_secs(1)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ceilings_double_then_cap() {
        assert_eq!(backoff_ceiling(0), Duration::from_millis(100));
        assert_eq!(backoff_ceiling(1), Duration::from_millis(200));
        assert_eq!(backoff_ceiling(3), Duration::from_millis(800));
        assert_eq!(backoff_ceiling(10), BACKOFF_CAP);
        assert_eq!(backoff_ceiling(u32::MAX), BACKOFF_CAP);
    }

    #[test]
    fn retry_after_within_the_cap_is_honoured_and_beyond_gives_up() {
        assert_eq!(
            decide(0, 2, Some(Duration::from_secs(1)), true),
            RetryDecision::WaitThenRetry(Duration::from_secs(1))
        );
        assert_eq!(
            decide(0, 2, Some(Duration::from_secs(3600)), true),
            RetryDecision::GiveUp
        );
        assert_eq!(decide(2, 2, None, true), RetryDecision::GiveUp);
        assert!(matches!(
            decide(0, 2, Some(Duration::from_secs(3600)), false),
            RetryDecision::WaitThenRetry(d) if d <= BACKOFF_BASE
        ));
        let mut h = http::HeaderMap::new();
        h.insert("retry-after", "7".parse().unwrap());
        assert_eq!(parse_retry_after(&h), Some(Duration::from_secs(7)));
        h.insert("retry-after-ms", "250".parse().unwrap());
        assert_eq!(parse_retry_after(&h), Some(Duration::from_millis(250)));
        let mut d = http::HeaderMap::new();
        d.insert(
            "retry-after",
            "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap(),
        );
        assert!(parse_retry_after(&d).unwrap() > RETRY_AFTER_CAP);
    }
}
