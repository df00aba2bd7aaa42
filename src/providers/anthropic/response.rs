//! Anthropic `message` response bodies: decoding a provider's, encoding a client's.

use serde_json::{json, Value};

use super::{
    decode_usage, encode_usage, finish_from_anthropic, finish_to_anthropic, tool_use_block,
};
use crate::providers::canonical::*;
use crate::providers::json::str_at;
use crate::providers::TranslateError;

/// Decodes a `message` body.
pub fn decode_response(v: &Value) -> Result<ChatResponse, TranslateError> {
    let content = v.get("content").and_then(Value::as_array).ok_or_else(|| {
        TranslateError::InvalidResponse {
            format: "anthropic",
            reason: "no content array".into(),
        }
    })?;
    let mut text: Option<String> = None;
    let mut tool_calls = Vec::new();
    let mut thinking = Vec::new();
    for b in content {
        match str_at(b, "type") {
            Some("thinking") => thinking.push(ContentPart::Thinking {
                text: str_at(b, "thinking").unwrap_or_default().to_string(),
                signature: str_at(b, "signature").map(str::to_string),
            }),
            Some("redacted_thinking") => thinking.push(ContentPart::RedactedThinking {
                data: str_at(b, "data").unwrap_or_default().to_string(),
            }),
            Some("text") => text
                .get_or_insert_with(String::new)
                .push_str(str_at(b, "text").unwrap_or_default()),
            Some("tool_use") => tool_calls.push(ToolCall {
                id: str_at(b, "id").unwrap_or_default().to_string(),
                name: str_at(b, "name").unwrap_or_default().to_string(),
                arguments: b
                    .get("input")
                    .map_or_else(|| "{}".to_string(), Value::to_string),
            }),
            _ => {}
        }
    }
    Ok(ChatResponse {
        id: str_at(v, "id").unwrap_or_default().to_string(),
        model: str_at(v, "model").unwrap_or_default().to_string(),
        created: None,
        choices: vec![Choice {
            index: 0,
            text,
            refusal: None,
            tool_calls,
            finish_reason: str_at(v, "stop_reason").map(finish_from_anthropic),
            thinking,
        }],
        usage: v.get("usage").filter(|u| u.is_object()).map(decode_usage),
    })
}

/// A reasoning part as a `thinking` or `redacted_thinking` block. A signature the source did
/// not give is written empty: the SDKs parse it, but Anthropic refuses the block if it is
/// sent back (see docs/thinking-notes.md).
pub(crate) fn thinking_block(p: &ContentPart) -> Option<Value> {
    match p {
        ContentPart::Thinking { text, signature } => Some(json!({
            "type": "thinking",
            "thinking": text,
            "signature": signature.clone().unwrap_or_default(),
        })),
        ContentPart::RedactedThinking { data } => {
            Some(json!({"type": "redacted_thinking", "data": data}))
        }
        _ => None,
    }
}

/// Encodes a `message` body from the first choice: thinking blocks, then the text, then the
/// tool calls.
pub fn encode_response(r: &ChatResponse) -> Value {
    let choice = r.choices.first().cloned().unwrap_or_default();
    let mut content: Vec<Value> = choice.thinking.iter().filter_map(thinking_block).collect();
    if let Some(text) = choice
        .text
        .filter(|t| !t.is_empty())
        .or(choice.refusal.filter(|t| !t.is_empty()))
    {
        content.push(json!({"type": "text", "text": text}));
    }
    content.extend(choice.tool_calls.iter().map(tool_use_block));
    json!({
        "id": r.id,
        "type": "message",
        "role": "assistant",
        "model": r.model,
        "content": content,
        "stop_reason": choice.finish_reason.as_ref().map(finish_to_anthropic),
        "stop_sequence": null,
        "usage": encode_usage(&r.usage.unwrap_or_default()),
    })
}
