//! The OpenAI Chat Completions wire format (`openai`, `azure-openai`, `openai-compatible`
//! providers, and `/v1/chat/completions` clients): request decode/encode, response
//! decode/encode, the stream-chunk decoder and encoder, usage, and stream-event classification
//! (also for completions and responses streams, which are only passed through).

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use super::canonical::*;
use super::json::{
    array_at, as_u64, num, opt_bool, opt_f64, opt_i64, opt_str, opt_u64, put, req_array,
    req_object, req_str, str_at, string_list, u64_at, write_keep_alive, write_sse,
};
use super::{EventClass, ProviderError, TranslateError};
use crate::upstream::sse::SseEvent;
use crate::vocab::ProviderKind;

// ---------------------------------------------------------------------------------------------
// Requests

/// Decodes a Chat Completions request body.
pub fn decode_request(body: &Map<String, Value>) -> Result<ChatRequest, TranslateError> {
    let mut req = ChatRequest {
        source: Some(Format::OpenAi),
        ..ChatRequest::default()
    };
    let mut legacy_functions = Vec::new();
    for (key, v) in body {
        match key.as_str() {
            "model" => req.model = opt_str(v, "model")?.unwrap_or_default(),
            "messages" => {
                for (i, m) in req_array(v, "messages")?.iter().enumerate() {
                    req.messages.push(decode_message(i, m)?);
                }
            }
            "tools" if !v.is_null() => {
                for (i, t) in req_array(v, "tools")?.iter().enumerate() {
                    req.tools.push(decode_tool(t, &format!("tools[{i}]"))?);
                }
            }
            "functions" if !v.is_null() => {
                for (i, f) in req_array(v, "functions")?.iter().enumerate() {
                    legacy_functions.push(decode_function(f, &format!("functions[{i}]"), None)?);
                }
            }
            "tool_choice" | "function_call" if !v.is_null() => match decode_tool_choice(v) {
                Some(choice) => req.tool_choice = Some(choice),
                None => {
                    req.extra.insert(key.clone(), v.clone());
                }
            },
            "parallel_tool_calls" => req.parallel_tool_calls = opt_bool(v, key)?,
            "response_format" if !v.is_null() => match decode_response_format(v)? {
                Some(f) => req.response_format = Some(f),
                None => {
                    req.extra.insert(key.clone(), v.clone());
                }
            },
            "temperature" => req.temperature = opt_f64(v, key)?,
            "top_p" => req.top_p = opt_f64(v, key)?,
            "top_k" => req.top_k = opt_u64(v, key)?,
            "stop" => req.stop = string_list(v, key)?,
            "max_tokens" => {
                if let Some(n) = opt_u64(v, key)? {
                    req.max_tokens = Some(n);
                }
            }
            "max_completion_tokens" => {
                if let Some(n) = opt_u64(v, key)? {
                    req.max_tokens = Some(n);
                    req.max_tokens_field = MaxTokensField::MaxCompletionTokens;
                }
            }
            "n" => req.n = opt_u64(v, key)?,
            "seed" => req.seed = opt_i64(v, key)?,
            "presence_penalty" => req.presence_penalty = opt_f64(v, key)?,
            "frequency_penalty" => req.frequency_penalty = opt_f64(v, key)?,
            "stream" => req.stream = opt_bool(v, key)?.unwrap_or(false),
            "stream_options" if !v.is_null() => {
                let opts = req_object(v, key)?;
                req.include_usage = match opts.get("include_usage") {
                    Some(u) => opt_bool(u, "stream_options.include_usage")?.unwrap_or(false),
                    None => false,
                };
            }
            "user" => req.user = opt_str(v, key)?,
            _ => {
                req.extra.insert(key.clone(), v.clone());
            }
        }
    }
    req.tools.extend(legacy_functions);
    Ok(req)
}

