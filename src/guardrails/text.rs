//! Which text the guardrails check, and writing redactions back into it. One walker per body
//! serves both: it calls `f` on every checked string, first to collect the pieces, then (after
//! a `pii` redaction) to write them back — so redaction rewrites exactly the fields checked.
//!
//! Input (the client's request body, in the client's format, before `override_params`):
//! - `/v1/chat/completions`: every message, whatever its role — `content` (a string, or the
//!   `text` / `refusal` of each part), `name`, `refusal`, the `arguments` of `tool_calls` and
//!   `function_call`; every tool's (and legacy function's) `description` and its `parameters`
//!   schema; `prediction.content`; `response_format.json_schema` (`description`, `schema`).
//! - `/v1/messages`: `system` (a string or blocks), every message's `content` (a string or
//!   blocks), and every tool's `description` and `input_schema`. Blocks: `text` (and the
//!   `cited_text` of its citations), `thinking`, `tool_use` / `server_tool_use` `input` (every
//!   string in it), `tool_result` content (blocks again), `document` (`title`, `context`, a
//!   `text` source's `data`, a `content` source's blocks), `search_result` (`title`, `source`,
//!   `content`).
//! - other JSON routes: `prompt` and `input` when they are a string or a list of strings;
//!   `/v1/responses` also `instructions`, the text of `input` items, and every tool's
//!   `description` and `parameters` schema.
//! - Gemini `generateContent`: `systemInstruction` and every `contents` part's `text`,
//!   `functionCall.args` and `functionResponse.response` (every string in them), and every
//!   function declaration's `description` and schema.
//!
//! In a JSON schema the text is every `description` and `title`, and every string under
//! `enum`, `const`, `default` and `examples` (property names and types are not checked).
//! Images, audio and base64 or URL sources (PDFs, files) are not checked. The checks see the
//! pieces joined with `\n` (Portkey checks only the last message; we check everything).
//!
//! Output (the answer the client would get, in its format): for OpenAI every choice's
//! `message` — `content`, `refusal`, tool-call and function-call `arguments`, and
//! `reasoning_content` / `reasoning` when a compatible provider sends them — or its `text`
//! (completions); for Anthropic every block of `content` as above (`text`, `thinking`,
//! `tool_use.input`); for `/v1/responses` the `output_text` and `refusal` parts, function-call
//! `arguments` and reasoning summaries of `output`; for Gemini every candidate's parts (`text`,
//! `functionCall.args`). Only answers that carry text are checked ([`checks_output`]): not
//! embeddings or other routes.
//!
//! Duplicate keys cannot hide text from these walkers: a body that repeats a key is refused
//! before it gets here (`ingress::body`). Walks recurse with the JSON, whose depth is bounded
//! there (requests) and by serde_json's recursion limit (answers).

use bytes::Bytes;
use serde_json::{Map, Value};

use super::{Evaluation, Guardrails};
use crate::providers::ClientFormat;

/// What the walkers call on each checked string.
type Visit<'a> = dyn FnMut(&mut String) + 'a;

fn str_mut(v: Option<&mut Value>, f: &mut Visit) {
    if let Some(Value::String(s)) = v {
        f(s);
    }
}

/// Every string anywhere in `v` (tool-call inputs, schema `enum` values).
fn strings_mut(v: &mut Value, f: &mut Visit) {
    match v {
        Value::String(s) => f(s),
        Value::Array(items) => items.iter_mut().for_each(|i| strings_mut(i, f)),
        Value::Object(map) => map.values_mut().for_each(|i| strings_mut(i, f)),
        _ => {}
    }
}

