//! When and how long to wait before trying a request again.

use std::time::Duration;

/// Retries of a request: on connection errors (for requests that can be sent twice, or
/// when nothing was sent), on 5xx and on 429. The wait doubles from `base_delay` on each
/// attempt, up to `max_delay`; a `Retry-After` of a number of seconds replaces it (also
/// bounded by `max_delay`).
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Attempts in all (1: no retry); the default is 5.
    pub attempts: u32,
    /// The first wait; the default is 200 ms.
    pub base_delay: Duration,
    /// The longest wait; the default is 10 s.
    pub max_delay: Duration,
    /// How to wait: `std::thread::sleep` by default (tests pass one that records).
    pub sleep: fn(Duration),
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: 5,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(10),
            sleep: std::thread::sleep,
        }
    }
}

impl RetryPolicy {
    /// The wait after the failed attempt number `attempt` (from 1), given the response's
    /// `Retry-After` header when there was one.
    pub fn delay(&self, attempt: u32, retry_after: Option<&str>) -> Duration {
        if let Some(secs) = retry_after.and_then(|v| v.trim().parse::<u64>().ok()) {
            return Duration::from_secs(secs).min(self.max_delay);
        }
        let factor = 1u32 << attempt.saturating_sub(1).min(16);
        self.base_delay.saturating_mul(factor).min(self.max_delay)
    }
}

/// Whether `e` is a failure of the connection rather than of what was asked.
pub(crate) fn is_transient(e: &ureq::Error) -> bool {
    match e {
        ureq::Error::Io(io) => !matches!(
            io.kind(),
            std::io::ErrorKind::InvalidData | std::io::ErrorKind::InvalidInput
        ),
        ureq::Error::Timeout(_) | ureq::Error::ConnectionFailed | ureq::Error::Protocol(_) => true,
        _ => false,
    }
}

/// Whether `e` happened before any of the request reached the server.
pub(crate) fn nothing_sent(e: &ureq::Error) -> bool {
    match e {
        ureq::Error::ConnectionFailed => true,
        ureq::Error::Io(io) => io.kind() == std::io::ErrorKind::ConnectionRefused,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_bounded() {
        let p = RetryPolicy {
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
            ..RetryPolicy::default()
        };
        assert_eq!(p.delay(1, None), Duration::from_millis(100));
        assert_eq!(p.delay(2, None), Duration::from_millis(200));
        assert_eq!(p.delay(3, None), Duration::from_millis(400));
        assert_eq!(p.delay(9, None), Duration::from_secs(1));
        assert_eq!(p.delay(1, Some("0")), Duration::ZERO);
        assert_eq!(p.delay(1, Some("3600")), Duration::from_secs(1));
        assert_eq!(
            p.delay(2, Some("Wed, 21 Oct 2015 07:28:00 GMT")),
            Duration::from_millis(200)
        );
    }
}
