//! Canonical responses as Gemini `GenerateContentResponse`s (whole, and the pieces the stream
//! encoder reuses).
//!
//! Function-call arguments: Gemini's `args` is a JSON object. A call whose arguments are not
//! one (a truncated or malformed call from another provider) is not sent as a call: the
//! candidate ends with `MALFORMED_FUNCTION_CALL`, as Gemini itself reports a call it could not
//! form, unless it already ended for another reason (`MAX_TOKENS`, …).

use serde_json::{json, Map, Value};

use super::super::super::canonical::{ChatResponse, ContentPart, FinishReason, ToolCall, Usage};

/// Gemini's finish reason for a canonical one (tool calls end with `STOP`, as Gemini's do).
pub(super) fn finish_to_gemini(reason: &FinishReason) -> String {
    match reason {
        FinishReason::Stop | FinishReason::ToolCalls => "STOP".into(),
        FinishReason::Length => "MAX_TOKENS".into(),
        FinishReason::ContentFilter => "SAFETY".into(),
        // A Gemini reason (upper-case, as `MALFORMED_FUNCTION_CALL`) is kept; others' are not
        // Gemini's vocabulary.
        FinishReason::Other(s)
            if !s.is_empty()
                && s.len() <= 64
                && s.bytes().all(|b| b.is_ascii_uppercase() || b == b'_') =>
        {
            s.clone()
        }
        FinishReason::Other(_) => "OTHER".into(),
    }
}

pub(super) const MALFORMED: &str = "MALFORMED_FUNCTION_CALL";

/// `usageMetadata` from canonical usage: thoughts apart from candidates, as Gemini counts.
pub(super) fn encode_usage(u: &Usage) -> Value {
    let mut m = Map::new();
    m.insert("promptTokenCount".into(), u.input_tokens.into());
    m.insert(
        "candidatesTokenCount".into(),
        u.output_tokens.saturating_sub(u.reasoning_tokens).into(),
    );
    m.insert("totalTokenCount".into(), u.total_tokens().into());
    if u.cached_tokens > 0 {
        m.insert("cachedContentTokenCount".into(), u.cached_tokens.into());
    }
    if u.reasoning_tokens > 0 {
        m.insert("thoughtsTokenCount".into(), u.reasoning_tokens.into());
    }
    Value::Object(m)
}

/// A thought part (`thought: true`), with its signature when there is one.
pub(super) fn thought_part(text: &str, signature: Option<&str>) -> Value {
    let mut part = json!({"text": text, "thought": true});
    if let (Some(sig), Some(obj)) = (signature, part.as_object_mut()) {
        obj.insert("thoughtSignature".into(), sig.into());
    }
    part
}

/// A `functionCall` part, or `None` when the arguments are not a JSON object.
pub(super) fn call_part(call: &ToolCall) -> Option<Value> {
    let args = if call.arguments.trim().is_empty() {
        Value::Object(Map::new())
    } else {
        match serde_json::from_str::<Value>(&call.arguments) {
            Ok(v @ Value::Object(_)) => v,
            _ => return None,
        }
    };
    Some(json!({"functionCall": {"id": call.id, "name": call.name, "args": args}}))
}

/// A canonical response as a Gemini `GenerateContentResponse`.
pub fn encode_response(response: &ChatResponse) -> Value {
    let mut candidates = Vec::with_capacity(response.choices.len());
    for c in &response.choices {
        let mut parts = Vec::new();
        for t in &c.thinking {
            if let ContentPart::Thinking { text, signature } = t {
                parts.push(thought_part(text, signature.as_deref()));
            }
        }
        for text in [&c.text, &c.refusal].into_iter().flatten() {
            if !text.is_empty() {
                parts.push(json!({"text": text}));
            }
        }
        let mut malformed = false;
        for call in &c.tool_calls {
            match call_part(call) {
                Some(p) => parts.push(p),
                None => malformed = true,
            }
        }
        let mut candidate = json!({
            "content": {"role": "model", "parts": parts},
            "index": c.index,
        });
        let finish = match &c.finish_reason {
            Some(FinishReason::Stop | FinishReason::ToolCalls) | None if malformed => {
                Some(MALFORMED.to_string())
            }
            Some(r) => Some(finish_to_gemini(r)),
            None => None,
        };
        if let (Some(f), Some(obj)) = (finish, candidate.as_object_mut()) {
            obj.insert("finishReason".into(), f.into());
        }
        candidates.push(candidate);
    }
    let mut out = json!({
        "candidates": candidates,
        "modelVersion": response.model,
        "responseId": response.id,
    });
    if let (Some(u), Some(obj)) = (&response.usage, out.as_object_mut()) {
        obj.insert("usageMetadata".into(), encode_usage(u));
    }
    out
}
