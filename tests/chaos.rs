//! Chaos scenarios: the real gateway against mock providers with injected faults, one scenario
//! per fallback trigger, retry rule, breaker behaviour and hedging. Each asserts what the
//! client got, the route headers and the metric deltas. Fault delays are milliseconds.

#[path = "support/gateway.rs"]
mod harness;

use std::time::{Duration, Instant};

use harness::{chat, mock, Gateway};
use switchyard_mock::MockHandle;

/// Providers `p0..` (one per mock, with an optional path fault), keys `vk0..`, and the config
/// `chat` (the default) given as YAML indented by four spaces.
fn config(upstreams: &[(&MockHandle, &str)], chat_config: &str) -> String {
    let mut text = String::from("default_config: chat\nproviders:\n");
    for (i, (m, fault)) in upstreams.iter().enumerate() {
        let prefix = if fault.is_empty() {
            String::new()
        } else {
            format!("/fault/{fault}")
        };
        text.push_str(&format!(
            "  p{i}: {{ kind: openai-compatible, base_url: \"http://{}{prefix}/v1\", api_key: k{i} }}\n",
            m.addr
        ));
    }
    text.push_str("virtual_keys:\n");
    for i in 0..upstreams.len() {
        text.push_str(&format!("  vk{i}: {{ provider: p{i} }}\n"));
    }
    text.push_str("configs:\n  chat:\n");
    text.push_str(chat_config);
    text
}

/// `fallback` over each key with `override_params.model: m<i>`.
fn fallback_targets(n: usize, strategy_extra: &str, target_extra: &str) -> String {
    let mut text = format!("    strategy: {{ mode: fallback{strategy_extra} }}\n    targets:\n");
    for i in 0..n {
        text.push_str(&format!(
            "      - {{ virtual_key: vk{i}, override_params: {{ model: m{i} }}{target_extra} }}\n"
        ));
    }
    text
}

struct Reply {
    status: u16,
    option_index: Option<String>,
    provider: Option<String>,
    retry_count: Option<String>,
    body: String,
    took: Duration,
}

async fn send(gw: &Gateway, stream: bool) -> Reply {
    send_with(gw, stream, &[]).await
}

