//! Pre-warming: each provider's `prewarm` connections, opened at start before `/readyz`
//! answers ready (for at most [`READY_WAIT`]: an unreachable provider delays readiness by that
//! much at most, with a log line, never forever) and again when a reload adds a provider or
//! changes its address, protocol or count. The first user requests then find a pooled
//! connection instead of paying TCP and TLS handshakes to the provider.
//!
//! It runs on the proxy's runtime ([`Prewarmer::run`]): a connection belongs to the runtime
//! that opened it, and the requests that reuse it run there.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;

use super::client::{UpstreamClient, DEFAULT_CONNECT_TIMEOUT};
use crate::config::{Provider, Snapshot};

/// The longest start-up pre-warming holds readiness back.
pub const READY_WAIT: Duration = Duration::from_secs(10);
/// How often a reload is looked for.
const RELOAD_POLL: Duration = Duration::from_secs(1);

/// What makes a provider's pre-warmed connections the ones it needs.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct WarmKey {
    name: String,
    host: String,
    port: u16,
    tls: bool,
    http2: bool,
    count: usize,
}

impl WarmKey {
    fn of(p: &Provider) -> WarmKey {
        WarmKey {
            name: p.name.clone(),
            host: p.base_url.host.clone(),
            port: p.base_url.port,
            tls: p.base_url.tls,
            http2: p.connections.http2,
            count: p.connections.prewarm,
        }
    }
}

pub struct Prewarmer {
    client: UpstreamClient,
    live: Arc<ArcSwap<Snapshot>>,
    warming: AtomicBool,
}

impl Prewarmer {
    pub fn new(client: UpstreamClient, live: Arc<ArcSwap<Snapshot>>) -> Arc<Prewarmer> {
        let any = live
            .load()
            .providers
            .iter()
            .any(|p| p.connections.prewarm > 0);
        Arc::new(Prewarmer {
            client,
            live,
            warming: AtomicBool::new(any),
        })
    }

    /// True until start-up pre-warming is done or [`READY_WAIT`] has passed.
    pub fn is_warming(&self) -> bool {
        self.warming.load(Ordering::Acquire)
    }

    /// Warms the loaded config's providers, lets readiness through, then warms what each
    /// reload adds. Runs until its runtime stops.
    pub async fn run(self: Arc<Self>) {
        let mut warmed = HashSet::new();
        let mut seen = self.live.load_full();
        if tokio::time::timeout(READY_WAIT, self.warm(&seen, &mut warmed))
            .await
            .is_err()
        {
            tracing::warn!(
                wait_s = READY_WAIT.as_secs(),
                "pre-warming did not finish in time; ready without the connections still opening"
            );
        }
        self.warming.store(false, Ordering::Release);
        loop {
            tokio::time::sleep(RELOAD_POLL).await;
            let now = self.live.load_full();
            if !Arc::ptr_eq(&now, &seen) {
                seen = now;
                self.warm(&seen, &mut warmed).await;
            }
        }
    }

    async fn warm(&self, snapshot: &Snapshot, warmed: &mut HashSet<WarmKey>) {
        let todo: Vec<&Arc<Provider>> = snapshot
            .providers
            .iter()
            .filter(|p| p.connections.prewarm > 0 && !warmed.contains(&WarmKey::of(p)))
            .collect();
        // Marked up front: a provider that cannot be reached is not retried on every reload.
        warmed.extend(todo.iter().map(|p| WarmKey::of(p)));
        futures_util::future::join_all(todo.into_iter().map(|p| self.warm_one(p))).await;
    }

    async fn warm_one(&self, provider: &Provider) {
        let started = Instant::now();
        let opened = futures_util::future::join_all(
            (0..provider.connections.prewarm)
                .map(|_| self.client.prewarm(provider, DEFAULT_CONNECT_TIMEOUT)),
        )
        .await;
        let mut protocol = None;
        let mut failure = None;
        let mut ok = 0;
        for result in opened {
            match result {
                Ok(p) => {
                    ok += 1;
                    protocol = Some(p.as_str());
                }
                Err(e) => failure = Some(e),
            }
        }
        let took_ms = started.elapsed().as_millis() as u64;
        match failure {
            None => tracing::info!(
                provider = %provider.name,
                connections = ok,
                protocol = protocol.unwrap_or("-"),
                took_ms,
                "pre-warmed upstream connections"
            ),
            Some(e) => tracing::warn!(
                provider = %provider.name,
                opened = ok,
                wanted = provider.connections.prewarm,
                error = %e,
                took_ms,
                "pre-warming failed; requests will open connections as they need them"
            ),
        }
    }
}
