//! The sidecar's end of a pod deletion, through the real binary: kubelet sends SIGTERM, the
//! gateway drains (streams in flight finish, `/readyz` says 503, no connection is kept alive for
//! more work), exits 0, and is gone (its ports refuse connections) — all within `shutdown_grace`,
//! which the manifests keep below `terminationGracePeriodSeconds`, so kubelet never has to
//! SIGKILL it.

#[path = "support/gateway.rs"]
mod harness;

use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use harness::{chat, Gateway};
use switchyard_mock::MockHandle;

async fn slow_stream_gateway(grace: &str, chunks: usize) -> (MockHandle, Gateway) {
    let mock = harness::mock().await;
    let gw = Gateway::start(&format!(
        r#"
shutdown_grace: {grace}
providers:
  up: {{ kind: openai-compatible, base_url: "http://{}/fault/chunks={chunks},chunk_delay_ms=100/v1" }}
virtual_keys:
  vk-app: {{ provider: up }}
"#,
        mock.addr
    ))
    .await;
    (mock, gw)
}

/// Opens a stream and reads until its first content event; returns the rest of the stream and
/// what was read so far.
async fn open_stream(
    gw: &Gateway,
) -> (
    impl futures_util::Stream<Item = reqwest::Result<bytes::Bytes>>,
    String,
) {
    // A client per stream: each its own connection.
    let resp = reqwest::Client::new()
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth("vk-app")
        .json(&chat("m", true))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let mut stream = Box::pin(resp.bytes_stream());
    let mut body = String::new();
    while let Some(chunk) = stream.next().await {
        body.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
        if body.contains("tok0") {
            break;
        }
    }
    (stream, body)
}

fn refused(addr: SocketAddr) -> bool {
    matches!(
        TcpStream::connect_timeout(&addr, Duration::from_secs(1)),
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_with_open_streams_drains_them_then_exits_zero_within_the_grace() {
    let grace = Duration::from_secs(10);
    // Three streams of 20 chunks, 100 ms apart: about 2 s each.
    let (mock, mut gw) = slow_stream_gateway("10s", 20).await;
    let mut open = Vec::new();
    for _ in 0..3 {
        open.push(open_stream(&gw).await);
    }
    let term_at = Instant::now();
    gw.signal("TERM");

    // Draining: not ready any more (kubelet takes the pod out of its Service endpoints) ...
    let not_ready = gw.until_not_ready(Duration::from_secs(3)).await;
    assert!(not_ready.is_some(), "/readyz still 200 while draining");
    // ... and a connection opened now is not kept for more work: it is refused, or its answer
    // closes it.
    match reqwest::Client::new()
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth("vk-app")
        .json(&chat("m", false))
        .send()
        .await
    {
        Err(e) => assert!(e.is_connect(), "{e}"),
        Ok(resp) => assert_eq!(
            resp.headers()
                .get("connection")
                .map(|v| v.to_str().unwrap_or("")),
            Some("close"),
            "a connection opened while draining was kept alive"
        ),
    }

    // Every stream open at SIGTERM finishes whole.
    let readers = open.into_iter().map(|(mut stream, mut body)| async move {
        while let Some(chunk) = stream.next().await {
            body.push_str(&String::from_utf8_lossy(
                &chunk.expect("stream cut during the drain"),
            ));
        }
        body
    });
    for body in futures_util::future::join_all(readers).await {
        for i in 0..20 {
            assert!(body.contains(&format!("tok{i} ")), "missing tok{i}: {body}");
        }
        assert!(body.contains("data: [DONE]"), "{body}");
    }

    // Then the process exits 0, within the grace, and its ports refuse connections.
    let (addr, admin) = (gw.addr, gw.admin);
    assert_eq!(gw.wait_exit(grace), Some(0), "{}", gw.log());
    assert!(
        term_at.elapsed() < grace,
        "exit took {:?}, grace {grace:?}",
        term_at.elapsed()
    );
    assert!(refused(addr), "proxy port still accepts after exit");
    assert!(refused(admin), "admin port still accepts after exit");
    assert!(mock.stats().streams_completed >= 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_longer_than_the_grace_does_not_keep_the_sidecar_past_it() {
    // shutdown_grace 2 s; a stream of 100 chunks 100 ms apart (10 s) is still open at SIGTERM.
    let (_mock, mut gw) = slow_stream_gateway("2s", 100).await;
    let (mut stream, _) = open_stream(&gw).await;
    let term_at = Instant::now();
    gw.signal("TERM");
    let reader = tokio::spawn(async move {
        let mut body = String::new();
        while let Some(Ok(chunk)) = stream.next().await {
            body.push_str(&String::from_utf8_lossy(&chunk));
        }
        body
    });
    // It exits once the grace is over (not after the stream's 10 s), without being killed.
    let code = gw.wait_exit(Duration::from_secs(8));
    let took = term_at.elapsed();
    assert!(
        code.is_some(),
        "still running 8 s after SIGTERM with a 2 s grace"
    );
    assert!(
        took >= Duration::from_millis(1900),
        "exited after {took:?}, before the 2 s grace"
    );
    assert!(took < Duration::from_secs(6), "exited after {took:?}");
    assert_eq!(code, Some(0), "{}", gw.log());
    // The client saw the stream end early, not a 10 s stream.
    let body = tokio::time::timeout(Duration::from_secs(5), reader)
        .await
        .expect("the client's stream ended with the process")
        .unwrap();
    assert!(!body.contains("tok99"), "{body}");
}
