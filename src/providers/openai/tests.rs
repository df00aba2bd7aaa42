//! Tests of the OpenAI wire format: stream-event classification and request decode/encode.

use bytes::Bytes;
use serde_json::{json, Value};

use super::*;
use crate::providers::EventClass;
use crate::upstream::sse::SseEvent;
use crate::vocab::ProviderKind;

fn ev(data: &str) -> SseEvent {
    SseEvent {
        event: None,
        data: data.into(),
        id: None,
        raw: Bytes::new(),
    }
}

#[test]
fn stream_events_are_classified() {
    let role = r#"{"choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}"#;
    let text = r#"{"choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":null}]}"#;
    let tool = r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0}]}}]}"#;
    let usage = r#"{"choices":[],"usage":{"prompt_tokens":1}}"#;
    assert_eq!(classify_event(&ev(role)), EventClass::Preamble);
    assert_eq!(classify_event(&ev(text)), EventClass::Content);
    assert_eq!(classify_event(&ev(tool)), EventClass::Content);
    assert_eq!(classify_event(&ev(usage)), EventClass::Preamble);
    // A finish without any content before it is not content (an empty answer).
    let finish = r#"{"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}"#;
    assert_eq!(classify_event(&ev(finish)), EventClass::Preamble);
    assert_eq!(classify_event(&ev("[DONE]")), EventClass::Done);
    assert_eq!(
        classify_event(&ev(r#"{"error":{"message":"x"}}"#)),
        EventClass::Error
    );
    assert_eq!(
        classify_event(&ev(r#"{"type":"response.created"}"#)),
        EventClass::Preamble
    );
    assert_eq!(
        classify_event(&ev(r#"{"type":"response.output_text.delta","delta":"a"}"#)),
        EventClass::Content
    );
    assert_eq!(classify_event(&ev("")), EventClass::Preamble);
}

#[test]
fn request_fields_decode_and_reencode() {
    let body = json!({
        "model": "gpt-4o",
        "messages": [
            {"role": "developer", "content": "Be brief."},
            {"role": "user", "content": [
                {"type": "text", "text": "What is this?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo=", "detail": "low"}}
            ]},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "look", "arguments": "{\"x\":1}"}}
            ]},
            {"role": "tool", "tool_call_id": "call_1", "content": "a cat"}
        ],
        "max_completion_tokens": 50,
        "stop": "END",
        "stream": true,
        "stream_options": {"include_usage": false},
        "logit_bias": {"50256": -100}
    });
    let req = decode_request(body.as_object().unwrap()).unwrap();
    assert_eq!(req.messages.len(), 4);
    assert_eq!(req.stop, vec!["END".to_string()]);
    assert_eq!(req.max_tokens, Some(50));
    assert!(!req.include_usage);
    assert!(req.extra.contains_key("logit_bias"));
    match &req.messages[1].content[1] {
        ContentPart::Image { source, detail } => {
            assert_eq!(
                source,
                &ImageSource::Base64 {
                    media_type: "image/png".into(),
                    data: "iVBORw0KGgo=".into()
                }
            );
            assert_eq!(detail.as_deref(), Some("low"));
        }
        other => panic!("{other:?}"),
    }
    let out = Value::Object(encode_request(&req, ProviderKind::OpenAi).unwrap());
    assert_eq!(out["messages"], body["messages"]);
    assert_eq!(out["stream_options"], json!({"include_usage": true}));
    assert_eq!(out["max_completion_tokens"], 50);
    assert_eq!(out["logit_bias"], body["logit_bias"]);
}

#[test]
fn malformed_requests_name_the_field() {
    for (body, needle) in [
        (json!({"messages": "hi"}), "messages"),
        (json!({"messages": [{"content": "x"}]}), "messages[0].role"),
        (
            json!({"messages": [{"role": "wizard", "content": "x"}]}),
            "messages[0].role",
        ),
        (json!({"messages": [], "temperature": "hot"}), "temperature"),
        (json!({"messages": [], "max_tokens": -1}), "max_tokens"),
    ] {
        let err = decode_request(body.as_object().unwrap()).unwrap_err();
        assert!(err.to_string().contains(needle), "{err}");
    }
}

mod reasoning {
    use serde_json::{json, Value};

    use super::super::*;
    use crate::providers::{anthropic, EventClass};
    use crate::upstream::sse::SseEvent;
    use crate::vocab::ProviderKind;

    fn ev(data: Value) -> SseEvent {
        SseEvent {
            event: None,
            data: data.to_string(),
            id: None,
            raw: bytes::Bytes::new(),
        }
    }

