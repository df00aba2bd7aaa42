//! The two listeners: HTTPS for the API server (`POST /inject`, `GET /healthz`) and plain HTTP
//! for Prometheus and probes (`GET /metrics`, `GET /healthz`). Everything is bounded: the number
//! of connections, the TLS handshake, the request head, the body's size and arrival, and a
//! connection's age. SIGTERM or SIGINT stops accepting, lets in-flight reviews finish (up to
//! [`DRAIN`]) and returns.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{header, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};

use super::metrics::InjectorMetrics;
use super::review::{self, Verdict};
use super::tls::{spawn_reloader, CertFiles, ReloadingCert};
use super::WebhookError;
use crate::inject::Defaults;

/// Largest review body read. An AdmissionReview carries `object` and `oldObject` (null on a
/// CREATE), and etcd refuses objects over ~1.5 MiB, so a real review of a pod stays well under
/// this; anything larger is not one and is refused (413) before it is buffered.
pub const MAX_BODY: usize = 8 * 1024 * 1024;
/// How long a review's body may take to arrive once its head is in. The API server's webhook
/// timeout is at most 30 s (10 s by default): a body slower than this could not be answered in
/// time anyway, and a client that stalls mid-body must not hold a connection slot.
pub const BODY_DEADLINE: Duration = Duration::from_secs(10);
/// How long a request head may take, counted from the moment the connection waits for it: hyper
/// applies it to an idle keep-alive connection too, so it is also the keep-alive idle timeout.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a TLS handshake may take.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// A connection is closed (gracefully, between requests) after this long, so a client that
/// keeps one busy forever still picks up a rotated certificate.
pub const MAX_CONNECTION_AGE: Duration = Duration::from_secs(300);
/// Open connections on the webhook listener; past it new connections are closed at once.
pub const MAX_CONNECTIONS: usize = 256;
/// Open connections on the metrics listener.
pub const MAX_METRICS_CONNECTIONS: usize = 32;
/// How long shutdown waits for in-flight requests.
pub const DRAIN: Duration = Duration::from_secs(5);

/// What `switchyard injector` serves.
#[derive(Clone, Debug)]
pub struct InjectorOptions {
    pub listen: SocketAddr,
    pub metrics_listen: SocketAddr,
    pub cert: CertFiles,
    pub defaults: Defaults,
    /// After SIGTERM, keep serving this long (with `/healthz` failing) before stopping: the
    /// API server may still dial this pod until its endpoint removal has propagated.
    pub shutdown_delay: Duration,
}

struct State {
    defaults: Defaults,
    metrics: InjectorMetrics,
    cert: Arc<ReloadingCert>,
    /// Set on SIGTERM: `/healthz` answers 503 while the shutdown delay runs.
    stopping: std::sync::atomic::AtomicBool,
}

impl State {
    fn healthz(&self) -> Response<Body> {
        if self.stopping.load(std::sync::atomic::Ordering::Relaxed) {
            text(StatusCode::SERVICE_UNAVAILABLE, "stopping\n")
        } else {
            text(StatusCode::OK, "ok\n")
        }
    }
}

type Body = Full<Bytes>;

fn text(status: StatusCode, body: &'static str) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

fn with_allow(mut response: Response<Body>, allow: &'static str) -> Response<Body> {
    response
        .headers_mut()
        .insert(header::ALLOW, header::HeaderValue::from_static(allow));
    response
}

fn json(body: Vec<u8>) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    response
}

/// The webhook listener's routes.
async fn webhook_route(state: Arc<State>, req: Request<Incoming>) -> Response<Body> {
    match (req.uri().path(), req.method()) {
        ("/inject", &Method::POST) => review_request(state, req).await,
        ("/inject", _) => with_allow(text(StatusCode::METHOD_NOT_ALLOWED, "use POST\n"), "POST"),
        ("/healthz", &Method::GET | &Method::HEAD) => state.healthz(),
        ("/healthz", _) => with_allow(text(StatusCode::METHOD_NOT_ALLOWED, "use GET\n"), "GET"),
        _ => text(StatusCode::NOT_FOUND, "not found\n"),
    }
}

/// The metrics listener's routes.
fn metrics_route(state: &State, req: &Request<Incoming>) -> Response<Body> {
    let get = matches!(*req.method(), Method::GET | Method::HEAD);
    match (req.uri().path(), get) {
        ("/metrics", true) => {
            let mut response = Response::new(Full::new(Bytes::from(
                state.metrics.render(state.cert.not_after()),
            )));
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                header::HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            response
        }
        ("/healthz", true) => state.healthz(),
        ("/metrics" | "/healthz", false) => {
            with_allow(text(StatusCode::METHOD_NOT_ALLOWED, "use GET\n"), "GET")
        }
        _ => text(StatusCode::NOT_FOUND, "not found\n"),
    }
}

