//! Input and output guardrails end to end: the real binary running
//! `conf/examples/guardrails.yaml` in front of the mock provider, over loopback HTTP.

#[path = "support/gateway.rs"]
mod harness;

use harness::{client, Gateway};
use serde_json::{json, Value};
use switchyard_mock::MockHandle;

async fn setup() -> (MockHandle, Gateway) {
    let mock = harness::mock().await;
    let text = std::fs::read_to_string("conf/examples/guardrails.yaml")
        .expect("example")
        .replace("127.0.0.1:9901", &mock.addr.to_string());
    let gw = Gateway::start(&text).await;
    (mock, gw)
}

fn chat_with(text: &str, stream: bool) -> Value {
    json!({
        "model": "gpt-4o-mini",
        "stream": stream,
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": text}
        ],
    })
}

async fn post(gw: &Gateway, config: &str, body: &Value) -> reqwest::Response {
    client()
        .post(gw.url("/v1/chat/completions"))
        .header("x-portkey-config", config)
        .json(body)
        .send()
        .await
        .expect("request")
}

fn failed_header(resp: &reqwest::Response) -> Option<String> {
    resp.headers()
        .get("x-switchyard-guardrails-failed")
        .map(|v| v.to_str().unwrap().to_string())
}

fn option_index(resp: &reqwest::Response) -> String {
    resp.headers()
        .get("x-portkey-last-used-option-index")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default()
}

/// The user message text of every request the mock saw.
fn seen_texts(mock: &MockHandle) -> Vec<String> {
    mock.requests()
        .iter()
        .filter_map(|r| r.json())
        .map(|b| b["messages"].to_string())
        .collect()
}

#[tokio::test]
async fn contains_and_regex_deny_before_the_provider_and_pass_clean_text() {
    let (mock, gw) = setup().await;
    // Fail: a forbidden word (any case) is a 446 naming the check; the provider never sees it.
    let resp = post(&gw, "screened", &chat_with("my PASSWORD is hunter2", false)).await;
    assert_eq!(resp.status().as_u16(), 446);
    assert_eq!(failed_header(&resp).as_deref(), Some("input:no_secrets"));
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["type"], "hooks_failed");
    assert_eq!(body["error"]["code"], "input_guardrails_failed");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("input guardrails") && message.contains("no_secrets"),
        "{message}"
    );
    let hook = &body["hook_results"]["before_request_hooks"][0];
    assert_eq!(hook["verdict"], false);
    assert_eq!(hook["checks"][0]["id"], "no_secrets");
    assert_eq!(hook["checks"][0]["verdict"], false);
    assert_eq!(hook["checks"][1]["verdict"], true);
    // Fail: an SSN matches the deny pattern.
    let resp = post(&gw, "screened", &chat_with("ssn 123-45-6789 please", false)).await;
    assert_eq!(resp.status().as_u16(), 446);
    assert_eq!(failed_header(&resp).as_deref(), Some("input:no_ssn"));
    assert!(
        mock.requests().is_empty(),
        "a denied request reached the provider"
    );
    // Pass: clean text goes through untouched, with a plain 200 and no header.
    let resp = post(&gw, "screened", &chat_with("Say hello", false)).await;
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(failed_header(&resp), None);
    let body: Value = resp.json().await.unwrap();
    assert!(body.get("hook_results").is_none());
    assert_eq!(mock.requests().len(), 1);
    // Anthropic clients get the denial in their own error shape.
    let resp = client()
        .post(gw.url("/v1/messages"))
        .header("x-portkey-config", "screened")
        .json(&json!({"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": "an api key"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 446);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["type"], "error");
    assert_eq!(body["error"]["type"], "hooks_failed");
    gw.expect_metric(
        "switchyard_guardrail_verdicts_total",
        &[
            r#"config="screened""#,
            r#"check="no_secrets""#,
            r#"verdict="deny""#,
        ],
        2.0,
    )
    .await;
    gw.expect_metric(
        "switchyard_guardrail_verdicts_total",
        &[
            r#"config="screened""#,
            r#"check="no_ssn""#,
            r#"verdict="pass""#,
        ],
        3.0,
    )
    .await;
}

