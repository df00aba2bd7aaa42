//! The OpenAI Responses API (`POST /v1/responses`) as a client format and as the format of an
//! `openai` provider asked by such a client: requests decoded into the canonical model
//! ([`decode_request`], [`check_portable`]), responses and the typed stream events
//! (`response.created`, `response.output_text.delta`, `response.completed`, function-call and
//! reasoning-summary events, usage) encoded back ([`encode_response`], [`EventEncoder`]), and the
//! same decoded from an upstream ([`decode_response`], [`decode_usage`], [`EventDecoder`],
//! [`Passthrough`]) for usage, the commit point and translation.
//!
//! A Responses client in front of an `openai` provider is passed through (same format), so every
//! stateful feature works. In front of any other provider (Azure and OpenAI-compatible: Chat
//! Completions; Anthropic; Gemini) the request is translated, and [`check_portable`] first
//! refuses (`Unsupported`: this target fails, a fallback target of the Responses format may
//! serve it) what only OpenAI's Responses API can honour:
//!
//! | Request field | Responses upstream | Any other upstream |
//! |---|---|---|
//! | `previous_response_id` | passed through | refused (the stored conversation is OpenAI's) |
//! | `conversation` | passed through | refused |
//! | `background: true` | passed through | refused (`false`/absent: fine) |
//! | `prompt` (stored prompt template) | passed through | refused |
//! | `input` items of type `item_reference` | passed through | refused |
//! | other non-portable input items (`input_file`, built-in tool calls/outputs…) | passed through | refused |
//! | `reasoning` input items with only `encrypted_content` | passed through | refused (opaque to other providers) |
//! | `reasoning` input items with a summary | passed through | replayed as thinking (the summary text; `encrypted_content` as its signature) |
//! | built-in `tools` (`web_search*`, `file_search`, `computer_use*`, `code_interpreter`, `mcp`, `image_generation`, `local_shell`, `custom`…) | passed through | refused |
//! | `tool_choice` naming a built-in tool or `allowed_tools` | passed through | refused |
//! | `store` | passed through | accepted and ignored (nothing is stored) |
//! | `metadata` | passed through | accepted and ignored |
//! | `include` | passed through | accepted and ignored (it names outputs of built-in tools, which are refused, or optional detail: logprobs, encrypted reasoning) |
//! | `truncation`, `service_tier`, `prompt_cache_key`, `max_tool_calls`, `top_logprobs`, `text.verbosity`, `stream_options` | passed through | accepted and ignored |
//! | `instructions` | passed through | a system message before the input |
//! | `reasoning` `{effort, summary}` | passed through | the target's reasoning settings (effort `none`: reasoning off) |
//! | `user`, `safety_identifier` | passed through | the end-user id (`user` first) |
//!
//! Responses to the client: the `response` object with `resp_…` ids, `output` items (reasoning
//! summaries, the assistant message, function calls) and `usage`; streams as the typed event
//! sequence with a strictly increasing `sequence_number`, ended by exactly one of
//! `response.completed`, `response.incomplete` (output limit, content filter) or `error`.

mod decoder;
mod encoder;
mod request;
mod response;
#[cfg(test)]
mod stream_tests;
#[cfg(test)]
mod tests;

pub use decoder::{EventDecoder, Passthrough};
pub use encoder::EventEncoder;
pub use request::{check_portable, decode_request};
pub use response::{decode_response, decode_usage, encode_response};

use serde_json::{json, Value};

use super::canonical::{FinishReason, Usage};
use super::json::write_sse;
use super::ProviderError;

/// A response id in the Responses style: the provider's if it already is one.
fn response_id(id: &str) -> String {
    if id.starts_with("resp_") {
        id.to_string()
    } else {
        format!("resp_{id}")
    }
}

/// A Responses `usage` object (`cache_write_tokens`: prompt tokens written to a cache, which the
/// SDK's `InputTokensDetails` requires).
fn encode_usage(u: &Usage) -> Value {
    json!({
        "input_tokens": u.input_tokens,
        "input_tokens_details": {
            "cached_tokens": u.cached_tokens,
            "cache_write_tokens": u.cache_creation_tokens,
        },
        "output_tokens": u.output_tokens,
        "output_tokens_details": {"reasoning_tokens": u.reasoning_tokens},
        "total_tokens": u.total_tokens(),
    })
}

/// `status` and `incomplete_details` of a response that finished for `reason`.
fn status_of(reason: Option<&FinishReason>) -> (&'static str, Value) {
    match reason {
        Some(FinishReason::Length) => ("incomplete", json!({"reason": "max_output_tokens"})),
        Some(FinishReason::ContentFilter) => ("incomplete", json!({"reason": "content_filter"})),
        _ => ("completed", Value::Null),
    }
}

/// The `error` event's JSON (`code` is the provider's code or type, else the error kind's).
fn error_event(err: &ProviderError, sequence_number: u64) -> Value {
    super::error::responses_error_event(err, sequence_number)
}

/// A terminal `error` event in a Responses client stream (sequence number 0: written by a
/// caller that does not know the stream's; [`EventEncoder`] and [`Passthrough`] number theirs).
pub fn encode_stream_error(err: &ProviderError, out: &mut Vec<u8>) {
    write_sse(out, Some("error"), &error_event(err, 0));
}