/// The prose of a JSON schema: `description`s and `title`s, and the strings of `enum`,
/// `const`, `default` and `examples`, at any depth.
fn schema_mut(v: &mut Value, f: &mut Visit) {
    match v {
        Value::Object(map) => {
            for (key, value) in map.iter_mut() {
                match (key.as_str(), &mut *value) {
                    ("description" | "title", Value::String(s)) => f(s),
                    ("enum" | "const" | "default" | "examples", v) => strings_mut(v, f),
                    (_, v) => schema_mut(v, f),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|i| schema_mut(i, f)),
        _ => {}
    }
}

/// An OpenAI `content`: a string, or the `text` / `refusal` of each part.
fn openai_content_mut(v: &mut Value, f: &mut Visit) {
    match v {
        Value::String(s) => f(s),
        Value::Array(parts) => {
            for part in parts.iter_mut().filter_map(Value::as_object_mut) {
                match part.get("type").and_then(Value::as_str) {
                    Some("text") | None => str_mut(part.get_mut("text"), f),
                    Some("refusal") => str_mut(part.get_mut("refusal"), f),
                    _ => {}
                }
            }
        }
        _ => {}
    }
}

/// The `arguments` of an OpenAI message's `tool_calls` and legacy `function_call`.
fn openai_calls_mut(message: &mut Map<String, Value>, f: &mut Visit) {
    if let Some(Value::Array(calls)) = message.get_mut("tool_calls") {
        for call in calls {
            str_mut(call.pointer_mut("/function/arguments"), f);
        }
    }
    str_mut(
        message
            .get_mut("function_call")
            .and_then(|c| c.get_mut("arguments")),
        f,
    );
}

/// An OpenAI tool or legacy function definition (`{name, description, parameters}`).
fn openai_function_mut(def: &mut Value, f: &mut Visit) {
    str_mut(def.get_mut("description"), f);
    if let Some(p) = def.get_mut("parameters") {
        schema_mut(p, f);
    }
}

fn openai_request_mut(json: &mut Map<String, Value>, f: &mut Visit) {
    if let Some(Value::Array(messages)) = json.get_mut("messages") {
        for m in messages.iter_mut().filter_map(Value::as_object_mut) {
            if let Some(c) = m.get_mut("content") {
                openai_content_mut(c, f);
            }
            str_mut(m.get_mut("name"), f);
            str_mut(m.get_mut("refusal"), f);
            openai_calls_mut(m, f);
        }
    }
    if let Some(Value::Array(tools)) = json.get_mut("tools") {
        for tool in tools {
            // `function` tools; `custom` tools carry a description too.
            for kind in ["function", "custom"] {
                if let Some(def) = tool.get_mut(kind) {
                    openai_function_mut(def, f);
                }
            }
        }
    }
    if let Some(Value::Array(functions)) = json.get_mut("functions") {
        functions.iter_mut().for_each(|d| openai_function_mut(d, f));
    }
    if let Some(c) = json
        .get_mut("prediction")
        .and_then(|p| p.get_mut("content"))
    {
        openai_content_mut(c, f);
    }
    if let Some(schema) = json
        .get_mut("response_format")
        .and_then(|r| r.get_mut("json_schema"))
    {
        str_mut(schema.get_mut("description"), f);
        if let Some(s) = schema.get_mut("schema") {
            schema_mut(s, f);
        }
    }
}

/// An Anthropic `content` / `system`: a string, or blocks (see the module doc).
fn anthropic_blocks_mut(v: &mut Value, f: &mut Visit) {
    match v {
        Value::String(s) => f(s),
        Value::Array(blocks) => {
            for block in blocks.iter_mut().filter_map(Value::as_object_mut) {
                anthropic_block_mut(block, f);
            }
        }
        _ => {}
    }
}

fn anthropic_block_mut(block: &mut Map<String, Value>, f: &mut Visit) {
    let kind = block.get("type").and_then(Value::as_str).unwrap_or("text");
    match kind {
        "text" => {
            str_mut(block.get_mut("text"), f);
            if let Some(Value::Array(citations)) = block.get_mut("citations") {
                for c in citations {
                    str_mut(c.get_mut("cited_text"), f);
                }
            }
        }
        "thinking" => str_mut(block.get_mut("thinking"), f),
        "tool_use" | "server_tool_use" | "mcp_tool_use" => {
            if let Some(input) = block.get_mut("input") {
                strings_mut(input, f);
            }
        }
        "tool_result" | "mcp_tool_result" | "search_result" => {
            str_mut(block.get_mut("title"), f);
            str_mut(block.get_mut("source"), f);
            if let Some(c) = block.get_mut("content") {
                anthropic_blocks_mut(c, f);
            }
        }
        "document" => {
            str_mut(block.get_mut("title"), f);
            str_mut(block.get_mut("context"), f);
            let Some(Value::Object(source)) = block.get_mut("source") else {
                return;
            };
            match source.get("type").and_then(Value::as_str) {
                Some("text") => str_mut(source.get_mut("data"), f),
                Some("content") => {
                    if let Some(c) = source.get_mut("content") {
                        anthropic_blocks_mut(c, f);
                    }
                }
                _ => {}
            }
        }
        _ => {}
    }
}

fn anthropic_request_mut(json: &mut Map<String, Value>, f: &mut Visit) {
    if let Some(system) = json.get_mut("system") {
        anthropic_blocks_mut(system, f);
    }
    if let Some(Value::Array(messages)) = json.get_mut("messages") {
        for m in messages {
            if let Some(c) = m.get_mut("content") {
                anthropic_blocks_mut(c, f);
            }
        }
    }
    if let Some(Value::Array(tools)) = json.get_mut("tools") {
        for tool in tools {
            str_mut(tool.get_mut("description"), f);
            if let Some(s) = tool.get_mut("input_schema") {
                schema_mut(s, f);
            }
        }
    }
}

/// `prompt`, `input` and (`/v1/responses`) `instructions` and the text of `input` items.
fn other_request_mut(json: &mut Map<String, Value>, f: &mut Visit) {
    str_mut(json.get_mut("prompt"), f);
    if let Some(Value::Array(items)) = json.get_mut("prompt") {
        items.iter_mut().for_each(|i| str_mut(Some(i), f));
    }
    str_mut(json.get_mut("instructions"), f);
    match json.get_mut("input") {
        Some(Value::String(s)) => f(s),
        Some(Value::Array(items)) => {
            for item in items {
                match item {
                    Value::String(s) => f(s),
                    Value::Object(obj) => {
                        if let Some(c) = obj.get_mut("content") {
                            responses_content_mut(c, f);
                        }
                        str_mut(obj.get_mut("arguments"), f);
                        str_mut(obj.get_mut("output"), f);
                    }
                    _ => {}
                }
            }
        }
        _ => {}
    }
}

/// A Responses API `content`: a string, or the `text` / `refusal` of each part
/// (`input_text`, `output_text`, `refusal`).
fn responses_content_mut(v: &mut Value, f: &mut Visit) {
    match v {
        Value::String(s) => f(s),
        Value::Array(parts) => {
            for part in parts.iter_mut().filter_map(Value::as_object_mut) {
                str_mut(part.get_mut("text"), f);
                str_mut(part.get_mut("refusal"), f);
            }
        }
        _ => {}
    }
}

/// Calls `f` on each checked string of a request body (see the module doc).
pub fn request_mut(format: Option<ClientFormat>, json: &mut Map<String, Value>, f: &mut Visit) {
    match format {
        Some(ClientFormat::OpenAi) => openai_request_mut(json, f),
        Some(ClientFormat::Anthropic) => anthropic_request_mut(json, f),
        Some(ClientFormat::Gemini) => gemini_request_mut(json, f),
        Some(ClientFormat::Responses) => {
            other_request_mut(json, f);
            // Responses tools are flat: `{type: "function", name, description, parameters}`.
            if let Some(Value::Array(tools)) = json.get_mut("tools") {
                tools.iter_mut().for_each(|t| openai_function_mut(t, f));
            }
        }
        None => other_request_mut(json, f),
    }
}

/// Gemini `parts`: `text`, and every string of `functionCall.args` and
/// `functionResponse.response`.
fn gemini_parts_mut(content: Option<&mut Value>, f: &mut Visit) {
    let Some(Value::Array(parts)) = content.and_then(|c| c.get_mut("parts")) else {
        return;
    };
    for part in parts.iter_mut().filter_map(Value::as_object_mut) {
        str_mut(part.get_mut("text"), f);
        for (call, field) in [("functionCall", "args"), ("functionResponse", "response")] {
            if let Some(v) = part.get_mut(call).and_then(|c| c.get_mut(field)) {
                strings_mut(v, f);
            }
        }
    }
}

fn gemini_request_mut(json: &mut Map<String, Value>, f: &mut Visit) {
    gemini_parts_mut(json.get_mut("systemInstruction"), f);
    if let Some(Value::Array(contents)) = json.get_mut("contents") {
        contents
            .iter_mut()
            .for_each(|c| gemini_parts_mut(Some(c), f));
    }
    let Some(Value::Array(tools)) = json.get_mut("tools") else {
        return;
    };
    for tool in tools {
        let Some(Value::Array(decls)) = tool.get_mut("functionDeclarations") else {
            continue;
        };
        for decl in decls {
            str_mut(decl.get_mut("description"), f);
            for key in ["parameters", "parametersJsonSchema"] {
                if let Some(schema) = decl.get_mut(key) {
                    schema_mut(schema, f);
                }
            }
        }
    }
}

/// Whether output guardrails run on answers of this operation (`gen_ai.operation.name`).
pub fn checks_output(operation: &str, stream: bool) -> bool {
    let _ = stream;
    matches!(operation, "chat" | "text_completion" | "generate_content")
}

/// Calls `f` on each checked string of a response body (see the module doc).
pub fn response_mut(format: Option<ClientFormat>, json: &mut Value, f: &mut Visit) {
    match format {
        Some(ClientFormat::Anthropic) => {
            if let Some(content) = json.get_mut("content") {
                anthropic_blocks_mut(content, f);
            }
        }
        Some(ClientFormat::Gemini) => {
            if let Some(Value::Array(candidates)) = json.get_mut("candidates") {
                candidates
                    .iter_mut()
                    .for_each(|c| gemini_parts_mut(c.get_mut("content"), f));
            }
        }
        _ => {
            if let Some(Value::Array(items)) = json.get_mut("output") {
                for item in items.iter_mut().filter_map(Value::as_object_mut) {
                    if let Some(c) = item.get_mut("content") {
                        responses_content_mut(c, f);
                    }
                    str_mut(item.get_mut("arguments"), f);
                    if let Some(Value::Array(summary)) = item.get_mut("summary") {
                        summary
                            .iter_mut()
                            .for_each(|s| str_mut(s.get_mut("text"), f));
                    }
                }
                return;
            }
            let Some(Value::Array(choices)) = json.get_mut("choices") else {
                return;
            };
            for choice in choices {
                str_mut(choice.get_mut("text"), f);
                let Some(Value::Object(message)) = choice.get_mut("message") else {
                    continue;
                };
                if let Some(c) = message.get_mut("content") {
                    openai_content_mut(c, f);
                }
                for key in ["refusal", "reasoning_content", "reasoning"] {
                    str_mut(message.get_mut(key), f);
                }
                str_mut(
                    message
                        .get_mut("audio")
                        .and_then(|a| a.get_mut("transcript")),
                    f,
                );
                openai_calls_mut(message, f);
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

    fn collect_response(format: Option<ClientFormat>, mut v: Value) -> Vec<String> {
        let mut out = Vec::new();
        response_mut(format, &mut v, &mut |s| out.push(s.clone()));
        out
    }

    fn sorted(mut v: Vec<String>) -> Vec<String> {
        v.sort();
        v
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
    fn openai_request_text_includes_every_field_the_model_reads() {
        let texts = collect_request(
            Some(ClientFormat::OpenAi),
            json!({"model": "m", "user": "not-model-text", "messages": [
                {"role": "user", "name": "n1", "content": "c1"},
                {"role": "assistant", "refusal": "r1", "content": [{"type": "refusal", "refusal": "r2"}],
                 "tool_calls": [{"id": "x", "type": "function", "function": {"name": "f", "arguments": "{\"q\":\"a1\"}"}}],
                 "function_call": {"name": "f", "arguments": "a2"}}
            ],
            "tools": [{"type": "function", "function": {"name": "f", "description": "d1",
                "parameters": {"type": "object", "title": "t1", "properties": {
                    "q": {"type": "string", "description": "d2", "enum": ["e1", "e2"]},
                    "o": {"type": "object", "properties": {"deep": {"description": "d3", "default": "df"}}}
                }}}}],
            "functions": [{"name": "g", "description": "d4", "parameters": {"properties": {"z": {"examples": ["x1"]}}}}],
            "prediction": {"type": "content", "content": [{"type": "text", "text": "p1"}]},
            "response_format": {"type": "json_schema", "json_schema": {"name": "s", "description": "d5",
                "schema": {"type": "object", "properties": {"k": {"const": "k1", "description": "d6"}}}}}}),
        );
        assert_eq!(
            sorted(texts),
            [
                "a2",
                "c1",
                "d1",
                "d2",
                "d3",
                "d4",
                "d5",
                "d6",
                "df",
                "e1",
                "e2",
                "k1",
                "n1",
                "p1",
                "r1",
                "r2",
                "t1",
                "x1",
                "{\"q\":\"a1\"}"
            ]
        );
        let texts = collect_request(
            Some(ClientFormat::OpenAi),
            json!({"prediction": {"type": "content", "content": "p2"}}),
        );
        assert_eq!(texts, ["p2"]);
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
    fn anthropic_request_text_includes_documents_search_results_tools_and_inputs() {
        let texts = collect_request(
            Some(ClientFormat::Anthropic),
            json!({"system": "s0", "messages": [
                {"role": "user", "content": [
                    {"type": "document", "title": "dt", "context": "dc", "source": {"type": "text", "media_type": "text/plain", "data": "dd"}},
                    {"type": "document", "source": {"type": "content", "content": [{"type": "text", "text": "dx"}, {"type": "image", "source": {"type": "base64", "data": "AAAA"}}]}},
                    {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBE"}},
                    {"type": "search_result", "source": "https://s.example", "title": "st", "content": [{"type": "text", "text": "sc"}]},
                    {"type": "text", "text": "t1", "citations": [{"type": "char_location", "cited_text": "ct"}]}
                ]},
                {"role": "assistant", "content": [
                    {"type": "thinking", "thinking": "th", "signature": "sig"},
                    {"type": "tool_use", "id": "u", "name": "f", "input": {"q": "i1", "n": 3, "nested": [{"w": "i2"}]}}
                ]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "u", "content": "tr"},
                    {"type": "tool_result", "tool_use_id": "v", "content": [{"type": "search_result", "source": "src2", "title": "st2", "content": [{"type": "text", "text": "sc2"}]}]}]}
            ],
            "tools": [{"name": "f", "description": "td", "input_schema": {"type": "object", "properties": {"q": {"type": "string", "description": "pd"}}}}]}),
        );
        assert_eq!(
            sorted(texts),
            [
                "ct",
                "dc",
                "dd",
                "dt",
                "dx",
                "https://s.example",
                "i1",
                "i2",
                "pd",
                "s0",
                "sc",
                "sc2",
                "src2",
                "st",
                "st2",
                "t1",
                "td",
                "th",
                "tr"
            ]
        );
    }

    #[test]
    fn other_routes_check_prompt_input_and_responses_items() {
        let texts = collect_request(None, json!({"prompt": ["p1", "p2"], "input": "i"}));
        assert_eq!(texts, ["p1", "p2", "i"]);
        let texts = collect_request(
            None,
            json!({"instructions": "ins", "input": [
                {"role": "user", "content": [{"type": "input_text", "text": "it"}]},
                {"type": "function_call_output", "call_id": "c", "output": "fo"}
            ]}),
        );
        assert_eq!(texts, ["ins", "it", "fo"]);
    }

    #[test]
    fn response_text_per_format() {
        let out = collect_response(
            Some(ClientFormat::OpenAi),
            json!({"choices": [{"message": {"content": "first"}}, {"message": {"content": "second"}}]}),
        );
        assert_eq!(out, ["first", "second"], "every choice");
        let out = collect_response(
            Some(ClientFormat::OpenAi),
            json!({"choices": [{"message": {"content": null, "refusal": "no",
                "reasoning_content": "why",
                "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "{\"a\":\"arg\"}"}}]}},
                {"text": "legacy"}]}),
        );
        assert_eq!(sorted(out), ["legacy", "no", "why", "{\"a\":\"arg\"}"]);
        let out = collect_response(
            Some(ClientFormat::Anthropic),
            json!({"content": [{"type": "text", "text": "x"}, {"type": "thinking", "thinking": "hm"},
                {"type": "tool_use", "input": {"q": "in"}}, {"type": "text", "text": "y"}]}),
        );
        assert_eq!(out, ["x", "hm", "in", "y"]);
        let out = collect_response(
            None,
            json!({"output": [
                {"type": "reasoning", "summary": [{"type": "summary_text", "text": "sum"}]},
                {"type": "message", "content": [{"type": "output_text", "text": "r"}, {"type": "refusal", "refusal": "no"}]},
                {"type": "function_call", "name": "f", "arguments": "{}"}
            ]}),
        );
        assert_eq!(out, ["sum", "r", "no", "{}"]);
        assert!(checks_output("chat", true) && checks_output("generate_content", false));
        // Responses API and Gemini streams are understood now (guardrails/stream.rs).
        assert!(!checks_output("embeddings", false) && checks_output("generate_content", true));
        let out = collect_response(
            Some(ClientFormat::Gemini),
            json!({"candidates": [{"content": {"parts": [{"text": "g1"}, {"functionCall": {"name": "f", "args": {"q": "ga"}}}]}}]}),
        );
        assert_eq!(out, ["g1", "ga"]);
    }

    #[test]
    fn redaction_rewrites_the_fields_it_checked() {
        use crate::guardrails::{compile, GuardrailSpec, Stage};
        let specs: Vec<GuardrailSpec> =
            serde_json::from_value(json!([{"check": "pii", "action": "redact"}])).unwrap();
        let set = compile(Stage::Input, &specs, "x").unwrap().unwrap();
        let Value::Object(mut map) = json!({"messages": [{"role": "user", "content": "hi"}],
            "tools": [{"name": "f", "description": "mail a@b.io",
                "input_schema": {"properties": {"q": {"description": "or c@d.io"}}}}],
            "system": [{"type": "text", "text": "plain"}]})
        else {
            panic!()
        };
        map.insert(
            "messages".into(),
            json!([{"role": "assistant", "content": [{"type": "tool_use", "id": "u", "name": "f", "input": {"to": "e@f.io"}}]},
                {"role": "user", "content": [{"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "g@h.io"}}]}]),
        );
        let (eval, body) = screen_request(&set, Some(ClientFormat::Anthropic), &mut map);
        assert!(!eval.denied());
        let body: Value = serde_json::from_slice(&body.unwrap()).unwrap();
        assert_eq!(body["tools"][0]["description"], "mail [REDACTED_EMAIL]");
        assert_eq!(
            body["tools"][0]["input_schema"]["properties"]["q"]["description"],
            "or [REDACTED_EMAIL]"
        );
        assert_eq!(
            body["messages"][0]["content"][0]["input"]["to"],
            "[REDACTED_EMAIL]"
        );
        assert_eq!(
            body["messages"][1]["content"][0]["source"]["data"],
            "[REDACTED_EMAIL]"
        );
        assert_eq!(body["system"][0]["text"], "plain");
        let Value::Object(mut map) = json!({"messages": [{"role": "user", "name": "i@j.io", "content": "x"}],
            "prediction": {"type": "content", "content": "k@l.io"}})
        else {
            panic!()
        };
        let (_, body) = screen_request(&set, Some(ClientFormat::OpenAi), &mut map);
        let body: Value = serde_json::from_slice(&body.unwrap()).unwrap();
        assert_eq!(body["messages"][0]["name"], "[REDACTED_EMAIL]");
        assert_eq!(body["prediction"]["content"], "[REDACTED_EMAIL]");
    }
}
