//! Upstream connections to an HTTPS provider (the mock with TLS, ALPN and a handshake delay):
//! HTTP/2 multiplexing, the HTTP/1.1 fallback, a client hang-up resetting only its stream, TLS
//! session resumption on reconnect, pre-warming before readiness and its bounded wait.

#[path = "support/gateway.rs"]
mod support;

use std::time::Duration;

use futures_util::StreamExt;
use support::*;
use switchyard_mock::{MockHandle, TlsOptions};

async fn tls_mock(alpn: &[&str], handshake_delay: Duration) -> (MockHandle, String) {
    let options = TlsOptions {
        alpn: alpn.iter().map(|a| a.as_bytes().to_vec()).collect(),
        handshake_delay,
    };
    switchyard_mock::start_tls_with("127.0.0.1:0".parse().unwrap(), options)
        .await
        .expect("TLS mock")
}

/// A config with one HTTPS provider on `mock` (`extra` goes into the provider's flow map).
fn config(mock: &MockHandle, extra: &str) -> String {
    let port = mock.addr.port();
    format!(
        r#"
providers:
  up: {{ kind: openai-compatible, base_url: "https://localhost:{port}/v1", api_key: k, ca_file: ca.pem{extra} }}
virtual_keys:
  vk: {{ provider: up }}
"#
    )
}

async fn gateway(mock: &MockHandle, ca_pem: &str, extra: &str) -> Gateway {
    let template = config(mock, extra);
    let ca = ca_pem.to_string();
    Gateway::start_with(
        &template,
        move |dir| std::fs::write(dir.join("ca.pem"), ca).unwrap(),
        &[],
    )
    .await
}

fn stream_request(gw: &Gateway, fault: &str) -> reqwest::RequestBuilder {
    client()
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth("vk")
        .header("x-mock-fault", fault)
        .json(&chat("m", true))
}

/// The content of an OpenAI SSE body, deltas joined in order; `None` without `[DONE]`.
fn stream_content(body: &str) -> Option<String> {
    let mut text = String::new();
    let mut done = false;
    for line in body.lines() {
        let Some(data) = line.strip_prefix("data: ") else {
            continue;
        };
        if data == "[DONE]" {
            done = true;
            continue;
        }
        let event: serde_json::Value = serde_json::from_str(data).ok()?;
        if let Some(piece) = event["choices"][0]["delta"]["content"].as_str() {
            text.push_str(piece);
        }
    }
    done.then_some(text)
}

fn tokens(n: usize) -> String {
    (0..n).map(|i| format!("tok{i} ")).collect()
}