/// Reads a review body within [`MAX_BODY`] and [`BODY_DEADLINE`], or the response refusing it.
async fn read_body(req: Request<Incoming>) -> Result<Bytes, (Response<Body>, &'static str)> {
    let declared = (req.headers().get(header::CONTENT_LENGTH))
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > MAX_BODY as u64) {
        let response = text(StatusCode::PAYLOAD_TOO_LARGE, "review body over 8 MiB\n");
        return Err((response, "body over 8 MiB"));
    }
    let body = Limited::new(req.into_body(), MAX_BODY);
    match tokio::time::timeout(BODY_DEADLINE, body.collect()).await {
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => Err((
            text(StatusCode::PAYLOAD_TOO_LARGE, "review body over 8 MiB\n"),
            "body over 8 MiB",
        )),
        Ok(Err(_)) => Err((
            text(StatusCode::BAD_REQUEST, "review body cut short\n"),
            "body cut short",
        )),
        Err(_) => Err((
            text(
                StatusCode::REQUEST_TIMEOUT,
                "review body not received in time\n",
            ),
            "body not received in time",
        )),
    }
}

/// `POST /inject`: one AdmissionReview.
async fn review_request(state: Arc<State>, req: Request<Incoming>) -> Response<Body> {
    let started = Instant::now();
    let body = match read_body(req).await {
        Ok(body) => body,
        Err((response, why)) => {
            // No AdmissionReview can be answered without its body (the API server checks the
            // response's uid), so these are HTTP errors; `failurePolicy: Ignore` admits the pod.
            tracing::warn!(problem = why, "injector: review refused");
            state
                .metrics
                .observe(Verdict::Malformed, started.elapsed().as_secs_f64());
            return response;
        }
    };
    let worker = Arc::clone(&state);
    // Parsing, injecting and diffing a large pod is CPU work: off the async workers. A panic
    // there (a bug) still answers with an allowing review, never a 500.
    let reviewed = tokio::task::spawn_blocking(move || review::review(&body, &worker.defaults))
        .await
        .unwrap_or_else(|_| review::malformed("", "internal error while reviewing"));
    state
        .metrics
        .observe(reviewed.verdict, started.elapsed().as_secs_f64());
    let result = reviewed.verdict.label();
    let workload = reviewed.workload.as_deref().unwrap_or("");
    match (&reviewed.problem, reviewed.verdict) {
        (Some(problem), _) => {
            tracing::warn!(uid = %reviewed.uid, workload, result, problem = %problem, "injector: review")
        }
        (None, Verdict::Injected | Verdict::Updated) => {
            tracing::info!(uid = %reviewed.uid, workload, result, "injector: review")
        }
        (None, _) => tracing::debug!(uid = %reviewed.uid, workload, result, "injector: review"),
    }
    json(reviewed.body)
}

/// Resolves once shutdown is asked (or its sender is gone).
async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    // The guard `wait_for` returns is not `Send`: dropped here, never held across an await of
    // the caller's `select!`.
    let _ = shutdown.wait_for(|stop| *stop).await;
}

/// Serves HTTP/1.1 on one connection until it ends, shutdown is asked, or it is too old.
async fn serve_http<I, F, Fut>(io: I, handler: F, mut shutdown: watch::Receiver<bool>)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    F: Fn(Request<Incoming>) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Response<Body>> + Send + 'static,
{
    let service = hyper::service::service_fn(move |req| {
        let response = handler(req);
        async move { Ok::<_, Infallible>(response.await) }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .max_headers(64);
    let conn = builder.serve_connection(TokioIo::new(io), service);
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => return,
        _ = stopped(&mut shutdown) => {}
        _ = tokio::time::sleep(MAX_CONNECTION_AGE) => {}
    }
    // Finish the request in flight, if any, then close.
    conn.as_mut().graceful_shutdown();
    let _ = tokio::time::timeout(DRAIN, conn).await;
}

/// One listener: accepts until shutdown, each connection under a permit of `slots`.
struct Listener {
    tcp: TcpListener,
    slots: Arc<Semaphore>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    state: Arc<State>,
    shutdown: watch::Receiver<bool>,
}

impl Listener {
    async fn accept_loop(mut self) {
        loop {
            let (stream, _) = tokio::select! {
                accepted = self.tcp.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        // EMFILE and the like: back off instead of spinning.
                        tracing::warn!(error = %e, "injector: accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
                _ = stopped(&mut self.shutdown) => return,
            };
            let Ok(permit) = Arc::clone(&self.slots).try_acquire_owned() else {
                tracing::debug!("injector: connection limit reached; closing a new connection");
                continue;
            };
            let _ = stream.set_nodelay(true);
            let (tls, state, shutdown) = (
                self.tls.clone(),
                Arc::clone(&self.state),
                self.shutdown.clone(),
            );
            tokio::spawn(async move {
                let _permit = permit;
                match tls {
                    Some(acceptor) => {
                        let handshake =
                            tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream));
                        if let Ok(Ok(stream)) = handshake.await {
                            let handler = move |req| webhook_route(Arc::clone(&state), req);
                            serve_http(stream, handler, shutdown).await;
                        }
                    }
                    None => {
                        let handler = move |req: Request<Incoming>| {
                            let response = metrics_route(&state, &req);
                            async move { response }
                        };
                        serve_http(stream, handler, shutdown).await;
                    }
                }
            });
        }
    }
}

