//! Which text the guardrails check, and writing redactions back into it.
//!
//! Input (the client's request body, in the client's format, before `override_params`):
//! - `/v1/chat/completions`: every message's text, in order, whatever its role (system,
//!   developer, user, assistant, tool) — a `content` string, or the `text` of each `text` part.
//! - `/v1/messages`: the `system` prompt (string or `text` blocks), then every message's text —
//!   a `content` string, `text` blocks, and the text inside `tool_result` blocks.
//! - other JSON routes: `prompt` and `input` when they are a string or a list of strings.
//!
//! Images, audio, files and tool-call arguments are not checked. The checks see the pieces
//! joined with `\n` (Portkey checks only the last message; we check the whole conversation).
//!
//! Output (the response body the client would get, in its format): `choices[0].message.content`
//! (or `choices[0].text` for completions) for OpenAI; the `text` blocks of `content` for
//! Anthropic; the `output_text` parts of `output` for `/v1/responses`. Only answers that carry
//! text are checked ([`checks_output`]): not embeddings or other routes, not Responses API
//! streams.

use bytes::Bytes;
use serde_json::{Map, Value};

use super::{Evaluation, Guardrails};
use crate::providers::ClientFormat;

/// Calls `f` on each string of a `content` value: the string itself, or the `text` of each
/// `text` part (and, with `tool_results`, the content of each `tool_result` block).
fn content_mut(v: &mut Value, tool_results: bool, f: &mut dyn FnMut(&mut String)) {
    match v {
        Value::String(s) => f(s),
        Value::Array(parts) => {
            for part in parts {
                let Some(obj) = part.as_object_mut() else {
                    continue;
                };
                match obj.get("type").and_then(Value::as_str) {
                    Some("text") | None => {
                        if let Some(Value::String(s)) = obj.get_mut("text") {
                            f(s);
                        }
                    }
                    Some("tool_result") if tool_results => {
                        if let Some(c) = obj.get_mut("content") {
                            content_mut(c, false, f);
                        }
                    }
                    _ => {}
                }
            }
        }
        _ => {}
    }
}

/// Calls `f` on each checked string of a request body (see the module doc).
pub fn request_mut(
    format: Option<ClientFormat>,
    json: &mut Map<String, Value>,
    f: &mut dyn FnMut(&mut String),
) {
    match format {
        Some(ClientFormat::OpenAi) | Some(ClientFormat::Anthropic) => {
            let anthropic = format == Some(ClientFormat::Anthropic);
            if anthropic {
                if let Some(system) = json.get_mut("system") {
                    content_mut(system, false, f);
                }
            }
            if let Some(Value::Array(messages)) = json.get_mut("messages") {
                for m in messages {
                    if let Some(c) = m.get_mut("content") {
                        content_mut(c, anthropic, f);
                    }
                }
            }
        }
        None => {
            for key in ["prompt", "input"] {
                match json.get_mut(key) {
                    Some(Value::String(s)) => f(s),
                    Some(Value::Array(items)) => {
                        for item in items {
                            if let Value::String(s) = item {
                                f(s);
                            }
                        }
                    }
                    _ => {}
                }
            }
        }
    }
}

/// Whether output guardrails run on answers of this operation (`gen_ai.operation.name`).
pub fn checks_output(operation: &str, stream: bool) -> bool {
    match operation {
        "chat" | "text_completion" => true,
        "generate_content" => !stream,
        _ => false,
    }
}

/// Calls `f` on each checked string of a response body (see the module doc).
pub fn response_mut(
    format: Option<ClientFormat>,
    json: &mut Value,
    f: &mut dyn FnMut(&mut String),
) {
    match format {
        Some(ClientFormat::Anthropic) => {
            if let Some(content) = json.get_mut("content") {
                content_mut(content, false, f);
            }
        }
        _ => {
            if let Some(Value::Array(items)) = json.get_mut("output") {
                for item in items {
                    if let Some(Value::Array(parts)) = item.get_mut("content") {
                        for part in parts {
                            if part.get("type").and_then(Value::as_str) == Some("output_text") {
                                if let Some(Value::String(s)) = part.get_mut("text") {
                                    f(s);
                                }
                            }
                        }
                    }
                }
                return;
            }
            let Some(first) = json
                .get_mut("choices")
                .and_then(Value::as_array_mut)
                .and_then(|c| c.first_mut())
            else {
                return;
            };
            if let Some(Value::String(s)) = first.get_mut("text") {
                f(s);
            } else if let Some(c) = first.get_mut("message").and_then(|m| m.get_mut("content")) {
                content_mut(c, false, f);
            }
        }
    }
}

