//! The export transport: one HTTP/1.1 connection to the collector (TLS for `https`), kept
//! open between exports and replaced when it fails, each export bounded by the timeout.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, CONTENT_TYPE, HOST, USER_AGENT};
use http::{HeaderMap, Request, Uri};
use http_body_util::{BodyExt, Full, Limited};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use rustls_pki_types::ServerName;
use tokio_rustls::TlsConnector;

use super::settings::{redact_userinfo, OtlpSettings};
use super::OtlpError;
use crate::config::ca;

/// How much of a collector's answer is read before the connection is reused.
const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// The parsed endpoint and the fixed request headers.
pub(super) struct Target {
    /// Scheme, host, port and path, without credentials or query (for messages).
    pub(super) display: String,
    host: String,
    port: u16,
    path: String,
    headers: HeaderMap,
    tls: Option<(TlsConnector, ServerName<'static>)>,
}

impl Target {
    pub(super) fn new(settings: &OtlpSettings) -> Result<Target, OtlpError> {
        let shown = redact_userinfo(&settings.endpoint);
        let bad = |reason: &str| OtlpError::Endpoint {
            endpoint: shown.clone(),
            reason: reason.to_string(),
        };
        let uri: Uri = settings
            .endpoint
            .parse()
            .map_err(|e: http::uri::InvalidUri| bad(&e.to_string()))?;
        let https = match uri.scheme_str() {
            Some("http") => false,
            Some("https") => true,
            _ => return Err(bad("the scheme must be http or https")),
        };
        let host = uri.host().ok_or_else(|| bad("no host"))?;
        let bare_host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        let authority = match uri.port_u16() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_string(),
        };
        let path = uri
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| "/".to_string());
        let host_value = HeaderValue::from_str(&authority).map_err(|_| bad("bad host"))?;
        let headers = request_headers(host_value, &settings.headers)?;
        let tls = match https {
            true => Some(tls_connector(&bare_host, &shown)?),
            false => None,
        };
        Ok(Target {
            // Without the query, which could carry a key.
            display: format!(
                "{}://{authority}{}",
                if https { "https" } else { "http" },
                uri.path()
            ),
            host: bare_host,
            port,
            path,
            headers,
            tls,
        })
    }
}

/// The fixed headers of every export request: `host`, `content-type`, `user-agent`, then the
/// configured ones (marked sensitive), which replace a fixed one of the same name.
fn request_headers(
    host: HeaderValue,
    configured: &[(String, String)],
) -> Result<HeaderMap, OtlpError> {
    let mut headers = HeaderMap::new();
    headers.insert(HOST, host);
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/x-protobuf"),
    );
    headers.insert(
        USER_AGENT,
        HeaderValue::from_static(concat!("switchyard/", env!("CARGO_PKG_VERSION"))),
    );
    let mut custom = HeaderMap::new();
    for (name, value) in configured {
        let invalid = || OtlpError::Header { name: name.clone() };
        let header = HeaderName::from_bytes(name.as_bytes()).map_err(|_| invalid())?;
        let mut value = HeaderValue::from_str(value).map_err(|_| invalid())?;
        value.set_sensitive(true);
        custom.append(header, value);
    }
    for name in custom.keys() {
        headers.remove(name);
    }
    for (name, value) in custom.iter() {
        headers.append(name.clone(), value.clone());
    }
    Ok(headers)
}

/// A TLS client for `host`, verifying against the bundled roots ([`ca::root_store`]).
fn tls_connector(
    host: &str,
    shown: &str,
) -> Result<(TlsConnector, ServerName<'static>), OtlpError> {
    let tls_error = |reason: String| OtlpError::Tls {
        endpoint: shown.to_string(),
        reason,
    };
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| tls_error(e.to_string()))?
    .with_root_certificates(ca::root_store(&[], true))
    .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let name = ServerName::try_from(host.to_string()).map_err(|e| tls_error(e.to_string()))?;
    Ok((TlsConnector::from(Arc::new(config)), name))
}

