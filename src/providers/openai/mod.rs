//! The OpenAI Chat Completions wire format (`openai`, `azure-openai`, `openai-compatible`
//! providers, and `/v1/chat/completions` clients), in one module per concern: [`request`]
//! decode/encode, [`response`] decode/encode, [`stream`] (the chunk decoder and encoder, and
//! stream-event classification, also for completions and responses streams, which are only
//! passed through), and [`head`]: the upstream paths (Azure deployments and `api-version`
//! included) and auth headers of these kinds. Here: what they share (finish reasons, usage,
//! tool calls).

use serde_json::{json, Value};

use super::canonical::*;
use super::json::{as_u64, u64_at};
use super::ProviderError;

pub mod head;
pub mod request;
pub mod response;
pub mod stream;
#[cfg(test)]
mod tests;

pub use head::AZURE_DEFAULT_API_VERSION;
pub(crate) use head::{auth_headers, is_foreign_header, upstream_path};
pub use request::{decode_request, encode_request};
pub use response::{decode_response, encode_response};
pub use stream::classify_event;
pub(crate) use stream::{classify_value, is_usage_only, ChunkDecoder, ChunkEncoder};

pub(crate) fn finish_from_openai(s: &str) -> FinishReason {
    match s {
        "stop" => FinishReason::Stop,
        "length" => FinishReason::Length,
        "tool_calls" | "function_call" => FinishReason::ToolCalls,
        "content_filter" => FinishReason::ContentFilter,
        other => FinishReason::Other(other.to_string()),
    }
}

pub(crate) fn finish_to_openai(r: &FinishReason) -> &'static str {
    match r {
        FinishReason::Stop | FinishReason::Other(_) => "stop",
        FinishReason::Length => "length",
        FinishReason::ToolCalls => "tool_calls",
        FinishReason::ContentFilter => "content_filter",
    }
}

/// Usage from an OpenAI `usage` object.
pub fn decode_usage(u: &Value) -> Usage {
    let details = |key: &str, field: &str| {
        u.get(key)
            .and_then(|d| d.get(field))
            .and_then(as_u64)
            .unwrap_or(0)
    };
    Usage {
        input_tokens: u64_at(u, "prompt_tokens").unwrap_or(0),
        output_tokens: u64_at(u, "completion_tokens").unwrap_or(0),
        cached_tokens: details("prompt_tokens_details", "cached_tokens"),
        cache_creation_tokens: 0,
        reasoning_tokens: details("completion_tokens_details", "reasoning_tokens"),
    }
}

pub(crate) fn encode_usage(u: &Usage) -> Value {
    json!({
        "prompt_tokens": u.input_tokens,
        "completion_tokens": u.output_tokens,
        "total_tokens": u.total_tokens(),
        "prompt_tokens_details": {"cached_tokens": u.cached_tokens},
        "completion_tokens_details": {"reasoning_tokens": u.reasoning_tokens},
    })
}

/// A function call's `arguments` as text (a provider may send them as a JSON value).
fn arguments_text(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => s.clone(),
        None | Some(Value::Null) => String::new(),
        Some(other) => other.to_string(),
    }
}

/// Reasoning text an OpenAI-compatible server put on a message or delta: `reasoning_content`
/// (DeepSeek, vLLM, SGLang), else `reasoning` (OpenRouter, newer vLLM) when it is a string.
pub(crate) fn reasoning_text(v: &Value) -> Option<&str> {
    v.get("reasoning_content")
        .and_then(Value::as_str)
        .or_else(|| v.get("reasoning").and_then(Value::as_str))
}

/// A message's `tool_calls` array.
fn encode_tool_calls(calls: &[ToolCall]) -> Value {
    calls
        .iter()
        .map(|c| {
            json!({
                "id": c.id,
                "type": "function",
                "function": {"name": c.name, "arguments": c.arguments},
            })
        })
        .collect()
}

/// The error a stream gets when the upstream stopped before its end marker.
pub(crate) fn truncated_error() -> ProviderError {
    ProviderError::new(
        super::ErrorKind::Api,
        "the upstream stream ended before the response was complete",
    )
}