fn decode_message(i: usize, v: &Value) -> Result<Message, TranslateError> {
    let path = format!("messages[{i}]");
    req_object(v, &path)?;
    let role = match req_str(v, "role", &path)? {
        "system" => Role::System,
        "developer" => Role::Developer,
        "user" => Role::User,
        "assistant" => Role::Assistant,
        "tool" | "function" => Role::Tool,
        other => {
            return Err(TranslateError::InvalidRequest(format!(
                "{path}.role: unknown role {other:?}"
            )))
        }
    };
    let content = decode_content(
        v.get("content").unwrap_or(&Value::Null),
        &format!("{path}.content"),
    )?;
    let mut m = Message::new(role, content);
    m.name = opt_str(
        v.get("name").unwrap_or(&Value::Null),
        &format!("{path}.name"),
    )?;
    if let Some(calls) = v.get("tool_calls").filter(|c| !c.is_null()) {
        for (j, c) in req_array(calls, &format!("{path}.tool_calls"))?
            .iter()
            .enumerate()
        {
            let cpath = format!("{path}.tool_calls[{j}]");
            let f = v_object(c.get("function"), &format!("{cpath}.function"))?;
            m.tool_calls.push(ToolCall {
                id: str_at(c, "id").unwrap_or_default().to_string(),
                name: req_str(f, "name", &format!("{cpath}.function"))?.to_string(),
                arguments: arguments_text(f.get("arguments")),
            });
        }
    }
    if let Some(f) = v.get("function_call").filter(|c| !c.is_null()) {
        // Legacy function calling: the function name doubles as the call id.
        let name = req_str(f, "name", &format!("{path}.function_call"))?.to_string();
        m.tool_calls.push(ToolCall {
            id: name.clone(),
            arguments: arguments_text(f.get("arguments")),
            name,
        });
    }
    m.tool_call_id = opt_str(
        v.get("tool_call_id").unwrap_or(&Value::Null),
        &format!("{path}.tool_call_id"),
    )?;
    if role == Role::Tool && m.tool_call_id.is_none() {
        m.tool_call_id = m.name.clone();
    }
    Ok(m)
}

fn v_object<'a>(v: Option<&'a Value>, path: &str) -> Result<&'a Value, TranslateError> {
    match v {
        Some(o @ Value::Object(_)) => Ok(o),
        _ => Err(TranslateError::InvalidRequest(format!(
            "{path}: expected an object"
        ))),
    }
}

fn arguments_text(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => s.clone(),
        None | Some(Value::Null) => String::new(),
        Some(other) => other.to_string(),
    }
}

fn decode_content(v: &Value, path: &str) -> Result<Vec<ContentPart>, TranslateError> {
    match v {
        Value::Null => Ok(Vec::new()),
        Value::String(s) => Ok(vec![ContentPart::Text(s.clone())]),
        Value::Array(parts) => parts
            .iter()
            .enumerate()
            .map(|(i, p)| decode_part(p, &format!("{path}[{i}]")))
            .collect(),
        _ => Err(TranslateError::InvalidRequest(format!(
            "{path}: expected a string or an array of content parts"
        ))),
    }
}

fn decode_part(p: &Value, path: &str) -> Result<ContentPart, TranslateError> {
    let kind = req_str(p, "type", path)?;
    Ok(match kind {
        "text" => ContentPart::Text(req_str(p, "text", path)?.to_string()),
        "image_url" => {
            let (url, detail) = match p.get("image_url") {
                Some(Value::String(u)) => (u.as_str(), None),
                Some(obj @ Value::Object(_)) => (
                    req_str(obj, "url", &format!("{path}.image_url"))?,
                    str_at(obj, "detail").map(str::to_string),
                ),
                _ => {
                    return Err(TranslateError::InvalidRequest(format!(
                        "{path}.image_url: expected an object with a url"
                    )))
                }
            };
            ContentPart::Image {
                source: ImageSource::from_url(url),
                detail,
            }
        }
        other => ContentPart::Other {
            kind: other.to_string(),
            raw: p.clone(),
        },
    })
}

fn decode_tool(t: &Value, path: &str) -> Result<Tool, TranslateError> {
    req_object(t, path)?;
    match str_at(t, "type").unwrap_or("function") {
        "function" => {
            let f = v_object(t.get("function"), &format!("{path}.function"))?;
            decode_function(f, &format!("{path}.function"), None)
        }
        other => Ok(Tool {
            name: str_at(t, "name").unwrap_or(other).to_string(),
            description: None,
            parameters: None,
            strict: None,
            builtin: Some(t.clone()),
        }),
    }
}

fn decode_function(f: &Value, path: &str, builtin: Option<Value>) -> Result<Tool, TranslateError> {
    Ok(Tool {
        name: req_str(f, "name", path)?.to_string(),
        description: str_at(f, "description").map(str::to_string),
        parameters: f.get("parameters").filter(|p| !p.is_null()).cloned(),
        strict: f.get("strict").and_then(Value::as_bool),
        builtin,
    })
}