/// Why one export request failed. Never carries header values.
#[derive(Debug, thiserror::Error)]
pub(super) enum SendError {
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("TLS handshake with {host} failed: {source}")]
    Tls {
        host: String,
        #[source]
        source: std::io::Error,
    },
    #[error("HTTP exchange failed: {0}")]
    Http(#[source] hyper::Error),
    #[error("cannot build the request: {0}")]
    Request(#[source] http::Error),
    #[error("the collector answered {0}")]
    Status(http::StatusCode),
    #[error("reading the collector's answer failed: {0}")]
    Body(String),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
}

/// One HTTP/1.1 connection to the collector, reused while it stays open.
pub(super) struct Client {
    pub(super) target: Target,
    sender: Option<SendRequest<Full<Bytes>>>,
    timeout: Duration,
}

impl Client {
    /// A client for `target`; it connects on the first export.
    pub(super) fn new(target: Target, timeout: Duration) -> Client {
        Client {
            target,
            sender: None,
            timeout,
        }
    }
}

impl Client {
    pub(super) async fn post(&mut self, body: Bytes) -> Result<(), SendError> {
        let timeout = self.timeout;
        let result = match tokio::time::timeout(timeout, self.post_inner(body)).await {
            Ok(result) => result,
            Err(_) => Err(SendError::Timeout(timeout)),
        };
        if result.is_err() {
            self.sender = None;
        }
        result
    }

    async fn post_inner(&mut self, body: Bytes) -> Result<(), SendError> {
        // A kept connection the collector has since closed fails before any answer: retry once
        // on a new one.
        if let Some(mut sender) = self.sender.take() {
            if sender.ready().await.is_ok() {
                match self.exchange(&mut sender, body.clone()).await {
                    Ok(()) => {
                        self.sender = Some(sender);
                        return Ok(());
                    }
                    Err(SendError::Http(_)) => {}
                    Err(other) => return Err(other),
                }
            }
        }
        let mut sender = self.connect().await?;
        self.exchange(&mut sender, body).await?;
        self.sender = Some(sender);
        Ok(())
    }

    async fn exchange(
        &self,
        sender: &mut SendRequest<Full<Bytes>>,
        body: Bytes,
    ) -> Result<(), SendError> {
        let mut request = Request::post(self.target.path.as_str())
            .body(Full::new(body))
            .map_err(SendError::Request)?;
        *request.headers_mut() = self.target.headers.clone();
        let response = sender
            .send_request(request)
            .await
            .map_err(SendError::Http)?;
        let status = response.status();
        Limited::new(response.into_body(), MAX_RESPONSE_BYTES)
            .collect()
            .await
            .map_err(|e| SendError::Body(e.to_string()))?;
        if status.is_success() {
            Ok(())
        } else {
            Err(SendError::Status(status))
        }
    }

    async fn connect(&self) -> Result<SendRequest<Full<Bytes>>, SendError> {
        let target = &self.target;
        let tcp = tokio::net::TcpStream::connect((target.host.as_str(), target.port))
            .await
            .map_err(|source| SendError::Connect {
                addr: format!("{}:{}", target.host, target.port),
                source,
            })?;
        // Best effort: a socket without TCP_NODELAY still works.
        let _ = tcp.set_nodelay(true);
        match &target.tls {
            None => {
                let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
                    .await
                    .map_err(SendError::Http)?;
                tokio::spawn(async move {
                    let _ = connection.await;
                });
                Ok(sender)
            }
            Some((connector, name)) => {
                let stream = connector
                    .connect(name.clone(), tcp)
                    .await
                    .map_err(|source| SendError::Tls {
                        host: target.host.clone(),
                        source,
                    })?;
                let (sender, connection) =
                    hyper::client::conn::http1::handshake(TokioIo::new(stream))
                        .await
                        .map_err(SendError::Http)?;
                tokio::spawn(async move {
                    let _ = connection.await;
                });
                Ok(sender)
            }
        }
    }
}
