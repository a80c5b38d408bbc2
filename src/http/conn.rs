//! One HTTP connection's life beyond what hyper bounds: hyper's header deadline starts only once HTTP/1 is
//! chosen, and HTTP/2 has no idle limit at all, so a socket that sends nothing, only the HTTP/2 preface, or
//! one request and then nothing, would be held forever (and count against its address's connection limit).
//! Here every request is counted as it starts and ends (`Tracked`), and the connection is closed gracefully
//! when it has had no request for `header_timeout` since it opened, or none in flight for `idle_timeout`
//! after that. An upgraded WebSocket is no longer this connection's business: its session has its own
//! liveness.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

/// Requests in flight on one connection, and when the last one started or ended.
#[derive(Debug)]
pub struct Activity {
    opened: Instant,
    in_flight: AtomicUsize,
    /// Requests started so far.
    started: AtomicU64,
    /// Milliseconds after `opened` of the last start or end.
    last_ms: AtomicU64,
}

impl Activity {
    pub fn new() -> Arc<Activity> {
        Arc::new(Activity {
            opened: Instant::now(),
            in_flight: AtomicUsize::new(0),
            started: AtomicU64::new(0),
            last_ms: AtomicU64::new(0),
        })
    }

    fn touch(&self) {
        let ms = u64::try_from(self.opened.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    /// Returns once the connection has been idle past its limit: no request within `first` of opening, or
    /// none in flight for `idle` since the last one.
    pub async fn idle_past(&self, first: Duration, idle: Duration) {
        loop {
            let limit = if self.started.load(Ordering::Relaxed) == 0 {
                first
            } else {
                idle
            };
            let since = self.opened + Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
            if self.in_flight.load(Ordering::Relaxed) > 0 {
                tokio::time::sleep(idle).await;
                continue;
            }
            let due = since + limit;
            if Instant::now() >= due {
                return;
            }
            tokio::time::sleep_until(due).await;
        }
    }
}

/// Ends a request's count when its response is ready (or the request is dropped).
struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.0.touch();
    }
}

/// A hyper service that counts its requests in `Activity`.
#[derive(Clone)]
pub struct Tracked<S> {
    pub inner: S,
    pub activity: Arc<Activity>,
}

impl<S, R> hyper::service::Service<R> for Tracked<S>
where
    S: hyper::service::Service<R>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn call(&self, req: R) -> Self::Future {
        self.activity.started.fetch_add(1, Ordering::Relaxed);
        self.activity.in_flight.fetch_add(1, Ordering::Relaxed);
        self.activity.touch();
        let guard = InFlight(self.activity.clone());
        let fut = self.inner.call(req);
        Box::pin(async move {
            let answer = fut.await;
            drop(guard);
            answer
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_silent_connection_is_idle_after_the_first_deadline_and_a_busy_one_never() {
        let a = Activity::new();
        let (first, idle) = (Duration::from_secs(10), Duration::from_secs(60));
        let t = Instant::now();
        a.idle_past(first, idle).await;
        assert_eq!(t.elapsed().as_secs(), 10, "no request: the first deadline");

        let a = Activity::new();
        a.started.fetch_add(1, Ordering::Relaxed);
        a.in_flight.fetch_add(1, Ordering::Relaxed);
        let waiting = tokio::spawn({
            let a = a.clone();
            async move { a.idle_past(first, idle).await }
        });
        tokio::time::sleep(Duration::from_secs(600)).await;
        assert!(!waiting.is_finished(), "a request in flight keeps it open");
        drop(InFlight(a.clone()));
        let t = Instant::now();
        waiting.await.expect("idle");
        assert!(t.elapsed() >= idle, "idle counts from the request's end");
    }
}