#[tokio::test]
async fn word_count_warns_with_246_and_the_header() {
    let (mock, gw) = setup().await;
    let long = "word ".repeat(60);
    let resp = post(&gw, "screened", &chat_with(&long, false)).await;
    assert_eq!(resp.status().as_u16(), 246);
    assert_eq!(failed_header(&resp).as_deref(), Some("input:word_count"));
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        body["choices"][0]["message"]["content"],
        "Hello from the mock provider."
    );
    let check = &body["hook_results"]["before_request_hooks"][0]["checks"][2];
    assert_eq!(check["id"], "word_count");
    assert_eq!(check["verdict"], false);
    assert_eq!(
        mock.requests().len(),
        1,
        "a warning still reaches the provider"
    );
    // Pass: a short prompt is a plain 200.
    let resp = post(&gw, "screened", &chat_with("two words", false)).await;
    assert_eq!(resp.status().as_u16(), 200);
    gw.expect_metric(
        "switchyard_guardrail_verdicts_total",
        &[
            r#"config="screened""#,
            r#"check="word_count""#,
            r#"verdict="warn""#,
        ],
        1.0,
    )
    .await;
}

#[tokio::test]
async fn an_input_warning_on_a_stream_is_a_246_stream() {
    let (_mock, gw) = setup().await;
    let resp = post(&gw, "screened", &chat_with(&"word ".repeat(60), true)).await;
    assert_eq!(resp.status().as_u16(), 246);
    assert_eq!(failed_header(&resp).as_deref(), Some("input:word_count"));
    let text = resp.text().await.unwrap();
    assert!(
        text.contains("tok0") && text.ends_with("data: [DONE]\n\n"),
        "{text}"
    );
    // No output list: no final guardrail event.
    assert!(!text.contains("hook_results"), "{text}");
}

#[tokio::test]
async fn pii_is_redacted_before_the_provider_sees_it() {
    let (mock, gw) = setup().await;
    let text = "I am jane@example.com, card 4111 1111 1111 1111, phone (555) 123-4567.";
    let resp = post(&gw, "screened", &chat_with(text, false)).await;
    assert_eq!(resp.status().as_u16(), 200, "a redaction is not a failure");
    assert_eq!(failed_header(&resp), None);
    let seen = seen_texts(&mock);
    assert_eq!(seen.len(), 1);
    let seen = &seen[0];
    assert!(
        seen.contains(
            "I am [REDACTED_EMAIL], card [REDACTED_CREDIT_CARD], phone [REDACTED_PHONE]."
        ),
        "{seen}"
    );
    assert!(!seen.contains("jane@") && !seen.contains("4111"), "{seen}");
    // The system prompt is part of the checked text and is forwarded unchanged.
    assert!(seen.contains("You are terse."), "{seen}");
    // A 16-digit number failing the Luhn check is not a card: left alone.
    mock.clear();
    let resp = post(&gw, "screened", &chat_with("order 4111111111111112", false)).await;
    assert_eq!(resp.status().as_u16(), 200);
    assert!(seen_texts(&mock)[0].contains("order 4111111111111112"));
    gw.expect_metric(
        "switchyard_guardrail_verdicts_total",
        &[
            r#"config="screened""#,
            r#"check="pii""#,
            r#"verdict="redact""#,
        ],
        1.0,
    )
    .await;
}

