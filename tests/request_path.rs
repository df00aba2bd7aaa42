//! The request path end to end: the real binary, real HTTP over loopback, the mock provider.

#[path = "support/gateway.rs"]
mod harness;

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use harness::{chat, client, eventually, mock, Gateway};
use switchyard_mock::MockHandle;

const PROVIDER_KEY: &str = "sk-real-provider-key-123";

/// One provider at `mock`, keys `vk-app` (allowlist) and `vk-off` (disabled), config `chat`.
fn config(mock: &MockHandle, extra_target: &str) -> String {
    format!(
        r#"
providers:
  mock:
    kind: openai-compatible
    base_url: http://{addr}/v1
    api_key: {PROVIDER_KEY}
virtual_keys:
  vk-app:
    provider: mock
    models: [gpt-4o-mini, gpt-4o]
  vk-any:
    provider: mock
  vk-off:
    provider: mock
    disabled: true
configs:
  chat:
    virtual_key: vk-any
{extra_target}
"#,
        addr = mock.addr
    )
}

async fn post(gw: &Gateway, key: &str, body: &serde_json::Value) -> reqwest::Response {
    client()
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth(key)
        .json(body)
        .send()
        .await
        .expect("request")
}

async fn error_of(resp: reqwest::Response) -> (u16, serde_json::Value) {
    let status = resp.status().as_u16();
    let body: serde_json::Value = resp.json().await.expect("JSON error body");
    (status, body["error"].clone())
}

#[tokio::test]
async fn the_provider_gets_its_key_and_never_the_virtual_key() {
    let mock = mock().await;
    let gw = Gateway::start(&config(&mock, "")).await;
    let resp = client()
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth("vk-app")
        .header("x-portkey-trace-id", "t-1")
        .header("x-switchyard-log", "off")
        .json(&chat("gpt-4o-mini", false))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-portkey-last-used-option-index"], "config");
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(body["model"], "gpt-4o-mini");

    let seen = mock.requests();
    assert_eq!(seen.len(), 1);
    let req = &seen[0];
    assert_eq!(req.path, "/v1/chat/completions");
    assert_eq!(
        req.header("authorization"),
        Some(format!("Bearer {PROVIDER_KEY}").as_str())
    );
    for (name, value) in &req.headers {
        assert!(!value.contains("vk-app"), "virtual key leaked in {name}");
        assert!(
            !name.starts_with("x-portkey-") && !name.starts_with("x-switchyard-"),
            "control header {name} leaked upstream"
        );
    }
    assert_eq!(req.json().unwrap()["messages"][0]["content"], "Say hello");
}

#[tokio::test]
async fn virtual_keys_come_from_every_documented_header() {
    let mock = mock().await;
    let gw = Gateway::start(&config(&mock, "")).await;
    let body = chat("gpt-4o", false);
    let c = client();
    let by_header = |name: &'static str| {
        c.post(gw.url("/v1/chat/completions"))
            .header(name, "vk-app")
            .json(&body)
            .send()
    };
    assert_eq!(
        by_header("x-switchyard-virtual-key")
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        by_header("x-portkey-virtual-key").await.unwrap().status(),
        200
    );
    assert_eq!(by_header("x-api-key").await.unwrap().status(), 200);
    // The portkey SDK's placeholder bearer next to a virtual-key header is ignored.
    let resp = c
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth("OPENAI_API_KEY")
        .header("x-portkey-virtual-key", "vk-app")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    for req in mock.requests() {
        assert_eq!(
            req.header("authorization"),
            Some(format!("Bearer {PROVIDER_KEY}").as_str())
        );
        assert!(req.header("x-api-key").is_none());
    }
}

