//! Graceful shutdown: on SIGTERM `/readyz` turns 503 at once, in-flight requests and streams
//! finish (bounded by the configured grace), then pingora stops. SIGINT stops at once.
//!
//! pingora's own grace period is a fixed sleep that does not end when idle, and it cuts streams
//! still open at its end; so we drain here and hand pingora a zero grace.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use pingora::server::{ShutdownSignal, ShutdownSignalWatch};
use tokio::sync::Notify;

use crate::telemetry::otlp::OtlpExporter;

/// Counts in-flight requests and remembers whether we are draining.
#[derive(Default)]
pub struct Drain {
    draining: AtomicBool,
    inflight: AtomicUsize,
    idle: Notify,
}

/// Held for the life of one request.
pub struct InflightGuard {
    drain: Arc<Drain>,
}

impl Drop for InflightGuard {
    fn drop(&mut self) {
        if self.drain.inflight.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.drain.idle.notify_waiters();
        }
    }
}

impl Drain {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    pub fn enter(self: &Arc<Self>) -> InflightGuard {
        self.inflight.fetch_add(1, Ordering::AcqRel);
        InflightGuard {
            drain: self.clone(),
        }
    }

    pub fn inflight(&self) -> usize {
        self.inflight.load(Ordering::Acquire)
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }

    pub fn start(&self) {
        self.draining.store(true, Ordering::Release);
    }

    /// Returns once nothing is in flight, or after `grace`.
    pub async fn wait_idle(&self, grace: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + grace;
        loop {
            let notified = self.idle.notified();
            if self.inflight() == 0 {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.inflight() == 0;
            }
        }
    }
}

/// Longest wait for the last spans to reach the collector at shutdown.
const OTLP_FLUSH: Duration = Duration::from_secs(2);
/// How long shutdown waits for the request store's queue.
const STORE_FLUSH: Duration = Duration::from_secs(3);

/// The shutdown watch handed to pingora's `Server::run`.
pub struct DrainingShutdown {
    pub drain: Arc<Drain>,
    pub grace: Duration,
    /// Flushed after draining, so the last requests' spans are not lost.
    pub otlp: Option<Arc<OtlpExporter>>,
    /// Flushed after draining, so the last requests' records reach the store (bounded).
    pub store: Option<Arc<crate::store::Store>>,
}

#[async_trait]
impl ShutdownSignalWatch for DrainingShutdown {
    async fn recv(&self) -> ShutdownSignal {
        use tokio::signal::unix::{signal, SignalKind};
        let (Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) else {
            tracing::error!("cannot install SIGTERM/SIGINT handlers; shutting down");
            return ShutdownSignal::FastShutdown;
        };
        tokio::select! {
            _ = int.recv() => {
                tracing::info!("SIGINT: stopping now");
                ShutdownSignal::FastShutdown
            }
            _ = term.recv() => {
                self.drain.start();
                tracing::info!(inflight = self.drain.inflight(), grace_s = self.grace.as_secs_f64(), "SIGTERM: draining");
                let drained = self.drain.wait_idle(self.grace).await;
                if drained {
                    tracing::info!("drained; exiting");
                } else {
                    tracing::warn!(inflight = self.drain.inflight(), "grace period over; exiting with requests in flight");
                }
                if let Some(otlp) = self.otlp.clone() {
                    // The last batch of spans, bounded: flush blocks, so off the runtime.
                    let _ = tokio::task::spawn_blocking(move || otlp.flush(OTLP_FLUSH)).await;
                }
                if let Some(store) = &self.store {
                    if !store.flush(STORE_FLUSH).await {
                        tracing::warn!("request store: the last records were not all written before exit");
                    }
                }
                ShutdownSignal::GracefulTerminate
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn wait_idle_returns_when_the_last_request_ends() {
        let drain = Drain::new();
        let guard = drain.enter();
        assert_eq!(drain.inflight(), 1);
        assert!(!drain.wait_idle(Duration::from_millis(20)).await);
        let d = drain.clone();
        let waiter = tokio::spawn(async move { d.wait_idle(Duration::from_secs(5)).await });
        tokio::time::sleep(Duration::from_millis(20)).await;
        drop(guard);
        assert!(waiter.await.unwrap());
        assert_eq!(drain.inflight(), 0);
    }
}
