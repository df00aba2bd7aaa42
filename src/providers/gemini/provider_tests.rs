//! Tests of the Gemini provider side's thinking: `thinkingConfig`, thought parts in
//! responses and streams, thoughts counted as output.

use bytes::Bytes;
use serde_json::{json, Value};

use super::*;

fn ev(data: Value) -> SseEvent {
    SseEvent {
        event: None,
        data: data.to_string(),
        id: None,
        raw: Bytes::new(),
    }
}

fn with_reasoning(r: Reasoning) -> Value {
    let req = ChatRequest {
        messages: vec![Message::text(Role::User, "hi")],
        reasoning: Some(r),
        ..ChatRequest::default()
    };
    Value::Object(encode_request(&req).unwrap())["generationConfig"]["thinkingConfig"].clone()
}

#[test]
fn reasoning_becomes_a_thinking_config() {
    assert_eq!(
        with_reasoning(Reasoning {
            budget_tokens: Some(10000),
            include_thoughts: Some(true),
            ..Reasoning::default()
        }),
        json!({"thinkingBudget": 10000, "includeThoughts": true})
    );
    assert_eq!(
        with_reasoning(Reasoning {
            effort: Some("high".into()),
            ..Reasoning::default()
        }),
        json!({"thinkingBudget": 24576})
    );
    assert_eq!(
        with_reasoning(Reasoning {
            disabled: true,
            ..Reasoning::default()
        }),
        json!({"thinkingBudget": 0})
    );
    assert_eq!(with_reasoning(Reasoning::default()), Value::Null);
    let back = reasoning_of_thinking_config(&json!({"thinkingBudget": 0})).unwrap();
    assert!(back.disabled);
    let back = reasoning_of_thinking_config(
        &json!({"thinkingBudget": -1, "includeThoughts": true, "thinkingLevel": "HIGH"}),
    )
    .unwrap();
    assert_eq!(back.budget_tokens, None);
    assert_eq!(back.effort.as_deref(), Some("high"));
    assert_eq!(back.include_thoughts, Some(true));
}

#[test]
fn replayed_reasoning_is_not_sent() {
    let assistant = Message::new(
        Role::Assistant,
        vec![
            ContentPart::Thinking {
                text: "hm".into(),
                signature: Some("sig".into()),
            },
            ContentPart::RedactedThinking { data: "x".into() },
            ContentPart::Text("Hello".into()),
        ],
    );
    let req = ChatRequest {
        messages: vec![Message::text(Role::User, "hi"), assistant],
        ..ChatRequest::default()
    };
    let out = encode_request(&req).unwrap();
    assert_eq!(out["contents"][1]["parts"], json!([{"text": "Hello"}]));
}

#[test]
fn thought_parts_are_reasoning() {
    let body = json!({
        "responseId": "r1",
        "candidates": [{"index": 0, "finishReason": "STOP", "content": {"role": "model", "parts": [
            {"text": "Think ", "thought": true},
            {"text": "more.", "thought": true, "thoughtSignature": "c2ln"},
            {"text": "Answer."}
        ]}}],
        "usageMetadata": {"promptTokenCount": 4, "candidatesTokenCount": 2, "thoughtsTokenCount": 10}
    });
    let r = decode_response(&body, "f").unwrap();
    assert_eq!(r.choices[0].text.as_deref(), Some("Answer."));
    assert_eq!(
        r.choices[0].thinking,
        vec![ContentPart::Thinking {
            text: "Think more.".into(),
            signature: None
        }]
    );
    let u = r.usage.unwrap();
    assert_eq!((u.output_tokens, u.reasoning_tokens), (12, 10));

    let mut d = ChunkDecoder::new("f");
    let mut events = Vec::new();
    d.decode(&ev(body), &mut events);
    let kinds: Vec<&StreamEvent> = events
        .iter()
        .filter(|e| matches!(e, StreamEvent::Thinking { .. } | StreamEvent::Text { .. }))
        .collect();
    assert_eq!(
        kinds,
        [
            &StreamEvent::Thinking {
                choice: 0,
                text: "Think ".into()
            },
            &StreamEvent::Thinking {
                choice: 0,
                text: "more.".into()
            },
            &StreamEvent::Text {
                choice: 0,
                text: "Answer.".into()
            },
        ]
    );
    assert!(events.contains(&StreamEvent::Usage(u)));
}