#[tokio::test]
async fn unknown_disabled_and_missing_keys_are_401_and_the_allowlist_403() {
    let mock = mock().await;
    let gw = Gateway::start(&config(&mock, "")).await;
    let (status, err) = error_of(post(&gw, "vk-nope", &chat("gpt-4o", false)).await).await;
    assert_eq!(status, 401, "{err}");
    assert_eq!(err["type"], "authentication_error");

    let resp = client()
        .post(gw.url("/v1/chat/completions"))
        .header("x-switchyard-virtual-key", "sk-live-secret-looking")
        .json(&chat("gpt-4o", false))
        .send()
        .await
        .unwrap();
    let (status, err) = error_of(resp).await;
    assert_eq!(status, 401);
    assert!(!err.to_string().contains("sk-live-secret-looking"));

    let (status, err) = error_of(post(&gw, "vk-off", &chat("gpt-4o", false)).await).await;
    assert_eq!(status, 401);
    assert!(err["message"].as_str().unwrap().contains("disabled"));

    let (status, err) = error_of(post(&gw, "vk-app", &chat("gpt-3.5-turbo", false)).await).await;
    assert_eq!(status, 403);
    assert_eq!(err["code"], "model_not_allowed");
    assert!(
        mock.requests().is_empty(),
        "rejected requests reached the provider"
    );
}