fn tls_acceptor(cert: Arc<ReloadingCert>) -> Result<tokio_rustls::TlsAcceptor, WebhookError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| WebhookError::Start(format!("TLS: {e}")))?
        .with_no_client_auth()
        .with_cert_resolver(cert);
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, WebhookError> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| WebhookError::Bind {
            addr,
            reason: e.to_string(),
        })
}

/// Resolves on SIGTERM or SIGINT.
async fn stop_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "injector: no SIGTERM handler; only SIGINT stops it");
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// Serves until SIGTERM/SIGINT. Prints the two bound addresses on stdout first (so a test can
/// bind port 0).
pub async fn serve(options: InjectorOptions) -> Result<(), WebhookError> {
    let cert = Arc::new(ReloadingCert::load(options.cert)?);
    let acceptor = tls_acceptor(Arc::clone(&cert))?;
    let metrics =
        InjectorMetrics::new().map_err(|e| WebhookError::Start(format!("metrics: {e}")))?;
    let webhook_tcp = bind(options.listen).await?;
    let metrics_tcp = bind(options.metrics_listen).await?;
    let local = |l: &TcpListener, fallback| l.local_addr().unwrap_or(fallback);
    let (webhook_addr, metrics_addr) = (
        local(&webhook_tcp, options.listen),
        local(&metrics_tcp, options.metrics_listen),
    );
    spawn_reloader(Arc::clone(&cert));
    let state = Arc::new(State {
        cert,
        defaults: options.defaults,
        metrics,
        stopping: std::sync::atomic::AtomicBool::new(false),
    });
    let (stop, shutdown) = watch::channel(false);
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let listeners = [
        (webhook_tcp, Arc::clone(&slots), Some(acceptor)),
        (
            metrics_tcp,
            Arc::new(Semaphore::new(MAX_METRICS_CONNECTIONS)),
            None,
        ),
    ];
    for (tcp, slots, tls) in listeners {
        let listener = Listener {
            tcp,
            slots,
            tls,
            state: Arc::clone(&state),
            shutdown: shutdown.clone(),
        };
        tokio::spawn(listener.accept_loop());
    }
    tracing::info!(listen = %webhook_addr, metrics = %metrics_addr, "injector: serving");
    println!("injector listening on https://{webhook_addr}");
    println!("injector metrics on http://{metrics_addr}");
    let _ = std::io::Write::flush(&mut std::io::stdout());
    stop_signal().await;
    if !options.shutdown_delay.is_zero() {
        state
            .stopping
            .store(true, std::sync::atomic::Ordering::Relaxed);
        tracing::info!(delay = ?options.shutdown_delay, "injector: stopping after the shutdown delay (a second signal stops now)");
        tokio::select! {
            _ = tokio::time::sleep(options.shutdown_delay) => {}
            _ = stop_signal() => {}
        }
    }
    tracing::info!("injector: stopping; finishing in-flight reviews");
    let _ = stop.send(true);
    // Every connection holds a permit: all of them back means every connection has ended.
    let drained = tokio::time::timeout(DRAIN, slots.acquire_many(MAX_CONNECTIONS as u32)).await;
    if drained.is_err() {
        tracing::warn!("injector: connections still open after the drain; closing them");
    }
    Ok(())
}

/// `switchyard injector`: its own runtime (two workers), served until a stop signal.
pub fn run(options: InjectorOptions) -> Result<(), WebhookError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| WebhookError::Start(format!("runtime: {e}")))?;
    let served = runtime.block_on(serve(options));
    // Blocking reloads and connections past the drain do not hold the exit.
    runtime.shutdown_timeout(Duration::from_secs(1));
    served
}