/// Runs the input list over a request body, rewriting `json` when something was redacted;
/// returns the results and, after a redaction, the new body bytes.
pub fn screen_request(
    set: &Guardrails,
    format: Option<ClientFormat>,
    json: &mut Map<String, Value>,
) -> (Evaluation, Option<Bytes>) {
    let mut texts = Vec::new();
    request_mut(format, json, &mut |s| texts.push(s.clone()));
    let (eval, redacted) = set.run(&mut texts, true);
    if !redacted {
        return (eval, None);
    }
    let mut next = texts.into_iter();
    request_mut(format, json, &mut |s| {
        if let Some(t) = next.next() {
            *s = t;
        }
    });
    let body = serde_json::to_vec(json).ok().map(Bytes::from);
    (eval, body)
}

/// Runs the output list over a whole response body; returns the results and, after a
/// redaction, the new body. A body that is not JSON is checked as empty text.
pub fn screen_response(
    set: &Guardrails,
    format: Option<ClientFormat>,
    body: &[u8],
) -> (Evaluation, Option<Bytes>) {
    let mut json: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let mut texts = Vec::new();
    response_mut(format, &mut json, &mut |s| texts.push(s.clone()));
    let (eval, redacted) = set.run(&mut texts, true);
    if !redacted {
        return (eval, None);
    }
    let mut next = texts.into_iter();
    response_mut(format, &mut json, &mut |s| {
        if let Some(t) = next.next() {
            *s = t;
        }
    });
    (eval, serde_json::to_vec(&json).ok().map(Bytes::from))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn collect_request(format: Option<ClientFormat>, v: Value) -> Vec<String> {
        let Value::Object(mut map) = v else { panic!() };
        let mut out = Vec::new();
        request_mut(format, &mut map, &mut |s| out.push(s.clone()));
        out
    }

    #[test]
    fn openai_request_text_is_every_message() {
        let texts = collect_request(
            Some(ClientFormat::OpenAi),
            json!({"messages": [
                {"role": "system", "content": "sys"},
                {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "image_url", "image_url": {"url": "x"}}, {"type": "text", "text": "b"}]},
                {"role": "assistant", "content": null, "tool_calls": []},
                {"role": "tool", "content": "tool out", "tool_call_id": "1"}
            ]}),
        );
        assert_eq!(texts, ["sys", "a", "b", "tool out"]);
    }

    #[test]
    fn anthropic_request_text_includes_system_and_tool_results() {
        let texts = collect_request(
            Some(ClientFormat::Anthropic),
            json!({"system": [{"type": "text", "text": "sys"}], "messages": [
                {"role": "user", "content": "hi"},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": [{"type": "text", "text": "r"}]}]}
            ]}),
        );
        assert_eq!(texts, ["sys", "hi", "r"]);
    }

    #[test]
    fn other_routes_check_prompt_and_input() {
        let texts = collect_request(None, json!({"prompt": ["p1", "p2"], "input": "i"}));
        assert_eq!(texts, ["p1", "p2", "i"]);
    }

    #[test]
    fn response_text_per_format() {
        let mut v = json!({"choices": [{"message": {"content": "first"}}, {"message": {"content": "second"}}]});
        let mut out = Vec::new();
        response_mut(Some(ClientFormat::OpenAi), &mut v, &mut |s| {
            out.push(s.clone())
        });
        assert_eq!(out, ["first"]);
        let mut v = json!({"content": [{"type": "text", "text": "x"}, {"type": "tool_use", "input": {}}, {"type": "text", "text": "y"}]});
        out.clear();
        response_mut(Some(ClientFormat::Anthropic), &mut v, &mut |s| {
            out.push(s.clone())
        });
        assert_eq!(out, ["x", "y"]);
        let mut v = json!({"output": [{"type": "message", "content": [{"type": "output_text", "text": "r"}, {"type": "refusal", "refusal": "no"}]}]});
        out.clear();
        response_mut(None, &mut v, &mut |s| out.push(s.clone()));
        assert_eq!(out, ["r"]);
        assert!(checks_output("chat", true) && checks_output("generate_content", false));
        assert!(!checks_output("embeddings", false) && !checks_output("generate_content", true));
    }
}
