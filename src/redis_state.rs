//! The Redis connection behind shared state (governance counters, the response cache): a lazily
//! connecting client driven by a current-thread runtime on a thread of its own, so the request
//! path never waits for Redis to connect and a slow Redis never stalls the proxy's workers.

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use crate::config::StateSettings;

#[derive(Debug, thiserror::Error)]
pub enum RedisStateError {
    #[error("invalid state.redis_url: {0}")]
    Url(String),
    #[error("cannot start the {0} thread: {1}")]
    Thread(&'static str, std::io::Error),
    #[error("the {0} thread did not start")]
    NoRuntime(&'static str),
}

/// A connection and the runtime that drives it; work that talks to Redis is spawned there.
pub struct RedisThread {
    pub conn: ConnectionManager,
    pub handle: tokio::runtime::Handle,
}

/// Starts thread `name` (`switchyard-<name>`) with its runtime and a lazy connection to
/// `settings.redis_url`: connect and response timeouts from `settings.timeout`, one retry,
/// reconnect backoff 50–500 ms. The thread lives as long as the process.
pub fn start(settings: &StateSettings, name: &'static str) -> Result<RedisThread, RedisStateError> {
    // Never echo the URL: it may carry a password.
    let client = redis::Client::open(settings.redis_url.expose())
        .map_err(|e| RedisStateError::Url(format!("{:?}", e.kind())))?;
    let timeout = settings.timeout;
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(timeout.max(Duration::from_millis(500))))
        .set_response_timeout(Some(timeout))
        .set_number_of_retries(1)
        .set_min_delay(Duration::from_millis(50))
        .set_max_delay(Duration::from_millis(500));
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name(format!("switchyard-{name}"))
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    tracing::error!(error = %e, thread = name, "cannot build a Redis runtime");
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
        })
        .map_err(|e| RedisStateError::Thread(name, e))?;
    let (conn, handle) = rx.recv().map_err(|_| RedisStateError::NoRuntime(name))?;
    let conn = conn.map_err(|e| RedisStateError::Url(format!("{:?}", e.kind())))?;
    Ok(RedisThread { conn, handle })
}
