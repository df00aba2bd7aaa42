//! The Anthropic Messages wire format (`anthropic` providers and `/v1/messages` clients), in
//! one module per concern: [`request`] decode/encode, [`response`] decode/encode, [`stream`]
//! (event classification, the usage tracker, the event decoder and encoder), and [`head`]: the
//! upstream paths and auth headers (`x-api-key`, `anthropic-version`) of this kind. Here: what
//! they share (finish reasons, usage, `tool_use` blocks).

use serde_json::{json, Value};

use super::canonical::*;
use super::json::{arguments_object, u64_at};

pub mod head;
pub mod request;
pub mod response;
pub mod stream;
#[cfg(test)]
mod tests;
pub mod thinking;

pub use head::DEFAULT_VERSION;
pub(crate) use head::{auth_headers, is_foreign_header, upstream_path};
pub use request::{decode_request, encode_request};
pub use response::{decode_response, encode_response};
pub use stream::classify_event;
pub(crate) use stream::{classify, EventDecoder, EventEncoder, UsageTracker};
pub use thinking::strip_unsigned_thinking;

/// `max_tokens` is required by Anthropic; this is sent when the client did not say.
pub const DEFAULT_MAX_TOKENS: u64 = 4096;

pub(crate) fn finish_from_anthropic(s: &str) -> FinishReason {
    match s {
        "end_turn" | "stop_sequence" | "pause_turn" => FinishReason::Stop,
        "max_tokens" | "model_context_window_exceeded" => FinishReason::Length,
        "tool_use" => FinishReason::ToolCalls,
        "refusal" => FinishReason::ContentFilter,
        other => FinishReason::Other(other.to_string()),
    }
}

pub(crate) fn finish_to_anthropic(r: &FinishReason) -> &'static str {
    match r {
        FinishReason::Stop | FinishReason::Other(_) => "end_turn",
        FinishReason::Length => "max_tokens",
        FinishReason::ToolCalls => "tool_use",
        FinishReason::ContentFilter => "refusal",
    }
}

/// Anthropic's usage fields as sent (its `input_tokens` excludes cache reads and writes).
#[derive(Debug, Clone, Copy, Default)]
struct RawUsage {
    input: u64,
    output: u64,
    cache_read: u64,
    cache_creation: u64,
}

impl RawUsage {
    /// Overwrites the fields `u` carries.
    fn update(&mut self, u: &Value) {
        if let Some(n) = u64_at(u, "input_tokens") {
            self.input = n;
        }
        if let Some(n) = u64_at(u, "output_tokens") {
            self.output = n;
        }
        if let Some(n) = u64_at(u, "cache_read_input_tokens") {
            self.cache_read = n;
        }
        if let Some(n) = u64_at(u, "cache_creation_input_tokens") {
            self.cache_creation = n;
        }
    }

    fn canonical(&self) -> Usage {
        Usage {
            input_tokens: self
                .input
                .saturating_add(self.cache_read)
                .saturating_add(self.cache_creation),
            output_tokens: self.output,
            cached_tokens: self.cache_read,
            cache_creation_tokens: self.cache_creation,
            reasoning_tokens: 0,
        }
    }
}

/// Usage from an Anthropic `usage` object.
pub fn decode_usage(u: &Value) -> Usage {
    let mut raw = RawUsage::default();
    raw.update(u);
    raw.canonical()
}

pub(crate) fn encode_usage(u: &Usage) -> Value {
    json!({
        "input_tokens": u
            .input_tokens
            .saturating_sub(u.cached_tokens)
            .saturating_sub(u.cache_creation_tokens),
        "output_tokens": u.output_tokens,
        "cache_creation_input_tokens": u.cache_creation_tokens,
        "cache_read_input_tokens": u.cached_tokens,
    })
}

/// A tool call as a `tool_use` content block.
fn tool_use_block(c: &ToolCall) -> Value {
    json!({
        "type": "tool_use",
        "id": c.id,
        "name": c.name,
        "input": arguments_object(&c.arguments),
    })
}