#[tokio::test]
async fn pii_deny_refuses_and_clean_text_passes() {
    let (mock, gw) = setup().await;
    let resp = post(&gw, "no_pii", &chat_with("mail x@y.org", false)).await;
    assert_eq!(resp.status().as_u16(), 446);
    let body: Value = resp.json().await.unwrap();
    let why = body["hook_results"]["before_request_hooks"][0]["checks"][0]["explanation"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(why, "found email");
    // Phones are not among this check's entities.
    let resp = post(&gw, "no_pii", &chat_with("call 555-123-4567", false)).await;
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(mock.requests().len(), 1);
}

#[tokio::test]
async fn an_output_failure_with_on_fail_fallback_moves_to_the_next_target() {
    let (mock, gw) = setup().await;
    let resp = post(&gw, "json_answers", &chat_with("answer in JSON", false)).await;
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(option_index(&resp), "config.targets[1]");
    assert_eq!(failed_header(&resp), None);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        body["choices"][0]["message"]["content"],
        r#"{"answer": 42}"#
    );
    // The mock saw both: the primary (whose prose failed the schema) and the backup.
    let requests = mock.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0].header("x-mock-answer"), None);
    assert_eq!(
        requests[1].header("x-mock-answer"),
        Some(r#"{"answer": 42}"#)
    );
    gw.expect_metric(
        "switchyard_fallbacks_total",
        &[r#"config="json_answers""#, r#"reason="guardrail_failed""#],
        1.0,
    )
    .await;
    gw.expect_metric(
        "switchyard_guardrail_verdicts_total",
        &[
            r#"config="json_answers""#,
            r#"check="json_schema""#,
            r#"verdict="fallback""#,
        ],
        1.0,
    )
    .await;
    gw.expect_metric(
        "switchyard_guardrail_verdicts_total",
        &[
            r#"config="json_answers""#,
            r#"check="json_schema""#,
            r#"verdict="pass""#,
        ],
        1.0,
    )
    .await;
    gw.expect_metric(
        "switchyard_requests_total",
        &[r#"config="json_answers""#, r#"outcome="fallback_ok""#],
        1.0,
    )
    .await;
}

#[tokio::test]
async fn an_output_deny_without_fallback_is_a_446() {
    let (_mock, gw) = setup().await;
    let resp = post(&gw, "json_strict", &chat_with("hi", false)).await;
    assert_eq!(resp.status().as_u16(), 446);
    assert_eq!(failed_header(&resp).as_deref(), Some("output:json_schema"));
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "output_guardrails_failed");
    let hook = &body["hook_results"]["after_request_hooks"][0];
    assert_eq!(hook["deny"], true);
    assert_eq!(hook["checks"][0]["explanation"], "the text is not JSON");
}

#[tokio::test]
async fn output_pii_is_redacted_and_a_warning_is_a_246() {
    let (_mock, gw) = setup().await;
    let resp = post(&gw, "audited", &chat_with("contact?", false)).await;
    assert_eq!(resp.status().as_u16(), 246);
    assert_eq!(failed_header(&resp).as_deref(), Some("output:too_short"));
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        body["choices"][0]["message"]["content"],
        "Write to [REDACTED_EMAIL] or call [REDACTED_PHONE]."
    );
    let checks = &body["hook_results"]["after_request_hooks"][0]["checks"];
    assert_eq!(checks[0]["redacted"], true);
    assert_eq!(checks[1]["id"], "too_short");
    assert_eq!(checks[1]["verdict"], false);
}