fn decode_tool_choice(v: &Value) -> Option<ToolChoice> {
    match v {
        Value::String(s) => match s.as_str() {
            "auto" => Some(ToolChoice::Auto),
            "none" => Some(ToolChoice::None),
            "required" => Some(ToolChoice::Required),
            _ => None,
        },
        Value::Object(_) => {
            // `{"type":"function","function":{"name":…}}`, or legacy `{"name":…}`.
            let name = v
                .get("function")
                .and_then(|f| str_at(f, "name"))
                .or_else(|| str_at(v, "name"))?;
            Some(ToolChoice::Function(name.to_string()))
        }
        _ => None,
    }
}

fn decode_response_format(v: &Value) -> Result<Option<ResponseFormat>, TranslateError> {
    req_object(v, "response_format")?;
    Ok(match str_at(v, "type") {
        Some("text") => Some(ResponseFormat::Text),
        Some("json_object") => Some(ResponseFormat::JsonObject),
        Some("json_schema") => {
            let s = v.get("json_schema").unwrap_or(&Value::Null);
            Some(ResponseFormat::JsonSchema {
                name: str_at(s, "name").unwrap_or("response").to_string(),
                description: str_at(s, "description").map(str::to_string),
                schema: s.get("schema").filter(|x| !x.is_null()).cloned(),
                strict: s.get("strict").and_then(Value::as_bool),
            })
        }
        _ => None,
    })
}

/// Encodes a request for an OpenAI-format provider of `kind`. Streams always ask for
/// `stream_options.include_usage` (usage is how we count tokens); the stream translator drops
/// the usage chunk again when the client did not ask for it.
pub fn encode_request(
    req: &ChatRequest,
    kind: ProviderKind,
) -> Result<Map<String, Value>, TranslateError> {
    let same = req.source == Some(Format::OpenAi);
    let mut out = Map::new();
    if same {
        for (k, v) in &req.extra {
            out.insert(k.clone(), v.clone());
        }
    }
    out.insert("model".into(), req.model.clone().into());
    let mut messages = Vec::with_capacity(req.messages.len());
    for m in &req.messages {
        messages.push(encode_message(m, same)?);
    }
    out.insert("messages".into(), Value::Array(messages));
    if !req.tools.is_empty() {
        let mut tools = Vec::with_capacity(req.tools.len());
        for t in &req.tools {
            if let Some(raw) = &t.builtin {
                if !same {
                    return Err(TranslateError::unsupported(
                        Format::OpenAi,
                        format!("the provider tool {:?}", t.name),
                    ));
                }
                tools.push(raw.clone());
                continue;
            }
            let mut f = Map::new();
            f.insert("name".into(), t.name.clone().into());
            put(&mut f, "description", t.description.clone());
            put(&mut f, "parameters", t.parameters.clone());
            put(&mut f, "strict", t.strict);
            tools.push(json!({"type": "function", "function": f}));
        }
        out.insert("tools".into(), Value::Array(tools));
    }
    if let Some(choice) = &req.tool_choice {
        let v = match choice {
            ToolChoice::Auto => json!("auto"),
            ToolChoice::None => json!("none"),
            ToolChoice::Required => json!("required"),
            ToolChoice::Function(name) => json!({"type": "function", "function": {"name": name}}),
        };
        out.insert("tool_choice".into(), v);
    }
    put(&mut out, "parallel_tool_calls", req.parallel_tool_calls);
    if let Some(f) = &req.response_format {
        let v = match f {
            ResponseFormat::Text => json!({"type": "text"}),
            ResponseFormat::JsonObject => json!({"type": "json_object"}),
            ResponseFormat::JsonSchema {
                name,
                description,
                schema,
                strict,
            } => {
                let mut s = Map::new();
                s.insert("name".into(), name.clone().into());
                put(&mut s, "description", description.clone());
                put(&mut s, "schema", schema.clone());
                put(&mut s, "strict", *strict);
                json!({"type": "json_schema", "json_schema": s})
            }
        };
        out.insert("response_format".into(), v);
    }
    put(&mut out, "temperature", req.temperature.map(num));
    put(&mut out, "top_p", req.top_p.map(num));
    // `top_k` is not an OpenAI parameter (OpenAI rejects it); many compatible servers take it.
    if kind == ProviderKind::OpenAiCompatible || same {
        put(&mut out, "top_k", req.top_k);
    }
    if !req.stop.is_empty() {
        out.insert("stop".into(), json!(req.stop));
    }
    if let Some(n) = req.max_tokens {
        // Translated requests use `max_completion_tokens` (the only one o-series models take)
        // for OpenAI and Azure, `max_tokens` for compatible servers (which may not know the
        // newer name).
        let field = if same {
            req.max_tokens_field
        } else if kind == ProviderKind::OpenAiCompatible {
            MaxTokensField::MaxTokens
        } else {
            MaxTokensField::MaxCompletionTokens
        };
        let key = match field {
            MaxTokensField::MaxTokens => "max_tokens",
            MaxTokensField::MaxCompletionTokens => "max_completion_tokens",
        };
        out.insert(key.into(), n.into());
    }
    put(&mut out, "n", req.n);
    put(&mut out, "seed", req.seed);
    put(&mut out, "presence_penalty", req.presence_penalty.map(num));
    put(
        &mut out,
        "frequency_penalty",
        req.frequency_penalty.map(num),
    );
    if req.stream {
        out.insert("stream".into(), true.into());
        out.insert("stream_options".into(), json!({"include_usage": true}));
    }
    put(&mut out, "user", req.user.clone());
    Ok(out)
}

