//! Portkey's and the tutorial's guardrail spelling, accepted as written (issue 19, item 4): the
//! real binary running `conf/examples/portkey-tutorial.yaml` (the tutorial's four configs pasted
//! as JSON) and configs in Portkey's own shorthand and hook spelling, in front of the mock
//! provider, over loopback HTTP.

#[path = "support/gateway.rs"]
mod harness;

use harness::{client, Gateway};
use serde_json::{json, Value};
use switchyard_mock::MockHandle;

const TUTORIAL: &str = "conf/examples/portkey-tutorial.yaml";

/// The tutorial file in front of `mock`, on free ports; `answer` (if any) is what the Anthropic
/// provider's mock answers (its `x-mock-answer` header).
async fn tutorial(mock: &MockHandle, answer: Option<&str>) -> Gateway {
    let mut text = std::fs::read_to_string(TUTORIAL)
        .expect("example")
        .replace("admin_listen: 127.0.0.1:9090", "admin_listen: $ADMIN")
        .replace("listen: 127.0.0.1:8080", "listen: $LISTEN")
        .replace("127.0.0.1:9901", &mock.addr.to_string());
    if let Some(answer) = answer {
        let line = "    api_key: mock-anthropic-key";
        let with = format!("{line}\n    headers: {{ x-mock-answer: {answer:?} }}");
        text = text.replacen(line, &with, 1);
    }
    Gateway::start(&text).await
}

fn chat(text: &str) -> Value {
    json!({
        "model": "claude-sonnet-4-6",
        "max_tokens": 200,
        "messages": [{"role": "user", "content": text}],
    })
}

async fn post(gw: &Gateway, config: &str, text: &str) -> reqwest::Response {
    client()
        .post(gw.url("/v1/chat/completions"))
        .header("x-portkey-config", config)
        .json(&chat(text))
        .send()
        .await
        .expect("request")
}

/// The chat calls the mock saw (embeddings calls of a semantic cache left out).
fn chats(mock: &MockHandle) -> Vec<String> {
    mock.requests()
        .into_iter()
        .map(|r| r.path)
        .filter(|p| p.ends_with("/messages") || p.ends_with("/chat/completions"))
        .collect()
}

fn header(resp: &reqwest::Response, name: &str) -> Option<String> {
    resp.headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_string())
}

#[test]
fn the_tutorial_file_passes_check_and_names_the_chosen_embedder() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .arg("check")
        .arg(TUTORIAL)
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{said}");
    assert!(said.contains("4 configs"), "{said}");
    for want in [
        "warning: configs.production.cache.embedder: cache embedder: chose text-embedding-3-small \
         at the embeddings endpoint of configs.production.targets[1] (provider openai",
        "warning: configs.pc-prod-fallback-abc.cache.embedder: cache embedder: chose \
         text-embedding-3-small at the embeddings endpoint of configs.pc-prod-fallback-abc.targets[1]",
        "warning: configs.pc-prod-fallback-abc.targets[0].request_timeout: 30 ms is very short",
    ] {
        assert!(said.contains(want), "{want}\n---\n{said}");
    }
}

#[tokio::test]
async fn a_password_prompt_is_refused_with_the_configs_message_before_any_provider() {
    let mock = harness::mock().await;
    let gw = tutorial(&mock, None).await;
    let resp = post(&gw, "prod-guardrails-v1", "How do I reset my Password?").await;
    assert_eq!(resp.status().as_u16(), 446);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        body["error"]["message"],
        "Request blocked: sensitive data detected in prompt."
    );
    assert_eq!(body["error"]["code"], "input_guardrails_failed");
    let check = &body["hook_results"]["before_request_hooks"][0]["checks"][0];
    assert_eq!(check["id"], "contains");
    assert_eq!(
        check["message"],
        "Request blocked: sensitive data detected in prompt."
    );
    // The production config's regex (IGNORECASE) refuses it too.
    let resp = post(&gw, "production", "where is the API key kept").await;
    assert_eq!(resp.status().as_u16(), 446);
    assert!(mock.requests().is_empty(), "{:?}", mock.requests());
}