#[tokio::test]
async fn override_params_merge_into_the_body() {
    let mock = mock().await;
    let gw = Gateway::start(&config(
        &mock,
        r#"  pinned:
    virtual_key: vk-any
    override_params: { model: gpt-4o-mini, temperature: 0.1 }
"#,
    ))
    .await;
    let resp = client()
        .post(gw.url("/v1/chat/completions"))
        .header("x-switchyard-config", "pinned")
        .json(&serde_json::json!({"model": "whatever", "temperature": 1.5, "messages": [], "user": "u1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let sent = mock.requests()[0].json().unwrap();
    assert_eq!(sent["model"], "gpt-4o-mini");
    assert_eq!(sent["temperature"], 0.1);
    assert_eq!(sent["user"], "u1");
}

#[tokio::test]
async fn every_openai_route_is_served_and_other_v1_paths_are_404() {
    let mock = mock().await;
    let gw = Gateway::start(&config(&mock, "")).await;
    let c = client();
    let models = c
        .get(gw.url("/v1/models"))
        .bearer_auth("vk-any")
        .send()
        .await
        .unwrap();
    assert_eq!(models.status(), 200);
    let models: serde_json::Value = models.json().await.unwrap();
    assert_eq!(models["object"], "list");

    let emb = c
        .post(gw.url("/v1/embeddings"))
        .bearer_auth("vk-any")
        .json(&serde_json::json!({"model": "text-embedding-3-small", "input": ["a", "b"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(emb.status(), 200);
    let emb: serde_json::Value = emb.json().await.unwrap();
    assert_eq!(emb["data"].as_array().unwrap().len(), 2);

    let comp = c
        .post(gw.url("/v1/completions"))
        .bearer_auth("vk-any")
        .json(&serde_json::json!({"model": "gpt-3.5-turbo-instruct", "prompt": "hi"}))
        .send()
        .await
        .unwrap();
    assert_eq!(comp.status(), 200);

    let responses = c
        .post(gw.url("/v1/responses"))
        .bearer_auth("vk-any")
        .json(&serde_json::json!({"model": "gpt-4o", "input": "hi"}))
        .send()
        .await
        .unwrap();
    assert_eq!(responses.status(), 200);

    // Only known routes are forwarded (ingress::path::ROUTES); the rest is a 404.
    let other = c
        .get(gw.url("/v1/files?purpose=batch"))
        .bearer_auth("vk-any")
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 404);
    let paths: Vec<String> = mock.requests().iter().map(|r| r.path.clone()).collect();
    assert_eq!(
        paths,
        [
            "/v1/models",
            "/v1/embeddings",
            "/v1/completions",
            // An `openai-compatible` provider is asked Chat Completions for a Responses API
            // client (providers::Format::upstream); `openai` and `azure-openai` natively.
            "/v1/chat/completions"
        ]
    );
}

#[tokio::test]
async fn gateway_errors_are_openai_shaped_with_the_right_status() {
    let mock = mock().await;
    let gw = Gateway::start(&format!(
        "limits: {{ max_request_body_bytes: 1024 }}\n{}",
        config(
            &mock,
            "  pinned:\n    virtual_key: vk-any\n    override_params: { model: gpt-4o-mini }\n"
        )
    ))
    .await;
    let c = client();
    // Malformed JSON.
    let resp = c
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth("vk-any")
        .header("content-type", "application/json")
        .body("{\"model\": ")
        .send()
        .await
        .unwrap();
    let (status, err) = error_of(resp).await;
    assert_eq!((status, err["code"].as_str()), (400, Some("invalid_json")));
    // Body over the limit.
    let big = serde_json::json!({"model": "m", "messages": [{"role": "user", "content": "x".repeat(4096)}]});
    let (status, err) = error_of(post(&gw, "vk-any", &big).await).await;
    assert_eq!(
        (status, err["code"].as_str()),
        (413, Some("request_too_large"))
    );
    // Unknown route.
    let resp = c.get(gw.url("/nope")).send().await.unwrap();
    let (status, err) = error_of(resp).await;
    assert_eq!((status, err["code"].as_str()), (404, Some("unknown_route")));
    // A JSON array is not a request, with or without a config that reads the body.
    for config in [None, Some("pinned")] {
        let mut req = c
            .post(gw.url("/v1/chat/completions"))
            .bearer_auth("vk-any")
            .header("content-type", "application/json")
            .body("[\"gpt-4o\"]");
        if let Some(name) = config {
            req = req.header("x-switchyard-config", name);
        }
        let (status, err) = error_of(req.send().await.unwrap()).await;
        assert_eq!(
            (status, err["code"].as_str()),
            (400, Some("invalid_json")),
            "{config:?}"
        );
    }
    // Binary garbage does not crash anything.
    let resp = c
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth("vk-any")
        .body(vec![0xff, 0x00, 0xfe, 0x7b])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert!(mock.requests().is_empty());
    // Still serving.
    assert_eq!(post(&gw, "vk-any", &chat("m", false)).await.status(), 200);
}

#[tokio::test]
async fn an_unreachable_upstream_is_502() {
    let port = harness::free_port();
    let gw = Gateway::start(&format!(
        r#"
providers:
  gone: {{ kind: openai-compatible, base_url: "http://127.0.0.1:{port}/v1" }}
virtual_keys:
  vk-gone: {{ provider: gone }}
"#
    ))
    .await;
    let (status, err) = error_of(post(&gw, "vk-gone", &chat("m", false)).await).await;
    assert_eq!(status, 502);
    assert_eq!(err["type"], "upstream_error");
    assert_eq!(err["code"], "upstream_unreachable");
    gw.expect_metric(
        "switchyard_upstream_attempts_total",
        &[r#"result="connect_error""#],
        1.0,
    )
    .await;
}

/// A config whose only target has `timeouts` `{phase}` and a mock fault `{fault}`.
fn timeout_config(mock: &MockHandle, fault: &str, settings: &str) -> String {
    format!(
        r#"
providers:
  slow: {{ kind: openai-compatible, base_url: "http://{addr}/fault/{fault}/v1", api_key: k }}
virtual_keys:
  vk-slow: {{ provider: slow, config: slow }}
configs:
  slow:
    virtual_key: vk-slow
    {settings}
"#,
        addr = mock.addr
    )
}

#[tokio::test]
async fn each_timeout_phase_is_enforced_as_408() {
    let mock = mock().await;
    let cases = [
        (
            "headers_delay_ms=3000",
            "request_timeout: 200",
            false,
            "request",
        ),
        (
            "first_chunk_delay_ms=3000",
            "timeouts: { ttft_ms: 200 }",
            true,
            "ttft",
        ),
        (
            "headers_delay_ms=3000",
            "timeouts: { total_ms: 200 }",
            false,
            "total",
        ),
        (
            "first_chunk_delay_ms=3000",
            "timeouts: { idle_ms: 200 }",
            true,
            "idle",
        ),
    ];
    for (fault, settings, stream, phase) in cases {
        let gw = Gateway::start(&timeout_config(&mock, fault, settings)).await;
        let started = Instant::now();
        let (status, err) = error_of(post(&gw, "vk-slow", &chat("m", stream)).await).await;
        assert_eq!(status, 408, "{phase}: {err}");
        assert_eq!(err["type"], "timeout_error");
        assert!(
            err["message"].as_str().unwrap().contains(phase),
            "{phase}: {err}"
        );
        assert!(
            started.elapsed() < Duration::from_millis(2900),
            "{phase} not enforced"
        );
        gw.expect_metric("switchyard_requests_total", &[r#"outcome="timeout""#], 1.0)
            .await;
    }
}

#[tokio::test]
async fn a_stall_after_the_commit_point_ends_with_an_error_event() {
    let mock = mock().await;
    let gw = Gateway::start(&timeout_config(
        &mock,
        "stall_after=2",
        "timeouts: { idle_ms: 300 }",
    ))
    .await;
    let resp = post(&gw, "vk-slow", &chat("m", true)).await;
    assert_eq!(resp.status(), 200);
    let text = resp.text().await.expect("a complete (not truncated) body");
    assert!(text.contains("tok0"), "{text}");
    let last = text.trim_end().rsplit("\n\n").next().unwrap();
    assert!(last.starts_with("data: {\"error\""), "last event: {last}");
    assert!(last.contains("timeout_error"));
    gw.expect_metric(
        "switchyard_requests_total",
        &[r#"outcome="stream_aborted""#],
        1.0,
    )
    .await;
}

#[tokio::test]
async fn stream_events_arrive_separately_with_the_providers_spacing() {
    let mock = mock().await;
    let gw = Gateway::start(&timeout_config(
        &mock,
        "chunks=6,chunk_delay_ms=150",
        "timeouts: { idle_ms: 5000 }",
    ))
    .await;
    let resp = post(&gw, "vk-slow", &chat("m", true)).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["content-type"].to_str().unwrap(),
        "text/event-stream"
    );
    let mut stream = resp.bytes_stream();
    let mut reads: Vec<(Instant, String)> = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.expect("stream chunk");
        reads.push((Instant::now(), String::from_utf8_lossy(&chunk).into_owned()));
    }
    let content: Vec<&(Instant, String)> = reads
        .iter()
        .filter(|(_, text)| text.contains("\"content\":\"tok"))
        .collect();
    // Six content events, each in its own read (never merged), in order.
    assert_eq!(content.len(), 6, "reads: {reads:?}");
    for (i, (_, text)) in content.iter().enumerate() {
        assert_eq!(
            text.matches("\"content\":\"tok").count(),
            1,
            "merged: {text}"
        );
        assert!(text.contains(&format!("tok{i}")));
    }
    // Spaced as the provider spaced them (150 ms), not bunched at the end.
    for pair in content.windows(2) {
        let gap = pair[1].0 - pair[0].0;
        assert!(gap >= Duration::from_millis(90), "gap {gap:?}");
    }
    assert!(reads.last().unwrap().1.contains("[DONE]"));
}

#[tokio::test]
async fn a_client_disconnect_mid_stream_releases_the_upstream() {
    let mock = mock().await;
    let gw = Gateway::start(&timeout_config(
        &mock,
        "chunks=200,chunk_delay_ms=50",
        "timeouts: { idle_ms: 5000 }",
    ))
    .await;
    let resp = post(&gw, "vk-slow", &chat("m", true)).await;
    let mut stream = resp.bytes_stream();
    let mut seen = 0;
    while let Some(Ok(chunk)) = stream.next().await {
        seen += String::from_utf8_lossy(&chunk).matches("tok").count();
        if seen >= 3 {
            break;
        }
    }
    assert_eq!(mock.stats().streams_started, 1);
    drop(stream);
    let released = eventually(Duration::from_secs(5), || async {
        let s = mock.stats();
        s.streams_cancelled == 1 && s.open_connections == 0
    })
    .await;
    assert!(
        released.is_some(),
        "upstream still open: {:?}",
        mock.stats()
    );
    assert_eq!(mock.stats().streams_completed, 0);
    let idle = eventually(Duration::from_secs(5), || async {
        gw.metric("switchyard_inflight_requests", &[]).await == 0.0
    })
    .await;
    assert!(idle.is_some(), "the gateway still holds the request");
    gw.expect_metric(
        "switchyard_requests_total",
        &[r#"outcome="client_closed""#],
        1.0,
    )
    .await;
}

#[tokio::test]
async fn upstream_connections_are_pooled_and_reused() {
    let mock = mock().await;
    let gw = Gateway::start(&config(&mock, "")).await;
    let c = client();
    for stream in [false, true, false, true, false] {
        let resp = c
            .post(gw.url("/v1/chat/completions"))
            .bearer_auth("vk-any")
            .json(&chat("m", stream))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        resp.bytes().await.unwrap();
    }
    assert_eq!(mock.requests().len(), 5);
    assert_eq!(mock.stats().total_connections, 1, "{:?}", mock.stats());
}

#[tokio::test]
async fn upstream_errors_are_relayed_with_their_status_and_body() {
    let mock = mock().await;
    let gw = Gateway::start(&timeout_config(&mock, "status=429,retry_after=7", "")).await;
    let resp = post(&gw, "vk-slow", &chat("m", false)).await;
    assert_eq!(resp.status(), 429);
    assert_eq!(resp.headers()["retry-after"], "7");
    let body: serde_json::Value = resp.json().await.unwrap();
    assert!(body["error"]["message"].is_string());
    gw.expect_metric(
        "switchyard_requests_total",
        &[r#"status_class="4xx""#, r#"outcome="error""#],
        1.0,
    )
    .await;
}

#[tokio::test]
async fn https_upstreams_are_verified_against_the_providers_ca() {
    let (mock, ca_pem) = switchyard_mock::start_tls("127.0.0.1:0".parse().unwrap())
        .await
        .expect("TLS mock");
    let port = mock.addr.port();
    let template = format!(
        r#"
providers:
  tls: {{ kind: openai-compatible, base_url: "https://localhost:{port}/v1", api_key: k, ca_file: ca.pem }}
  untrusted: {{ kind: openai-compatible, base_url: "https://localhost:{port}/v1", api_key: k }}
virtual_keys:
  vk-tls: {{ provider: tls }}
  vk-untrusted: {{ provider: untrusted }}
"#
    );
    let gw = Gateway::start_with(
        &template,
        |dir| std::fs::write(dir.join("ca.pem"), &ca_pem).unwrap(),
        &[],
    )
    .await;
    let resp = post(&gw, "vk-tls", &chat("m", true)).await;
    assert_eq!(resp.status(), 200);
    assert!(resp.text().await.unwrap().contains("[DONE]"));
    // Not signed by a web PKI root: refused, never sent in clear.
    let (status, _) = error_of(post(&gw, "vk-untrusted", &chat("m", false)).await).await;
    assert_eq!(status, 502);
    assert_eq!(mock.requests().len(), 1);
}

#[tokio::test]
async fn metrics_have_bounded_labels() {
    let mock = mock().await;
    let gw = Gateway::start(&config(&mock, "")).await;
    assert_eq!(
        post(&gw, "vk-app", &chat("gpt-4o", false)).await.status(),
        200
    );
    let streamed = post(&gw, "vk-any", &chat("some-random-model-xyz", true)).await;
    assert_eq!(streamed.status(), 200);
    assert!(streamed.text().await.unwrap().contains("[DONE]"));
    gw.expect_metric(
        "switchyard_requests_total",
        &[r#"config="direct""#, r#"outcome="ok""#],
        2.0,
    )
    .await;
    let text = gw.metrics().await;
    assert!(!text.contains("some-random-model-xyz"));
    assert!(!text.contains(PROVIDER_KEY));
    for family in [
        "switchyard_requests_total",
        "switchyard_request_duration_seconds_bucket",
        "switchyard_upstream_attempts_total",
        "switchyard_upstream_duration_seconds_bucket",
        "switchyard_time_to_first_token_seconds_bucket",
        "switchyard_overhead_seconds_bucket",
        "switchyard_config_reloads_total",
        "switchyard_config_info",
    ] {
        assert!(text.contains(family), "missing {family}");
    }
    assert_eq!(
        harness::metric_value(
            &text,
            "switchyard_upstream_attempts_total",
            &[r#"model="gpt-4o""#, r#"result="ok""#, r#"provider="mock""#]
        ),
        1.0
    );
    assert_eq!(
        harness::metric_value(
            &text,
            "switchyard_upstream_attempts_total",
            &[r#"model="other""#]
        ),
        1.0
    );
    assert_eq!(
        harness::metric_value(
            &text,
            "switchyard_requests_total",
            &[
                r#"config="chat""#,
                r#"outcome="ok""#,
                r#"status_class="2xx""#
            ]
        ),
        0.0,
        "requests without a config header run direct on their key"
    );
    assert_eq!(
        harness::metric_value(
            &text,
            "switchyard_requests_total",
            &[r#"config="direct""#, r#"outcome="ok""#]
        ),
        2.0
    );
    assert_eq!(
        harness::metric_value(&text, "switchyard_time_to_first_token_seconds_count", &[]),
        1.0
    );
}

#[tokio::test]
async fn admin_endpoints_answer_and_config_is_redacted() {
    let mock = mock().await;
    let gw = Gateway::start(&config(&mock, "")).await;
    let c = client();
    assert_eq!(gw.admin_get("/healthz").await.status(), 200);
    assert_eq!(gw.admin_get("/readyz").await.status(), 200);
    let cfg = gw.admin_get("/config").await;
    assert_eq!(cfg.status(), 200);
    let text = cfg.text().await.unwrap();
    assert!(!text.contains(PROVIDER_KEY), "{text}");
    assert!(text.contains("[redacted]"));
    let cfg: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(cfg["hash"].as_str().unwrap().len(), 16);
    assert_eq!(gw.admin_get("/nope").await.status(), 404);
    assert_eq!(
        c.post(gw.admin_url("/config"))
            .send()
            .await
            .unwrap()
            .status(),
        405
    );
    assert!(!gw.log().contains(PROVIDER_KEY));
}

#[tokio::test]
async fn a_provider_cut_mid_stream_ends_with_an_error_event_and_a_cut_before_headers_is_502() {
    let mock = mock().await;
    let gw = Gateway::start(&timeout_config(&mock, "cut_after=2,chunk_delay_ms=50", "")).await;
    let resp = post(&gw, "vk-slow", &chat("m", true)).await;
    assert_eq!(resp.status(), 200);
    let text = resp.text().await.expect("the client stream ends cleanly");
    assert!(text.contains("tok1"));
    let last = text.trim_end().rsplit("\n\n").next().unwrap();
    assert!(last.contains("upstream_error"), "last event: {last}");
    gw.expect_metric(
        "switchyard_requests_total",
        &[r#"outcome="stream_aborted""#],
        1.0,
    )
    .await;
    let gw = Gateway::start(&timeout_config(&mock, "cut=headers", "")).await;
    let (status, err) = error_of(post(&gw, "vk-slow", &chat("m", false)).await).await;
    assert_eq!(status, 502, "{err}");
}

#[tokio::test]
async fn the_request_timeout_header_overrides_the_config() {
    let mock = mock().await;
    let gw = Gateway::start(&timeout_config(
        &mock,
        "headers_delay_ms=2000",
        "request_timeout: 10000",
    ))
    .await;
    let resp = client()
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth("vk-slow")
        .header("x-portkey-request-timeout", "150")
        .json(&chat("m", false))
        .send()
        .await
        .unwrap();
    let (status, err) = error_of(resp).await;
    assert_eq!(status, 408, "{err}");
    assert!(err["message"].as_str().unwrap().contains("150ms"));
}

/// An upstream response owns its connection: one read to the end goes back to the pool on
/// every path, so a run of relayed errors, each retried, uses a single upstream connection (a
/// response dropped without being finished would close it and every attempt would dial anew).
#[tokio::test]
async fn error_answers_read_to_the_end_return_their_connection_to_the_pool() {
    let mock = mock().await;
    let gw = Gateway::start(&timeout_config(
        &mock,
        "status=429",
        "retry: { attempts: 2, on_status_codes: [429] }",
    ))
    .await;
    for _ in 0..3 {
        let resp = post(&gw, "vk-slow", &chat("m", false)).await;
        assert_eq!(resp.status(), 429);
        resp.bytes().await.unwrap();
    }
    // 3 requests × (1 + 2 retries), all answered 429 with a body.
    assert_eq!(mock.requests().len(), 9);
    assert_eq!(mock.stats().total_connections, 1, "{:?}", mock.stats());
}

/// A timeout is answered 408, so `retry.on_status_codes` listing 408 retries it on the same
/// target (Portkey); without 408 in the list a timeout is not retried.
#[tokio::test]
async fn a_timeout_is_retried_when_408_is_listed() {
    for (codes, expected) in [("[408]", 2), ("[429]", 1)] {
        let mock = mock().await;
        let settings =
            format!("request_timeout: 200\n    retry: {{ attempts: 1, on_status_codes: {codes} }}");
        let gw = Gateway::start(&timeout_config(&mock, "headers_delay_ms=3000", &settings)).await;
        let resp = post(&gw, "vk-slow", &chat("m", false)).await;
        assert_eq!(resp.status(), 408, "{codes}");
        assert_eq!(mock.requests().len(), expected, "{codes}");
    }
}
