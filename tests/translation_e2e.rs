//! Translation through the real gateway: a fallback across wire formats in the middle of a
//! stream is invisible to an OpenAI client (only the route headers say which option answered);
//! provider errors reach the client in its own format; same-format traffic is forwarded as sent.

#[path = "support/gateway.rs"]
mod harness;

use std::time::Duration;

use harness::{chat, mock, Gateway};
use switchyard_mock::MockHandle;

/// `openai` (optionally behind a fault prefix) and `anthropic` providers on one mock, a key for
/// each, and a fallback config `chat` from OpenAI to Anthropic.
fn config(m: &MockHandle, openai_fault: &str, openai_target_extra: &str) -> String {
    let prefix = if openai_fault.is_empty() {
        String::new()
    } else {
        format!("/fault/{openai_fault}")
    };
    format!(
        "providers:
  oai: {{ kind: openai, base_url: \"http://{addr}{prefix}/v1\", api_key: sk-oai }}
  ant: {{ kind: anthropic, base_url: \"http://{addr}\", api_key: sk-ant }}
virtual_keys:
  vk-oai: {{ provider: oai }}
  vk-ant: {{ provider: ant }}
configs:
  chat:
    strategy: {{ mode: fallback }}
    targets:
      - {{ virtual_key: vk-oai{openai_target_extra} }}
      - {{ virtual_key: vk-ant, override_params: {{ model: claude-haiku-4-5 }} }}
",
        addr = m.addr
    )
}

/// The `data:` payloads of an SSE body.
fn data_lines(body: &str) -> Vec<&str> {
    body.lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .collect()
}

#[tokio::test]
async fn a_cross_format_fallback_before_the_first_token_is_invisible_to_an_openai_stream() {
    let m = mock().await;
    let gw = Gateway::start(&config(
        &m,
        "first_chunk_delay_ms=3000",
        ", timeouts: { ttft_ms: 300 }",
    ))
    .await;
    let resp = reqwest::Client::new()
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth("vk-oai")
        .header("x-portkey-config", "chat")
        .timeout(Duration::from_secs(20))
        .json(&chat("gpt-4o-mini", true))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["x-portkey-last-used-option-index"],
        "config.targets[1]"
    );
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let body = resp.text().await.unwrap();
    let data = data_lines(&body);
    assert_eq!(data.last(), Some(&"[DONE]"), "{body}");
    assert_eq!(data.iter().filter(|d| **d == "[DONE]").count(), 1);
    let chunks: Vec<serde_json::Value> = data[..data.len() - 1]
        .iter()
        .map(|d| serde_json::from_str(d).expect("every event is JSON"))
        .collect();
    // Only OpenAI chunks, all of one response, role first, one finish, no usage chunk (not
    // asked for), and the model that actually answered.
    assert!(chunks
        .iter()
        .all(|c| c["object"] == "chat.completion.chunk"));
    let id = &chunks[0]["id"];
    assert!(chunks.iter().all(|c| &c["id"] == id));
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    assert!(chunks.iter().all(|c| c["model"] == "claude-haiku-4-5"));
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(text, "tok0 tok1 tok2 tok3 tok4 ");
    let finishes: Vec<&serde_json::Value> = chunks
        .iter()
        .map(|c| &c["choices"][0]["finish_reason"])
        .filter(|f| !f.is_null())
        .collect();
    assert_eq!(finishes, [&serde_json::json!("stop")]);
    assert!(!body.contains("message_start") && !body.contains("content_block"));
    // The OpenAI attempt asked for usage (we always do), the Anthropic one got a translation.
    let reqs = m.requests();
    let oai = reqs
        .iter()
        .find(|r| r.path.ends_with("/v1/chat/completions"))
        .unwrap();
    assert_eq!(oai.json().unwrap()["stream_options"]["include_usage"], true);
    let ant = reqs.iter().find(|r| r.path == "/v1/messages").unwrap();
    assert_eq!(ant.header("x-api-key"), Some("sk-ant"));
    assert!(ant.header("anthropic-version").is_some());
    assert_eq!(ant.json().unwrap()["model"], "claude-haiku-4-5");
    gw.expect_metric(
        "switchyard_fallbacks_total",
        &[
            "from_target=\"config.targets[0]\"",
            "reason=\"timeout_ttft\"",
        ],
        1.0,
    )
    .await;
}

#[tokio::test]
async fn an_anthropic_error_reaches_an_openai_client_in_openai_shape() {
    let m = mock().await;
    let gw = Gateway::start(&format!(
        "providers:
  ant: {{ kind: anthropic, base_url: \"http://{}/fault/status=529\", api_key: sk-ant }}
virtual_keys:
  vk-ant: {{ provider: ant }}
",
        m.addr
    ))
    .await;
    let resp = reqwest::Client::new()
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth("vk-ant")
        .json(&chat("claude-haiku-4-5", false))
        .send()
        .await
        .unwrap();
    // Anthropic's 529 overloaded_error is a 503 in OpenAI's world.
    assert_eq!(resp.status(), 503);
    let v: serde_json::Value = resp.json().await.unwrap();
    assert!(!v["error"]["message"].as_str().unwrap().is_empty(), "{v}");
    assert!(v.get("type").is_none(), "not Anthropic's envelope: {v}");
}

#[tokio::test]
async fn an_anthropic_client_gets_gateway_errors_in_anthropic_shape() {
    let m = mock().await;
    let gw = Gateway::start(&config(&m, "", "")).await;
    let resp = reqwest::Client::new()
        .post(gw.url("/v1/messages"))
        .header("x-api-key", "vk-ant")
        .header("anthropic-version", "2023-06-01")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let v: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(v["type"], "error");
    assert_eq!(v["error"]["type"], "invalid_request_error");
}

#[tokio::test]
async fn same_format_requests_are_forwarded_byte_for_byte() {
    let m = mock().await;
    let gw = Gateway::start(&config(&m, "", "")).await;
    // Odd spacing and an unknown field survive untouched (non-streaming OpenAI → OpenAI, and
    // Anthropic → Anthropic).
    let openai_body =
        r#"{ "model":"gpt-4o-mini",  "messages":[{"role":"user","content":"hi"}], "x_extra": 1 }"#;
    let anthropic_body = r#"{"model":"claude-haiku-4-5","max_tokens":16,  "messages":[{"role":"user","content":"hi"}],"stream":true}"#;
    let client = reqwest::Client::new();
    let r = client
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth("vk-oai")
        .body(openai_body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = client
        .post(gw.url("/v1/messages"))
        .header("x-api-key", "vk-ant")
        .header("anthropic-version", "2023-06-01")
        .body(anthropic_body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    assert!(text.starts_with("event: message_start"), "{text}");
    assert!(text.contains("event: message_stop"), "{text}");
    let reqs = m.requests();
    assert_eq!(&reqs[0].body[..], openai_body.as_bytes());
    assert_eq!(&reqs[1].body[..], anthropic_body.as_bytes());
    assert_eq!(reqs[1].header("x-api-key"), Some("sk-ant"));
}
