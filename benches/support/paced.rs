//! The paced SSE source for the streaming figures: an in-process OpenAI-format stream server
//! that records the instant it hands each chunk to its connection, so the driver (same process,
//! same clock) measures every chunk's transit time and the jitter a proxy adds to the gap
//! between two chunks, independently of how precisely the chunks were paced.
//!
//! A request carries `x-bench-stream: <id>`; the answer is `chunks` content events `delay`
//! apart, each naming its sequence number, then `data: [DONE]`. A request without that header
//! gets a small chat completion at once: the open-loop figures use this as their zero-delay
//! upstream, so that the driver and the upstream are one process on CPU 0 (two processes
//! sharing it would take turns in scheduler slices of several milliseconds, and the p99 would
//! measure that instead of the proxy).

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// The instant answer: an OpenAI chat completion of the size the mock provider returns.
const INSTANT_COMPLETION: &[u8] = br#"{"id":"chatcmpl-instant","object":"chat.completion","created":0,"model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":"The quarterly numbers are steady; the three biggest risks are latency, cost and provider outages."},"finish_reason":"stop"}],"usage":{"prompt_tokens":96,"completion_tokens":21,"total_tokens":117}}"#;

/// When each chunk of each stream was handed to the connection, by stream id.
pub type SentLog = Arc<Mutex<HashMap<u64, Vec<Instant>>>>;

#[derive(Clone)]
pub struct PacedServer {
    pub addr: SocketAddr,
    pub sent: SentLog,
}

type Body = http_body_util::combinators::BoxBody<Bytes, Infallible>;

/// Starts the server on an ephemeral loopback port; it lives as long as the runtime.
pub async fn start(chunks: usize, delay: Duration) -> PacedServer {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the paced server");
    let addr = listener.local_addr().expect("paced server address");
    let sent: SentLog = Arc::default();
    let log = sent.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let _ = tcp.set_nodelay(true);
            let log = log.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                    let log = log.clone();
                    async move { Ok::<_, Infallible>(answer(req, chunks, delay, log).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tcp), service)
                    .await;
            });
        }
    });
    PacedServer { addr, sent }
}

async fn answer(
    req: Request<Incoming>,
    chunks: usize,
    delay: Duration,
    log: SentLog,
) -> Response<Body> {
    let Some(id) = req
        .headers()
        .get("x-bench-stream")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
    else {
        let _ = req.into_body().collect().await;
        return Response::builder()
            .header("content-type", "application/json")
            .body(BodyExt::boxed(http_body_util::Full::new(
                Bytes::from_static(INSTANT_COMPLETION),
            )))
            .expect("static response head");
    };
    // Drain the request body before answering, as a provider does.
    let _ = req.into_body().collect().await;
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, Infallible>>(chunks + 2);
    tokio::spawn(async move {
        let role = format!(
            "data: {{\"id\":\"paced-{id}\",\"object\":\"chat.completion.chunk\",\"created\":0,\"model\":\"paced\",\"choices\":[{{\"index\":0,\"delta\":{{\"role\":\"assistant\",\"content\":\"\"}},\"finish_reason\":null}}]}}\n\n"
        );
        if tx.send(Ok(Frame::data(Bytes::from(role)))).await.is_err() {
            return;
        }
        let start = tokio::time::Instant::now();
        for seq in 0..chunks {
            tokio::time::sleep_until(start + delay * seq as u32).await;
            let data = format!(
                "data: {{\"id\":\"paced-{id}\",\"object\":\"chat.completion.chunk\",\"created\":0,\"model\":\"paced\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"seq{seq};\"}},\"finish_reason\":null}}]}}\n\n"
            );
            let now = Instant::now();
            if let Ok(mut log) = log.lock() {
                log.entry(id).or_default().push(now);
            }
            if tx.send(Ok(Frame::data(Bytes::from(data)))).await.is_err() {
                return;
            }
        }
        let _ = tx
            .send(Ok(Frame::data(Bytes::from_static(b"data: [DONE]\n\n"))))
            .await;
    });
    let body = StreamBody::new(tokio_stream_from(rx));
    Response::builder()
        .header("content-type", "text/event-stream")
        .header("cache-control", "no-cache")
        .body(BodyExt::boxed(body))
        .expect("static response head")
}

fn tokio_stream_from<T: Send + 'static>(
    mut rx: tokio::sync::mpsc::Receiver<T>,
) -> impl futures_util::Stream<Item = T> {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

/// The sequence numbers named by the content events in `text` (`"content":"seq<N>;"`).
pub fn sequence_numbers(text: &str) -> impl Iterator<Item = usize> + '_ {
    text.match_indices("\"content\":\"seq")
        .filter_map(|(at, m)| {
            let rest = &text[at + m.len()..];
            rest.split(';').next()?.parse().ok()
        })
}