fn encode_message(m: &Message, same: bool) -> Result<Value, TranslateError> {
    let mut out = Map::new();
    let role = match m.role {
        Role::System => "system",
        Role::Developer => "developer",
        Role::User => "user",
        Role::Assistant => "assistant",
        Role::Tool => "tool",
    };
    out.insert("role".into(), role.into());
    match m.role {
        Role::System | Role::Developer | Role::Tool => {
            if let Some(bad) = m.content.iter().find_map(|p| match p {
                ContentPart::Text(_) | ContentPart::Thinking { .. } => None,
                ContentPart::Image { .. } => Some("an image".to_string()),
                ContentPart::Other { kind, .. } => Some(format!("a {kind:?} part")),
            }) {
                if !(same && m.role != Role::Tool) {
                    return Err(TranslateError::unsupported(
                        Format::OpenAi,
                        format!("{bad} in a {role} message"),
                    ));
                }
                out.insert("content".into(), encode_parts(&m.content, same)?);
            } else {
                out.insert("content".into(), m.joined_text().into());
            }
        }
        Role::User => {
            out.insert("content".into(), encode_parts(&m.content, same)?);
        }
        Role::Assistant => {
            let text = m.joined_text();
            let has_other = same
                && m.content
                    .iter()
                    .any(|p| matches!(p, ContentPart::Other { .. }));
            let content = if has_other {
                encode_parts(&m.content, same)?
            } else if text.is_empty() && !m.tool_calls.is_empty() {
                Value::Null
            } else {
                text.into()
            };
            out.insert("content".into(), content);
            if !m.tool_calls.is_empty() {
                let calls: Vec<Value> = m
                    .tool_calls
                    .iter()
                    .map(|c| {
                        json!({
                            "id": c.id,
                            "type": "function",
                            "function": {"name": c.name, "arguments": c.arguments},
                        })
                    })
                    .collect();
                out.insert("tool_calls".into(), Value::Array(calls));
            }
        }
    }
    put(
        &mut out,
        "name",
        m.name.clone().filter(|_| m.role != Role::Tool),
    );
    if m.role == Role::Tool {
        out.insert(
            "tool_call_id".into(),
            m.tool_call_id.clone().unwrap_or_default().into(),
        );
    }
    Ok(Value::Object(out))
}

/// User content: a plain string when it is one text part, else an array of parts.
fn encode_parts(parts: &[ContentPart], same: bool) -> Result<Value, TranslateError> {
    let visible: Vec<&ContentPart> = parts
        .iter()
        .filter(|p| !matches!(p, ContentPart::Thinking { .. }))
        .collect();
    if let [ContentPart::Text(t)] = visible.as_slice() {
        return Ok(Value::String(t.clone()));
    }
    let mut out = Vec::with_capacity(visible.len());
    for p in visible {
        out.push(match p {
            ContentPart::Text(t) => json!({"type": "text", "text": t}),
            ContentPart::Image { source, detail } => {
                let mut img = Map::new();
                img.insert("url".into(), source.to_url().into());
                put(&mut img, "detail", detail.clone());
                json!({"type": "image_url", "image_url": img})
            }
            ContentPart::Other { kind, raw } => {
                if !same {
                    return Err(TranslateError::unsupported(
                        Format::OpenAi,
                        format!("a {kind:?} content part"),
                    ));
                }
                raw.clone()
            }
            ContentPart::Thinking { .. } => continue,
        });
    }
    Ok(Value::Array(out))
}

