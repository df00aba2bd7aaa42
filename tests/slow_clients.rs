//! Bounded downstream (issue 17, finding 2 and the pipelining and flood items of 10): slow
//! heads and bodies, oversized heads, a client that stops reading a stream, a flood of idle
//! connections past the cap, and pipelined requests. Raw TCP clients over loopback against
//! the real binary, with short configured deadlines and generous upper bounds.

#[path = "support/gateway.rs"]
mod harness;

use std::time::{Duration, Instant};

use harness::{eventually, mock, Gateway};
use switchyard_mock::MockHandle;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One provider at `mock` (through the fault path `fault`), key `vk-app`, and `limits`.
fn config(mock: &MockHandle, fault: &str, limits: &str) -> String {
    format!(
        r#"
providers:
  mock:
    kind: openai-compatible
    base_url: http://{addr}{fault}/v1
    api_key: sk-real
virtual_keys:
  vk-app:
    provider: mock
limits:
{limits}
"#,
        addr = mock.addr
    )
}

const CHAT: &str = r#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}"#;

fn chat_request(body: &str) -> String {
    format!(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer vk-app\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// Reads until the peer closes, an error, or `limit`; returns what came and whether it closed.
async fn read_to_close(conn: &mut TcpStream, limit: Duration) -> (Vec<u8>, bool) {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, conn.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (got, true),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            Err(_) => return (got, false),
        }
    }
}

/// Sends `first`, then `drip` one byte every 200 ms, until the gateway answers or closes (or
/// `limit`). Returns the answer, whether the connection closed, and when that happened.
async fn dribble(
    gw: &Gateway,
    first: &str,
    drip: &[u8],
    limit: Duration,
) -> (String, bool, Duration) {
    let mut conn = TcpStream::connect(gw.addr).await.unwrap();
    conn.write_all(first.as_bytes()).await.unwrap();
    let started = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    for byte in drip.iter().cycle() {
        if started.elapsed() > limit {
            return (
                String::from_utf8_lossy(&got).into(),
                false,
                started.elapsed(),
            );
        }
        match tokio::time::timeout(Duration::from_millis(200), conn.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => {
                got.extend_from_slice(&buf[..n]);
                // The answer came: read the rest until the gateway closes.
                let (rest, closed) = read_to_close(&mut conn, Duration::from_secs(5)).await;
                got.extend_from_slice(&rest);
                let text = String::from_utf8_lossy(&got).into();
                return (text, closed, started.elapsed());
            }
            Err(_) => {
                if conn.write_all(&[*byte]).await.is_err() {
                    break;
                }
            }
        }
    }
    let (rest, _) = read_to_close(&mut conn, Duration::from_secs(2)).await;
    got.extend_from_slice(&rest);
    (
        String::from_utf8_lossy(&got).into(),
        true,
        started.elapsed(),
    )
}

#[tokio::test]
async fn a_dribbled_head_is_cut_at_the_header_deadline() {
    let mock = mock().await;
    let gw = Gateway::start(&config(&mock, "", "  header_timeout_ms: 1000")).await;
    let first = "POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\n";
    let (answer, closed, took) = dribble(
        &gw,
        first,
        b"x-pad-aaaaaaaaaa: b\r\n",
        Duration::from_secs(8),
    )
    .await;
    assert!(
        closed,
        "the connection stayed open for {took:?}: {answer:?}"
    );
    assert!(took < Duration::from_secs(5), "cut after {took:?}");
    assert!(answer.starts_with("HTTP/1.1 408"), "answer: {answer:?}");
    assert!(answer.to_ascii_lowercase().contains("connection: close"));
    assert!(answer.contains("request_timeout"), "answer: {answer:?}");
    gw.expect_metric(
        "switchyard_downstream_closed_total",
        &["reason=\"header_timeout\""],
        1.0,
    )
    .await;
}

#[tokio::test]
async fn an_idle_keepalive_connection_is_closed_at_its_idle_limit_without_an_answer() {
    let mock = mock().await;
    let limits = "  header_timeout_ms: 1000\n  keepalive_idle_ms: 1000";
    let gw = Gateway::start(&config(&mock, "", limits)).await;
    // A served request, then silence: the idle limit runs from the end of the first.
    let mut conn = TcpStream::connect(gw.addr).await.unwrap();
    conn.write_all(chat_request(CHAT).as_bytes()).await.unwrap();
    let started = Instant::now();
    let (got, closed) = read_to_close(&mut conn, Duration::from_secs(8)).await;
    let text = String::from_utf8_lossy(&got);
    assert!(closed, "the keep-alive connection stayed open: {text}");
    assert!(started.elapsed() < Duration::from_secs(6));
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert_eq!(
        text.matches("HTTP/1.1").count(),
        1,
        "no answer for no request: {text}"
    );
}

