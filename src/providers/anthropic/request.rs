//! Anthropic Messages requests: decoding a `/v1/messages` client's body into the canonical
//! request (top-level `system`, `stop_sequences`, `metadata.user_id`, `input_schema` tools,
//! tool results as user `tool_result` blocks), and encoding a canonical request for an
//! `anthropic` provider (required `max_tokens`, same-role turns merged).

use serde_json::{json, Map, Value};

use super::{tool_use_block, DEFAULT_MAX_TOKENS};
use crate::providers::canonical::*;
use crate::providers::json::{
    num, opt_bool, opt_f64, opt_str, opt_u64, put, req_array, req_object, req_str, str_at,
    string_list,
};
use crate::providers::TranslateError;

/// Decodes a Messages request body.
pub fn decode_request(body: &Map<String, Value>) -> Result<ChatRequest, TranslateError> {
    let mut req = ChatRequest {
        source: Some(Format::Anthropic),
        ..ChatRequest::default()
    };
    let mut system = None;
    for (key, v) in body {
        match key.as_str() {
            "model" => req.model = opt_str(v, "model")?.unwrap_or_default(),
            "system" => system = decode_system(v)?,
            "messages" => {
                for (i, m) in req_array(v, "messages")?.iter().enumerate() {
                    decode_message(i, m, &mut req.messages)?;
                }
            }
            "max_tokens" => req.max_tokens = opt_u64(v, key)?,
            "stop_sequences" => req.stop = string_list(v, key)?,
            "temperature" => req.temperature = opt_f64(v, key)?,
            "top_p" => req.top_p = opt_f64(v, key)?,
            "top_k" => req.top_k = opt_u64(v, key)?,
            "stream" => req.stream = opt_bool(v, key)?.unwrap_or(false),
            "metadata" if !v.is_null() => {
                req_object(v, key)?;
                req.user = opt_str(v.get("user_id").unwrap_or(&Value::Null), "metadata.user_id")?;
            }
            "tools" if !v.is_null() => {
                for (i, t) in req_array(v, key)?.iter().enumerate() {
                    req.tools.push(decode_tool(t, &format!("tools[{i}]"))?);
                }
            }
            "tool_choice" if !v.is_null() => {
                let (choice, parallel) = decode_tool_choice(v)?;
                req.tool_choice = choice;
                req.parallel_tool_calls = parallel;
            }
            "thinking" => match super::thinking::decode_thinking(v)? {
                Some(r) => req.reasoning = Some(r),
                None if v.is_null() => {}
                None => {
                    req.extra.insert(key.clone(), v.clone());
                }
            },
            _ => {
                req.extra.insert(key.clone(), v.clone());
            }
        }
    }
    if let Some(system) = system {
        req.messages.insert(0, system);
    }
    super::thinking::decode_effort(body, &mut req.reasoning);
    Ok(req)
}

fn decode_system(v: &Value) -> Result<Option<Message>, TranslateError> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(Message::text(Role::System, s.clone()))),
        Value::Array(blocks) => {
            let mut parts = Vec::with_capacity(blocks.len());
            for (i, b) in blocks.iter().enumerate() {
                parts.push(decode_block(b, &format!("system[{i}]"))?);
            }
            Ok(Some(Message::new(Role::System, parts)))
        }
        _ => Err(TranslateError::InvalidRequest(
            "system: expected a string or an array of text blocks".into(),
        )),
    }
}

/// Decodes one message; a user turn holding `tool_result` blocks becomes tool messages
/// (and user messages for the other blocks, in order).
fn decode_message(i: usize, m: &Value, out: &mut Vec<Message>) -> Result<(), TranslateError> {
    let path = format!("messages[{i}]");
    req_object(m, &path)?;
    let role = match req_str(m, "role", &path)? {
        "user" => Role::User,
        "assistant" => Role::Assistant,
        other => {
            return Err(TranslateError::InvalidRequest(format!(
                "{path}.role: expected \"user\" or \"assistant\", not {other:?}"
            )))
        }
    };
    let blocks = match m.get("content") {
        Some(Value::String(s)) => {
            out.push(Message::text(role, s.clone()));
            return Ok(());
        }
        Some(Value::Array(blocks)) => blocks,
        _ => {
            return Err(TranslateError::InvalidRequest(format!(
                "{path}.content: expected a string or an array of content blocks"
            )))
        }
    };
    let mut current = Message::new(role, Vec::new());
    let mut pushed_any = false;
    for (j, b) in blocks.iter().enumerate() {
        let bpath = format!("{path}.content[{j}]");
        match str_at(b, "type") {
            Some("tool_result") if role == Role::User => {
                if !current.content.is_empty() {
                    out.push(std::mem::replace(
                        &mut current,
                        Message::new(role, Vec::new()),
                    ));
                }
                out.push(decode_tool_result(b, &bpath)?);
                pushed_any = true;
            }
            Some("tool_use") if role == Role::Assistant => {
                current.tool_calls.push(ToolCall {
                    id: req_str(b, "id", &bpath)?.to_string(),
                    name: req_str(b, "name", &bpath)?.to_string(),
                    arguments: b
                        .get("input")
                        .map_or_else(|| "{}".to_string(), Value::to_string),
                });
            }
            _ => current.content.push(decode_block(b, &bpath)?),
        }
    }
    if !current.content.is_empty() || !current.tool_calls.is_empty() || !pushed_any {
        out.push(current);
    }
    Ok(())
}

