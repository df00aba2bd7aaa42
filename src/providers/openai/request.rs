//! OpenAI Chat Completions requests: decoding a client's body into the canonical request, and
//! encoding a canonical request for an `openai`, `azure-openai` or `openai-compatible`
//! provider.

use serde_json::{json, Map, Value};

use super::{arguments_text, encode_tool_calls, reasoning_text};
use crate::providers::canonical::*;
use crate::providers::json::{
    num, opt_bool, opt_f64, opt_i64, opt_str, opt_u64, put, req_array, req_object, req_str, str_at,
    string_list,
};
use crate::providers::TranslateError;
use crate::vocab::ProviderKind;

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
            "reasoning_effort" if !v.is_null() => {
                req.reasoning = opt_str(v, key)?.map(|effort| Reasoning {
                    disabled: effort == "none",
                    effort: Some(effort),
                    ..Reasoning::default()
                });
            }
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
    if role == Role::Assistant {
        // DeepSeek/vLLM-style reasoning replayed in history (no signature).
        if let Some(text) = reasoning_text(v).filter(|t| !t.is_empty()) {
            m.content.insert(
                0,
                ContentPart::Thinking {
                    text: text.to_string(),
                    signature: None,
                },
            );
        }
    }
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
    // Replayed reasoning goes to compatible servers as `reasoning_content` (DeepSeek's
    // thinking mode requires it back on tool-call turns); OpenAI's API does not take it.
    let replay_reasoning = same || kind == ProviderKind::OpenAiCompatible;
    let mut messages = Vec::with_capacity(req.messages.len());
    for m in &req.messages {
        messages.push(encode_message(m, same, replay_reasoning)?);
    }
    out.insert("messages".into(), Value::Array(messages));
    encode_tools(req, same, &mut out)?;
    if let Some(f) = &req.response_format {
        out.insert("response_format".into(), encode_response_format(f));
    }
    encode_generation(req, kind, same, &mut out);
    if req.stream {
        out.insert("stream".into(), true.into());
        out.insert("stream_options".into(), json!({"include_usage": true}));
    }
    put(&mut out, "user", req.user.clone());
    if let Some(effort) = req
        .reasoning
        .as_ref()
        .and_then(|r| reasoning_effort(r, same))
    {
        out.insert("reasoning_effort".into(), effort.into());
    }
    Ok(out)
}

/// `reasoning_effort` for a request's reasoning: its effort, else the level nearest its
/// budget. Sent whenever the client asked for reasoning (the gateway cannot know which models
/// take it); reasoning turned off is left out for other formats' clients (`none` is only
/// known to some models, and a model that cannot reason refuses the field altogether).
fn reasoning_effort(r: &Reasoning, same: bool) -> Option<String> {
    if same {
        return r.effort.clone();
    }
    if r.disabled || r.effort.as_deref() == Some("none") {
        return None;
    }
    match r.effort.as_deref() {
        // Anthropic's level above high.
        Some("max") => Some("high".to_string()),
        Some(e) => Some(e.to_string()),
        None => r
            .budget_tokens
            .map(|b| crate::providers::anthropic::thinking::effort_for_budget(b).to_string()),
    }
}

/// `tools`, `tool_choice` and `parallel_tool_calls`. A provider tool (not a function) only
/// goes to an OpenAI provider when the client spoke OpenAI.
fn encode_tools(
    req: &ChatRequest,
    same: bool,
    out: &mut Map<String, Value>,
) -> Result<(), TranslateError> {
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
    put(out, "parallel_tool_calls", req.parallel_tool_calls);
    Ok(())
}

fn encode_response_format(f: &ResponseFormat) -> Value {
    match f {
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
    }
}

/// The sampling and length parameters, each in the spelling `kind` takes.
fn encode_generation(
    req: &ChatRequest,
    kind: ProviderKind,
    same: bool,
    out: &mut Map<String, Value>,
) {
    put(out, "temperature", req.temperature.map(num));
    put(out, "top_p", req.top_p.map(num));
    // `top_k` is not an OpenAI parameter (OpenAI rejects it); many compatible servers take it.
    if kind == ProviderKind::OpenAiCompatible || same {
        put(out, "top_k", req.top_k);
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
    put(out, "n", req.n);
    put(out, "seed", req.seed);
    put(out, "presence_penalty", req.presence_penalty.map(num));
    put(out, "frequency_penalty", req.frequency_penalty.map(num));
}

fn encode_message(
    m: &Message,
    same: bool,
    replay_reasoning: bool,
) -> Result<Value, TranslateError> {
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
                ContentPart::Text(_)
                | ContentPart::Thinking { .. }
                | ContentPart::RedactedThinking { .. } => None,
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
            if replay_reasoning {
                let reasoning = joined_thinking(&m.content);
                if !reasoning.is_empty() {
                    out.insert("reasoning_content".into(), reasoning.into());
                }
            }
            if !m.tool_calls.is_empty() {
                out.insert("tool_calls".into(), encode_tool_calls(&m.tool_calls));
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
        .filter(|p| {
            !matches!(
                p,
                ContentPart::Thinking { .. } | ContentPart::RedactedThinking { .. }
            )
        })
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
            ContentPart::Thinking { .. } | ContentPart::RedactedThinking { .. } => continue,
        });
    }
    Ok(Value::Array(out))
}