#[tokio::test]
async fn a_pooled_connection_may_idle_longer_than_the_head_deadline() {
    let mock = mock().await;
    let limits = "  header_timeout_ms: 300\n  keepalive_idle_ms: 20000";
    let gw = Gateway::start(&config(&mock, "", limits)).await;
    // A client's connection pool keeps the connection between requests: idle is not slow.
    let mut conn = TcpStream::connect(gw.addr).await.unwrap();
    for _ in 0..2 {
        conn.write_all(chat_request(CHAT).as_bytes()).await.unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        while !String::from_utf8_lossy(&got).contains("chat.completion") {
            let n = tokio::time::timeout(Duration::from_secs(5), conn.read(&mut buf))
                .await
                .expect("an answer within 5 s")
                .unwrap();
            assert!(n > 0, "closed: {}", String::from_utf8_lossy(&got));
            got.extend_from_slice(&buf[..n]);
        }
        assert!(String::from_utf8_lossy(&got).starts_with("HTTP/1.1 200"));
        // Three head deadlines of silence between the two requests.
        tokio::time::sleep(Duration::from_millis(900)).await;
    }
}

#[tokio::test]
async fn an_oversized_head_gets_431_and_is_closed() {
    let mock = mock().await;
    let gw = Gateway::start(&config(&mock, "", "  max_header_bytes: 4096")).await;
    // Under the limit: served.
    let small = chat_request(CHAT).replace(
        "Host: gw\r\n",
        &format!("Host: gw\r\nx-pad: {}\r\n", "a".repeat(2000)),
    );
    let mut conn = TcpStream::connect(gw.addr).await.unwrap();
    conn.write_all(small.as_bytes()).await.unwrap();
    let mut buf = [0u8; 64];
    let n = conn.read(&mut buf).await.unwrap();
    assert!(
        buf[..n].starts_with(b"HTTP/1.1 200"),
        "{:?}",
        String::from_utf8_lossy(&buf[..n])
    );
    // Over it: 431, closed.
    let big = chat_request(CHAT).replace(
        "Host: gw\r\n",
        &format!("Host: gw\r\nx-pad: {}\r\n", "a".repeat(8000)),
    );
    let mut conn = TcpStream::connect(gw.addr).await.unwrap();
    conn.write_all(big.as_bytes()).await.unwrap();
    let (got, closed) = read_to_close(&mut conn, Duration::from_secs(5)).await;
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 431"), "answer: {text:?}");
    assert!(text.contains("request_headers_too_large"), "{text}");
    assert!(closed);
    assert!(
        mock.requests().len() == 1,
        "the oversized request reached the provider"
    );
    gw.expect_metric(
        "switchyard_downstream_closed_total",
        &["reason=\"header_too_large\""],
        1.0,
    )
    .await;
}

#[tokio::test]
async fn a_body_below_the_minimum_rate_gets_408() {
    let mock = mock().await;
    let limits = "  body_timeout_ms: 500\n  min_body_rate: 1000";
    let gw = Gateway::start(&config(&mock, "", limits)).await;
    let head = chat_request(&" ".repeat(2000));
    let head = &head[..head.len() - 2000];
    let (answer, closed, took) = dribble(&gw, head, b" ", Duration::from_secs(10)).await;
    assert!(
        answer.starts_with("HTTP/1.1 408"),
        "answer after {took:?}: {answer:?}"
    );
    assert!(closed, "the connection stayed open");
    assert!(took < Duration::from_secs(6), "cut after {took:?}");
    assert!(mock.requests().is_empty());
    gw.expect_metric(
        "switchyard_downstream_closed_total",
        &["reason=\"body_too_slow\""],
        1.0,
    )
    .await;
}

#[tokio::test]
async fn a_client_that_stops_reading_a_stream_is_cut_and_its_upstream_released() {
    let mock = mock().await;
    // Far more than the socket buffers between the mock and the client can hold.
    let gw = Gateway::start(&config(
        &mock,
        "/fault/chunks=400000",
        "  write_timeout_ms: 1000",
    ))
    .await;
    let body =
        r#"{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"hi"}]}"#;
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut conn = socket.connect(gw.addr).await.unwrap();
    conn.write_all(chat_request(body).as_bytes()).await.unwrap();
    let mut first = [0u8; 64];
    let n = conn.read(&mut first).await.unwrap();
    assert!(first[..n].starts_with(b"HTTP/1.1 200"));
    // Now read nothing more, and keep the connection open.
    let released = eventually(Duration::from_secs(20), || async {
        let s = mock.stats();
        s.streams_started == 1 && s.open_connections == 0
    })
    .await;
    assert!(
        released.is_some(),
        "the upstream stream is still held: {:?}",
        mock.stats()
    );
    gw.expect_metric(
        "switchyard_requests_total",
        &["outcome=\"client_stalled\""],
        1.0,
    )
    .await;
    gw.expect_metric(
        "switchyard_downstream_closed_total",
        &["reason=\"write_stalled\""],
        1.0,
    )
    .await;
    drop(conn);
}