// ---------------------------------------------------------------------------------------------
// Responses

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
                let calls: Vec<Value> = c
                    .tool_calls
                    .iter()
                    .map(|t| {
                        json!({
                            "id": t.id,
                            "type": "function",
                            "function": {"name": t.name, "arguments": t.arguments},
                        })
                    })
                    .collect();
                msg.insert("tool_calls".into(), Value::Array(calls));
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

// ---------------------------------------------------------------------------------------------
// Streams

/// Classifies one event of a chat-completions, completions or responses stream.
pub fn classify_event(event: &SseEvent) -> EventClass {
    if event.is_done() {
        return EventClass::Done;
    }
    if event.data.trim().is_empty() {
        return match event.event.as_deref() {
            Some("error") => EventClass::Error,
            _ => EventClass::Preamble,
        };
    }
    if event.event.as_deref() == Some("error") {
        return EventClass::Error;
    }
    let Ok(value) = serde_json::from_str::<Value>(&event.data) else {
        // Not ours to judge: a provider's own format we pass through untouched.
        return EventClass::Content;
    };
    classify_value(&value)
}

/// [`classify_event`] for an already parsed `data:` payload.
pub(crate) fn classify_value(value: &Value) -> EventClass {
    if value.get("error").is_some_and(|e| !e.is_null()) {
        return EventClass::Error;
    }
    // Responses API: typed events; only output deltas are content.
    if let Some(kind) = value.get("type").and_then(|t| t.as_str()) {
        if kind == "error" || kind == "response.failed" {
            return EventClass::Error;
        }
        if kind.starts_with("response.") {
            return if kind.ends_with(".delta") || kind == "response.completed" {
                EventClass::Content
            } else {
                EventClass::Preamble
            };
        }
    }
    let Some(choices) = value.get("choices").and_then(|c| c.as_array()) else {
        return EventClass::Preamble;
    };
    let has_content = choices.iter().any(|choice| {
        let text = choice.get("text").and_then(|t| t.as_str());
        let delta = choice.get("delta");
        let non_empty_str =
            |v: Option<&Value>| v.and_then(|v| v.as_str()).is_some_and(|s| !s.is_empty());
        text.is_some_and(|t| !t.is_empty())
            || delta.is_some_and(|d| {
                non_empty_str(d.get("content"))
                    || non_empty_str(d.get("refusal"))
                    || d.get("tool_calls").is_some_and(|t| !t.is_null())
                    || d.get("function_call").is_some_and(|t| !t.is_null())
            })
    });
    if has_content {
        EventClass::Content
    } else {
        EventClass::Preamble
    }
}

/// Whether a chunk carries only usage (`choices: []` and a non-null `usage`): the chunk
/// `stream_options.include_usage` adds at the end.
pub(crate) fn is_usage_only(value: &Value) -> bool {
    value
        .get("choices")
        .and_then(Value::as_array)
        .is_some_and(Vec::is_empty)
        && value.get("usage").is_some_and(Value::is_object)
}

/// Turns upstream `chat.completion.chunk` events into canonical stream events.
#[derive(Debug, Default)]
pub(crate) struct ChunkDecoder {
    started: bool,
    /// (choice, tool index) pairs whose start was reported.
    tools: Vec<(u32, u32)>,
}

