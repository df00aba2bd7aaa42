//! The Redis side of the cache (`cache: { backend: redis }`): responses stored under
//! `switchyard:cache:<hex key>` with Redis's own expiry (`PX`), so every replica sharing
//! `state.redis_url` serves what any of them stored.
//!
//! Like the governance state, the connection (`redis`'s `ConnectionManager`: multiplexed,
//! reconnecting) is driven by a thread of its own; a lookup waits at most `state.timeout_ms`,
//! a store is sent from that thread and never awaited by a request. Redis being down makes
//! lookups misses (counted in `switchyard_cache_requests_total{result="error"}`), never
//! failures; after a failure Redis is skipped for [`DOWN_FOR`].

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::AsyncCommands;

use super::key::Digest32;
use super::store::Entry;
use crate::config::StateSettings;

/// After a failed call, how long lookups skip Redis.
pub const DOWN_FOR: Duration = Duration::from_millis(500);
/// Stores in flight at most (beyond that they are dropped).
pub const MAX_PENDING_STORES: usize = 1024;
/// At most one log line per this interval about an unreachable Redis.
const LOG_EVERY: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum SharedError {
    #[error("invalid state.redis_url: {0}")]
    Url(String),
    #[error("cannot start the cache thread: {0}")]
    Thread(#[from] std::io::Error),
    #[error("the cache thread did not start")]
    NoRuntime,
}

pub struct SharedStore {
    conn: ConnectionManager,
    handle: tokio::runtime::Handle,
    timeout: Duration,
    epoch: Instant,
    down_until: AtomicU64,
    last_log: AtomicU64,
    pending: Arc<AtomicUsize>,
}

fn redis_key(key: &Digest32) -> String {
    format!("switchyard:cache:{}", hex::encode(key))
}

impl SharedStore {
    /// Starts the cache's Redis thread and a lazily connecting client.
    pub fn start(settings: &StateSettings) -> Result<Arc<SharedStore>, SharedError> {
        // Never echo the URL: it may carry a password.
        let client = redis::Client::open(settings.redis_url.expose())
            .map_err(|e| SharedError::Url(format!("{:?}", e.kind())))?;
        let timeout = settings.timeout;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout.max(Duration::from_millis(500))))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_millis(500));
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("switchyard-cache".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        tracing::error!(error = %e, "cannot build the cache runtime");
                        return;
                    }
                };
                rt.block_on(async move {
                    let conn = ConnectionManager::new_lazy_with_config(client, config);
                    if tx.send((conn, tokio::runtime::Handle::current())).is_err() {
                        return;
                    }
                    // Keeps the runtime (and the connection's driver) alive for the process.
                    std::future::pending::<()>().await;
                });
            })?;
        let (conn, handle) = rx.recv().map_err(|_| SharedError::NoRuntime)?;
        let conn = conn.map_err(|e| SharedError::Url(format!("{:?}", e.kind())))?;
        Ok(Arc::new(SharedStore {
            conn,
            handle,
            timeout,
            epoch: Instant::now(),
            down_until: AtomicU64::new(0),
            last_log: AtomicU64::new(0),
            pending: Arc::new(AtomicUsize::new(0)),
        }))
    }

    fn now_us(&self) -> u64 {
        self.epoch.elapsed().as_micros() as u64 + 1
    }

    fn is_down(&self) -> bool {
        self.now_us() < self.down_until.load(Ordering::Relaxed)
    }

    fn failed(&self, error: &str) {
        let now = self.now_us();
        self.down_until
            .store(now + DOWN_FOR.as_micros() as u64, Ordering::Relaxed);
        let last = self.last_log.load(Ordering::Relaxed);
        if (last == 0 || now.saturating_sub(last) >= LOG_EVERY.as_micros() as u64)
            && self
                .last_log
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::warn!(
                error,
                "response cache (Redis) unreachable; lookups miss until it answers"
            );
        }
    }

    /// The stored response for `key`: `Ok(None)` when there is none, `Err(())` when Redis did
    /// not answer in time (a miss for the caller, counted as an error).
    pub async fn get(&self, key: &Digest32) -> Result<Option<Entry>, ()> {
        if self.is_down() {
            return Err(());
        }
        let mut conn = self.conn.clone();
        let k = redis_key(key);
        let call = async {
            let (raw, ttl): (Option<Vec<u8>>, i64) = redis::pipe()
                .get(&k)
                .pttl(&k)
                .query_async(&mut conn)
                .await?;
            Ok::<_, redis::RedisError>((raw, ttl))
        };
        match tokio::time::timeout(self.timeout, call).await {
            Ok(Ok((Some(raw), ttl))) => {
                let ttl = Duration::from_millis(u64::try_from(ttl).unwrap_or(0));
                Ok(Entry::decode(&raw, ttl).filter(|_| !ttl.is_zero()))
            }
            Ok(Ok((None, _))) => Ok(None),
            Ok(Err(e)) => {
                self.failed(&e.to_string());
                Err(())
            }
            Err(_) => {
                self.failed(&format!("no answer within {} ms", self.timeout.as_millis()));
                Err(())
            }
        }
    }

    /// Stores `entry` from the cache thread (never awaited by a request).
    pub fn put(self: &Arc<Self>, key: &Digest32, entry: &Entry) {
        if self.pending.fetch_add(1, Ordering::Relaxed) >= MAX_PENDING_STORES {
            self.pending.fetch_sub(1, Ordering::Relaxed);
            return;
        }
        let k = redis_key(key);
        let raw = entry.encode();
        let ttl_ms = u64::try_from(entry.ttl.as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
        let this = self.clone();
        self.handle.spawn(async move {
            let mut conn = this.conn.clone();
            let call = conn.pset_ex::<_, _, ()>(&k, raw, ttl_ms);
            match tokio::time::timeout(this.timeout, call).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => this.failed(&e.to_string()),
                Err(_) => this.failed("store timed out"),
            }
            this.pending.fetch_sub(1, Ordering::Relaxed);
        });
    }
}
