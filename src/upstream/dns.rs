//! Asynchronous name resolution with a short-lived cache.
//!
//! pingora's `HttpPeer::new` resolves names with a blocking `getaddrinfo` on a worker thread and
//! panics when resolution fails, so peers are only ever built from a `SocketAddr` we resolved
//! here with `tokio::net::lookup_host`.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a resolved address is reused before resolving again.
const TTL: Duration = Duration::from_secs(30);
/// Bound on cached names (the config names a handful of hosts; this only guards against growth).
const MAX_ENTRIES: usize = 1024;

#[derive(Default)]
pub struct DnsCache {
    entries: Mutex<HashMap<(String, u16), (SocketAddr, Instant)>>,
}

impl DnsCache {
    pub fn new() -> Self {
        Self::default()
    }

    /// The address for `host:port`: an IP literal directly, else a cached or fresh lookup.
    pub async fn resolve(&self, host: &str, port: u16) -> std::io::Result<SocketAddr> {
        if let Ok(ip) = host.parse::<IpAddr>() {
            return Ok(SocketAddr::new(ip, port));
        }
        let key = (host.to_string(), port);
        if let Some(addr) = self.cached(&key) {
            return Ok(addr);
        }
        let addr = tokio::net::lookup_host((host, port))
            .await?
            .next()
            .ok_or_else(|| {
                std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    format!("{host} resolved to no address"),
                )
            })?;
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
            entries.insert(key, (addr, Instant::now()));
        }
        Ok(addr)
    }

    fn cached(&self, key: &(String, u16)) -> Option<SocketAddr> {
        let entries = self.entries.lock().ok()?;
        let (addr, at) = entries.get(key)?;
        (at.elapsed() < TTL).then_some(*addr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn ip_literals_and_localhost_resolve() {
        let dns = DnsCache::new();
        assert_eq!(
            dns.resolve("127.0.0.1", 80).await.unwrap(),
            "127.0.0.1:80".parse().unwrap()
        );
        assert_eq!(dns.resolve("::1", 81).await.unwrap().port(), 81);
        let a = dns.resolve("localhost", 82).await.unwrap();
        assert!(a.ip().is_loopback());
        assert!(dns.resolve("no-such-host.invalid", 80).await.is_err());
    }
}