#[tokio::test]
async fn an_idle_flood_past_the_cap_leaves_the_admin_port_and_a_bounded_proxy() {
    let mock = mock().await;
    let limits = "  max_connections: 50\n  header_timeout_ms: 60000";
    let gw = Gateway::start(&config(&mock, "", limits)).await;
    let mut idle = Vec::new();
    for _ in 0..200 {
        idle.push(TcpStream::connect(gw.addr).await.unwrap());
    }
    let capped = eventually(Duration::from_secs(10), || async {
        let m = gw.metrics().await;
        harness::metric_value(&m, "switchyard_downstream_connections", &[]) == 50.0
            && harness::metric_value(&m, "switchyard_downstream_closed_total", &["over_capacity"])
                >= 150.0
    })
    .await;
    assert!(capped.is_some(), "{}", gw.metrics().await);
    // The admin port answers at the cap.
    let health = gw.admin_get("/healthz").await;
    assert_eq!(health.status(), 200);
    let metrics = gw.admin_get("/metrics").await;
    assert_eq!(metrics.status(), 200);
    // A new proxy connection is closed at once.
    let mut extra = TcpStream::connect(gw.addr).await.unwrap();
    let _ = extra.write_all(chat_request(CHAT).as_bytes()).await;
    let (got, closed) = read_to_close(&mut extra, Duration::from_secs(3)).await;
    assert!(
        closed && got.is_empty(),
        "over the cap but served: {:?}",
        String::from_utf8_lossy(&got)
    );
    // The flood gone, requests are served again.
    drop(idle);
    let served = eventually(Duration::from_secs(10), || async {
        let Ok(mut c) = TcpStream::connect(gw.addr).await else {
            return false;
        };
        if c.write_all(chat_request(CHAT).as_bytes()).await.is_err() {
            return false;
        }
        let mut buf = [0u8; 16];
        matches!(
            tokio::time::timeout(Duration::from_secs(2), c.read(&mut buf)).await,
            Ok(Ok(n)) if buf[..n].starts_with(b"HTTP/1.1 200")
        )
    })
    .await;
    assert!(served.is_some());
}

/// Reads one Content-Length-framed response; returns its head and body.
async fn read_response(conn: &mut TcpStream, pending: &mut Vec<u8>) -> Option<(String, String)> {
    let mut buf = [0u8; 4096];
    loop {
        if let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&pending[..end]).to_string();
            let len = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse::<usize>().unwrap())
                })
                .unwrap_or(0);
            if pending.len() >= end + 4 + len {
                let body = String::from_utf8_lossy(&pending[end + 4..end + 4 + len]).to_string();
                pending.drain(..end + 4 + len);
                return Some((head, body));
            }
        }
        match tokio::time::timeout(Duration::from_secs(10), conn.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => pending.extend_from_slice(&buf[..n]),
            _ => return None,
        }
    }
}

#[tokio::test]
async fn pipelined_requests_are_answered_in_order() {
    let mock = mock().await;
    let gw = Gateway::start(&config(&mock, "", "  max_header_bytes: 65536")).await;
    let mut conn = TcpStream::connect(gw.addr).await.unwrap();
    let models = ["gpt-4o-mini", "gpt-4o", "o3-mini"];
    let all: String = models
        .iter()
        .map(|m| chat_request(&CHAT.replace("gpt-4o-mini", m)))
        .collect();
    // All three in one write: the second and third arrive with the first.
    conn.write_all(all.as_bytes()).await.unwrap();
    let mut pending = Vec::new();
    for model in models {
        let Some((head, body)) = read_response(&mut conn, &mut pending).await else {
            panic!("no answer for {model}: the pipelined request was dropped");
        };
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        let json: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(json["model"], model);
    }
    // One more after a pause on the same connection, split across two writes.
    let next = chat_request(CHAT);
    let (a, b) = next.split_at(20);
    conn.write_all(a.as_bytes()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    conn.write_all(b.as_bytes()).await.unwrap();
    let (head, _) = read_response(&mut conn, &mut pending)
        .await
        .expect("fourth answer");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert_eq!(mock.requests().len(), 4);
}
