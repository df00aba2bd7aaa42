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
