//! Whole Responses API `response` objects: a canonical response encoded for a Responses client,
//! and an upstream's decoded (with its usage) for usage, cost and the cache.

use serde_json::{json, Map, Value};

use super::{encode_usage, response_id, status_of};
use crate::providers::canonical::*;
use crate::providers::json::{array_at, str_at, u64_at};
use crate::providers::TranslateError;

/// A reasoning output item (`summary` from thinking text, `encrypted_content` from its
/// signature or a redacted block's data).
pub(super) fn reasoning_item(id: &str, part: &ContentPart) -> Option<Value> {
    let (text, encrypted) = match part {
        ContentPart::Thinking { text, signature } => (text.as_str(), signature.as_deref()),
        ContentPart::RedactedThinking { data } => ("", Some(data.as_str())),
        _ => return None,
    };
    let summary = if text.is_empty() {
        json!([])
    } else {
        json!([{"type": "summary_text", "text": text}])
    };
    let mut item = json!({"id": id, "type": "reasoning", "summary": summary});
    if let (Some(e), Some(obj)) = (encrypted, item.as_object_mut()) {
        obj.insert("encrypted_content".into(), Value::String(e.to_string()));
    }
    Some(item)
}

/// An assistant message output item.
pub(super) fn message_item(id: &str, status: &str, content: Vec<Value>) -> Value {
    json!({"id": id, "type": "message", "role": "assistant", "status": status, "content": content})
}

/// An `output_text` content part.
pub(super) fn output_text(text: &str) -> Value {
    json!({"type": "output_text", "text": text, "annotations": [], "logprobs": []})
}

/// A function-call output item.
pub(super) fn function_call_item(id: &str, call: &ToolCall, status: &str) -> Value {
    json!({
        "id": id,
        "type": "function_call",
        "call_id": call.id,
        "name": call.name,
        "arguments": call.arguments,
        "status": status,
    })
}

/// The `response` object around `output` (the fields the SDK's `Response` requires included).
pub(super) fn response_object(
    id: &str,
    model: &str,
    created: u64,
    status: &str,
    incomplete: Value,
    output: Vec<Value>,
    usage: Option<&Usage>,
) -> Value {
    json!({
        "id": id,
        "object": "response",
        "created_at": created,
        "status": status,
        "background": false,
        "error": null,
        "incomplete_details": incomplete,
        "instructions": null,
        "max_output_tokens": null,
        "metadata": {},
        "model": model,
        "output": output,
        "parallel_tool_calls": true,
        "previous_response_id": null,
        "reasoning": {"effort": null, "summary": null},
        "store": false,
        "temperature": null,
        "text": {"format": {"type": "text"}},
        "tool_choice": "auto",
        "tools": [],
        "top_p": null,
        "truncation": "disabled",
        "usage": usage.map_or(Value::Null, encode_usage),
        "user": null,
    })
}

/// A canonical response as a Responses API `response` object (choice 0; the Responses API has
/// one output).
pub fn encode_response(response: &ChatResponse, created: u64) -> Value {
    let id = response_id(&response.id);
    let base = id.trim_start_matches("resp_");
    let choice = response.choices.first();
    let mut output = Vec::new();
    if let Some(c) = choice {
        for (i, part) in c.thinking.iter().enumerate() {
            output.extend(reasoning_item(&format!("rs_{base}_{i}"), part));
        }
        let mut content = Vec::new();
        if let Some(text) = c.text.as_deref().filter(|t| !t.is_empty()) {
            content.push(output_text(text));
        }
        if let Some(refusal) = c.refusal.as_deref().filter(|r| !r.is_empty()) {
            content.push(json!({"type": "refusal", "refusal": refusal}));
        }
        if !content.is_empty() {
            output.push(message_item(&format!("msg_{base}"), "completed", content));
        }
        for (i, call) in c.tool_calls.iter().enumerate() {
            output.push(function_call_item(
                &format!("fc_{base}_{i}"),
                call,
                "completed",
            ));
        }
    }
    let (status, incomplete) = status_of(choice.and_then(|c| c.finish_reason.as_ref()));
    let created = response.created.unwrap_or(created);
    response_object(
        &id,
        &response.model,
        created,
        status,
        incomplete,
        output,
        response.usage.as_ref(),
    )
}

