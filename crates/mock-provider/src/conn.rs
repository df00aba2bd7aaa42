//! One accepted connection: the TLS handshake (delay, ALPN, full or resumed), then HTTP/1.1 or
//! HTTP/2, with the per-connection count of requests in flight and the client's RST_STREAMs.

use std::pin::Pin;
use std::task::{Context, Poll};

use hyper::body::SizeHint;
use hyper_util::rt::TokioExecutor;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use super::*;

/// How an HTTPS mock negotiates, and how slow its handshakes are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsOptions {
    /// ALPN protocols, in the server's order of preference (default `h2`, `http/1.1`). `h2`
    /// serves the connection with HTTP/2, anything else (or no ALPN) with HTTP/1.1. Empty: no
    /// ALPN at all. A client offering protocols of which none is listed fails the handshake.
    pub alpn: Vec<Vec<u8>>,
    /// Slept after accepting TCP, before the TLS handshake (a provider's network round trips):
    /// every new connection pays it, requests on a reused one do not. Default zero.
    pub handshake_delay: Duration,
}

impl Default for TlsOptions {
    fn default() -> Self {
        TlsOptions {
            alpn: vec![b"h2".to_vec(), b"http/1.1".to_vec()],
            handshake_delay: Duration::ZERO,
        }
    }
}

/// The TLS side of a listener.
pub(crate) struct Tls {
    pub(crate) acceptor: tokio_rustls::TlsAcceptor,
    pub(crate) handshake_delay: Duration,
}

/// Serves one accepted connection to its end.
pub(crate) async fn connection(state: Arc<MockState>, stream: TcpStream, tls: Option<Arc<Tls>>) {
    let Some(tls) = tls else {
        return serve_h1(state, stream).await;
    };
    if !tls.handshake_delay.is_zero() {
        tokio::time::sleep(tls.handshake_delay).await;
    }
    let Ok(stream) = tls.acceptor.accept(stream).await else {
        return;
    };
    let (_, session) = stream.get_ref();
    let counter = match session.handshake_kind() {
        Some(rustls::HandshakeKind::Resumed) => &state.tls_handshakes_resumed,
        _ => &state.tls_handshakes_full,
    };
    counter.fetch_add(1, Ordering::SeqCst);
    if session.alpn_protocol() == Some(b"h2") {
        serve_h2(state, stream).await
    } else {
        serve_h1(state, stream).await
    }
}

async fn serve_h1<I>(state: Arc<MockState>, io: I)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    state.h1_connections.fetch_add(1, Ordering::SeqCst);
    let service = counted_service(state);
    let _ = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(io), service)
        .await;
}

async fn serve_h2<I>(state: Arc<MockState>, io: I)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    state.h2_connections.fetch_add(1, Ordering::SeqCst);
    let io = ResetScan {
        inner: io,
        state: state.clone(),
        scan: FrameScan::default(),
    };
    let service = counted_service(state);
    let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
        .serve_connection(TokioIo::new(io), service)
        .await;
}

/// The request handler, counting this connection's requests in flight: a request is in flight
/// until its response body ends or is dropped.
fn counted_service(
    state: Arc<MockState>,
) -> impl hyper::service::Service<
    Request<Incoming>,
    Response = Response<Body>,
    Error = std::io::Error,
    Future = impl std::future::Future<Output = Result<Response<Body>, std::io::Error>> + Send,
> + Clone {
    let in_flight = Arc::new(AtomicUsize::new(0));
    hyper::service::service_fn(move |req| {
        let state = state.clone();
        let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        state
            .max_concurrent_streams
            .fetch_max(now, Ordering::SeqCst);
        let guard = InFlight(in_flight.clone());
        async move {
            let resp = handle(state, req).await?;
            Ok(resp.map(|inner| {
                GuardedBody {
                    inner,
                    _guard: guard,
                }
                .boxed()
            }))
        }
    })
}

/// One request in flight on a connection; dropping it ends that.
struct InFlight(Arc<AtomicUsize>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A response body that keeps its request in flight until it is done or dropped.
struct GuardedBody {
    inner: Body,
    _guard: InFlight,
}

impl hyper::body::Body for GuardedBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The client's side of an HTTP/2 connection, read through: counts its RST_STREAM frames.
struct ResetScan<I> {
    inner: I,
    state: Arc<MockState>,
    scan: FrameScan,
}

impl<I: AsyncRead + Unpin> AsyncRead for ResetScan<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled {
            let resets = self.scan.feed(&buf.filled()[before..]);
            if resets > 0 {
                self.state.streams_reset.fetch_add(resets, Ordering::SeqCst);
            }
        }
        polled
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for ResetScan<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// The HTTP/2 client connection preface, before the first frame.
const H2_PREFACE_LEN: usize = 24;
/// RFC 9113 §6.4.
const FRAME_TYPE_RST_STREAM: u8 = 0x3;

/// Walks the client's bytes frame by frame: the preface, then 9-byte frame headers (24-bit
/// payload length, type, flags, stream id), each followed by its payload.
struct FrameScan {
    /// Bytes still to pass over (the preface, or the current frame's payload).
    skip: usize,
    header: [u8; 9],
    have: usize,
}

impl Default for FrameScan {
    fn default() -> Self {
        FrameScan {
            skip: H2_PREFACE_LEN,
            header: [0; 9],
            have: 0,
        }
    }
}

impl FrameScan {
    /// Takes the next bytes read; returns how many RST_STREAM frame headers they completed.
    fn feed(&mut self, mut bytes: &[u8]) -> u64 {
        let mut resets = 0;
        while !bytes.is_empty() {
            if self.skip > 0 {
                let n = self.skip.min(bytes.len());
                self.skip -= n;
                bytes = &bytes[n..];
                continue;
            }
            let n = (self.header.len() - self.have).min(bytes.len());
            self.header[self.have..self.have + n].copy_from_slice(&bytes[..n]);
            self.have += n;
            bytes = &bytes[n..];
            if self.have == self.header.len() {
                self.have = 0;
                let h = self.header;
                self.skip = u32::from_be_bytes([0, h[0], h[1], h[2]]) as usize;
                if h[3] == FRAME_TYPE_RST_STREAM {
                    resets += 1;
                }
            }
        }
        resets
    }
}
