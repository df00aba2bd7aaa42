//! TLS termination for intercepted hosts: one pingora rustls `Acceptor` per (CA, host), built
//! around a certificate minted for that host and cached until shortly before it expires. The
//! acceptor serves its certificate only to a ClientHello whose SNI is the host the client
//! asked to `CONNECT` to (or that sends no SNI); any other name fails the handshake. It offers
//! ALPN `h2` and `http/1.1`, and tags the connection with [`Intercepted`] so the HTTP layer
//! knows which host the requests on it were addressed to.
//!
//! Why one acceptor per host rather than one resolver for all: pingora 0.9 lets an app attach
//! data to a TLS connection only through `TlsAccept::handshake_complete_callback` (the digest's
//! `extension.set` is crate-private), and the callback has no view of the SNI; a per-host
//! acceptor carries its host in its callback, and its resolver can refuse every other name.

use std::any::Any;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use pingora::listeners::tls::{Acceptor, TlsSettings};
use pingora::listeners::{TlsAccept, ALPN};
use pingora::protocols::tls::TlsRef;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use crate::config::ca::{CaError, LocalCa, LEAF_LIFETIME};

/// A cached acceptor is replaced this long before its certificate expires.
const RENEW_BEFORE: Duration = Duration::from_secs(3600);
/// Bound on cached hosts (wildcard intercept patterns admit many names).
const MAX_ENTRIES: usize = 1024;

/// Attached to every intercepted TLS connection (pingora's `SslDigest` extension).
#[derive(Debug)]
pub struct Intercepted {
    /// The normalised host of the `CONNECT`.
    pub host: String,
}

/// Serves the minted certificate for one host only.
#[derive(Debug)]
struct OneHost {
    host: String,
    key: Arc<CertifiedKey>,
}

impl ResolvesServerCert for OneHost {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        match hello.server_name() {
            None => Some(self.key.clone()),
            Some(sni) if sni.eq_ignore_ascii_case(&self.host) => Some(self.key.clone()),
            // A name the client did not CONNECT to: no certificate, the handshake fails.
            Some(_) => None,
        }
    }
}

/// Tags the connection once the handshake completes.
struct Tag(Arc<Intercepted>);

#[async_trait]
impl TlsAccept for Tag {
    async fn handshake_complete_callback(
        &self,
        _tls: &TlsRef,
    ) -> Option<Arc<dyn Any + Send + Sync>> {
        Some(self.0.clone())
    }
}

struct Entry {
    acceptor: Arc<Acceptor>,
    renew_at: Instant,
}

/// Acceptors by CA fingerprint and host; outlives config reloads.
#[derive(Default)]
pub struct Acceptors {
    entries: Mutex<HashMap<([u8; 32], String), Entry>>,
}

impl Acceptors {
    pub fn new() -> Self {
        Self::default()
    }

    /// The acceptor for `host` under `ca`, minted on first use or when its certificate is
    /// close to expiry. Minting happens outside the lock.
    pub fn get(&self, ca: &LocalCa, host: &str) -> Result<Arc<Acceptor>, CaError> {
        let key = (ca.fingerprint, host.to_string());
        let now = Instant::now();
        if let Ok(entries) = self.entries.lock() {
            if let Some(e) = entries.get(&key).filter(|e| e.renew_at > now) {
                return Ok(e.acceptor.clone());
            }
        }
        let certified = ca.mint(host)?;
        let mut settings = TlsSettings::with_callbacks(Box::new(Tag(Arc::new(Intercepted {
            host: host.to_string(),
        }))))
        .map_err(|e| CaError::Mint(e.to_string()))?;
        settings.set_cert_resolver(Arc::new(OneHost {
            host: host.to_string(),
            key: certified,
        }));
        settings.set_alpn(ALPN::H2H1);
        let acceptor = Arc::new(settings.build());
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= MAX_ENTRIES {
                entries.retain(|_, e| e.renew_at > now);
                if entries.len() >= MAX_ENTRIES {
                    entries.clear();
                }
            }
            entries.insert(
                key,
                Entry {
                    acceptor: acceptor.clone(),
                    renew_at: now + LEAF_LIFETIME - RENEW_BEFORE,
                },
            );
        }
        Ok(acceptor)
    }
}

/// The host a request's connection was intercepted for, if it arrived through interception.
pub fn intercepted_host(session: &pingora::protocols::http::ServerSession) -> Option<&str> {
    session
        .digest()?
        .ssl_digest
        .as_ref()?
        .extension
        .get::<Intercepted>()
        .map(|i| i.host.as_str())
}