#[tokio::test]
async fn a_streams_output_checks_end_it_with_a_final_event() {
    let (_mock, gw) = setup().await;
    let resp = post(&gw, "audited", &chat_with("contact?", true)).await;
    // The head went out at the commit point, before the answer was complete.
    assert_eq!(resp.status().as_u16(), 200);
    let text = resp.text().await.unwrap();
    let events: Vec<&str> = text
        .split("\n\n")
        .filter(|e| !e.trim().is_empty())
        .collect();
    assert_eq!(events.last().copied(), Some("data: [DONE]"), "{text}");
    let final_event = events[events.len() - 2]
        .strip_prefix("data: ")
        .expect("a data event");
    let v: Value = serde_json::from_str(final_event).unwrap();
    assert_eq!(v["object"], "chat.completion.chunk");
    assert_eq!(v["choices"], json!([]));
    let hook = &v["hook_results"]["after_request_hooks"][0];
    assert_eq!(hook["enforced"], false);
    assert_eq!(hook["verdict"], false);
    // On a stream the PII was already sent: found and reported, not redacted.
    assert_eq!(hook["checks"][0]["verdict"], false);
    assert_eq!(hook["checks"][0]["explanation"], "found email, phone");
    assert_eq!(hook["checks"][1]["id"], "too_short");
    // The content itself went through.
    assert!(text.contains("bob@"), "{text}");
    gw.expect_metric(
        "switchyard_guardrail_verdicts_total",
        &[r#"config="audited""#, r#"check="pii""#, r#"verdict="warn""#],
        1.0,
    )
    .await;
}

#[tokio::test]
async fn an_anthropic_stream_gets_its_final_event_last() {
    let (_mock, gw) = setup().await;
    let resp = client()
        .post(gw.url("/v1/messages"))
        .header("x-portkey-config", "audited")
        .json(&json!({"model": "m", "max_tokens": 50, "stream": true,
            "messages": [{"role": "user", "content": "contact?"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let text = resp.text().await.unwrap();
    let last = text
        .split("\n\n")
        .filter(|e| !e.trim().is_empty())
        .last()
        .unwrap();
    assert!(last.starts_with("event: hook_results\ndata: "), "{text}");
    let v: Value = serde_json::from_str(&last["event: hook_results\ndata: ".len()..]).unwrap();
    assert_eq!(v["type"], "hook_results");
    assert_eq!(
        v["hook_results"]["after_request_hooks"][0]["checks"][1]["verdict"],
        false
    );
    assert!(text.contains("message_stop"), "{text}");
}

#[tokio::test]
async fn a_targets_own_input_list_refuses_that_target_only() {
    let (mock, gw) = setup().await;
    let resp = post(&gw, "per_target", &chat_with("a forbidden topic", false)).await;
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(option_index(&resp), "config.targets[1]");
    let requests = mock.requests();
    assert_eq!(requests.len(), 1, "the refusing target was not called");
    assert_eq!(
        requests[0].header("x-mock-answer"),
        Some(r#"{"answer": 42}"#)
    );
    mock.clear();
    let resp = post(&gw, "per_target", &chat_with("a fine topic", false)).await;
    assert_eq!(option_index(&resp), "config.targets[0]");
    assert_eq!(mock.requests().len(), 1);
}

#[test]
fn switchyard_check_accepts_the_example_and_rejects_malformed_guardrails() {
    let example = std::fs::read_to_string("conf/examples/guardrails.yaml").unwrap();
    let (ok, _, err) = harness::check_config(&example);
    assert!(ok, "{err}");
    let base = "providers:\n  p: { kind: openai-compatible, base_url: \"http://127.0.0.1:1/v1\" }\nvirtual_keys:\n  vk: { provider: p }\nconfigs:\n  chat:\n    targets: [ { virtual_key: vk } ]\n";
    let cases = [
        (
            "    input_guardrails:\n      - { check: pii }\n      - { check: regex, pattern: '(unclosed' }\n",
            "configs.chat.input_guardrails[1].pattern: invalid regex",
        ),
        (
            "    output_guardrails:\n      - { check: json_schema, schema: { type: 12 } }\n",
            "configs.chat.output_guardrails[0].schema: invalid JSON schema",
        ),
        (
            "    input_guardrails:\n      - { check: word_count, min: 10, max: 2 }\n",
            "configs.chat.input_guardrails[0].min: 10 is greater than max (2)",
        ),
        (
            "    input_guardrails:\n      - { check: contains, words: [] }\n",
            "configs.chat.input_guardrails[0].words: must list at least one word",
        ),
        (
            "    input_guardrails:\n      - { check: sentiment }\n",
            "configs.chat.input_guardrails[0].check: unknown variant `sentiment`",
        ),
        (
            "    input_guardrails:\n      - { check: pii, action: block }\n",
            "configs.chat.input_guardrails[0].action: unknown variant `block`",
        ),
        (
            "    input_guardrails:\n      - { check: pii, pattern: x }\n",
            "configs.chat.input_guardrails[0].pattern: does not apply to check pii",
        ),
        (
            "    input_guardrails:\n      - { check: contains, words: [a], action: redact }\n",
            "configs.chat.input_guardrails[0].action: redact applies to check pii only",
        ),
    ];
    for (extra, want) in cases {
        let (ok, _, err) = harness::check_config(&format!("{base}{extra}"));
        assert!(!ok, "{extra} was accepted");
        assert!(err.contains(want), "{extra}: {err}");
    }
    // A target's list is validated too, at its own path.
    let (ok, _, err) = harness::check_config(&base.replace(
        "{ virtual_key: vk }",
        "{ virtual_key: vk, output_guardrails: [ { check: regex, pattern: '[' } ] }",
    ));
    assert!(!ok);
    assert!(
        err.contains("configs.chat.targets[0].output_guardrails[0].pattern: invalid regex"),
        "{err}"
    );
}
