//! Request and whole-response tests: every input shape, invalid shapes, portability, round trips.

use bytes::Bytes;
use serde_json::{json, Value};

use super::*;
use crate::providers::canonical::*;
use crate::providers::TranslateError;
use crate::upstream::sse::{SseEvent, SseParser};

fn decode(v: Value) -> Result<ChatRequest, TranslateError> {
    decode_request(v.as_object().unwrap())
}

/// (event name, data) of every event in `bytes`.
pub(super) fn events(bytes: &[u8]) -> Vec<(String, Value)> {
    let mut p = SseParser::new(1 << 20);
    p.push(bytes).unwrap();
    let mut out = Vec::new();
    while let Some(e) = p.next_event() {
        if e.data.is_empty() {
            continue;
        }
        out.push((e.event.unwrap(), serde_json::from_str(&e.data).unwrap()));
    }
    out
}

pub(super) fn names(evs: &[(String, Value)]) -> Vec<&str> {
    evs.iter().map(|(n, _)| n.as_str()).collect()
}

pub(super) fn ev(raw: &str) -> SseEvent {
    let mut p = SseParser::new(1 << 20);
    p.push(raw.as_bytes()).unwrap();
    p.next_event().unwrap_or(SseEvent {
        event: None,
        data: String::new(),
        id: None,
        raw: Bytes::new(),
    })
}

#[test]
fn a_string_input_is_one_user_message_after_the_instructions() {
    let r = decode(json!({"model": "gpt-5", "input": "Hi", "instructions": "Be brief", "stream": true, "max_output_tokens": 50})).unwrap();
    assert_eq!(
        r.messages,
        vec![
            Message::text(Role::System, "Be brief"),
            Message::text(Role::User, "Hi")
        ]
    );
    assert_eq!(
        (r.model.as_str(), r.stream, r.max_tokens),
        ("gpt-5", true, Some(50))
    );
    assert_eq!(r.source, Some(Format::Responses));
}

#[test]
fn every_input_item_shape_decodes() {
    let r = decode(json!({"input": [
        {"role": "developer", "content": "dev"},
        {"type": "message", "role": "user", "content": [
            {"type": "input_text", "text": "look"},
            {"type": "input_image", "image_url": "data:image/png;base64,AAAA", "detail": "high"},
            {"type": "input_file", "file_id": "file-1"}
        ]},
        {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "think"}], "encrypted_content": "enc"},
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Let me check", "annotations": []}, {"type": "refusal", "refusal": "no"}]},
        {"type": "function_call", "call_id": "call_1", "name": "get", "arguments": "{\"a\":1}"},
        {"type": "function_call_output", "call_id": "call_1", "output": "42"},
        {"type": "reasoning", "id": "rs_2", "summary": [], "encrypted_content": "opaque"},
        {"type": "item_reference", "id": "msg_old"}
    ]})).unwrap();
    let m = &r.messages;
    assert_eq!(m.len(), 6);
    assert_eq!(m[0].role, Role::Developer);
    assert_eq!(
        m[1].content[1],
        ContentPart::Image {
            source: ImageSource::Base64 {
                media_type: "image/png".into(),
                data: "AAAA".into()
            },
            detail: Some("high".into())
        }
    );
    assert!(matches!(&m[1].content[2], ContentPart::Other { kind, .. } if kind == "input_file"));
    // Reasoning, its answer and the call are one assistant turn.
    assert_eq!(m[2].role, Role::Assistant);
    assert_eq!(
        m[2].content,
        vec![
            ContentPart::Thinking {
                text: "think".into(),
                signature: Some("enc".into())
            },
            ContentPart::Text("Let me check".into()),
            ContentPart::Text("no".into()),
        ]
    );
    assert_eq!(
        m[2].tool_calls,
        vec![ToolCall {
            id: "call_1".into(),
            name: "get".into(),
            arguments: "{\"a\":1}".into()
        }]
    );
    assert_eq!(
        (
            m[3].role,
            m[3].tool_call_id.as_deref(),
            m[3].joined_text().as_str()
        ),
        (Role::Tool, Some("call_1"), "42")
    );
    assert_eq!(
        m[4].content,
        vec![ContentPart::RedactedThinking {
            data: "opaque".into()
        }]
    );
    assert!(
        matches!(&m[5].content[0], ContentPart::Other { kind, .. } if kind == "item_reference")
    );
}