impl ChunkDecoder {
    pub(crate) fn decode(&mut self, event: &SseEvent, out: &mut Vec<StreamEvent>) {
        if event.is_done() {
            out.push(StreamEvent::Done);
            return;
        }
        if event.data.trim().is_empty() {
            out.push(StreamEvent::KeepAlive);
            return;
        }
        let Ok(v) = serde_json::from_str::<Value>(&event.data) else {
            return;
        };
        if let Some(err) = v.get("error").filter(|e| !e.is_null()) {
            out.push(StreamEvent::Error(ProviderError::from_openai_object(
                None, err,
            )));
            return;
        }
        if !self.started {
            self.started = true;
            out.push(StreamEvent::Start {
                id: str_at(&v, "id")
                    .filter(|s| !s.is_empty())
                    .map(str::to_string),
                model: str_at(&v, "model")
                    .filter(|s| !s.is_empty())
                    .map(str::to_string),
            });
        }
        for c in array_at(&v, "choices") {
            let Some(choice) = u64_at(c, "index")
                .or(Some(0))
                .and_then(|n| u32::try_from(n).ok())
            else {
                continue;
            };
            let delta = c.get("delta").unwrap_or(&Value::Null);
            for key in ["content", "refusal"] {
                if let Some(text) = str_at(delta, key).filter(|t| !t.is_empty()) {
                    out.push(StreamEvent::Text {
                        choice,
                        text: text.to_string(),
                    });
                }
            }
            for (pos, t) in array_at(delta, "tool_calls").iter().enumerate() {
                let index = u64_at(t, "index")
                    .and_then(|n| u32::try_from(n).ok())
                    .unwrap_or(pos as u32);
                let f = t.get("function").unwrap_or(&Value::Null);
                self.tool_delta(choice, index, str_at(t, "id"), f, out);
            }
            if let Some(f) = delta.get("function_call").filter(|f| f.is_object()) {
                self.tool_delta(choice, 0, None, f, out);
            }
            if let Some(reason) = str_at(c, "finish_reason") {
                out.push(StreamEvent::Finish {
                    choice,
                    reason: finish_from_openai(reason),
                });
            }
        }
        if let Some(u) = v.get("usage").filter(|u| u.is_object()) {
            out.push(StreamEvent::Usage(decode_usage(u)));
        }
    }

    fn tool_delta(
        &mut self,
        choice: u32,
        index: u32,
        id: Option<&str>,
        f: &Value,
        out: &mut Vec<StreamEvent>,
    ) {
        let name = str_at(f, "name");
        if !self.tools.contains(&(choice, index)) {
            if id.is_none() && name.is_none() {
                // Arguments for a call that was never announced: nothing to attach them to.
                return;
            }
            self.tools.push((choice, index));
            out.push(StreamEvent::ToolCallStart {
                choice,
                index,
                id: id
                    .map(str::to_string)
                    .unwrap_or_else(|| format!("call_{index}")),
                name: name.unwrap_or_default().to_string(),
            });
        }
        if let Some(args) = str_at(f, "arguments").filter(|a| !a.is_empty()) {
            out.push(StreamEvent::ToolCallArgs {
                choice,
                index,
                arguments: args.to_string(),
            });
        }
    }
}

#[derive(Debug, Default)]
struct ChoiceState {
    role_sent: bool,
    finished: bool,
    /// Tool indexes started (arguments for others are dropped).
    tools: Vec<u32>,
}

/// Writes canonical stream events as `chat.completion.chunk` events: a role chunk first for
/// each choice, content and tool-call deltas, one finish chunk per choice, the usage chunk
/// (`choices: []`) when the client asked for it, then `data: [DONE]`.
#[derive(Debug)]
pub(crate) struct ChunkEncoder {
    id: String,
    model: String,
    created: u64,
    include_usage: bool,
    choices: BTreeMap<u32, ChoiceState>,
    usage: Option<Usage>,
    /// `[DONE]` or an error was written: nothing more is.
    ended: bool,
    /// Whether the id/model are fixed (after the first chunk written).
    fixed: bool,
}

impl ChunkEncoder {
    pub(crate) fn new(id: String, model: String, created: u64, include_usage: bool) -> Self {
        ChunkEncoder {
            id,
            model,
            created,
            include_usage,
            choices: BTreeMap::new(),
            usage: None,
            ended: false,
            fixed: false,
        }
    }

    fn chunk(&mut self, out: &mut Vec<u8>, choices: Value, usage: Option<Value>) {
        self.fixed = true;
        let mut v = json!({
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": choices,
        });
        if let (Some(u), Some(obj)) = (usage, v.as_object_mut()) {
            obj.insert("usage".into(), u);
        }
        write_sse(out, None, &v);
    }

    fn choice_delta(&mut self, out: &mut Vec<u8>, choice: u32, delta: Value) {
        self.chunk(
            out,
            json!([{"index": choice, "delta": delta, "logprobs": null, "finish_reason": null}]),
            None,
        );
    }