async fn send_with(gw: &Gateway, stream: bool, headers: &[(&str, &str)]) -> Reply {
    let started = Instant::now();
    let mut req = reqwest::Client::new()
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth("vk0")
        .timeout(Duration::from_secs(30))
        .json(&chat("client-model", stream));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.send().await.expect("request");
    let h = |n: &str| {
        resp.headers()
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let (status, option_index, provider, retry_count) = (
        resp.status().as_u16(),
        h("x-portkey-last-used-option-index"),
        h("x-portkey-provider"),
        h("x-portkey-retry-attempt-count"),
    );
    let body = resp.text().await.unwrap_or_default();
    Reply {
        status,
        option_index,
        provider,
        retry_count,
        body,
        took: started.elapsed(),
    }
}

/// Asserts the request fell back from target 0 to target 1 for `reason`.
async fn assert_fell_back(gw: &Gateway, reply: &Reply, reason: &str) {
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.option_index.as_deref(), Some("config.targets[1]"));
    assert!(
        reply.body.contains("m1"),
        "served by the fallback: {}",
        reply.body
    );
    assert!(!reply.body.contains("\"m0\""), "{}", reply.body);
    gw.expect_metric(
        "switchyard_fallbacks_total",
        &[
            r#"from_target="config.targets[0]""#,
            &format!(r#"reason="{reason}""#),
        ],
        1.0,
    )
    .await;
    gw.expect_metric(
        "switchyard_requests_total",
        &[r#"outcome="fallback_ok""#],
        1.0,
    )
    .await;
    gw.expect_metric(
        "switchyard_upstream_attempts_total",
        &[
            r#"target="config.targets[0]""#,
            &format!(r#"result="{reason}""#),
        ],
        1.0,
    )
    .await;
}

#[tokio::test]
async fn each_failure_before_the_commit_point_falls_back() {
    let good = mock().await;
    let bad = mock().await;
    let cases: [(&str, &str, bool, &str); 9] = [
        ("status=503", "", false, "status_5xx"),
        ("status=429", "", false, "status_429"),
        ("status=400", "", false, "status_4xx"),
        (
            "headers_delay_ms=3000",
            ", request_timeout: 150",
            false,
            "timeout_headers",
        ),
        (
            "first_chunk_delay_ms=3000",
            ", timeouts: { ttft_ms: 150 }",
            true,
            "timeout_ttft",
        ),
        (
            "stall_after=0",
            ", timeouts: { idle_ms: 150 }",
            true,
            "timeout_idle",
        ),
        (
            "headers_delay_ms=3000",
            ", timeouts: { total_ms: 150 }",
            false,
            "timeout_total",
        ),
        ("error_event", "", true, "stream_error"),
        ("empty_stream", "", true, "stream_error"),
    ];
    for (fault, settings, stream, reason) in cases {
        let gw = Gateway::start(&config(
            &[(&bad, fault), (&good, "")],
            &fallback_targets(2, "", settings),
        ))
        .await;
        let reply = send(&gw, stream).await;
        assert!(
            reply.took < Duration::from_millis(2500),
            "{reason}: {:?}",
            reply.took
        );
        assert_fell_back(&gw, &reply, reason).await;
        if stream {
            assert!(reply.body.contains("[DONE]"));
        }
    }
}

#[tokio::test]
async fn a_connect_failure_and_a_cut_before_headers_fall_back() {
    let good = mock().await;
    let bad = mock().await;
    for (fault, reason) in [("cut=headers", "connect_error")] {
        let gw = Gateway::start(&config(
            &[(&bad, fault), (&good, "")],
            &fallback_targets(2, "", ""),
        ))
        .await;
        let reply = send(&gw, false).await;
        assert_fell_back(&gw, &reply, reason).await;
    }
    // Nothing listens on the first provider's port.
    let port = harness::free_port();
    let text = config(&[(&good, ""), (&good, "")], &fallback_targets(2, "", "")).replacen(
        &good.addr.to_string(),
        &format!("127.0.0.1:{port}"),
        1,
    );
    let gw = Gateway::start(&text).await;
    let reply = send(&gw, true).await;
    assert_fell_back(&gw, &reply, "connect_error").await;
}

#[tokio::test]
async fn on_status_codes_narrow_fallback_and_all_failed_returns_the_last_upstream_error() {
    let a = mock().await;
    let b = mock().await;
    // 503 is not in the list: no fallback, the client gets the 503.
    let gw = Gateway::start(&config(
        &[(&a, "status=503"), (&b, "")],
        &fallback_targets(2, ", on_status_codes: [429]", ""),
    ))
    .await;
    let reply = send(&gw, false).await;
    assert_eq!(reply.status, 503);
    assert!(b.requests().is_empty());
    // Portkey names the target that answered last even when it failed.
    assert_eq!(reply.option_index.as_deref(), Some("config.targets[0]"));
    assert_eq!(reply.provider.as_deref(), Some("openai-compatible"));

    // Both fail: the last upstream's own status and body.
    let gw = Gateway::start(&config(
        &[(&a, "status=503"), (&b, "status=502")],
        &fallback_targets(2, "", ""),
    ))
    .await;
    let reply = send(&gw, false).await;
    assert_eq!(reply.status, 502);
    assert!(reply.body.contains("status 502"), "{}", reply.body);
    assert_eq!(reply.option_index.as_deref(), Some("config.targets[1]"));
    assert_eq!(reply.provider.as_deref(), Some("openai-compatible"));
    gw.expect_metric(
        "switchyard_requests_total",
        &[r#"outcome="error""#, r#"status_class="5xx""#],
        1.0,
    )
    .await;
}

#[tokio::test]
async fn a_stall_before_content_falls_back_and_after_content_ends_with_an_error_event() {
    let a = mock().await;
    let b = mock().await;
    let gw = Gateway::start(&config(
        &[(&a, "stall_after=0"), (&b, "chunks=3")],
        &fallback_targets(2, "", ", timeouts: { idle_ms: 200 }"),
    ))
    .await;
    let reply = send(&gw, true).await;
    assert_fell_back(&gw, &reply, "timeout_idle").await;
    // Only the fallback's events reached the client.
    assert!(!reply.body.contains("\"m0\""));
    // role, three deltas, finish: five events, all from the fallback.
    assert_eq!(reply.body.matches("\"m1\"").count(), 5, "{}", reply.body);

    let gw = Gateway::start(&config(
        &[(&a, "stall_after=2"), (&b, "")],
        &fallback_targets(2, "", ", timeouts: { idle_ms: 200 }"),
    ))
    .await;
    let reply = send(&gw, true).await;
    assert_eq!(reply.status, 200);
    let last = reply.body.trim_end().rsplit("\n\n").next().unwrap_or("");
    assert!(last.contains("timeout_error"), "{last}");
    assert!(
        b.requests().len() == 1,
        "no fallback after the commit point"
    );
    gw.expect_metric(
        "switchyard_requests_total",
        &[r#"outcome="stream_aborted""#],
        1.0,
    )
    .await;
}

#[tokio::test]
async fn retries_stay_on_the_target_and_honour_retry_after_up_to_a_cap() {
    let a = mock().await;
    let b = mock().await;
    // Two 503s then success, on the same target.
    let gw = Gateway::start(&config(
        &[(&a, "status=503,fail_first=2"), (&b, "")],
        &fallback_targets(2, "", ", retry: { attempts: 2 }"),
    ))
    .await;
    let reply = send(&gw, false).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.option_index.as_deref(), Some("config.targets[0]"));
    assert_eq!(reply.retry_count.as_deref(), Some("2"));
    assert_eq!(a.requests().len(), 3);
    assert!(b.requests().is_empty());
    gw.expect_metric("switchyard_retries_total", &[r#"reason="status_5xx""#], 2.0)
        .await;

    // Retry-After: 1 waits about a second.
    let c = mock().await;
    let gw = Gateway::start(&config(
        &[(&c, "status=429,retry_after=1,fail_first=1"), (&b, "")],
        &fallback_targets(2, "", ", retry: { attempts: 1 }"),
    ))
    .await;
    let reply = send(&gw, false).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.option_index.as_deref(), Some("config.targets[0]"));
    assert!(reply.took >= Duration::from_millis(950), "{:?}", reply.took);

    // Retry-After: 3600 is beyond the cap: fall back at once.
    let d = mock().await;
    let gw = Gateway::start(&config(
        &[(&d, "status=429,retry_after=3600"), (&b, "")],
        &fallback_targets(2, "", ", retry: { attempts: 3 }"),
    ))
    .await;
    let reply = send(&gw, false).await;
    assert!(reply.took < Duration::from_millis(900), "{:?}", reply.took);
    assert_fell_back(&gw, &reply, "status_429").await;
    assert_eq!(d.requests().len(), 1);

    // Retries exhausted with nothing left: Portkey's -1.
    let e = mock().await;
    let gw = Gateway::start(&config(
        &[(&e, "status=503")],
        "    virtual_key: vk0\n    retry: { attempts: 1 }\n",
    ))
    .await;
    let reply = send(&gw, false).await;
    assert_eq!(reply.status, 503);
    assert_eq!(reply.retry_count.as_deref(), Some("-1"));
    assert_eq!(e.requests().len(), 2);
}

#[tokio::test]
async fn gray_failure_costs_one_timeout_then_the_breaker_stops_calling_the_primary() {
    let slow = mock().await;
    let healthy = mock().await;
    let min_calls = 5;
    let gw = Gateway::start(&config(
        &[(&slow, "headers_delay_ms=45000"), (&healthy, "")],
        &format!(
            "{}    request_timeout: 1000\n    circuit_breaker: {{ min_calls: {min_calls}, window_s: 60, open_s: 60 }}\n",
            fallback_targets(2, "", "")
        ),
    ))
    .await;
    for i in 0..50 {
        let reply = send(&gw, false).await;
        assert_eq!(reply.status, 200, "request {i}: {}", reply.body);
        assert_eq!(reply.option_index.as_deref(), Some("config.targets[1]"));
        // The timeout, plus the fallback's latency, plus a margin.
        assert!(
            reply.took < Duration::from_millis(1800),
            "request {i} took {:?}",
            reply.took
        );
    }
    assert_eq!(
        slow.requests().len(),
        min_calls,
        "the open breaker kept calling the primary"
    );
    assert_eq!(healthy.requests().len(), 50);
    gw.expect_metric(
        "switchyard_circuit_state",
        &[r#"target="config.targets[0]""#],
        1.0,
    )
    .await;
    gw.expect_metric(
        "switchyard_requests_total",
        &[r#"outcome="fallback_ok""#],
        50.0,
    )
    .await;
    gw.expect_metric(
        "switchyard_fallbacks_total",
        &[r#"reason="timeout_headers""#],
        min_calls as f64,
    )
    .await;
    gw.expect_metric(
        "switchyard_upstream_attempts_total",
        &[r#"result="circuit_open""#],
        (50 - min_calls) as f64,
    )
    .await;
}

#[tokio::test]
async fn half_open_probes_close_the_circuit_and_all_open_tries_the_oldest() {
    let a = mock().await;
    let b = mock().await;
    a.set_fault(Some("status=503".parse().unwrap()));
    let gw = Gateway::start(&config(
        &[(&a, ""), (&b, "")],
        &format!(
            "{}    circuit_breaker: {{ min_calls: 2, open_s: 1 }}\n",
            fallback_targets(2, "", "")
        ),
    ))
    .await;
    for _ in 0..4 {
        assert_eq!(send(&gw, false).await.status, 200);
    }
    assert_eq!(a.requests().len(), 2, "opened after min_calls");
    a.set_fault(None);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let reply = send(&gw, false).await;
    assert_eq!(
        reply.option_index.as_deref(),
        Some("config.targets[0]"),
        "the probe"
    );
    gw.expect_metric(
        "switchyard_circuit_state",
        &[r#"target="config.targets[0]""#],
        0.0,
    )
    .await;

    // Both targets open: the least recently opened one is still tried, not a call-less error.
    let c = mock().await;
    let d = mock().await;
    c.set_fault(Some("status=503".parse().unwrap()));
    d.set_fault(Some("status=503".parse().unwrap()));
    let gw = Gateway::start(&config(
        &[(&c, ""), (&d, "")],
        &format!(
            "{}    circuit_breaker: {{ min_calls: 1, open_s: 60 }}\n",
            fallback_targets(2, "", "")
        ),
    ))
    .await;
    assert_eq!(send(&gw, false).await.status, 503);
    let before = c.requests().len() + d.requests().len();
    assert_eq!(before, 2);
    assert_eq!(send(&gw, false).await.status, 503);
    assert_eq!(
        c.requests().len() + d.requests().len(),
        3,
        "one forced attempt"
    );
    assert_eq!(c.requests().len(), 2, "c opened first");
}

#[tokio::test]
async fn breaker_state_survives_a_reload() {
    let a = mock().await;
    let b = mock().await;
    a.set_fault(Some("status=503".parse().unwrap()));
    let body = config(
        &[(&a, ""), (&b, "")],
        &format!(
            "{}    circuit_breaker: {{ min_calls: 2, open_s: 60 }}\n",
            fallback_targets(2, "", "")
        ),
    );
    let gw = Gateway::start(&body).await;
    for _ in 0..3 {
        send(&gw, false).await;
    }
    assert_eq!(a.requests().len(), 2);
    // Same targets, another setting changed: the circuit stays open.
    gw.rewrite_config(&format!("{body}    request_timeout: 5000\n"));
    gw.expect_metric(
        "switchyard_config_reloads_total",
        &[r#"result="success""#],
        1.0,
    )
    .await;
    for _ in 0..3 {
        assert_eq!(send(&gw, false).await.status, 200);
    }
    assert_eq!(a.requests().len(), 2);
}

#[tokio::test]
async fn hedging_races_the_next_target_and_drops_the_loser() {
    let slow = mock().await;
    let fast = mock().await;
    let gw = Gateway::start(&config(
        &[(&slow, "headers_delay_ms=2000"), (&fast, "")],
        "    strategy: { mode: fallback }\n    hedge: { after_ms: 100 }\n    targets:\n      - { virtual_key: vk0, override_params: { model: m0 } }\n      - { virtual_key: vk1, override_params: { model: m1 } }\n",
    ))
    .await;
    let reply = send(&gw, false).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.option_index.as_deref(), Some("config.targets[1]"));
    assert!(reply.took < Duration::from_millis(1000), "{:?}", reply.took);
    assert_eq!(slow.requests().len(), 1);
    gw.expect_metric(
        "switchyard_upstream_attempts_total",
        &[r#"target="config.targets[0]""#, r#"result="hedge_lost""#],
        1.0,
    )
    .await;
    // The loser's connection is dropped, not left waiting.
    let released = harness::eventually(Duration::from_secs(5), || async {
        slow.stats().open_connections == 0
    })
    .await;
    assert!(released.is_some(), "{:?}", slow.stats());
}

#[tokio::test]
async fn conditional_routing_reads_metadata_and_params() {
    let a = mock().await;
    let b = mock().await;
    let gw = Gateway::start(&config(
        &[(&a, ""), (&b, "")],
        r#"    strategy:
      mode: conditional
      conditions:
        - { query: { "metadata.plan": { $eq: paid } }, then: premium }
        - { query: { "params.model": { $regex: "^gpt-4" } }, then: premium }
      default: budget
    targets:
      - { name: premium, virtual_key: vk0 }
      - { name: budget, virtual_key: vk1 }
"#,
    ))
    .await;
    let paid = send_with(&gw, false, &[("x-portkey-metadata", r#"{"plan":"paid"}"#)]).await;
    assert_eq!(paid.option_index.as_deref(), Some("config.targets[0]"));
    let free = send_with(&gw, false, &[("x-portkey-metadata", r#"{"plan":"free"}"#)]).await;
    assert_eq!(free.option_index.as_deref(), Some("config.targets[1]"));
    let bad = send_with(&gw, false, &[("x-portkey-metadata", "not json")]).await;
    assert_eq!(bad.status, 400);
    let by_model = reqwest::Client::new()
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth("vk0")
        .json(&chat("gpt-4o", false))
        .send()
        .await
        .unwrap();
    assert_eq!(
        by_model.headers()["x-portkey-last-used-option-index"],
        "config.targets[0]"
    );
}

#[tokio::test]
async fn least_latency_prefers_the_faster_target() {
    let slow = mock().await;
    let fast = mock().await;
    let gw = Gateway::start(&config(
        &[(&slow, "headers_delay_ms=150"), (&fast, "")],
        "    strategy: { mode: loadbalance, algorithm: least_latency }\n    targets:\n      - { virtual_key: vk0 }\n      - { virtual_key: vk1 }\n",
    ))
    .await;
    for _ in 0..20 {
        assert_eq!(send(&gw, false).await.status, 200);
    }
    // Each is measured once; afterwards the faster one takes everything.
    assert_eq!(
        slow.requests().len(),
        1,
        "slow got {}",
        slow.requests().len()
    );
    assert_eq!(fast.requests().len(), 19);
}

#[tokio::test]
async fn a_connect_that_hangs_times_out_and_falls_back() {
    // A listener that never accepts, with its accept queue filled: Linux then drops new SYNs,
    // so a connect hangs (loopback only, no outside address needed).
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(1).unwrap();
    let addr = listener.local_addr().unwrap();
    let mut fillers = Vec::new();
    for _ in 0..8 {
        if let Ok(Ok(s)) = tokio::time::timeout(
            Duration::from_millis(200),
            tokio::net::TcpStream::connect(addr),
        )
        .await
        {
            fillers.push(s);
        }
    }
    let hangs = tokio::time::timeout(
        Duration::from_millis(300),
        tokio::net::TcpStream::connect(addr),
    )
    .await
    .is_err();
    if !hangs {
        eprintln!(
            "this kernel accepts connects past the backlog; skipping the connect-timeout case"
        );
        return;
    }
    let good = mock().await;
    let text = config(
        &[(&good, ""), (&good, "")],
        &fallback_targets(2, "", ", timeouts: { connect_ms: 200 }"),
    )
    .replacen(&good.addr.to_string(), &addr.to_string(), 1);
    let gw = Gateway::start(&text).await;
    let reply = send(&gw, false).await;
    assert!(reply.took < Duration::from_millis(1500), "{:?}", reply.took);
    assert_fell_back(&gw, &reply, "timeout_connect").await;
    drop(listener);
}