#[tokio::test]
async fn an_ssn_in_the_answer_is_a_446_with_the_configs_message() {
    let mock = harness::mock().await;
    let answer = "Sure thing, the number we have on file for you is 123-45-6789 today.";
    let gw = tutorial(&mock, Some(answer)).await;
    let resp = post(&gw, "prod-guardrails-v1", "What is my number on file?").await;
    assert_eq!(resp.status().as_u16(), 446);
    assert_eq!(
        header(&resp, "x-switchyard-guardrails-failed").as_deref(),
        Some("output:regex")
    );
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        body["error"]["message"],
        "Response blocked: sensitive data in LLM output."
    );
    assert_eq!(body["error"]["code"], "output_guardrails_failed");
    // A block is not a retry: one call.
    assert_eq!(chats(&mock), vec!["/v1/messages".to_string()]);
}

#[tokio::test]
async fn a_too_short_answer_is_asked_once_more_of_the_same_target_then_refused() {
    let mock = harness::mock().await;
    // The mock's answer, "Hello from the mock provider.", has 5 words; the check wants 10.
    let gw = tutorial(&mock, None).await;
    let resp = post(&gw, "prod-guardrails-v1", "Tell me about trains.").await;
    assert_eq!(resp.status().as_u16(), 446);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "output_guardrails_failed");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("word_count (5 words, fewer than 10)"),
        "{message}"
    );
    assert_eq!(chats(&mock), vec!["/v1/messages", "/v1/messages"]);
    gw.expect_metric(
        "switchyard_retries_total",
        &[
            r#"config="prod-guardrails-v1""#,
            r#"reason="guardrail_failed""#,
        ],
        1.0,
    )
    .await;
    // A long enough answer passes at once.
    let mock = harness::mock().await;
    let gw = tutorial(&mock, Some(&"word ".repeat(12))).await;
    let resp = post(&gw, "prod-guardrails-v1", "Tell me about trains.").await;
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(chats(&mock).len(), 1);
}

#[tokio::test]
async fn the_production_configs_warn_check_delivers_the_answer_and_reports_it() {
    let mock = harness::mock().await;
    let gw = tutorial(&mock, None).await;
    let resp = post(&gw, "production", "Explain microservices briefly.").await;
    // Portkey's status for an answer delivered although a check failed: 246.
    assert_eq!(resp.status().as_u16(), 246);
    assert_eq!(
        header(&resp, "x-switchyard-guardrails-failed").as_deref(),
        Some("output:word_count")
    );
    assert_eq!(
        header(&resp, "x-portkey-last-used-option-index").as_deref(),
        Some("config.targets[0]")
    );
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        body["choices"][0]["message"]["content"],
        "Hello from the mock provider."
    );
    let check = &body["hook_results"]["after_request_hooks"][0]["checks"][0];
    assert_eq!(check["verdict"], false);
    assert_eq!(check["action"], "warn");
    assert_eq!(chats(&mock), vec!["/v1/messages"], "a warning is no retry");
    // Within the bounds: a plain 200.
    let mock = harness::mock().await;
    let gw = tutorial(&mock, Some(&"word ".repeat(12))).await;
    let resp = post(&gw, "production", "Explain monoliths briefly.").await;
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(header(&resp, "x-switchyard-guardrails-failed"), None);
}

/// Configs in Portkey's own spellings, as JSON: `$MOCK` is the mock's address.
const PORTKEY: &str = r#"
providers:
  mock: { kind: openai-compatible, base_url: "http://$MOCK/v1" }
  jsonic: { kind: openai-compatible, base_url: "http://$MOCK/v1", headers: { x-mock-answer: '{"answer": "in JSON"}' } }
virtual_keys:
  vk: { provider: mock }
  vk-json: { provider: jsonic }
