//! Observability through the real binary: trace context in and out, the access-log line of a
//! fallback request, token and GenAI metrics, and that no key leaks into any output.

#[path = "support/gateway.rs"]
mod harness;

use harness::{chat, mock, Gateway};
use switchyard_mock::MockHandle;

const PROVIDER_KEY: &str = "sk-observability-provider-key";

fn config(m: &MockHandle) -> String {
    format!(
        "providers:
  bad: {{ kind: openai, base_url: \"http://{addr}/fault/status=503/v1\", api_key: {PROVIDER_KEY} }}
  good: {{ kind: openai, base_url: \"http://{addr}/v1\", api_key: {PROVIDER_KEY} }}
virtual_keys:
  vk-bad: {{ provider: bad }}
  vk-good: {{ provider: good, models: [gpt-4o-mini] }}
configs:
  chat:
    strategy: {{ mode: fallback }}
    targets:
      - {{ name: primary, virtual_key: vk-bad }}
      - {{ name: backup, virtual_key: vk-good }}
",
        addr = m.addr
    )
}

#[tokio::test]
async fn a_fallback_request_is_traced_logged_and_counted() {
    let m = mock().await;
    let gw = Gateway::start(&config(&m)).await;
    let resp = reqwest::Client::new()
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth("vk-good")
        .header("x-portkey-config", "chat")
        .header(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        )
        .header("x-portkey-metadata", r#"{"feature":"checkout"}"#)
        .json(&chat("gpt-4o-mini", false))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["x-portkey-trace-id"],
        "4bf92f3577b34da6a3ce929d0e0e4736"
    );
    assert_eq!(
        resp.headers()["x-switchyard-trace-id"],
        "4bf92f3577b34da6a3ce929d0e0e4736"
    );
    let _ = resp.text().await;

    // Each attempt continued the caller's trace with a span of its own.
    let reqs = m.requests();
    assert_eq!(reqs.len(), 2);
    let parents: Vec<&str> = reqs
        .iter()
        .map(|r| r.header("traceparent").expect("traceparent sent upstream"))
        .collect();
    for p in &parents {
        assert!(
            p.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-") && p.ends_with("-01"),
            "{p}"
        );
        assert!(
            !p.contains("00f067aa0ba902b7"),
            "a new span, not the caller's"
        );
    }
    assert_ne!(parents[0], parents[1]);

    let lines = gw.access_log_lines(1).await;
    assert_eq!(lines.len(), 1, "{lines:?}");
    let line = &lines[0];
    assert_eq!(line["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(line["config"], "chat");
    assert_eq!(
        line["virtual_key"],
        switchyard::config::key_label("vk-good", false)
    );
    assert_eq!(line["operation"], "chat");
    assert_eq!(line["model"], "gpt-4o-mini");
    assert_eq!(line["status"], 200);
    assert_eq!(line["outcome"], "fallback_ok");
    assert_eq!(line["metadata"]["feature"], "checkout");
    assert_eq!(line["tokens"]["input"].as_u64().map(|n| n > 0), Some(true));
    assert!(line["tokens"]["output"].as_u64().unwrap() > 0);
    let attempts = line["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2, "{line}");
    assert_eq!(attempts[0]["target"], "primary");
    assert_eq!(attempts[0]["provider"], "bad");
    assert_eq!(attempts[0]["status"], 503);
    assert_eq!(attempts[0]["result"], "status_5xx");
    assert_eq!(attempts[1]["target"], "backup");
    assert_eq!(attempts[1]["result"], "ok");
    assert_eq!(attempts[1]["status"], 200);
    for key in ["connect_ms", "headers_ms", "total_ms"] {
        assert!(attempts[1][key].as_f64().is_some(), "{key}: {line}");
    }
    // The attempt spans in the log are the ones sent upstream.
    assert!(parents[1].contains(attempts[1]["span_id"].as_str().unwrap()));
    // No prompt or completion text by default, no key anywhere.
    let text = line.to_string();
    assert!(!text.contains("Say hello") && !text.contains("Hello from the mock"));
    assert!(!text.contains(PROVIDER_KEY));

    let metrics = gw.metrics().await;
    assert!(!metrics.contains(PROVIDER_KEY));
    for needle in [
        r#"switchyard_tokens_total{config="chat",model="gpt-4o-mini",provider="good",type="input"}"#,
        r#"gen_ai_client_operation_duration_seconds_count{error_type="status_5xx",gen_ai_operation_name="chat",gen_ai_provider_name="openai",gen_ai_request_model="gpt-4o-mini"} 1"#,
        r#"gen_ai_client_token_usage_bucket{gen_ai_operation_name="chat",gen_ai_provider_name="openai",gen_ai_request_model="gpt-4o-mini",gen_ai_token_type="output",le="1"}"#,
    ] {
        assert!(metrics.contains(needle), "missing {needle} in\n{metrics}");
    }
    assert!(!gw.log().contains(PROVIDER_KEY));
}

#[tokio::test]
async fn requests_without_trace_headers_get_a_new_trace_and_errors_carry_it() {
    let m = mock().await;
    let gw = Gateway::start(&config(&m)).await;
    let resp = reqwest::Client::new()
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth("vk-nope")
        .json(&chat("gpt-4o-mini", false))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let id = resp.headers()["x-portkey-trace-id"]
        .to_str()
        .unwrap()
        .to_string();
    assert_eq!(id.len(), 32);
    assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
    let body = resp.text().await.unwrap();
    assert!(!body.contains(PROVIDER_KEY));
    let lines = gw.access_log_lines(1).await;
    assert_eq!(lines[0]["trace_id"], id.as_str());
    assert_eq!(lines[0]["outcome"], "rejected");
    assert_eq!(lines[0]["attempts"].as_array().map(Vec::len), Some(0));

    // A Portkey trace id is kept as given.
    let resp = reqwest::Client::new()
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth("vk-good")
        .header("x-portkey-trace-id", "checkout-42")
        .json(&chat("gpt-4o-mini", true))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["x-portkey-trace-id"], "checkout-42");
    let _ = resp.text().await;
    let lines = gw.access_log_lines(2).await;
    assert_eq!(lines[1]["trace_id"], "checkout-42");
    assert_eq!(lines[1]["stream"], true);
    assert!(lines[1]["attempts"][0]["first_token_ms"].as_f64().is_some());
    // Streams report tokens too (usage asked of the provider, not shown to this client).
    assert!(lines[1]["tokens"]["output"].as_u64().unwrap() > 0);
    let metrics = gw.metrics().await;
    for family in [
        "gen_ai_client_operation_time_to_first_chunk_seconds_count",
        "gen_ai_client_operation_time_per_output_chunk_seconds_count",
    ] {
        assert!(
            metrics.lines().any(|l| l.starts_with(family)
                && l.contains(r#"gen_ai_request_model="gpt-4o-mini""#)
                && l.ends_with(" 1")),
            "{family} in\n{metrics}"
        );
    }
}

fn priced_config(m: &MockHandle, extra: &str) -> String {
    format!(
        "providers:
  good: {{ kind: openai, base_url: \"http://{addr}/v1\", api_key: {PROVIDER_KEY} }}
virtual_keys:
  vk-good: {{ provider: good }}
telemetry:
  prices: {{ \"openai/gpt-4o-mini\": {{ input: 0.15, output: 0.6 }} }}
{extra}",
        addr = m.addr
    )
}

#[tokio::test]
async fn cost_is_exact_and_unknown_models_are_counted_as_unknown() {
    let m = mock().await;
    let gw = Gateway::start(&priced_config(&m, "")).await;
    let client = reqwest::Client::new();
    for model in ["gpt-4o-mini", "some-unpriced-model"] {
        let r = client
            .post(gw.url("/v1/chat/completions"))
            .bearer_auth("vk-good")
            .json(&chat(model, false))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let _ = r.text().await;
    }
    let lines = gw.access_log_lines(2).await;
    let priced = &lines[0];
    let (input, output) = (
        priced["tokens"]["input"].as_u64().unwrap() as f64,
        priced["tokens"]["output"].as_u64().unwrap() as f64,
    );
    let expected = input * 0.15 / 1e6 + output * 0.6 / 1e6;
    let cost = priced["cost_usd"].as_f64().unwrap();
    assert!((cost - expected).abs() < 1e-9, "{cost} vs {expected}");
    assert!(lines[1]["cost_usd"].is_null(), "unknown, not zero");
    gw.expect_metric(
        "switchyard_cost_unknown_total",
        &[
            r#"config="direct""#,
            &format!(
                "virtual_key=\"{}\"",
                switchyard::config::key_label("vk-good", false)
            ),
        ],
        1.0,
    )
    .await;
    let metrics = gw.metrics().await;
    let line = metrics
        .lines()
        .find(|l| l.starts_with("switchyard_cost_usd_total{"))
        .expect("cost metric");
    let value: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!((value - expected).abs() < 1e-9, "{line}");
}

#[tokio::test]
async fn bodies_are_logged_only_when_asked_and_never_with_log_off() {
    let m = mock().await;
    let gw = Gateway::start(&priced_config(&m, "  log_bodies: true\n")).await;
    let client = reqwest::Client::new();
    // Ours, then Portkey's opt-out (which also names the caller's span).
    for off in [
        None,
        Some(("x-switchyard-log", "off")),
        Some(("x-portkey-disable-logging", "true")),
    ] {
        let mut req = client
            .post(gw.url("/v1/chat/completions"))
            .bearer_auth("vk-good")
            .json(&chat("gpt-4o-mini", false));
        if let Some((name, value)) = off {
            req = req.header(name, value);
        }
        if off.is_some_and(|(name, _)| name.starts_with("x-portkey")) {
            req = req
                .header("x-portkey-span-id", "step-2")
                .header("x-portkey-parent-span-id", "step-1")
                .header("x-portkey-span-name", "retrieve")
                .header("x-portkey-span-name-ignored", "x");
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), 200);
        let _ = r.text().await;
    }
    let lines = gw.access_log_lines(3).await;
    assert!(lines[0]["request_body"]
        .as_str()
        .unwrap()
        .contains("Say hello"));
    assert!(lines[0]["response_body"]
        .as_str()
        .unwrap()
        .contains("Hello from the mock provider."));
    assert!(lines[1].get("request_body").is_none(), "{}", lines[1]);
    assert!(lines[1].get("response_body").is_none());
    assert!(lines[2].get("request_body").is_none(), "{}", lines[2]);
    assert!(lines[2].get("response_body").is_none());
    assert_eq!(
        lines[2]["client_span"],
        serde_json::json!({"span_id": "step-2", "parent_span_id": "step-1", "span_name": "retrieve"})
    );
    assert!(lines[0].get("client_span").is_none(), "{}", lines[0]);
    assert!(!lines[0].to_string().contains(PROVIDER_KEY));
}

#[tokio::test]
async fn feedback_is_validated_counted_and_logged() {
    let m = mock().await;
    let gw = Gateway::start(&priced_config(&m, "")).await;
    let client = reqwest::Client::new();
    let ok = client
        .post(gw.url("/v1/feedback"))
        .bearer_auth("vk-good")
        .json(&serde_json::json!({"trace_id": "checkout-42", "value": 5, "weight": 0.5, "metadata": {"user": "u1"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    assert!(ok.headers().contains_key("x-portkey-trace-id"));
    let body: serde_json::Value = ok.json().await.unwrap();
    assert_eq!(body["status"], "success");
    assert_eq!(body["trace_id"], "checkout-42");
    assert_eq!(body["feedback_ids"].as_array().map(Vec::len), Some(1));
    // Portkey's bulk form: an array, each piece counted, one id each.
    let bulk = client
        .post(gw.url("/v1/feedback"))
        .bearer_auth("vk-good")
        .json(&serde_json::json!([{"trace_id": "a", "value": 5}, {"trace_id": "b", "value": -3}]))
        .send()
        .await
        .unwrap();
    assert_eq!(bulk.status(), 200);
    let body: serde_json::Value = bulk.json().await.unwrap();
    let ids = body["feedback_ids"].as_array().unwrap();
    assert_eq!(ids.len(), 2);
    assert_ne!(ids[0], ids[1]);
    for (bad, field) in [
        (serde_json::json!({"value": 5}), "trace_id"),
        (serde_json::json!({"trace_id": "t", "value": 11}), "value"),
        (
            serde_json::json!({"trace_id": "t", "value": 1, "weight": 2}),
            "weight",
        ),
        (serde_json::json!([1]), "body: [0] body: not a JSON object"),
        (serde_json::json!([]), "body: a list of 1 to 100"),
        (
            serde_json::json!([{"trace_id": "t", "value": 1}, {"value": 1}]),
            "body: [1] trace_id: required",
        ),
    ] {
        let r = client
            .post(gw.url("/v1/feedback"))
            .json(&bad)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{bad}");
        let v: serde_json::Value = r.json().await.unwrap();
        let message = v["error"]["message"].as_str().unwrap();
        assert!(message.starts_with(field), "{message}");
    }
    gw.expect_metric(
        "switchyard_feedback_total",
        &[r#"config="direct""#, r#"value="5""#],
        2.0,
    )
    .await;
    gw.expect_metric(
        "switchyard_feedback_total",
        &[r#"config="direct""#, r#"value="-3""#],
        1.0,
    )
    .await;
    let lines = gw.access_log_lines(8).await;
    assert_eq!(lines[0]["operation"], "feedback");
    assert_eq!(lines[0]["metadata"]["feedback"]["trace_id"], "checkout-42");
    assert_eq!(lines[0]["metadata"]["feedback"]["value"], 5);
    assert_eq!(lines[1]["metadata"]["feedback"][1]["trace_id"], "b");
    assert_eq!(lines[2]["status"], 400);
}

#[tokio::test]
async fn feedback_is_updated_by_its_id_and_an_unknown_id_is_404() {
    let m = mock().await;
    let gw = Gateway::start(&priced_config(&m, "")).await;
    let client = reqwest::Client::new();
    let posted: serde_json::Value = client
        .post(gw.url("/v1/feedback"))
        .bearer_auth("vk-good")
        .json(&serde_json::json!({"trace_id": "checkout-42", "value": 5}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = posted["feedback_ids"][0].as_str().unwrap().to_string();
    let put = |id: String, body: serde_json::Value| {
        let client = client.clone();
        let url = gw.url(&format!("/v1/feedback/{id}"));
        async move {
            let r = client
                .put(url)
                .bearer_auth("vk-good")
                .json(&body)
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            (status, r.json::<serde_json::Value>().await.unwrap())
        }
    };
    // Portkey's update: value, weight, metadata; answered with the same id.
    let (status, body) = put(
        id.clone(),
        serde_json::json!({"value": -2, "weight": 0.5, "metadata": {"why": "late"}}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "success");
    assert_eq!(body["feedback_ids"], serde_json::json!([id]));
    assert_eq!(body["trace_id"], "checkout-42");
    // Validated as POST is.
    for (bad, field) in [
        (serde_json::json!({}), "value: required"),
        (serde_json::json!({"value": 11}), "value: must be"),
        (
            serde_json::json!({"value": 1, "weight": 2}),
            "weight: must be",
        ),
        (
            serde_json::json!({"value": 1, "metadata": [1]}),
            "metadata: must be",
        ),
        (serde_json::json!([{"value": 1}]), "body: not a JSON object"),
    ] {
        let (status, v) = put(id.clone(), bad.clone()).await;
        assert_eq!(status, 400, "{bad}");
        let message = v["error"]["message"].as_str().unwrap();
        assert!(message.starts_with(field), "{message}");
    }
    // An id never issued: 404 in the OpenAI error shape.
    let (status, v) = put("0123abcd".into(), serde_json::json!({"value": 1})).await;
    assert_eq!(status, 404, "{v}");
    assert_eq!(v["error"]["code"], "not_found");
    assert_eq!(v["error"]["type"], "invalid_request_error");
    assert!(v["error"]["message"].as_str().unwrap().contains("0123abcd"));
    // Other methods and deeper paths stay unknown routes.
    let r = client
        .get(gw.url(&format!("/v1/feedback/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    gw.expect_metric(
        "switchyard_feedback_updates_total",
        &[r#"config="direct""#, r#"value="-2""#],
        1.0,
    )
    .await;
    gw.expect_metric(
        "switchyard_feedback_total",
        &[r#"config="direct""#, r#"value="5""#],
        1.0,
    )
    .await;
    let lines = gw.access_log_lines(9).await;
    assert_eq!(lines[0]["metadata"]["feedback"]["feedback_id"], id.as_str());
    let updated = &lines[1]["metadata"]["feedback"];
    assert_eq!(lines[1]["operation"], "feedback");
    assert_eq!(lines[1]["method"], "PUT");
    assert_eq!(updated["feedback_id"], id.as_str());
    assert_eq!(updated["trace_id"], "checkout-42");
    assert_eq!(updated["value"], -2);
    assert_eq!(updated["updated"], true);
    assert_eq!(updated["previous"]["value"], 5);
    assert_eq!(updated["metadata"]["why"], "late");
    assert_eq!(lines[7]["status"], 404);
}

#[tokio::test]
async fn collector_credentials_never_reach_config_metrics_or_logs() {
    let m = mock().await;
    let gw = Gateway::start(&priced_config(
        &m,
        "  otlp: { endpoint: \"http://127.0.0.1:9/v1/traces\", headers: { authorization: \"Bearer otlp-secret-token\" } }\n",
    ))
    .await;
    let r = reqwest::Client::new()
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth("vk-good")
        .json(&chat("gpt-4o-mini", false))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let _ = r.text().await;
    let config = gw.admin_text("/config").await;
    assert!(config.contains("otlp"), "{config}");
    let lines = gw.access_log_lines(1).await;
    for text in [
        config,
        gw.metrics().await,
        gw.log(),
        serde_json::to_string(&lines).unwrap(),
    ] {
        assert!(!text.contains("otlp-secret-token"));
        assert!(!text.contains(PROVIDER_KEY));
    }
}
