//! Thinking and reasoning, per format: when a request asks for it, what the mock adds to its
//! answer (a signed thinking block, a thought part, reasoning tokens), and the check that
//! signatures sent back in a conversation are the mock's own, unaltered.

use super::*;

/// The signature of every Anthropic `thinking` block the mock produces. A conversation that
/// sends a thinking block back with any other signature is refused (400), as Anthropic does.
pub const ANTHROPIC_SIGNATURE: &str = "mock-anthropic-thinking-signature-v1";
/// The data of the mock's Anthropic `redacted_thinking` block.
pub const REDACTED_THINKING_DATA: &str = "mock-redacted-thinking-data-v1";
/// Anthropic's documented prompt that makes a model answer with a `redacted_thinking` block.
pub const REDACTED_THINKING_TRIGGER: &str = "ANTHROPIC_MAGIC_STRING_TRIGGER_REDACTED_THINKING_46C9A13E193C177646C7398A98432ECCCE4C1253D5E2D82641AC0E52CC2876CB";
/// The `thoughtSignature` of the mock's Gemini thought part (base64 of
/// `mock-gemini-thought-signature`, as the API's bytes fields are).
pub const GEMINI_SIGNATURE: &str = "bW9jay1nZW1pbmktdGhvdWdodC1zaWduYXR1cmU=";
/// Gemini's documented placeholder for a signature it did not produce.
pub const GEMINI_SKIP_SIGNATURE: &str = "skip_thought_signature_validator";
/// The text of every thinking block, thought part and reasoning summary.
pub const THINKING_TEXT: &str = "Mock thinking: the user wants a short answer.";
/// Reasoning/thinking tokens counted on top of the answer's.
pub const REASONING_TOKENS: usize = 8;

/// What a request asked for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Thinking {
    /// Thinking happens (reasoning tokens are counted).
    pub on: bool,
    /// Its text is shown: an Anthropic thinking block, a Gemini thought part, a Responses
    /// reasoning summary.
    pub visible: bool,
    /// Anthropic: a `redacted_thinking` block follows the thinking block.
    pub redacted: bool,
}

impl Thinking {
    pub(crate) fn tokens(&self) -> usize {
        if self.on {
            REASONING_TOKENS
        } else {
            0
        }
    }
}

/// Anthropic: `thinking.type` `enabled` (or `adaptive`).
pub(crate) fn anthropic_thinking(request: &serde_json::Value) -> Thinking {
    let on = matches!(
        request.pointer("/thinking/type").and_then(|t| t.as_str()),
        Some("enabled" | "adaptive")
    );
    let redacted = on
        && request
            .get("messages")
            .is_some_and(|m| m.to_string().contains(REDACTED_THINKING_TRIGGER));
    Thinking {
        on,
        visible: on,
        redacted,
    }
}

/// Gemini: `generationConfig.thinkingConfig`: thinking unless `thinkingBudget` is 0, shown
/// when `includeThoughts` is true.
pub(crate) fn gemini_thinking(request: &serde_json::Value) -> Thinking {
    let Some(config) = field(request, "generationConfig", "generation_config")
        .and_then(|g| field(g, "thinkingConfig", "thinking_config"))
    else {
        return Thinking::default();
    };
    let visible = field(config, "includeThoughts", "include_thoughts")
        .and_then(|v| v.as_bool())
        .unwrap_or(false);
    let budget = field(config, "thinkingBudget", "thinking_budget").and_then(|b| b.as_i64());
    let on = visible || budget != Some(0);
    Thinking {
        on,
        visible,
        redacted: false,
    }
}

/// OpenAI chat: `reasoning_effort` other than `none`.
pub(crate) fn chat_thinking(request: &serde_json::Value) -> Thinking {
    let on = request
        .get("reasoning_effort")
        .and_then(|e| e.as_str())
        .is_some_and(|e| e != "none");
    Thinking {
        on,
        visible: false,
        redacted: false,
    }
}