configs:
  contains: {"input_guardrails": [{"default.contains": {"operator": "none", "words": ["Forbidden"]}, "deny": true}],
             "targets": [{"virtual_key": "vk"}]}
  regex: {"input_guardrails": [{"default.regexMatch": {"rule": "^ticket-\\d+"}, "deny": true}],
          "targets": [{"virtual_key": "vk"}]}
  regex_not: {"input_guardrails": [{"regexMatch": {"rule": "secret", "not": true}, "deny": true}],
              "targets": [{"virtual_key": "vk"}]}
  word_count_warn: {"output_guardrails": [{"default.wordCount": {"minWords": 10, "maxWords": 100}}],
                    "targets": [{"virtual_key": "vk"}]}
  hooks: {
    "before_request_hooks": [{"type": "guardrail", "id": "no-secrets", "deny": true, "async": false,
      "on_fail": {"feedback": {"value": -1, "weight": 1}}, "on_success": {"feedback": {"value": 1}},
      "checks": [{"id": "default.contains", "parameters": {"operator": "none", "words": ["secret"]}}]}],
    "after_request_hooks": [{"type": "guardrail", "deny": true,
      "checks": [{"id": "default.regexMatch", "parameters": {"rule": "mock provider"}},
                 {"id": "default.characterCount", "parameters": {"minCharacters": 5}}]}],
    "targets": [{"virtual_key": "vk"}]}
  async_hook: {
    "before_request_hooks": [{"type": "guardrail", "deny": true, "async": true,
      "checks": [{"id": "default.contains", "parameters": {"operator": "none", "words": ["secret"]}}]}],
    "targets": [{"virtual_key": "vk"}]}
  fallback_shorthand: {"strategy": {"mode": "fallback"},
    "output_guardrails": [{"default.contains": {"operator": "any", "words": ["JSON"]}, "deny": true}],
    "targets": [{"virtual_key": "vk"}, {"virtual_key": "vk-json"}]}
  fallback_tutorial: {"strategy": {"mode": "fallback"},
    "guardrails": {"output": [{"type": "regex", "pattern": "^Hello", "action": "block"}]},
    "targets": [{"virtual_key": "vk"}, {"virtual_key": "vk-json"}]}
"#;

async fn portkey(mock: &MockHandle) -> Gateway {
    Gateway::start(&PORTKEY.replace("$MOCK", &mock.addr.to_string())).await
}

#[tokio::test]
async fn portkeys_contains_is_case_sensitive_and_regex_match_passes_when_it_matches() {
    let mock = harness::mock().await;
    let gw = portkey(&mock).await;
    let cases = [
        // operator none: a listed word blocks, in its own case only (Portkey's `includes`).
        ("contains", "this is Forbidden", 446),
        ("contains", "this is forbidden", 200),
        // regexMatch passes when the rule matches: deny blocks the text that does NOT match.
        ("regex", "ticket-42 is broken", 200),
        ("regex", "my printer is broken", 446),
        // ... and with `not: true` the text that does (an id without `.` is `default.`).
        ("regex_not", "tell me a secret", 446),
        ("regex_not", "tell me a story", 200),
    ];
    let mut calls = 0;
    for (config, text, want) in cases {
        let resp = post(&gw, config, text).await;
        assert_eq!(resp.status().as_u16(), want, "{config}: {text}");
        if want == 446 {
            let body: Value = resp.json().await.unwrap();
            assert_eq!(body["error"]["type"], "hooks_failed", "{body}");
        } else {
            calls += 1;
        }
        assert_eq!(chats(&mock).len(), calls, "{config}: {text}");
    }
    // Without `deny`, a failed check only warns: 246 with the answer.
    let resp = post(&gw, "word_count_warn", "hello").await;
    assert_eq!(resp.status().as_u16(), 246);
    assert_eq!(
        header(&resp, "x-switchyard-guardrails-failed").as_deref(),
        Some("output:default.wordCount")
    );
}

