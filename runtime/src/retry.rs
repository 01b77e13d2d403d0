//! Exponential back-off between retries, the same for every retry loop: a stage's failed batch,
//! a publish the broker did not acknowledge, a replay's insert, a GitHub request.
//!
//! Each wait doubles the last, up to a ceiling, and ends early when the process shuts down.
//! (Twenty lines did not justify a dependency; what the `backon` crate adds — jitter, retry
//! predicates, combinators — none of these loops needs, since each decides for itself what is
//! worth retrying.)

use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// Back-off state for one retry loop.
#[derive(Debug, Clone)]
pub struct Backoff {
    first: Duration,
    next: Duration,
    max: Duration,
}

impl Backoff {
    /// Waits start at `first` and double up to `max`.
    pub fn new(first: Duration, max: Duration) -> Self {
        Self {
            first,
            next: first,
            max: max.max(first),
        }
    }

    /// The wait before the next retry; the one after it is twice as long (up to the ceiling).
    pub fn next_delay(&mut self) -> Duration {
        let delay = self.next;
        self.next = (self.next * 2).min(self.max);
        delay
    }

    /// The wait [`Backoff::next_delay`] will answer next, for logs.
    pub fn upcoming(&self) -> Duration {
        self.next
    }

    /// Back to the first wait, after a success.
    pub fn reset(&mut self) {
        self.next = self.first;
    }

    /// Sleeps for the next delay. Answers `false` if `shutdown` was cancelled meanwhile (the
    /// caller stops retrying).
    pub async fn wait(&mut self, shutdown: &CancellationToken) -> bool {
        let delay = self.next_delay();
        tokio::select! {
            _ = shutdown.cancelled() => false,
            _ = tokio::time::sleep(delay) => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_the_ceiling_and_reset() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_millis(350));
        let delays: Vec<u128> = (0..4).map(|_| b.next_delay().as_millis()).collect();
        assert_eq!(delays, vec![100, 200, 350, 350]);
        b.reset();
        assert_eq!(b.next_delay(), Duration::from_millis(100));
    }

    #[tokio::test]
    async fn a_wait_ends_at_shutdown() {
        let mut b = Backoff::new(Duration::from_secs(60), Duration::from_secs(60));
        let token = CancellationToken::new();
        token.cancel();
        assert!(!b.wait(&token).await);
    }
}