fn decode_tool_result(b: &Value, path: &str) -> Result<Message, TranslateError> {
    let content = match b.get("content") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(s)) => vec![ContentPart::Text(s.clone())],
        Some(Value::Array(blocks)) => blocks
            .iter()
            .enumerate()
            .map(|(k, c)| decode_block(c, &format!("{path}.content[{k}]")))
            .collect::<Result<_, _>>()?,
        Some(_) => {
            return Err(TranslateError::InvalidRequest(format!(
                "{path}.content: expected a string or an array of blocks"
            )))
        }
    };
    let mut m = Message::new(Role::Tool, content);
    m.tool_call_id = Some(req_str(b, "tool_use_id", path)?.to_string());
    m.is_error = b.get("is_error").and_then(Value::as_bool).unwrap_or(false);
    Ok(m)
}

fn decode_block(b: &Value, path: &str) -> Result<ContentPart, TranslateError> {
    let kind = req_str(b, "type", path)?;
    Ok(match kind {
        "text" => ContentPart::Text(req_str(b, "text", path)?.to_string()),
        "image" => {
            let src = b.get("source").unwrap_or(&Value::Null);
            match str_at(src, "type") {
                Some("base64") => ContentPart::Image {
                    source: ImageSource::Base64 {
                        media_type: req_str(src, "media_type", &format!("{path}.source"))?
                            .to_string(),
                        data: req_str(src, "data", &format!("{path}.source"))?.to_string(),
                    },
                    detail: None,
                },
                Some("url") => ContentPart::Image {
                    source: ImageSource::Url(
                        req_str(src, "url", &format!("{path}.source"))?.to_string(),
                    ),
                    detail: None,
                },
                _ => ContentPart::Other {
                    kind: "image".into(),
                    raw: b.clone(),
                },
            }
        }
        "thinking" => ContentPart::Thinking {
            text: str_at(b, "thinking").unwrap_or_default().to_string(),
            signature: str_at(b, "signature").map(str::to_string),
        },
        "redacted_thinking" => ContentPart::RedactedThinking {
            data: str_at(b, "data").unwrap_or_default().to_string(),
        },
        other => ContentPart::Other {
            kind: other.to_string(),
            raw: b.clone(),
        },
    })
}

fn decode_tool(t: &Value, path: &str) -> Result<Tool, TranslateError> {
    req_object(t, path)?;
    let name = req_str(t, "name", path)?.to_string();
    match str_at(t, "type") {
        None | Some("custom") => Ok(Tool {
            name,
            description: str_at(t, "description").map(str::to_string),
            parameters: t.get("input_schema").filter(|s| !s.is_null()).cloned(),
            strict: t.get("strict").and_then(Value::as_bool),
            builtin: None,
        }),
        Some(_) => Ok(Tool {
            name,
            description: None,
            parameters: None,
            strict: None,
            builtin: Some(t.clone()),
        }),
    }
}

fn decode_tool_choice(v: &Value) -> Result<(Option<ToolChoice>, Option<bool>), TranslateError> {
    req_object(v, "tool_choice")?;
    let choice = match str_at(v, "type") {
        Some("auto") => Some(ToolChoice::Auto),
        Some("any") => Some(ToolChoice::Required),
        Some("none") => Some(ToolChoice::None),
        Some("tool") => Some(ToolChoice::Function(
            req_str(v, "name", "tool_choice")?.to_string(),
        )),
        _ => {
            return Err(TranslateError::InvalidRequest(
                "tool_choice.type: expected auto, any, tool or none".into(),
            ))
        }
    };
    let parallel = match v.get("disable_parallel_tool_use") {
        Some(d) => opt_bool(d, "tool_choice.disable_parallel_tool_use")?.map(|d| !d),
        None => None,
    };
    Ok((choice, parallel))
}

