//! Issue 17 item 10, the upstream side: what reaches the provider (client account and address
//! headers never do), what an upstream failure tells the client (the target's config label,
//! never its address or SNI), and the default upstream deadlines. The real binary against the
//! mock provider over loopback.

#[path = "support/gateway.rs"]
mod harness;

use std::time::{Duration, Instant};

use harness::{chat, client, mock, Gateway};

const PROVIDER_KEY: &str = "sk-edge-provider-key-7";

/// A gateway with one provider at `base_url` behind key `vk-app` and config `chat`, plus `extra`
/// top-level YAML.
fn config(base_url: &str, extra: &str) -> String {
    format!(
        r#"
providers:
  edge:
    kind: openai-compatible
    base_url: {base_url}
    api_key: {PROVIDER_KEY}
virtual_keys:
  vk-app:
    provider: edge
configs:
  chat:
    virtual_key: vk-app
{extra}
"#
    )
}

async fn post(gw: &Gateway, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut req = client()
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth("vk-app")
        .json(&chat("gpt-4o-mini", false));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send().await.expect("request")
}

/// Client `OpenAI-Organization`, `OpenAI-Project`, `X-Forwarded-*`, `Forwarded`, `X-Real-IP`,
/// `Via` and headers named in `Connection` passed upstream.
#[tokio::test]
async fn client_account_and_address_headers_never_reach_the_provider() {
    let mock = mock().await;
    let gw = Gateway::start(&config(&format!("http://{}/v1", mock.addr), "")).await;
    let resp = post(
        &gw,
        &[
            ("OpenAI-Organization", "org-attacker"),
            ("OpenAI-Project", "proj-attacker"),
            ("X-Forwarded-For", "10.1.2.3"),
            ("X-Forwarded-Host", "internal.example"),
            ("X-Forwarded-Proto", "http"),
            ("Forwarded", "for=10.1.2.3;proto=http"),
            ("X-Real-IP", "10.1.2.3"),
            ("Via", "1.1 app-proxy"),
            ("Connection", "X-Hop-Secret"),
            ("X-Hop-Secret", "hop"),
            ("X-Kept", "kept"),
        ],
    )
    .await;
    assert_eq!(resp.status(), 200);
    let seen = mock.requests();
    assert_eq!(seen.len(), 1);
    let req = &seen[0];
    for gone in [
        "openai-organization",
        "openai-project",
        "x-forwarded-for",
        "x-forwarded-host",
        "x-forwarded-proto",
        "forwarded",
        "x-real-ip",
        "via",
        "x-hop-secret",
    ] {
        assert_eq!(req.header(gone), None, "{gone} reached the provider");
    }
    assert_eq!(req.header("x-kept"), Some("kept"));
    let auth = format!("Bearer {PROVIDER_KEY}");
    assert_eq!(req.header("authorization"), Some(auth.as_str()));
}

/// The error body of a failed attempt: the target's config label, a fixed reason, no address,
/// port or SNI.
async fn assert_clean_502(gw: &Gateway, port: u16, sni: &str) -> String {
    let resp = post(gw, &[]).await;
    assert_eq!(resp.status(), 502);
    let body = resp.text().await.unwrap();
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["error"]["code"], "upstream_unreachable", "{body}");
    let message = v["error"]["message"].as_str().unwrap().to_string();
    assert!(message.contains("upstream config"), "{message}");
    for leak in [
        format!("127.0.0.1:{port}"),
        format!(":{port}"),
        port.to_string(),
        sni.to_string(),
        "127.0.0.1".to_string(),
    ] {
        assert!(!body.contains(&leak), "{leak:?} in {body}");
    }
    message
}

/// Error bodies revealed the upstream address and SNI (connect refused, TLS failure).
#[tokio::test]
async fn upstream_failures_never_show_the_address_or_sni() {
    // Refused: nothing listens there.
    let port = harness::free_port();
    let gw = Gateway::start(&config(&format!("http://127.0.0.1:{port}/v1"), "")).await;
    let message = assert_clean_502(&gw, port, "127.0.0.1").await;
    assert!(message.contains("refused"), "{message}");
    // The detail is in the log.
    assert!(
        harness::eventually(Duration::from_secs(5), || async {
            gw.log().contains(&format!("127.0.0.1:{port}"))
        })
        .await
        .is_some(),
        "the detail is not logged:\n{}",
        gw.log()
    );
    drop(gw);

    // TLS failure: an HTTPS mock whose certificate (for `localhost`) is signed by a CA the
    // gateway does not trust.
    let (tls_mock, _ca) = switchyard_mock::start_tls("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let port = tls_mock.addr.port();
    let gw = Gateway::start(&config(&format!("https://localhost:{port}/v1"), "")).await;
    let message = assert_clean_502(&gw, port, "localhost").await;
    assert!(message.contains("TLS"), "{message}");
    assert!(tls_mock.requests().is_empty());
}

/// No default upstream deadlines: a provider that never sends its headers held the request (and
/// its slot) forever. Top-level `timeouts:` shortens the defaults here; `/config` shows them.
#[tokio::test]
async fn a_target_without_timeouts_still_has_deadlines() {
    let mock = mock().await;
    // The mock would answer after 60 s; the default header deadline (set short here) fires.
    mock.set_fault(Some("headers_delay_ms=60000".parse().unwrap()));
    let gw = Gateway::start(&config(
        &format!("http://{}/v1", mock.addr),
        "timeouts:\n  headers_ms: 300\n",
    ))
    .await;
    let started = Instant::now();
    let resp = post(&gw, &[]).await;
    let took = started.elapsed();
    let status = resp.status().as_u16();
    let body = resp.text().await.unwrap();
    assert_eq!(status, 408, "{body}");
    assert!(body.contains("request timeout of 300ms"), "{body}");
    assert!(took < Duration::from_secs(20), "{took:?}");

    let view = gw.admin_json("/config").await;
    let t = &view["config"]["timeouts"];
    assert_eq!(t["headers_ms"], 300, "{view}");
    assert_eq!(t["connect_ms"], 10_000, "{view}");
    assert_eq!(t["idle_ms"], 300_000, "{view}");
    assert_eq!(t["total_ms"], 3_600_000, "{view}");
    assert!(t["ttft_ms"].is_null(), "{view}");
}

/// Without any `timeouts:`, `/config` shows the built-in defaults; a target's own
/// `request_timeout` still wins over the default header deadline.
#[tokio::test]
async fn built_in_defaults_are_shown_and_request_timeout_wins() {
    let mock = mock().await;
    mock.set_fault(Some("headers_delay_ms=60000".parse().unwrap()));
    let gw = Gateway::start(&format!(
        "{}    request_timeout: 250\n",
        config(&format!("http://{}/v1", mock.addr), "")
    ))
    .await;
    let view = gw.admin_json("/config").await;
    let t = &view["config"]["timeouts"];
    assert_eq!(t["headers_ms"], 600_000, "{view}");
    assert_eq!(t["connect_ms"], 10_000, "{view}");
    let resp = client()
        .post(gw.url("/v1/chat/completions"))
        .header("x-portkey-config", "chat")
        .bearer_auth("vk-app")
        .json(&chat("gpt-4o-mini", false))
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let body = resp.text().await.unwrap();
    assert_eq!(status, 408, "{body}");
    assert!(body.contains("request timeout of 250ms"), "{body}");
}
