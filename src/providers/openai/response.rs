//! OpenAI `chat.completion` response bodies: decoding a provider's, encoding a client's.

use serde_json::{json, Map, Value};

use super::{
    arguments_text, decode_usage, encode_tool_calls, encode_usage, finish_from_openai,
    finish_to_openai, reasoning_text,
};
use crate::providers::canonical::*;
use crate::providers::json::{array_at, str_at, u64_at};
use crate::providers::TranslateError;

fn content_text(v: Option<&Value>) -> Option<String> {
    match v {
        Some(Value::String(s)) => Some(s.clone()),
        // Some compatible servers answer with content parts.
        Some(Value::Array(parts)) => Some(
            parts
                .iter()
                .filter_map(|p| str_at(p, "text"))
                .collect::<String>(),
        ),
        _ => None,
    }
}

/// Decodes a `chat.completion` body.
pub fn decode_response(v: &Value) -> Result<ChatResponse, TranslateError> {
    let invalid = |reason: &str| TranslateError::InvalidResponse {
        format: "openai",
        reason: reason.to_string(),
    };
    let choices = v
        .get("choices")
        .and_then(Value::as_array)
        .ok_or_else(|| invalid("no choices array"))?;
    let mut out = ChatResponse {
        id: str_at(v, "id").unwrap_or_default().to_string(),
        model: str_at(v, "model").unwrap_or_default().to_string(),
        created: u64_at(v, "created"),
        choices: Vec::with_capacity(choices.len()),
        usage: v.get("usage").filter(|u| u.is_object()).map(decode_usage),
    };
    for (i, c) in choices.iter().enumerate() {
        let msg = c.get("message").unwrap_or(&Value::Null);
        let mut tool_calls: Vec<ToolCall> = array_at(msg, "tool_calls")
            .iter()
            .map(|t| {
                let f = t.get("function").unwrap_or(&Value::Null);
                ToolCall {
                    id: str_at(t, "id").unwrap_or_default().to_string(),
                    name: str_at(f, "name").unwrap_or_default().to_string(),
                    arguments: arguments_text(f.get("arguments")),
                }
            })
            .collect();
        if let Some(f) = msg.get("function_call").filter(|f| f.is_object()) {
            let name = str_at(f, "name").unwrap_or_default().to_string();
            tool_calls.push(ToolCall {
                id: name.clone(),
                name,
                arguments: arguments_text(f.get("arguments")),
            });
        }
        out.choices.push(Choice {
            index: u64_at(c, "index")
                .and_then(|n| u32::try_from(n).ok())
                .unwrap_or(i as u32),
            text: content_text(msg.get("content")),
            refusal: str_at(msg, "refusal").map(str::to_string),
            tool_calls,
            finish_reason: str_at(c, "finish_reason").map(finish_from_openai),
            thinking: reasoning_text(msg)
                .filter(|t| !t.is_empty())
                .map(|t| {
                    vec![ContentPart::Thinking {
                        text: t.to_string(),
                        signature: None,
                    }]
                })
                .unwrap_or_default(),
        });
    }
    Ok(out)
}

/// Encodes a `chat.completion` body.
pub fn encode_response(r: &ChatResponse, created: u64) -> Value {
    let choices: Vec<Value> = r
        .choices
        .iter()
        .map(|c| {
            let mut msg = Map::new();
            msg.insert("role".into(), "assistant".into());
            msg.insert(
                "content".into(),
                c.text.clone().map_or(Value::Null, Value::String),
            );
            msg.insert(
                "refusal".into(),
                c.refusal.clone().map_or(Value::Null, Value::String),
            );
            if !c.tool_calls.is_empty() {
                msg.insert("tool_calls".into(), encode_tool_calls(&c.tool_calls));
            }
            // Not in OpenAI's schema, but what compatible clients read (the SDKs keep
            // unknown fields).
            let reasoning = joined_thinking(&c.thinking);
            if !reasoning.is_empty() {
                msg.insert("reasoning_content".into(), reasoning.into());
            }
            json!({
                "index": c.index,
                "message": msg,
                "logprobs": null,
                "finish_reason": c.finish_reason.as_ref().map(finish_to_openai),
            })
        })
        .collect();
    let mut out = json!({
        "id": r.id,
        "object": "chat.completion",
        "created": r.created.unwrap_or(created),
        "model": r.model,
        "choices": choices,
    });
    if let (Some(u), Some(obj)) = (&r.usage, out.as_object_mut()) {
        obj.insert("usage".into(), encode_usage(u));
    }
    out
}