/// Responses: `reasoning.effort` other than `none` (a reasoning item; its summary shown when
/// `reasoning.summary` is set).
pub(crate) fn responses_thinking(request: &serde_json::Value) -> Thinking {
    let reasoning = request.get("reasoning").filter(|r| r.is_object());
    let on = reasoning.is_some_and(|r| {
        r.get("effort")
            .and_then(|e| e.as_str())
            .is_none_or(|e| e != "none")
    });
    let visible = on
        && reasoning
            .and_then(|r| r.get("summary"))
            .is_some_and(|s| !s.is_null());
    Thinking {
        on,
        visible,
        redacted: false,
    }
}

/// OpenAI chat usage with reasoning tokens added to the completion's.
pub(crate) fn with_reasoning(mut usage: serde_json::Value, tokens: usize) -> serde_json::Value {
    if tokens == 0 {
        return usage;
    }
    for name in ["completion_tokens", "total_tokens"] {
        let n = usage[name].as_u64().unwrap_or(0) + tokens as u64;
        usage[name] = n.into();
    }
    usage["completion_tokens_details"] = serde_json::json!({"reasoning_tokens": tokens});
    usage
}

/// Gemini usage metadata with `thoughtsTokenCount` (counted in the total).
pub(crate) fn with_thoughts(mut usage: serde_json::Value, tokens: usize) -> serde_json::Value {
    if tokens == 0 {
        return usage;
    }
    usage["thoughtsTokenCount"] = tokens.into();
    let total = usage["totalTokenCount"].as_u64().unwrap_or(0) + tokens as u64;
    usage["totalTokenCount"] = total.into();
    usage
}

/// The Anthropic thinking blocks that precede the answer's block.
pub(crate) fn anthropic_thinking_blocks(thinking: Thinking) -> Vec<serde_json::Value> {
    let mut blocks = Vec::new();
    if thinking.visible {
        blocks.push(serde_json::json!({"type": "thinking", "thinking": THINKING_TEXT, "signature": ANTHROPIC_SIGNATURE}));
    }
    if thinking.redacted {
        blocks
            .push(serde_json::json!({"type": "redacted_thinking", "data": REDACTED_THINKING_DATA}));
    }
    blocks
}

/// The Gemini thought part that precedes the answer's part.
pub(crate) fn gemini_thought_part() -> serde_json::Value {
    serde_json::json!({"text": THINKING_TEXT, "thought": true, "thoughtSignature": GEMINI_SIGNATURE})
}

/// An Anthropic request whose assistant turns carry thinking blocks the mock did not sign (or
/// redacted data it did not produce): the message to refuse it with.
pub(crate) fn anthropic_bad_signature(request: &serde_json::Value) -> Option<String> {
    let messages = request.get("messages")?.as_array()?;
    for (i, message) in messages.iter().enumerate() {
        if message.get("role").and_then(|r| r.as_str()) != Some("assistant") {
            continue;
        }
        let Some(blocks) = message.get("content").and_then(|c| c.as_array()) else {
            continue;
        };
        for (j, block) in blocks.iter().enumerate() {
            let (kind, field, want) = match block.get("type").and_then(|t| t.as_str()) {
                Some("thinking") => ("thinking", "signature", ANTHROPIC_SIGNATURE),
                Some("redacted_thinking") => ("redacted_thinking", "data", REDACTED_THINKING_DATA),
                _ => continue,
            };
            if block.get(field).and_then(|s| s.as_str()) != Some(want) {
                return Some(format!(
                    "messages.{i}.content.{j}: Invalid `{field}` in `{kind}` block"
                ));
            }
        }
    }
    None
}

/// A Gemini request with a `thoughtSignature` that is neither the mock's nor the documented
/// skip placeholder: the message to refuse it with.
pub(crate) fn gemini_bad_signature(request: &serde_json::Value) -> Option<String> {
    let contents = request.get("contents")?.as_array()?;
    for (i, content) in contents.iter().enumerate() {
        let parts = content.get("parts").and_then(|p| p.as_array());
        for (j, part) in parts.into_iter().flatten().enumerate() {
            let Some(sig) = field(part, "thoughtSignature", "thought_signature") else {
                continue;
            };
            if !matches!(sig.as_str(), Some(GEMINI_SIGNATURE | GEMINI_SKIP_SIGNATURE)) {
                return Some(format!(
                    "Unable to submit request because the thought signature of contents[{i}].parts[{j}] is not valid."
                ));
            }
        }
    }
    None
}