#[test]
fn settings_decode_and_the_rest_is_kept() {
    let r = decode(json!({
        "input": [],
        "tools": [{"type": "function", "name": "f", "description": "d", "parameters": {"type": "object"}, "strict": true}, {"type": "web_search_preview"}],
        "tool_choice": {"type": "function", "name": "f"},
        "parallel_tool_calls": false, "temperature": 0.5, "top_p": 0.9,
        "text": {"format": {"type": "json_schema", "name": "s", "schema": {"type": "object"}, "strict": true}, "verbosity": "low"},
        "reasoning": {"effort": "high", "summary": "auto"},
        "safety_identifier": "u1", "store": false, "metadata": {"k": "v"}, "previous_response_id": "resp_1"
    })).unwrap();
    assert_eq!(
        r.tools[0],
        Tool {
            name: "f".into(),
            description: Some("d".into()),
            parameters: Some(json!({"type": "object"})),
            strict: Some(true),
            builtin: None
        }
    );
    assert_eq!(
        r.tools[1].builtin,
        Some(json!({"type": "web_search_preview"}))
    );
    assert_eq!(r.tool_choice, Some(ToolChoice::Function("f".into())));
    assert_eq!(
        (r.parallel_tool_calls, r.temperature, r.top_p),
        (Some(false), Some(0.5), Some(0.9))
    );
    assert!(
        matches!(&r.response_format, Some(ResponseFormat::JsonSchema { name, strict: Some(true), .. }) if name == "s")
    );
    let reasoning = r.reasoning.unwrap();
    assert_eq!(
        (
            reasoning.effort.as_deref(),
            reasoning.summary.as_deref(),
            reasoning.include_thoughts
        ),
        (Some("high"), Some("auto"), Some(true))
    );
    assert_eq!(r.user.as_deref(), Some("u1"));
    for k in ["store", "metadata", "previous_response_id"] {
        assert!(r.extra.contains_key(k), "{k}");
    }
    let off = decode(json!({"reasoning": {"effort": "none"}}))
        .unwrap()
        .reasoning
        .unwrap();
    assert!(off.disabled && off.effort.is_none());
    for (choice, want) in [
        ("auto", ToolChoice::Auto),
        ("none", ToolChoice::None),
        ("required", ToolChoice::Required),
    ] {
        assert_eq!(
            decode(json!({"tool_choice": choice})).unwrap().tool_choice,
            Some(want)
        );
    }
}

#[test]
fn invalid_shapes_are_refused_precisely() {
    for (body, needle) in [
        (json!({"input": 3}), "input:"),
        (json!({"input": [1]}), "input[0]"),
        (
            json!({"input": [{"role": "robot", "content": "x"}]}),
            "input[0].role",
        ),
        (
            json!({"input": [{"role": "user", "content": 1}]}),
            "input[0].content",
        ),
        (
            json!({"input": [{"role": "user", "content": [{"type": "input_text"}]}]}),
            "input[0].content[0].text",
        ),
        (
            json!({"input": [{"type": "function_call", "name": "f"}]}),
            "input[0].call_id",
        ),
        (
            json!({"input": [{"type": "function_call_output", "call_id": "c"}]}),
            "input[0].output",
        ),
        (json!({"tools": [{"type": "function"}]}), "tools[0].name"),
        (json!({"tool_choice": "sometimes"}), "tool_choice"),
        (
            json!({"text": {"format": {"type": "xml"}}}),
            "text.format.type",
        ),
        (json!({"max_output_tokens": -1}), "max_output_tokens"),
        (json!({"reasoning": "high"}), "reasoning"),
    ] {
        match decode(body.clone()) {
            Err(TranslateError::InvalidRequest(m)) => assert!(m.contains(needle), "{body}: {m}"),
            other => panic!("{body}: {other:?}"),
        }
    }
}