    /// Writes the role chunk for `choice` if not yet written; `false` if the choice finished.
    fn open_choice(&mut self, out: &mut Vec<u8>, choice: u32) -> bool {
        let state = self.choices.entry(choice).or_default();
        if state.finished {
            return false;
        }
        if !state.role_sent {
            state.role_sent = true;
            self.choice_delta(
                out,
                choice,
                json!({"role": "assistant", "content": "", "refusal": null}),
            );
        }
        true
    }

    /// Writes one event; returns what it means for the commit point.
    pub(crate) fn encode(&mut self, event: StreamEvent, out: &mut Vec<u8>) -> EventClass {
        if self.ended {
            return EventClass::Preamble;
        }
        match event {
            StreamEvent::Start { id, model } => {
                if !self.fixed {
                    if let Some(id) = id {
                        self.id = id;
                    }
                    if let Some(model) = model {
                        self.model = model;
                    }
                }
                EventClass::Preamble
            }
            StreamEvent::Text { choice, text } => {
                if text.is_empty() || !self.open_choice(out, choice) {
                    return EventClass::Preamble;
                }
                self.choice_delta(out, choice, json!({"content": text}));
                EventClass::Content
            }
            StreamEvent::ToolCallStart {
                choice,
                index,
                id,
                name,
            } => {
                if !self.open_choice(out, choice) {
                    return EventClass::Preamble;
                }
                if let Some(state) = self.choices.get_mut(&choice) {
                    if state.tools.contains(&index) {
                        return EventClass::Preamble;
                    }
                    state.tools.push(index);
                }
                self.choice_delta(
                    out,
                    choice,
                    json!({"tool_calls": [{
                        "index": index,
                        "id": id,
                        "type": "function",
                        "function": {"name": name, "arguments": ""},
                    }]}),
                );
                EventClass::Content
            }
            StreamEvent::ToolCallArgs {
                choice,
                index,
                arguments,
            } => {
                let started = self
                    .choices
                    .get(&choice)
                    .is_some_and(|s| !s.finished && s.tools.contains(&index));
                if !started || arguments.is_empty() {
                    return EventClass::Preamble;
                }
                self.choice_delta(
                    out,
                    choice,
                    json!({"tool_calls": [{"index": index, "function": {"arguments": arguments}}]}),
                );
                EventClass::Content
            }
            StreamEvent::Finish { choice, reason } => {
                if !self.open_choice(out, choice) {
                    return EventClass::Preamble;
                }
                if let Some(state) = self.choices.get_mut(&choice) {
                    state.finished = true;
                }
                self.chunk(
                    out,
                    json!([{
                        "index": choice,
                        "delta": {},
                        "logprobs": null,
                        "finish_reason": finish_to_openai(&reason),
                    }]),
                    None,
                );
                EventClass::Preamble
            }
            StreamEvent::Usage(u) => {
                self.usage = Some(u);
                EventClass::Preamble
            }
            StreamEvent::Error(err) => {
                self.ended = true;
                super::encode_stream_error(super::ClientFormat::OpenAi, &err, out);
                EventClass::Error
            }
            StreamEvent::KeepAlive => {
                write_keep_alive(out);
                EventClass::Preamble
            }
            StreamEvent::Done => {
                self.done(out);
                EventClass::Done
            }
        }
    }

    /// Ends the stream properly: finishes open choices, the usage chunk if asked, `[DONE]`.
    fn done(&mut self, out: &mut Vec<u8>) {
        if self.choices.is_empty() {
            // An answer with no events at all still has one (empty) choice.
            self.open_choice(out, 0);
        }
        let open: Vec<u32> = self
            .choices
            .iter()
            .filter(|(_, s)| !s.finished)
            .map(|(i, _)| *i)
            .collect();
        for choice in open {
            self.encode(
                StreamEvent::Finish {
                    choice,
                    reason: FinishReason::Stop,
                },
                out,
            );
        }
        if self.include_usage {
            let usage = encode_usage(&self.usage.unwrap_or_default());
            self.chunk(out, json!([]), Some(usage));
        }
        out.extend_from_slice(b"data: [DONE]\n\n");
        self.ended = true;
    }

    /// At the upstream's end of stream: `Done` if the answer was complete (every choice
    /// finished; only Gemini ends this way), else a terminal error event.
    pub(crate) fn finish(&mut self, out: &mut Vec<u8>) -> EventClass {
        if self.ended {
            return EventClass::Done;
        }
        let complete = !self.choices.is_empty() && self.choices.values().all(|s| s.finished);
        if complete {
            self.done(out);
            EventClass::Done
        } else {
            self.encode(StreamEvent::Error(truncated_error()), out)
        }
    }