#[tokio::test]
async fn http2_multiplexes_a_hundred_streams_on_at_most_two_connections() {
    let (mock, ca) = tls_mock(&["h2", "http/1.1"], Duration::from_millis(50)).await;
    let gw = gateway(&mock, &ca, "").await;
    let streams = (0..100).map(|_| async {
        let resp = stream_request(&gw, "chunks=8,chunk_delay_ms=25")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        resp.text().await.unwrap()
    });
    let bodies = futures_util::future::join_all(streams).await;
    for body in &bodies {
        assert_eq!(stream_content(body).as_deref(), Some(tokens(8).as_str()));
    }
    let stats = mock.stats();
    assert!(
        stats.total_connections <= 2,
        "100 streams took {} connections",
        stats.total_connections
    );
    assert_eq!(stats.h1_connections, 0);
    assert!(stats.h2_connections >= 1);
    assert!(
        stats.max_concurrent_streams >= 10,
        "streams were not multiplexed: {stats:?}"
    );
    let opened = gw
        .metric(
            "switchyard_upstream_connect_seconds_count",
            &[r#"protocol="h2""#, r#"trigger="request""#],
        )
        .await;
    assert!((1.0..=2.0).contains(&opened), "{opened} connections opened");
    // Every stream finished: the connection is pooled idle, none active.
    let idle = r#"state="idle""#;
    let h2 = r#"protocol="h2""#;
    eventually(Duration::from_secs(5), || async {
        gw.metric("switchyard_upstream_connections", &[h2, idle])
            .await
            >= 1.0
    })
    .await
    .expect("the h2 connection is pooled idle");
    assert_eq!(
        gw.metric(
            "switchyard_upstream_connections",
            &[h2, r#"state="active""#]
        )
        .await,
        0.0
    );
}

#[tokio::test]
async fn http1_when_the_provider_offers_only_http1_or_http2_is_off() {
    let (h1_mock, ca) = tls_mock(&["http/1.1"], Duration::ZERO).await;
    let gw = gateway(&h1_mock, &ca, "").await;
    let streams = (0..8).map(|_| async {
        let resp = stream_request(&gw, "chunks=4,chunk_delay_ms=20")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        resp.text().await.unwrap()
    });
    for body in futures_util::future::join_all(streams).await {
        assert_eq!(stream_content(&body).as_deref(), Some(tokens(4).as_str()));
    }
    let stats = h1_mock.stats();
    assert_eq!(stats.h2_connections, 0);
    assert!(stats.h1_connections >= 2, "{stats:?}");
    assert!(
        gw.metric(
            "switchyard_upstream_connect_seconds_count",
            &[r#"protocol="http/1.1""#]
        )
        .await
            >= 2.0
    );

    // `http2: off` on a provider that offers h2: HTTP/1.1 all the same.
    let (h2_mock, ca) = tls_mock(&["h2", "http/1.1"], Duration::ZERO).await;
    let gw = gateway(&h2_mock, &ca, ", http2: off").await;
    let resp = stream_request(&gw, "chunks=3").send().await.unwrap();
    assert_eq!(
        stream_content(&resp.text().await.unwrap()).as_deref(),
        Some(tokens(3).as_str())
    );
    let stats = h2_mock.stats();
    assert_eq!((stats.h2_connections, stats.h1_connections), (0, 1));
}

#[tokio::test]
async fn a_client_hang_up_resets_only_its_own_stream() {
    let (mock, ca) = tls_mock(&["h2"], Duration::ZERO).await;
    let gw = gateway(&mock, &ca, "").await;
    let mut open = Vec::new();
    for _ in 0..3 {
        let resp = stream_request(&gw, "chunks=12,chunk_delay_ms=40")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let mut body = resp.bytes_stream();
        let first = body.next().await.expect("a first chunk").unwrap();
        open.push((first, body));
    }
    // The middle client goes away mid-stream.
    let (_, gone) = open.remove(1);
    drop(gone);
    let mut finished = Vec::new();
    for (first, mut body) in open {
        let mut all = first.to_vec();
        while let Some(chunk) = body.next().await {
            all.extend_from_slice(&chunk.unwrap());
        }
        finished.push(String::from_utf8(all).unwrap());
    }
    for body in &finished {
        assert_eq!(stream_content(body).as_deref(), Some(tokens(12).as_str()));
    }
    let settled = eventually(Duration::from_secs(5), || async {
        mock.stats().streams_reset >= 1
    })
    .await;
    let stats = mock.stats();
    assert!(settled.is_some(), "no stream was reset: {stats:?}");
    assert_eq!(stats.streams_reset, 1, "{stats:?}");
    assert_eq!(stats.streams_completed, 2, "{stats:?}");
    // One connection carried all three, and it is still open.
    assert_eq!(stats.total_connections, 1, "{stats:?}");
    assert_eq!(stats.open_connections, 1, "{stats:?}");
    let resp = stream_request(&gw, "chunks=2").send().await.unwrap();
    assert_eq!(
        stream_content(&resp.text().await.unwrap()).as_deref(),
        Some(tokens(2).as_str())
    );
    assert_eq!(mock.stats().total_connections, 1);
}

#[tokio::test]
async fn a_reconnect_resumes_the_tls_session() {
    let (mock, ca) = tls_mock(&["http/1.1"], Duration::ZERO).await;
    let gw = gateway(&mock, &ca, "").await;
    // One connection, its response read (a TLS 1.3 ticket arrives after the handshake).
    let resp = stream_request(&gw, "chunks=1").send().await.unwrap();
    assert!(stream_content(&resp.text().await.unwrap()).is_some());
    // Two at once: one reuses the pooled connection, the other connects again.
    let both = (0..2).map(|_| async {
        let resp = stream_request(&gw, "headers_delay_ms=200,chunks=1")
            .send()
            .await
            .unwrap();
        stream_content(&resp.text().await.unwrap())
    });
    for content in futures_util::future::join_all(both).await {
        assert!(content.is_some());
    }
    let stats = mock.stats();
    assert_eq!(stats.total_connections, 2, "{stats:?}");
    assert_eq!(
        (stats.tls_handshakes_full, stats.tls_handshakes_resumed),
        (1, 1),
        "{stats:?}"
    );
}

#[tokio::test]
async fn prewarmed_connections_are_open_before_ready_and_serve_the_first_requests() {
    // Each new connection costs 300 ms here: readiness that did not wait would come first.
    let (mock, ca) = tls_mock(&["http/1.1"], Duration::from_millis(300)).await;
    let gw = gateway(&mock, &ca, ", prewarm: 3").await;
    let stats = mock.stats();
    assert_eq!(stats.total_connections, 3, "{stats:?}");
    assert_eq!(
        stats.tls_handshakes_full + stats.tls_handshakes_resumed,
        3,
        "{stats:?}"
    );
    assert_eq!(
        gw.metric(
            "switchyard_upstream_connect_seconds_count",
            &[r#"trigger="prewarm""#]
        )
        .await,
        3.0
    );
    assert_eq!(
        gw.metric(
            "switchyard_upstream_connections",
            &[r#"protocol="http/1.1""#, r#"state="idle""#]
        )
        .await,
        3.0
    );
    let first = (0..3).map(|_| async {
        let resp = stream_request(&gw, "headers_delay_ms=100,chunks=1")
            .send()
            .await
            .unwrap();
        stream_content(&resp.text().await.unwrap())
    });
    for content in futures_util::future::join_all(first).await {
        assert!(content.is_some());
    }
    assert_eq!(
        mock.stats().total_connections,
        3,
        "no handshake on a request"
    );
    assert_eq!(
        gw.metric(
            "switchyard_upstream_connect_seconds_count",
            &[r#"trigger="request""#]
        )
        .await,
        0.0
    );
    assert!(gw.log().contains("pre-warmed upstream connections"));
}

#[tokio::test]
async fn readiness_comes_when_prewarming_cannot_connect() {
    // Refused at once.
    let closed = free_port();
    let gw = Gateway::start(&format!(
        r#"
providers:
  gone: {{ kind: openai-compatible, base_url: "http://127.0.0.1:{closed}/v1", api_key: k, prewarm: 2 }}
virtual_keys:
  vk: {{ provider: gone }}
"#
    ))
    .await;
    assert_eq!(gw.admin_get("/readyz").await.status(), 200);
    assert!(gw.log().contains("pre-warming failed"), "{}", gw.log());
}

#[tokio::test]
async fn readiness_waits_for_a_stalled_prewarm_only_so_long() {
    // Accepted, then no TLS handshake for a minute: readiness comes after the bounded wait.
    let (mock, ca) = tls_mock(&["h2"], Duration::from_secs(60)).await;
    let started = std::time::Instant::now();
    let gw = gateway(&mock, &ca, ", prewarm: 1").await;
    let waited = started.elapsed();
    assert!(waited >= Duration::from_secs(9), "ready after {waited:?}");
    assert_eq!(gw.admin_get("/readyz").await.status(), 200);
    // The bounded wait (10 s) and the connect timeout (10 s) end together: either may be first
    // on a loaded machine, and both mean the gateway stopped waiting for the stalled provider.
    let log = gw.log();
    assert!(
        log.contains("did not finish in time") || log.contains("connect timeout"),
        "{log}"
    );
}

#[tokio::test]
async fn a_reload_that_adds_prewarm_opens_the_connections() {
    let (mock, ca) = tls_mock(&["h2", "http/1.1"], Duration::ZERO).await;
    let gw = gateway(&mock, &ca, "").await;
    assert_eq!(mock.stats().total_connections, 0);
    gw.rewrite_config(&config(&mock, ", prewarm: 2"));
    // The mock counts a connection at accept, the gateway once its handshakes are done.
    let opened = eventually(Duration::from_secs(15), || async {
        gw.metric(
            "switchyard_upstream_connect_seconds_count",
            &[r#"protocol="h2""#, r#"trigger="prewarm""#],
        )
        .await
            == 2.0
    })
    .await;
    assert!(opened.is_some(), "{:?}\n{}", mock.stats(), gw.log());
    assert_eq!(mock.stats().total_connections, 2);
    // Ready throughout: a reload never takes readiness away for pre-warming.
    assert_eq!(gw.admin_get("/readyz").await.status(), 200);
    // The same setting reloaded again opens nothing more.
    gw.rewrite_config(&format!("{}\n# touched\n", config(&mock, ", prewarm: 2")));
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(mock.stats().total_connections, 2);
}