#[test]
fn stateful_features_are_not_portable() {
    let ok = decode(json!({"input": "hi", "store": true, "metadata": {"a": "b"}, "include": ["reasoning.encrypted_content"], "background": false, "truncation": "auto"})).unwrap();
    assert_eq!(check_portable(&ok), Ok(()));
    for body in [
        json!({"previous_response_id": "resp_1"}),
        json!({"conversation": "conv_1"}),
        json!({"background": true}),
        json!({"prompt": {"id": "pmpt_1"}}),
        json!({"tools": [{"type": "file_search", "vector_store_ids": ["vs"]}]}),
        json!({"tool_choice": {"type": "web_search_preview"}}),
        json!({"input": [{"type": "item_reference", "id": "msg_1"}]}),
        json!({"input": [{"type": "reasoning", "summary": [], "encrypted_content": "x"}]}),
        json!({"input": [{"role": "user", "content": [{"type": "input_file", "file_id": "f"}]}]}),
    ] {
        let r = decode(body.clone()).unwrap();
        assert!(
            matches!(check_portable(&r), Err(TranslateError::Unsupported { .. })),
            "{body}"
        );
    }
}

fn sample_response() -> ChatResponse {
    ChatResponse {
        id: "chatcmpl-1".into(),
        model: "m".into(),
        created: Some(7),
        choices: vec![Choice {
            text: Some("Hello".into()),
            tool_calls: vec![ToolCall {
                id: "call_1".into(),
                name: "f".into(),
                arguments: "{}".into(),
            }],
            finish_reason: Some(FinishReason::ToolCalls),
            thinking: vec![ContentPart::Thinking {
                text: "hmm".into(),
                signature: Some("sig".into()),
            }],
            ..Choice::default()
        }],
        usage: Some(Usage {
            input_tokens: 10,
            output_tokens: 5,
            cached_tokens: 2,
            cache_creation_tokens: 0,
            reasoning_tokens: 3,
        }),
    }
}

#[test]
fn responses_encode_and_decode_back() {
    let r = sample_response();
    let v = encode_response(&r, 1);
    assert_eq!(v["id"], "resp_chatcmpl-1");
    assert_eq!(
        (
            v["object"].clone(),
            v["status"].clone(),
            v["created_at"].clone()
        ),
        (json!("response"), json!("completed"), json!(7))
    );
    let types: Vec<&str> = v["output"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["reasoning", "message", "function_call"]);
    assert_eq!(
        v["output"][1]["content"][0],
        json!({"type": "output_text", "text": "Hello", "annotations": [], "logprobs": []})
    );
    assert_eq!(v["output"][2]["call_id"], "call_1");
    assert_eq!(
        v["usage"],
        json!({"input_tokens": 10, "input_tokens_details": {"cached_tokens": 2, "cache_write_tokens": 0}, "output_tokens": 5, "output_tokens_details": {"reasoning_tokens": 3}, "total_tokens": 15})
    );
    for key in [
        "parallel_tool_calls",
        "tool_choice",
        "tools",
        "error",
        "incomplete_details",
        "instructions",
        "metadata",
        "temperature",
        "top_p",
        "text",
    ] {
        assert!(v.get(key).is_some(), "{key}");
    }
    let back = decode_response(&v).unwrap();
    assert_eq!(back.id, "resp_chatcmpl-1");
    assert_eq!(back.choices, r.choices);
    assert_eq!(back.usage, r.usage);
    // Length and refusals.
    let mut cut = r.clone();
    cut.choices[0] = Choice {
        refusal: Some("no".into()),
        finish_reason: Some(FinishReason::Length),
        ..Choice::default()
    };
    let v = encode_response(&cut, 1);
    assert_eq!(
        (v["status"].clone(), v["incomplete_details"].clone()),
        (json!("incomplete"), json!({"reason": "max_output_tokens"}))
    );
    assert_eq!(
        v["output"][0]["content"][0],
        json!({"type": "refusal", "refusal": "no"})
    );
    let back = decode_response(&v).unwrap();
    assert_eq!(
        (
            back.choices[0].refusal.as_deref(),
            back.choices[0].finish_reason.clone()
        ),
        (Some("no"), Some(FinishReason::Length))
    );
    assert!(decode_response(&json!({"id": "x"})).is_err());
    assert_eq!(
        decode_usage(&json!({"input_tokens": "x"})),
        Usage::default()
    );
}
