//! Bounded retries with exponential backoff, over an injectable [`Sleeper`] so that unit
//! tests never sleep.

use std::fmt;
use std::future::Future;
use std::time::Duration;

use async_trait::async_trait;
use remediation_core::ConnectorError;

use crate::provider_error::retryable;

/// Waits between attempts. The connector uses [`TokioSleeper`]; tests pass one that returns
/// at once and records what it was asked to wait.
#[async_trait]
pub trait Sleeper: Send + Sync + fmt::Debug {
    /// Waits for `duration`.
    async fn sleep(&self, duration: Duration);
}

/// Sleeps on the tokio timer.
#[derive(Debug, Clone, Copy, Default)]
pub struct TokioSleeper;

#[async_trait]
impl Sleeper for TokioSleeper {
    async fn sleep(&self, duration: Duration) {
        tokio::time::sleep(duration).await;
    }
}

/// How often and how patiently to retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Backoff {
    /// Attempts in all, at least 1.
    pub(crate) attempts: u32,
    /// Delay before the second attempt; doubles after each further one.
    pub(crate) base: Duration,
}

impl Backoff {
    /// The delay after failed attempt number `attempt` (1-based).
    pub(crate) fn delay(&self, attempt: u32) -> Duration {
        self.base.saturating_mul(1u32 << attempt.saturating_sub(1).min(10))
    }
}

/// Runs `op` until it succeeds, fails with a class that is not worth retrying (see
/// [`retryable`]), or has used `backoff.attempts` attempts.
pub(crate) async fn retry<T, F, Fut>(backoff: Backoff, sleeper: &dyn Sleeper, mut op: F) -> Result<T, ConnectorError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, ConnectorError>>,
{
    let mut attempt = 1;
    loop {
        match op().await {
            Ok(v) => return Ok(v),
            Err(e) if retryable(&e.kind) && attempt < backoff.attempts => {
                tracing::debug!(attempt, error = %e, "retrying IAM request");
                sleeper.sleep(backoff.delay(attempt)).await;
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use remediation_core::ConnectorErrorKind;

    use super::*;

    /// Records requested delays instead of sleeping.
    #[derive(Debug, Default)]
    struct Recorder(Mutex<Vec<Duration>>);

    #[async_trait]
    impl Sleeper for Recorder {
        async fn sleep(&self, duration: Duration) {
            self.0.lock().unwrap_or_else(|p| p.into_inner()).push(duration);
        }
    }

    fn block_on<F: Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread().build().map(|rt| rt.block_on(f)).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Runs a fake operation that fails with `failures` in order, then succeeds; returns the
    /// result, the number of calls and the delays slept.
    fn run(failures: &[ConnectorErrorKind], attempts: u32) -> (Result<u32, ConnectorErrorKind>, usize, Vec<Duration>) {
        let sleeper = Recorder::default();
        let calls = Mutex::new(0usize);
        let backoff = Backoff { attempts, base: Duration::from_millis(100) };
        let result = block_on(retry(backoff, &sleeper, || {
            let n = {
                let mut c = calls.lock().unwrap_or_else(|p| p.into_inner());
                *c += 1;
                *c
            };
            let outcome = match failures.get(n - 1) {
                Some(kind) => Err(ConnectorError::new(kind.clone(), "boom")),
                None => Ok(7),
            };
            async move { outcome }
        }));
        let n = *calls.lock().unwrap_or_else(|p| p.into_inner());
        let slept = sleeper.0.into_inner().unwrap_or_else(|p| p.into_inner());
        (result.map_err(|e| e.kind), n, slept)
    }

    #[test]
    fn transient_failures_are_retried_with_doubling_delays() {
        let (result, calls, slept) = run(&[ConnectorErrorKind::Transient, ConnectorErrorKind::Transient], 3);
        assert_eq!(result, Ok(7));
        assert_eq!(calls, 3);
        assert_eq!(slept, vec![Duration::from_millis(100), Duration::from_millis(200)]);
    }

    #[test]
    fn retries_are_bounded() {
        let throttled = ConnectorErrorKind::Throttled { retry_after: None };
        let (result, calls, slept) = run(&[throttled.clone(), throttled.clone(), throttled.clone()], 3);
        assert_eq!(result, Err(throttled));
        assert_eq!(calls, 3);
        assert_eq!(slept.len(), 2);
    }

    #[test]
    fn permanent_classes_are_not_retried() {
        for kind in [
            ConnectorErrorKind::NotFound,
            ConnectorErrorKind::Permanent,
            ConnectorErrorKind::Conflict,
            ConnectorErrorKind::Forbidden,
            ConnectorErrorKind::Unauthenticated,
        ] {
            let (result, calls, slept) = run(std::slice::from_ref(&kind), 3);
            assert_eq!(result, Err(kind));
            assert_eq!((calls, slept.len()), (1, 0));
        }
    }
}