/// Encodes a request for an Anthropic provider. `response_format` (JSON mode) has no
/// Messages equivalent and is dropped; `seed` and the penalties likewise. Thinking and
/// redacted-thinking parts are only sent back when the client spoke Anthropic (their
/// signatures are Anthropic's; Anthropic rejects unsigned or foreign ones); `reasoning`
/// becomes `thinking` (see [`super::thinking`]).
pub fn encode_request(req: &ChatRequest) -> Result<Map<String, Value>, TranslateError> {
    let same = req.source == Some(Format::Anthropic);
    if req.n.is_some_and(|n| n > 1) {
        return Err(TranslateError::unsupported(
            Format::Anthropic,
            "more than one choice (n > 1)",
        ));
    }
    let mut out = Map::new();
    if same {
        for (k, v) in &req.extra {
            out.insert(k.clone(), v.clone());
        }
    }
    out.insert("model".into(), req.model.clone().into());
    out.insert(
        "max_tokens".into(),
        req.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS).into(),
    );
    let (system, turns) = encode_messages(&req.messages, same)?;
    if !system.is_empty() {
        out.insert("system".into(), collapse(system));
    }
    out.insert("messages".into(), encode_turns(turns));
    encode_generation(req, &mut out);
    encode_tools(req, same, &mut out)?;
    if let Some(choice) = encode_tool_choice(req) {
        out.insert("tool_choice".into(), choice);
    }
    super::thinking::encode_thinking(req, &mut out);
    Ok(out)
}

/// The system blocks (system and developer messages, wherever they are) and the turns, with
/// tool results as user `tool_result` blocks and same-role turns merged.
#[allow(clippy::type_complexity)]
fn encode_messages(
    messages: &[Message],
    same: bool,
) -> Result<(Vec<Value>, Vec<(Role, Vec<Value>)>), TranslateError> {
    let mut system: Vec<Value> = Vec::new();
    let mut turns: Vec<(Role, Vec<Value>)> = Vec::new();
    for m in messages {
        match m.role {
            Role::System | Role::Developer => {
                for p in &m.content {
                    if let Some(block) = encode_part(p, same)? {
                        system.push(block);
                    }
                }
            }
            Role::User => push_turn(&mut turns, Role::User, encode_parts(&m.content, same)?),
            Role::Assistant => {
                let mut blocks = encode_parts(&m.content, same)?;
                blocks.extend(m.tool_calls.iter().map(tool_use_block));
                if !blocks.is_empty() {
                    push_turn(&mut turns, Role::Assistant, blocks);
                }
            }
            Role::Tool => push_turn(&mut turns, Role::User, vec![tool_result_block(m, same)?]),
        }
    }
    Ok((system, turns))
}

/// A tool message as a `tool_result` block.
fn tool_result_block(m: &Message, same: bool) -> Result<Value, TranslateError> {
    let mut block = Map::new();
    block.insert("type".into(), "tool_result".into());
    block.insert(
        "tool_use_id".into(),
        m.tool_call_id.clone().unwrap_or_default().into(),
    );
    let parts = encode_parts(&m.content, same)?;
    if !parts.is_empty() {
        block.insert("content".into(), collapse(parts));
    }
    if m.is_error {
        block.insert("is_error".into(), true.into());
    }
    Ok(Value::Object(block))
}

/// The `messages` array.
fn encode_turns(turns: Vec<(Role, Vec<Value>)>) -> Value {
    let messages: Vec<Value> = turns
        .into_iter()
        .map(|(role, mut blocks)| {
            if role == Role::User {
                // Tool results must come first in their user turn.
                blocks.sort_by_key(|b| str_at(b, "type") != Some("tool_result"));
            }
            let role = if role == Role::User {
                "user"
            } else {
                "assistant"
            };
            json!({"role": role, "content": collapse(blocks)})
        })
        .collect();
    Value::Array(messages)
}

/// `stop_sequences`, the sampling parameters, `stream` and `metadata.user_id`.
fn encode_generation(req: &ChatRequest, out: &mut Map<String, Value>) {
    if !req.stop.is_empty() {
        out.insert("stop_sequences".into(), json!(req.stop));
    }
    // Anthropic's range is [0, 1] (OpenAI's [0, 2]).
    put(
        out,
        "temperature",
        req.temperature.map(|t| num(t.clamp(0.0, 1.0))),
    );
    put(out, "top_p", req.top_p.map(num));
    put(out, "top_k", req.top_k);
    if req.stream {
        out.insert("stream".into(), true.into());
    }
    if let Some(user) = &req.user {
        out.insert("metadata".into(), json!({"user_id": user}));
    }
}

