//! Anthropic extended thinking on the request side: decoding a client's `thinking` field, and
//! encoding the canonical [`Reasoning`] for an Anthropic provider within Anthropic's rules
//! (budget at least 1024 and below `max_tokens`; no `temperature`/`top_k`, `top_p` in
//! [0.95, 1]; no forced tool choice; a final assistant turn in a tool loop must start with a
//! signed thinking block). Also the effort ↔ budget mapping every format shares (see
//! docs/thinking-notes.md).

use serde_json::{json, Map, Value};

use crate::providers::canonical::*;
use crate::providers::json::{num, opt_u64, req_object, str_at};
use crate::providers::TranslateError;

/// Anthropic's smallest thinking budget.
pub const MIN_BUDGET: u64 = 1024;

/// The budget an effort level stands for (OpenAI's levels and Anthropic's `max`; `none` is
/// handled as disabled).
pub(crate) fn budget_for_effort(effort: &str) -> u64 {
    match effort {
        "minimal" | "low" => 1024,
        "medium" => 8192,
        "high" => 24576,
        "xhigh" | "max" => 32768,
        _ => 8192,
    }
}

/// The effort level nearest a budget (never `minimal`: o-series models refuse it).
pub(crate) fn effort_for_budget(budget: u64) -> &'static str {
    if budget < 4096 {
        "low"
    } else if budget < 16384 {
        "medium"
    } else {
        "high"
    }
}

/// Decodes a Messages request's `thinking`: `{type: enabled, budget_tokens}`,
/// `{type: disabled}`, or `{type: adaptive}` (the model picks its budget). `None` for a type
/// this codec does not know: the caller keeps the field as an unknown one (Anthropic judges
/// it; other formats get no reasoning from it).
pub(crate) fn decode_thinking(v: &Value) -> Result<Option<Reasoning>, TranslateError> {
    if v.is_null() {
        return Ok(None);
    }
    req_object(v, "thinking")?;
    match str_at(v, "type") {
        Some("enabled") => Ok(Some(Reasoning {
            budget_tokens: opt_u64(
                v.get("budget_tokens").unwrap_or(&Value::Null),
                "thinking.budget_tokens",
            )?,
            include_thoughts: Some(true),
            ..Reasoning::default()
        })),
        Some("adaptive") => Ok(Some(Reasoning {
            include_thoughts: Some(true),
            ..Reasoning::default()
        })),
        Some("disabled") => Ok(Some(Reasoning {
            disabled: true,
            ..Reasoning::default()
        })),
        _ => Ok(None),
    }
}

/// Adaptive thinking's effort (`output_config.effort`), when the client gave one with its
/// `thinking` (the effort also steers the answer, so it alone asks for no thinking).
pub(crate) fn decode_effort(body: &Map<String, Value>, reasoning: &mut Option<Reasoning>) {
    let effort = body.get("output_config").and_then(|c| str_at(c, "effort"));
    if let (Some(r), Some(effort)) = (reasoning.as_mut(), effort) {
        if !r.disabled {
            r.effort = Some(effort.to_string());
        }
    }
}

/// Whether `reasoning` asks for thinking at all.
fn wants_thinking(r: &Reasoning) -> bool {
    !r.disabled && r.effort.as_deref() != Some("none")
}

/// Writes `thinking` (and adjusts `max_tokens`, the sampling parameters) for an Anthropic
/// provider; `out` already holds `messages`, `max_tokens` and the generation fields.
/// Thinking is left out, rather than the request failing, when the request forces a tool
/// call or replays a tool loop whose last assistant turn has no signed thinking block.
pub(crate) fn encode_thinking(req: &ChatRequest, out: &mut Map<String, Value>) {
    let Some(r) = &req.reasoning else {
        return;
    };
    if req.source == Some(Format::Anthropic) {
        // The client's own field, as it wrote it (Anthropic judges it).
        let thinking = match r.budget_tokens {
            _ if r.disabled => json!({"type": "disabled"}),
            Some(b) => json!({"type": "enabled", "budget_tokens": b}),
            None => json!({"type": "adaptive"}),
        };
        out.insert("thinking".into(), thinking);
        return;
    }
    if !wants_thinking(r) {
        // Off is Anthropic's default; `{type: disabled}` is refused by the models that only
        // take adaptive thinking (Opus 4.7 and later).
        return;
    }
    let forced = matches!(
        req.tool_choice,
        Some(ToolChoice::Required | ToolChoice::Function(_))
    );
    if forced || !last_turn_allows_thinking(out) {
        return;
    }
    let asked = r
        .budget_tokens
        .or_else(|| r.effort.as_deref().map(budget_for_effort))
        .unwrap_or(budget_for_effort("medium"));
    let mut budget = asked.max(MIN_BUDGET);
    let max_tokens = match req.max_tokens {
        None => budget.saturating_add(super::DEFAULT_MAX_TOKENS),
        Some(m) if m > budget => m,
        Some(m) if m > MIN_BUDGET => {
            // Reasoning and answer share the client's limit (as with OpenAI's
            // max_completion_tokens).
            budget = m - 1;
            m
        }
        // Too small for the minimum budget: the answer keeps the client's limit.
        Some(m) => {
            budget = MIN_BUDGET;
            MIN_BUDGET.saturating_add(m)
        }
    };
    out.insert("max_tokens".into(), max_tokens.into());
    out.insert(
        "thinking".into(),
        json!({"type": "enabled", "budget_tokens": budget}),
    );
    out.remove("temperature");
    out.remove("top_k");
    if let Some(p) = req.top_p {
        out.insert("top_p".into(), num(p.clamp(0.95, 1.0)));
    }
}

/// Anthropic requires the final assistant message to start with a thinking block when it is
/// the last turn (a prefill) or is answered by the last turn's tool results (a tool loop).
fn last_turn_allows_thinking(out: &Map<String, Value>) -> bool {
    let Some(messages) = out.get("messages").and_then(Value::as_array) else {
        return true;
    };
    let Some(last) = messages.last() else {
        return true;
    };
    let assistant = if str_at(last, "role") == Some("assistant") {
        last
    } else {
        let has_results = last
            .get("content")
            .and_then(Value::as_array)
            .is_some_and(|blocks| {
                blocks
                    .iter()
                    .any(|b| str_at(b, "type") == Some("tool_result"))
            });
        match messages.len().checked_sub(2).and_then(|i| messages.get(i)) {
            Some(prev) if has_results && str_at(prev, "role") == Some("assistant") => prev,
            _ => return true,
        }
    };
    let first = assistant
        .get("content")
        .and_then(Value::as_array)
        .and_then(|b| b.first());
    matches!(
        first.and_then(|b| str_at(b, "type")),
        Some("thinking" | "redacted_thinking")
    )
}

/// Takes out of an Anthropic request's messages the `thinking` blocks whose `signature` is
/// empty (see `providers::request::has_unsigned_thinking`); a message left with no content
/// keeps an empty list, which Anthropic reports as the client's error.
pub fn strip_unsigned_thinking(body: &mut serde_json::Map<String, serde_json::Value>) {
    use serde_json::Value;
    let Some(Value::Array(messages)) = body.get_mut("messages") else {
        return;
    };
    for message in messages {
        if let Some(Value::Array(blocks)) = message.get_mut("content") {
            blocks.retain(|b| {
                !(b.get("type").and_then(Value::as_str) == Some("thinking")
                    && b.get("signature").and_then(Value::as_str) == Some(""))
            });
        }
    }
}
