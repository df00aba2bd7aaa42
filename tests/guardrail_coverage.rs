//! Issue 17, finding 6 and the malformed-JSON part of item 10, end to end: guardrails see every
//! text field of OpenAI and Anthropic requests and answers (a forbidden word placed only in
//! one field is refused; the same request without it passes), redaction rewrites those fields,
//! and a JSON body with a duplicate key, invalid UTF-8 or absurd nesting is a 400 that never
//! reaches the provider — on configs that read the body and on the fast path alike.

#[path = "support/gateway.rs"]
mod harness;

use std::time::Duration;

use harness::Gateway;
use serde_json::{json, Value};
use switchyard_mock::MockHandle;

/// The word the deny lists refuse, and its harmless replacement.
const BAD: &str = "zebra";
const GOOD: &str = "horse";

fn config(addr: &str) -> String {
    let deny = format!(
        "[{{ check: contains, name: no_{BAD}, words: [{BAD}], operator: none, action: deny }}]"
    );
    format!(
        "providers:
  oai: {{ kind: openai-compatible, base_url: \"http://{addr}/v1\" }}
  ant: {{ kind: anthropic, base_url: \"http://{addr}\", api_key: sk-ant }}
virtual_keys:
  vk-oai: {{ provider: oai }}
  vk-ant: {{ provider: ant }}
configs:
  in_oai: {{ input_guardrails: {deny}, targets: [{{ virtual_key: vk-oai }}] }}
  in_ant: {{ input_guardrails: {deny}, targets: [{{ virtual_key: vk-ant }}] }}
  redact_oai: {{ input_guardrails: [{{ check: pii, action: redact }}], targets: [{{ virtual_key: vk-oai }}] }}
  redact_ant: {{ input_guardrails: [{{ check: pii, action: redact }}], targets: [{{ virtual_key: vk-ant }}] }}
  out_oai: {{ output_guardrails: {deny}, targets: [{{ virtual_key: vk-oai }}] }}
  out_ant: {{ output_guardrails: {deny}, targets: [{{ virtual_key: vk-ant }}] }}
  plain_oai: {{ targets: [{{ virtual_key: vk-oai }}] }}
"
    )
}

async fn setup() -> (MockHandle, Gateway) {
    let mock = harness::mock().await;
    let gw = Gateway::start(&config(&mock.addr.to_string())).await;
    (mock, gw)
}

fn route(config: &str) -> &'static str {
    if config.ends_with("_ant") {
        "/v1/messages"
    } else {
        "/v1/chat/completions"
    }
}

/// Sends raw body bytes; returns the status and the body.
async fn send(gw: &Gateway, config: &str, body: Vec<u8>) -> (u16, String) {
    let resp = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
        .post(gw.url(route(config)))
        .header("x-portkey-config", config)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("request");
    let status = resp.status().as_u16();
    (status, resp.text().await.unwrap_or_default())
}

/// `body` carries [`BAD`] in exactly one field: refused with 446 before the provider, and the
/// same body with [`GOOD`] instead passes with 200. Returns what went wrong, naming `field`.
async fn screened(
    mock: &MockHandle,
    gw: &Gateway,
    config: &str,
    field: &str,
    body: Value,
) -> Result<(), String> {
    let text = body.to_string();
    assert_eq!(text.matches(BAD).count(), 1, "{field}: one placement");
    mock.clear();
    let (status, answer) = send(gw, config, text.clone().into_bytes()).await;
    if status != 446 || !answer.contains(&format!("no_{BAD}")) {
        return Err(format!("{field}: not checked ({status})"));
    }
    if !mock.requests().is_empty() {
        return Err(format!("{field}: reached the provider"));
    }
    let (status, answer) = send(gw, config, text.replace(BAD, GOOD).into_bytes()).await;
    if status != 200 || mock.requests().len() != 1 {
        return Err(format!(
            "{field}: clean request refused ({status}): {answer}"
        ));
    }
    Ok(())
}

/// Runs every case, then fails listing each field that was not screened.
async fn assert_all_screened(config: &str, cases: Vec<(&'static str, Value)>) {
    let (mock, gw) = setup().await;
    let mut missed = Vec::new();
    for (field, body) in cases {
        if let Err(e) = screened(&mock, &gw, config, field, body).await {
            missed.push(e);
        }
    }
    assert!(missed.is_empty(), "{config}:\n{}", missed.join("\n"));
}

fn user(text: &str) -> Value {
    json!({"role": "user", "content": text})
}

/// OpenAI requests, each with the word in one field the input guardrails did not check.
fn openai_cases() -> Vec<(&'static str, Value)> {
    let tool = |description: &str, param: &str| {
        json!([{"type": "function", "function": {"name": "lookup", "description": description,
            "parameters": {"type": "object", "properties": {"q": {"type": "string", "description": param}}}}}])
    };
    vec![
        (
            "tools[].function.description",
            json!({"model": "m", "messages": [user("hi")],
            "tools": tool(&format!("find a {BAD}"), "query")}),
        ),
        (
            "tools[].function.parameters description",
            json!({"model": "m", "messages": [user("hi")],
            "tools": tool("find things", &format!("the {BAD}"))}),
        ),
        (
            "messages[].name",
            json!({"model": "m", "messages": [
            {"role": "user", "name": format!("{BAD}_fan"), "content": "hi"}]}),
        ),
        (
            "messages[].refusal",
            json!({"model": "m", "messages": [user("hi"),
            {"role": "assistant", "content": null, "refusal": format!("no {BAD} talk")}, user("ok")]}),
        ),
        (
            "messages[].content[].refusal",
            json!({"model": "m", "messages": [user("hi"),
            {"role": "assistant", "content": [{"type": "refusal", "refusal": format!("no {BAD}")}]}, user("ok")]}),
        ),
        (
            "prediction.content",
            json!({"model": "m", "messages": [user("hi")],
            "prediction": {"type": "content", "content": format!("a {BAD} is striped")}}),
        ),
        (
            "response_format.json_schema.description",
            json!({"model": "m", "messages": [user("hi")],
            "response_format": {"type": "json_schema", "json_schema": {"name": "animal",
                "description": format!("describe a {BAD}"), "schema": {"type": "object"}}}}),
        ),
        (
            "response_format.json_schema.schema descriptions",
            json!({"model": "m", "messages": [user("hi")],
            "response_format": {"type": "json_schema", "json_schema": {"name": "animal",
                "schema": {"type": "object", "properties": {"kind": {"type": "string", "description": BAD}}}}}}),
        ),
        (
            "messages[].tool_calls[].function.arguments",
            json!({"model": "m", "messages": [user("hi"),
            {"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function",
                "function": {"name": "lookup", "arguments": format!("{{\"q\":\"{BAD}\"}}")}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": "none found"}]}),
        ),
    ]
}

/// Anthropic requests, each with the word in one field the input guardrails did not check.
fn anthropic_cases() -> Vec<(&'static str, Value)> {
    let ask = |blocks: Value| json!({"model": "m", "max_tokens": 16, "messages": [{"role": "user", "content": blocks}]});
    let q = |text: &str| json!({"type": "text", "text": text});
    vec![
        (
            "document text source",
            ask(json!([{"type": "document",
            "source": {"type": "text", "media_type": "text/plain", "data": format!("all about the {BAD}")}}, q("summarise")])),
        ),
        (
            "document content source",
            ask(json!([{"type": "document",
            "source": {"type": "content", "content": [q(&format!("the {BAD} chapter"))]}}, q("summarise")])),
        ),
        (
            "document title",
            ask(json!([{"type": "document", "title": format!("{BAD} facts"),
            "source": {"type": "text", "media_type": "text/plain", "data": "facts"}}, q("summarise")])),
        ),
        (
            "search_result content",
            ask(
                json!([{"type": "search_result", "source": "https://example.com/a",
            "title": "animals", "content": [q(&format!("the {BAD} lives in Africa"))]}, q("where?")]),
            ),
        ),
        (
            "search_result title",
            ask(
                json!([{"type": "search_result", "source": "https://example.com/b",
            "title": format!("{BAD} habitats"), "content": [q("Africa")]}, q("where?")]),
            ),
        ),
        (
            "tool_result with a search_result",
            ask(json!([{"type": "tool_result", "tool_use_id": "toolu_1",
            "content": [{"type": "search_result", "source": "https://example.com/c", "title": "t",
                "content": [q(&format!("a {BAD}"))]}]}])),
        ),
        (
            "tools[].description",
            json!({"model": "m", "max_tokens": 16, "messages": [user("hi")],
            "tools": [{"name": "lookup", "description": format!("find a {BAD}"), "input_schema": {"type": "object"}}]}),
        ),
        (
            "tools[].input_schema description",
            json!({"model": "m", "max_tokens": 16, "messages": [user("hi")],
            "tools": [{"name": "lookup", "input_schema": {"type": "object",
                "properties": {"q": {"type": "string", "description": format!("the {BAD}")}}}}]}),
        ),
        (
            "tool_use.input",
            json!({"model": "m", "max_tokens": 16, "messages": [user("hi"),
            {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "lookup",
                "input": {"q": {"nested": [BAD]}}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "none"}]}]}),
        ),
    ]
}

#[tokio::test]
async fn openai_input_guardrails_see_every_text_field() {
    assert_all_screened("in_oai", openai_cases()).await;
}

#[tokio::test]
async fn anthropic_input_guardrails_see_every_text_field() {
    assert_all_screened("in_ant", anthropic_cases()).await;
}

#[tokio::test]
async fn redaction_rewrites_the_new_fields_before_the_provider() {
    let (mock, gw) = setup().await;
    let body = json!({"model": "m", "messages": [{"role": "user", "name": "x", "content": "hi"}],
        "tools": [{"type": "function", "function": {"name": "mail", "description": "writes to jane@example.com",
            "parameters": {"type": "object", "properties": {"to": {"type": "string", "description": "e.g. bob@example.com"}}}}}],
        "tool_choice": "none"});
    let (status, answer) = send(&gw, "redact_oai", body.to_string().into_bytes()).await;
    assert_eq!(status, 200, "{answer}");
    let seen = mock.requests()[0].json().unwrap();
    let function = &seen["tools"][0]["function"];
    assert_eq!(function["description"], "writes to [REDACTED_EMAIL]");
    assert_eq!(
        function["parameters"]["properties"]["to"]["description"],
        "e.g. [REDACTED_EMAIL]"
    );
    mock.clear();
    let body = json!({"model": "m", "max_tokens": 16, "messages": [{"role": "user", "content": [
        {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "call 555-123-4567"}},
        {"type": "text", "text": "who is this?"}]}]});
    let (status, answer) = send(&gw, "redact_ant", body.to_string().into_bytes()).await;
    assert_eq!(status, 200, "{answer}");
    let seen = mock.requests()[0].json().unwrap();
    let doc = &seen["messages"][0]["content"][0];
    assert_eq!(doc["source"]["data"], "call [REDACTED_PHONE]");
    assert!(!seen.to_string().contains("555-123"), "{seen}");
}

/// A tool the mock will call with `{"animal": <first enum value>}`.
fn forced_call(anthropic: bool, animal: &str) -> Value {
    let schema = json!({"type": "object", "required": ["animal"],
        "properties": {"animal": {"type": "string", "enum": [animal]}}});
    if anthropic {
        json!({"model": "m", "max_tokens": 16, "messages": [user("pick one")],
            "tools": [{"name": "pick", "input_schema": schema}], "tool_choice": {"type": "tool", "name": "pick"}})
    } else {
        json!({"model": "m", "messages": [user("pick one")],
            "tools": [{"type": "function", "function": {"name": "pick", "parameters": schema}}],
            "tool_choice": {"type": "function", "function": {"name": "pick"}}})
    }
}

#[tokio::test]
async fn output_guardrails_see_tool_call_arguments() {
    let (_mock, gw) = setup().await;
    for (config, anthropic) in [("out_oai", false), ("out_ant", true)] {
        let (status, answer) = send(
            &gw,
            config,
            forced_call(anthropic, BAD).to_string().into_bytes(),
        )
        .await;
        assert_eq!(status, 446, "{config}: tool call not checked: {answer}");
        let (status, answer) = send(
            &gw,
            config,
            forced_call(anthropic, GOOD).to_string().into_bytes(),
        )
        .await;
        assert_eq!(status, 200, "{config}: {answer}");
        assert!(
            answer.contains(GOOD),
            "{config}: the mock called the tool: {answer}"
        );
    }
}

#[tokio::test]
async fn duplicate_keys_are_refused_and_never_forwarded() {
    let (mock, gw) = setup().await;
    // The forbidden word in the first `content`, a harmless one in the last: serde_json keeps
    // the last, a provider may read the first.
    let openai = format!(
        r#"{{"model":"m","messages":[{{"role":"user","content":"{BAD}","content":"hello"}}]}}"#
    );
    let anthropic = format!(
        r#"{{"model":"m","max_tokens":16,"messages":[{{"role":"user","content":"{BAD}","\u0063ontent":"hello"}}]}}"#
    );
    for (config, body) in [
        ("in_oai", &openai),
        ("plain_oai", &openai),
        ("in_ant", &anthropic),
    ] {
        let (status, answer) = send(&gw, config, body.clone().into_bytes()).await;
        assert_eq!(status, 400, "{config}: {answer}");
        assert!(
            answer.contains("duplicate key `messages[0].content`"),
            "{config}: {answer}"
        );
    }
    let top = r#"{"model":"gpt-4o-mini","model":"gpt-4o","messages":[]}"#;
    let (status, answer) = send(&gw, "plain_oai", top.as_bytes().to_vec()).await;
    assert_eq!(status, 400, "{answer}");
    assert!(
        mock.requests().is_empty(),
        "a refused body reached the provider"
    );
}

#[tokio::test]
async fn invalid_utf8_and_deep_nesting_are_refused_on_both_paths() {
    let (mock, gw) = setup().await;
    let mut invalid = br#"{"model":"m","messages":[{"role":"user","content":"caf"#.to_vec();
    invalid.extend_from_slice(b"\xe9 \xff\"}]}");
    let depth = 100_000;
    let deep = format!(
        r#"{{"model":"m","messages":[{{"role":"user","content":"hi"}}],"x":{}{}}}"#,
        "[".repeat(depth),
        "]".repeat(depth)
    );
    for config in ["plain_oai", "in_oai"] {
        let (status, answer) = send(&gw, config, invalid.clone()).await;
        assert_eq!(status, 400, "{config}: {answer}");
        assert!(answer.contains("not valid UTF-8"), "{config}: {answer}");
        let (status, answer) = send(&gw, config, deep.clone().into_bytes()).await;
        assert_eq!(status, 400, "{config}: {answer}");
        assert!(answer.contains("deeper than 64"), "{config}: {answer}");
        assert!(answer.len() < 1024, "{config}: bounded: {answer}");
    }
    assert!(
        mock.requests().is_empty(),
        "a refused body reached the provider"
    );
    // Real-world nesting (a tool schema ten object levels deep) still passes.
    let mut schema = json!({"type": "string"});
    for _ in 0..10 {
        schema = json!({"type": "object", "properties": {"p": schema}});
    }
    let body = json!({"model": "m", "messages": [user("hi")], "tool_choice": "none",
        "tools": [{"type": "function", "function": {"name": "f", "parameters": schema}}]});
    for config in ["plain_oai", "in_oai"] {
        let (status, answer) = send(&gw, config, body.to_string().into_bytes()).await;
        assert_eq!(status, 200, "{config}: {answer}");
    }
}