    #[test]
    fn anthropic_thinking_becomes_reasoning_effort() {
        let body = json!({
            "model": "claude", "max_tokens": 20000,
            "thinking": {"type": "enabled", "budget_tokens": 10000},
            "messages": [
                {"role": "user", "content": "Hi"},
                {"role": "assistant", "content": [
                    {"type": "thinking", "thinking": "Greet.", "signature": "sig"},
                    {"type": "text", "text": "Hello"}
                ]},
                {"role": "user", "content": "Again"}
            ]
        });
        let req = anthropic::decode_request(body.as_object().unwrap()).unwrap();
        let out = Value::Object(encode_request(&req, ProviderKind::OpenAi).unwrap());
        assert_eq!(out["reasoning_effort"], "medium");
        // Anthropic's thinking is not replayed to OpenAI, which does not take it…
        assert_eq!(
            out["messages"][1],
            json!({"role": "assistant", "content": "Hello"})
        );
        // …but is to compatible servers (DeepSeek wants it back on tool-call turns).
        let compat = Value::Object(encode_request(&req, ProviderKind::OpenAiCompatible).unwrap());
        assert_eq!(
            compat["messages"][1],
            json!({"role": "assistant", "content": "Hello", "reasoning_content": "Greet."})
        );
        for (budget, effort) in [(1024, "low"), (4096, "medium"), (30000, "high")] {
            let mut r = req.clone();
            r.reasoning = Some(Reasoning {
                budget_tokens: Some(budget),
                ..Reasoning::default()
            });
            let out = encode_request(&r, ProviderKind::OpenAiCompatible).unwrap();
            assert_eq!(out["reasoning_effort"], effort);
        }
        // Disabled thinking sends nothing (models that cannot reason refuse the field).
        let mut r = req.clone();
        r.reasoning = Some(Reasoning {
            disabled: true,
            ..Reasoning::default()
        });
        assert!(!encode_request(&r, ProviderKind::OpenAi)
            .unwrap()
            .contains_key("reasoning_effort"));
    }

    #[test]
    fn same_format_reasoning_round_trips() {
        let body = json!({
            "model": "deepseek-reasoner", "reasoning_effort": "low",
            "messages": [
                {"role": "user", "content": "Hi"},
                {"role": "assistant", "content": "Hello", "reasoning_content": "Greet."}
            ]
        });
        let req = decode_request(body.as_object().unwrap()).unwrap();
        assert_eq!(
            req.reasoning.as_ref().unwrap().effort.as_deref(),
            Some("low")
        );
        let out = Value::Object(encode_request(&req, ProviderKind::OpenAiCompatible).unwrap());
        assert_eq!(out["reasoning_effort"], "low");
        assert_eq!(out["messages"], body["messages"]);
    }

    #[test]
    fn reasoning_content_decodes_and_encodes() {
        let body = json!({
            "id": "c", "object": "chat.completion", "created": 1, "model": "deepseek-reasoner",
            "choices": [{"index": 0, "finish_reason": "stop",
                "message": {"role": "assistant", "content": "4", "reasoning_content": "2+2"}}],
            "usage": {"prompt_tokens": 5, "completion_tokens": 9,
                "completion_tokens_details": {"reasoning_tokens": 7}}
        });
        let r = decode_response(&body).unwrap();
        assert_eq!(
            r.choices[0].thinking,
            vec![ContentPart::Thinking {
                text: "2+2".into(),
                signature: None
            }]
        );
        assert_eq!(r.usage.unwrap().reasoning_tokens, 7);
        let out = encode_response(&r, 1);
        assert_eq!(out["choices"][0]["message"]["reasoning_content"], "2+2");
        assert_eq!(
            out["usage"]["completion_tokens_details"]["reasoning_tokens"],
            7
        );
        // OpenRouter's spelling.
        let mut alt = body.clone();
        alt["choices"][0]["message"] =
            json!({"role": "assistant", "content": "4", "reasoning": "2+2"});
        assert_eq!(decode_response(&alt).unwrap().choices[0].thinking.len(), 1);
    }

    #[test]
    fn reasoning_deltas_decode_encode_and_commit() {
        let chunk = json!({"id": "c", "model": "m", "choices": [{"index": 0,
            "delta": {"reasoning_content": "Hm"}, "finish_reason": null}]});
        assert_eq!(classify_value(&chunk), EventClass::Content);
        let mut d = ChunkDecoder::default();
        let mut events = Vec::new();
        d.decode(&ev(chunk), &mut events);
        assert_eq!(
            events[1],
            StreamEvent::Thinking {
                choice: 0,
                text: "Hm".into()
            }
        );
        let mut e = ChunkEncoder::new("c".into(), "m".into(), 1, false);
        let mut out = Vec::new();
        assert_eq!(e.encode(events[1].clone(), &mut out), EventClass::Content);
        assert_eq!(
            e.encode(
                StreamEvent::ThinkingSignature {
                    choice: 0,
                    signature: "s".into()
                },
                &mut out
            ),
            EventClass::Preamble
        );
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.contains(r#""delta":{"reasoning_content":"Hm"}"#),
            "{text}"
        );
        assert!(!text.contains("\"s\""), "{text}");
    }
}