#[tokio::test]
async fn hooks_deny_before_the_provider_and_async_hooks_never_block() {
    let mock = harness::mock().await;
    let gw = portkey(&mock).await;
    let resp = post(&gw, "hooks", "tell me the secret").await;
    assert_eq!(resp.status().as_u16(), 446);
    assert_eq!(
        header(&resp, "x-switchyard-guardrails-failed").as_deref(),
        Some("input:default.contains")
    );
    assert!(chats(&mock).is_empty());
    // The answer matches the after hook's rule and is long enough: a plain 200.
    let resp = post(&gw, "hooks", "tell me a story").await;
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(chats(&mock).len(), 1);
    // async: reported, never blocking.
    let resp = post(&gw, "async_hook", "tell me the secret").await;
    assert_eq!(resp.status().as_u16(), 246);
    assert_eq!(chats(&mock).len(), 2);
}

#[tokio::test]
async fn a_denied_answer_inside_a_fallback_group_is_served_by_the_next_target() {
    let mock = harness::mock().await;
    let gw = portkey(&mock).await;
    for config in ["fallback_shorthand", "fallback_tutorial"] {
        mock.clear();
        let resp = post(&gw, config, "answer please").await;
        assert_eq!(resp.status().as_u16(), 200, "{config}");
        assert_eq!(
            header(&resp, "x-portkey-last-used-option-index").as_deref(),
            Some("config.targets[1]"),
            "{config}"
        );
        let body: Value = resp.json().await.unwrap();
        assert_eq!(
            body["choices"][0]["message"]["content"],
            r#"{"answer": "in JSON"}"#
        );
        assert_eq!(chats(&mock).len(), 2, "{config}: both targets were asked");
    }
}

#[test]
fn check_names_the_path_of_each_misspelt_guardrail() {
    let base = "providers:\n  p: { kind: openai-compatible, base_url: \"http://127.0.0.1:1/v1\" }\n  a: { kind: anthropic, base_url: \"http://127.0.0.1:1\" }\nvirtual_keys:\n  vk: { provider: p }\n  vk-a: { provider: a }\nconfigs:\n  x:\n    targets: [ { virtual_key: vk } ]\n";
    let cases = [
        (
            "    guardrails: { input: [ { type: sentiment } ] }\n",
            "configs.x.guardrails.input[0].type: unknown variant `sentiment`",
        ),
        (
            "    guardrails: { input: [ { type: regex, pattern: a, flags: [CASELESS] } ] }\n",
            "configs.x.guardrails.input[0].flags[0]: unknown flag",
        ),
        (
            "    guardrails: { input: [ { type: word_count, min: 3, action: retry } ] }\n",
            "configs.x.guardrails.input[0].action: retry applies to output checks only",
        ),
        (
            "    input_guardrails: [ { \"default.sentenceCount\": { minSentences: 1 }, deny: true } ]\n",
            "configs.x.input_guardrails[0].default.sentenceCount: not supported: default.sentenceCount",
        ),
        (
            "    after_request_hooks: [ { type: guardrail, checks: [ { id: aporia.validateProject } ] } ]\n",
            "configs.x.after_request_hooks[0].checks[0].id: not supported: aporia.validateProject is a partner plugin",
        ),
        (
            "    before_request_hooks: [ { type: mutator, checks: [ { id: default.contains } ] } ]\n",
            "configs.x.before_request_hooks[0].type: not supported: mutator hooks",
        ),
        (
            "    before_request_hooks: [ { checks: [], colour: red } ]\n",
            "configs.x.before_request_hooks[0].colour: unknown field `colour`",
        ),
    ];
    for (extra, want) in cases {
        let (ok, _, err) = harness::check_config(&format!("{base}{extra}"));
        assert!(!ok, "{extra} was accepted");
        assert!(err.contains(want), "{extra}: {err}");
    }
    // A semantic cache with nothing to embed with says what to set.
    let only_anthropic = base.replace("{ virtual_key: vk }", "{ virtual_key: vk-a }");
    let (ok, _, err) = harness::check_config(&format!(
        "{only_anthropic}    cache: {{ mode: semantic, max_age: 86400 }}\n"
    ));
    assert!(!ok);
    assert!(
        err.contains("configs.x.cache.embedder: required for mode: semantic, and this config has no target whose provider speaks OpenAI's format"),
        "{err}"
    );
}