    pub(crate) fn ended(&self) -> bool {
        self.ended
    }
}

/// The error a stream gets when the upstream stopped before its end marker.
pub(crate) fn truncated_error() -> ProviderError {
    ProviderError::new(
        super::ErrorKind::Api,
        "the upstream stream ended before the response was complete",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn ev(data: &str) -> SseEvent {
        SseEvent {
            event: None,
            data: data.into(),
            id: None,
            raw: Bytes::new(),
        }
    }

    #[test]
    fn stream_events_are_classified() {
        let role = r#"{"choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}"#;
        let text = r#"{"choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":null}]}"#;
        let tool = r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0}]}}]}"#;
        let usage = r#"{"choices":[],"usage":{"prompt_tokens":1}}"#;
        assert_eq!(classify_event(&ev(role)), EventClass::Preamble);
        assert_eq!(classify_event(&ev(text)), EventClass::Content);
        assert_eq!(classify_event(&ev(tool)), EventClass::Content);
        assert_eq!(classify_event(&ev(usage)), EventClass::Preamble);
        // A finish without any content before it is not content (an empty answer).
        let finish = r#"{"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}"#;
        assert_eq!(classify_event(&ev(finish)), EventClass::Preamble);
        assert_eq!(classify_event(&ev("[DONE]")), EventClass::Done);
        assert_eq!(
            classify_event(&ev(r#"{"error":{"message":"x"}}"#)),
            EventClass::Error
        );
        assert_eq!(
            classify_event(&ev(r#"{"type":"response.created"}"#)),
            EventClass::Preamble
        );
        assert_eq!(
            classify_event(&ev(r#"{"type":"response.output_text.delta","delta":"a"}"#)),
            EventClass::Content
        );
        assert_eq!(classify_event(&ev("")), EventClass::Preamble);
    }

    #[test]
    fn request_fields_decode_and_reencode() {
        let body = json!({
            "model": "gpt-4o",
            "messages": [
                {"role": "developer", "content": "Be brief."},
                {"role": "user", "content": [
                    {"type": "text", "text": "What is this?"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo=", "detail": "low"}}
                ]},
                {"role": "assistant", "content": null, "tool_calls": [
                    {"id": "call_1", "type": "function", "function": {"name": "look", "arguments": "{\"x\":1}"}}
                ]},
                {"role": "tool", "tool_call_id": "call_1", "content": "a cat"}
            ],
            "max_completion_tokens": 50,
            "stop": "END",
            "stream": true,
            "stream_options": {"include_usage": false},
            "logit_bias": {"50256": -100}
        });
        let req = decode_request(body.as_object().unwrap()).unwrap();
        assert_eq!(req.messages.len(), 4);
        assert_eq!(req.stop, vec!["END".to_string()]);
        assert_eq!(req.max_tokens, Some(50));
        assert!(!req.include_usage);
        assert!(req.extra.contains_key("logit_bias"));
        match &req.messages[1].content[1] {
            ContentPart::Image { source, detail } => {
                assert_eq!(
                    source,
                    &ImageSource::Base64 {
                        media_type: "image/png".into(),
                        data: "iVBORw0KGgo=".into()
                    }
                );
                assert_eq!(detail.as_deref(), Some("low"));
            }
            other => panic!("{other:?}"),
        }
        let out = Value::Object(encode_request(&req, ProviderKind::OpenAi).unwrap());
        assert_eq!(out["messages"], body["messages"]);
        assert_eq!(out["stream_options"], json!({"include_usage": true}));
        assert_eq!(out["max_completion_tokens"], 50);
        assert_eq!(out["logit_bias"], body["logit_bias"]);
    }

    #[test]
    fn malformed_requests_name_the_field() {
        for (body, needle) in [
            (json!({"messages": "hi"}), "messages"),
            (json!({"messages": [{"content": "x"}]}), "messages[0].role"),
            (
                json!({"messages": [{"role": "wizard", "content": "x"}]}),
                "messages[0].role",
            ),
            (json!({"messages": [], "temperature": "hot"}), "temperature"),
            (json!({"messages": [], "max_tokens": -1}), "max_tokens"),
        ] {
            let err = decode_request(body.as_object().unwrap()).unwrap_err();
            assert!(err.to_string().contains(needle), "{err}");
        }
    }
}