/// `tools`. A provider tool (not a function) only goes to an Anthropic provider when the
/// client spoke Anthropic.
fn encode_tools(
    req: &ChatRequest,
    same: bool,
    out: &mut Map<String, Value>,
) -> Result<(), TranslateError> {
    if req.tools.is_empty() {
        return Ok(());
    }
    let mut tools = Vec::with_capacity(req.tools.len());
    for t in &req.tools {
        if let Some(raw) = &t.builtin {
            if !same {
                return Err(TranslateError::unsupported(
                    Format::Anthropic,
                    format!("the provider tool {:?}", t.name),
                ));
            }
            tools.push(raw.clone());
            continue;
        }
        let mut tool = Map::new();
        tool.insert("name".into(), t.name.clone().into());
        put(&mut tool, "description", t.description.clone());
        tool.insert(
            "input_schema".into(),
            t.parameters
                .clone()
                .unwrap_or_else(|| json!({"type": "object", "properties": {}})),
        );
        if same {
            put(&mut tool, "strict", t.strict);
        }
        tools.push(Value::Object(tool));
    }
    out.insert("tools".into(), Value::Array(tools));
    Ok(())
}

/// `tool_choice`, carrying `parallel_tool_calls: false` as `disable_parallel_tool_use`.
fn encode_tool_choice(req: &ChatRequest) -> Option<Value> {
    let disable_parallel = req.parallel_tool_calls == Some(false);
    let mut choice = match &req.tool_choice {
        Some(ToolChoice::Auto) => json!({"type": "auto"}),
        Some(ToolChoice::Required) => json!({"type": "any"}),
        Some(ToolChoice::None) => json!({"type": "none"}),
        Some(ToolChoice::Function(name)) => json!({"type": "tool", "name": name}),
        None if disable_parallel && !req.tools.is_empty() => json!({"type": "auto"}),
        None => return None,
    };
    if disable_parallel && req.tool_choice != Some(ToolChoice::None) {
        if let Some(obj) = choice.as_object_mut() {
            obj.insert("disable_parallel_tool_use".into(), true.into());
        }
    }
    Some(choice)
}

/// Appends blocks to the last turn when it has the same role (Anthropic wants alternation).
fn push_turn(turns: &mut Vec<(Role, Vec<Value>)>, role: Role, blocks: Vec<Value>) {
    match turns.last_mut() {
        Some((last, existing)) if *last == role => existing.extend(blocks),
        _ => turns.push((role, blocks)),
    }
}

/// One text block becomes a plain string; anything else stays a block array.
fn collapse(blocks: Vec<Value>) -> Value {
    if let [only] = blocks.as_slice() {
        if str_at(only, "type") == Some("text") && only.as_object().is_some_and(|o| o.len() == 2) {
            if let Some(t) = str_at(only, "text") {
                return Value::String(t.to_string());
            }
        }
    }
    Value::Array(blocks)
}

fn encode_parts(parts: &[ContentPart], same: bool) -> Result<Vec<Value>, TranslateError> {
    let mut out = Vec::with_capacity(parts.len());
    for p in parts {
        if let Some(b) = encode_part(p, same)? {
            out.push(b);
        }
    }
    Ok(out)
}

fn encode_part(p: &ContentPart, same: bool) -> Result<Option<Value>, TranslateError> {
    Ok(match p {
        // Anthropic rejects empty text blocks.
        ContentPart::Text(t) if t.is_empty() => None,
        ContentPart::Text(t) => Some(json!({"type": "text", "text": t})),
        ContentPart::Image { source, .. } => Some(match source {
            ImageSource::Url(url) => {
                json!({"type": "image", "source": {"type": "url", "url": url}})
            }
            ImageSource::Base64 { media_type, data } => json!({
                "type": "image",
                "source": {"type": "base64", "media_type": media_type, "data": data},
            }),
        }),
        ContentPart::Thinking { text, signature } => {
            if !same {
                return Ok(None);
            }
            let mut b = Map::new();
            b.insert("type".into(), "thinking".into());
            b.insert("thinking".into(), text.clone().into());
            put(&mut b, "signature", signature.clone());
            Some(Value::Object(b))
        }
        ContentPart::RedactedThinking { data } => {
            if !same {
                return Ok(None);
            }
            Some(json!({"type": "redacted_thinking", "data": data}))
        }
        ContentPart::Other { kind, raw } => {
            if !same {
                return Err(TranslateError::unsupported(
                    Format::Anthropic,
                    format!("a {kind:?} content part"),
                ));
            }
            Some(raw.clone())
        }
    })
}