fn invalid(reason: impl Into<String>) -> TranslateError {
    TranslateError::InvalidResponse {
        format: Format::Responses.as_str(),
        reason: reason.into(),
    }
}

/// The text of a message item's `output_text` parts and of its `refusal` parts.
fn message_texts(item: &Value) -> (String, String) {
    let (mut text, mut refusal) = (String::new(), String::new());
    for part in array_at(item, "content") {
        match str_at(part, "type") {
            Some("output_text") => text.push_str(str_at(part, "text").unwrap_or_default()),
            Some("refusal") => refusal.push_str(str_at(part, "refusal").unwrap_or_default()),
            _ => {}
        }
    }
    (text, refusal)
}

/// A reasoning output item as a thinking part (`None` if it says nothing).
pub(super) fn thinking_of(item: &Value) -> Option<ContentPart> {
    let text = array_at(item, "summary")
        .iter()
        .filter_map(|s| str_at(s, "text"))
        .collect::<Vec<_>>()
        .join("\n\n");
    let encrypted = str_at(item, "encrypted_content").map(str::to_string);
    match encrypted {
        Some(data) if text.is_empty() => Some(ContentPart::RedactedThinking { data }),
        None if text.is_empty() => None,
        signature => Some(ContentPart::Thinking { text, signature }),
    }
}

/// Decodes a Responses API `response` object.
pub fn decode_response(v: &Value) -> Result<ChatResponse, TranslateError> {
    let obj: &Map<String, Value> = v.as_object().ok_or_else(|| invalid("not an object"))?;
    let output = obj
        .get("output")
        .and_then(Value::as_array)
        .ok_or_else(|| invalid("no output array"))?;
    let mut choice = Choice::default();
    let (mut text, mut refusal) = (String::new(), String::new());
    for item in output {
        match str_at(item, "type") {
            Some("message") => {
                let (t, r) = message_texts(item);
                text.push_str(&t);
                refusal.push_str(&r);
            }
            Some("function_call") => choice.tool_calls.push(ToolCall {
                id: str_at(item, "call_id").unwrap_or_default().to_string(),
                name: str_at(item, "name").unwrap_or_default().to_string(),
                arguments: str_at(item, "arguments").unwrap_or_default().to_string(),
            }),
            Some("reasoning") => choice.thinking.extend(thinking_of(item)),
            _ => {}
        }
    }
    choice.text = Some(text).filter(|t| !t.is_empty());
    choice.refusal = Some(refusal).filter(|r| !r.is_empty());
    let reason = obj
        .get("incomplete_details")
        .and_then(|d| str_at(d, "reason"));
    choice.finish_reason = Some(match (str_at(v, "status"), reason) {
        (Some("incomplete"), Some("content_filter")) => FinishReason::ContentFilter,
        (Some("incomplete"), _) => FinishReason::Length,
        _ if !choice.tool_calls.is_empty() => FinishReason::ToolCalls,
        _ => FinishReason::Stop,
    });
    Ok(ChatResponse {
        id: str_at(v, "id").unwrap_or_default().to_string(),
        model: str_at(v, "model").unwrap_or_default().to_string(),
        created: u64_at(v, "created_at"),
        choices: vec![choice],
        usage: v.get("usage").filter(|u| u.is_object()).map(decode_usage),
    })
}

/// A Responses API `usage` object (`input_tokens`, `output_tokens`, their details).
pub fn decode_usage(u: &Value) -> Usage {
    let detail =
        |outer: &str, inner: &str| u.get(outer).and_then(|d| u64_at(d, inner)).unwrap_or(0);
    Usage {
        input_tokens: u64_at(u, "input_tokens").unwrap_or(0),
        output_tokens: u64_at(u, "output_tokens").unwrap_or(0),
        cached_tokens: detail("input_tokens_details", "cached_tokens"),
        cache_creation_tokens: detail("input_tokens_details", "cache_write_tokens"),
        reasoning_tokens: detail("output_tokens_details", "reasoning_tokens"),
    }
}
