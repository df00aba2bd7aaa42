//! The Anthropic Messages wire format (`anthropic` providers and `/v1/messages` clients):
//! request decode/encode (top-level `system`, required `max_tokens`, `stop_sequences`,
//! `metadata.user_id`, `input_schema` tools, tool results as user `tool_result` blocks,
//! same-role turns merged), response decode/encode, the stream-event decoder and encoder,
//! usage, and stream-event classification.

use serde_json::{json, Map, Value};

use super::canonical::*;
use super::json::{
    arguments_object, num, opt_bool, opt_f64, opt_str, opt_u64, put, req_array, req_object,
    req_str, str_at, string_list, u64_at, write_sse,
};
use super::{ClientFormat, EventClass, ProviderError, TranslateError};
use crate::upstream::sse::SseEvent;

/// `max_tokens` is required by Anthropic; this is sent when the client did not say.
pub const DEFAULT_MAX_TOKENS: u64 = 4096;

/// The `anthropic-version` header value when the provider config sets no `api_version`.
pub const DEFAULT_VERSION: &str = "2023-06-01";

// ---------------------------------------------------------------------------------------------
// Requests

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
            _ => {
                req.extra.insert(key.clone(), v.clone());
            }
        }
    }
    if let Some(system) = system {
        req.messages.insert(0, system);
    }
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
/// Messages equivalent and is dropped; `seed` and the penalties likewise.
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
    let mut system: Vec<Value> = Vec::new();
    let mut turns: Vec<(Role, Vec<Value>)> = Vec::new();
    for m in &req.messages {
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
                for c in &m.tool_calls {
                    blocks.push(json!({
                        "type": "tool_use",
                        "id": c.id,
                        "name": c.name,
                        "input": arguments_object(&c.arguments),
                    }));
                }
                if !blocks.is_empty() {
                    push_turn(&mut turns, Role::Assistant, blocks);
                }
            }
            Role::Tool => {
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
                push_turn(&mut turns, Role::User, vec![Value::Object(block)]);
            }
        }
    }
    if !system.is_empty() {
        out.insert("system".into(), collapse(system));
    }
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
    out.insert("messages".into(), Value::Array(messages));
    if !req.stop.is_empty() {
        out.insert("stop_sequences".into(), json!(req.stop));
    }
    // Anthropic's range is [0, 1] (OpenAI's [0, 2]).
    put(
        &mut out,
        "temperature",
        req.temperature.map(|t| num(t.clamp(0.0, 1.0))),
    );
    put(&mut out, "top_p", req.top_p.map(num));
    put(&mut out, "top_k", req.top_k);
    if req.stream {
        out.insert("stream".into(), true.into());
    }
    if let Some(user) = &req.user {
        out.insert("metadata".into(), json!({"user_id": user}));
    }
    if !req.tools.is_empty() {
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
    }
    let disable_parallel = req.parallel_tool_calls == Some(false);
    let choice = match &req.tool_choice {
        Some(ToolChoice::Auto) => Some(json!({"type": "auto"})),
        Some(ToolChoice::Required) => Some(json!({"type": "any"})),
        Some(ToolChoice::None) => Some(json!({"type": "none"})),
        Some(ToolChoice::Function(name)) => Some(json!({"type": "tool", "name": name})),
        None if disable_parallel && !req.tools.is_empty() => Some(json!({"type": "auto"})),
        None => None,
    };
    if let Some(mut choice) = choice {
        if disable_parallel && req.tool_choice != Some(ToolChoice::None) {
            if let Some(obj) = choice.as_object_mut() {
                obj.insert("disable_parallel_tool_use".into(), true.into());
            }
        }
        out.insert("tool_choice".into(), choice);
    }
    Ok(out)
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

// ---------------------------------------------------------------------------------------------
// Responses

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

/// Decodes a `message` body.
pub fn decode_response(v: &Value) -> Result<ChatResponse, TranslateError> {
    let content = v.get("content").and_then(Value::as_array).ok_or_else(|| {
        TranslateError::InvalidResponse {
            format: "anthropic",
            reason: "no content array".into(),
        }
    })?;
    let mut text: Option<String> = None;
    let mut tool_calls = Vec::new();
    for b in content {
        match str_at(b, "type") {
            Some("text") => text
                .get_or_insert_with(String::new)
                .push_str(str_at(b, "text").unwrap_or_default()),
            Some("tool_use") => tool_calls.push(ToolCall {
                id: str_at(b, "id").unwrap_or_default().to_string(),
                name: str_at(b, "name").unwrap_or_default().to_string(),
                arguments: b
                    .get("input")
                    .map_or_else(|| "{}".to_string(), Value::to_string),
            }),
            _ => {}
        }
    }
    Ok(ChatResponse {
        id: str_at(v, "id").unwrap_or_default().to_string(),
        model: str_at(v, "model").unwrap_or_default().to_string(),
        created: None,
        choices: vec![Choice {
            index: 0,
            text,
            refusal: None,
            tool_calls,
            finish_reason: str_at(v, "stop_reason").map(finish_from_anthropic),
        }],
        usage: v.get("usage").filter(|u| u.is_object()).map(decode_usage),
    })
}

/// Encodes a `message` body from the first choice.
pub fn encode_response(r: &ChatResponse) -> Value {
    let choice = r.choices.first().cloned().unwrap_or_default();
    let mut content = Vec::new();
    if let Some(text) = choice
        .text
        .filter(|t| !t.is_empty())
        .or(choice.refusal.filter(|t| !t.is_empty()))
    {
        content.push(json!({"type": "text", "text": text}));
    }
    for c in &choice.tool_calls {
        content.push(json!({
            "type": "tool_use",
            "id": c.id,
            "name": c.name,
            "input": arguments_object(&c.arguments),
        }));
    }
    json!({
        "id": r.id,
        "type": "message",
        "role": "assistant",
        "model": r.model,
        "content": content,
        "stop_reason": choice.finish_reason.as_ref().map(finish_to_anthropic),
        "stop_sequence": null,
        "usage": encode_usage(&r.usage.unwrap_or_default()),
    })
}

// ---------------------------------------------------------------------------------------------
// Streams

/// The event type: the `type` of the data, else the SSE `event:` name.
fn event_type<'a>(event: &'a SseEvent, data: Option<&'a Value>) -> Option<&'a str> {
    data.and_then(|d| str_at(d, "type"))
        .or(event.event.as_deref())
}

/// Classifies an already parsed Messages stream event (for passthrough).
pub(crate) fn classify(event: &SseEvent, data: Option<&Value>) -> EventClass {
    let non_empty = |v: Option<&Value>, key: &str| {
        v.and_then(|v| str_at(v, key))
            .is_some_and(|s| !s.is_empty())
    };
    match event_type(event, data) {
        Some("message_stop") => EventClass::Done,
        Some("error") => EventClass::Error,
        Some("content_block_start") => {
            let block = data.and_then(|d| d.get("content_block"));
            match block.and_then(|b| str_at(b, "type")) {
                Some("text") if non_empty(block, "text") => EventClass::Content,
                Some("text") | Some("thinking") | Some("redacted_thinking") | None => {
                    EventClass::Preamble
                }
                // tool_use, server_tool_use, tool results: the model committed to something.
                Some(_) => EventClass::Content,
            }
        }
        Some("content_block_delta") => {
            let delta = data.and_then(|d| d.get("delta"));
            if non_empty(delta, "text")
                || non_empty(delta, "partial_json")
                || non_empty(delta, "thinking")
            {
                EventClass::Content
            } else {
                EventClass::Preamble
            }
        }
        _ => EventClass::Preamble,
    }
}

/// Classifies one event of a Messages stream.
pub fn classify_event(event: &SseEvent) -> EventClass {
    let data = serde_json::from_str::<Value>(&event.data).ok();
    classify(event, data.as_ref())
}

/// Tracks usage across a Messages stream (`message_start`, then `message_delta`s).
#[derive(Debug, Default)]
pub(crate) struct UsageTracker {
    raw: RawUsage,
}

impl UsageTracker {
    /// Updates from an event; returns the new snapshot when the event carried usage.
    pub(crate) fn observe(&mut self, event: &SseEvent, data: Option<&Value>) -> Option<Usage> {
        let d = data?;
        let u = match event_type(event, data) {
            Some("message_start") => d.get("message").and_then(|m| m.get("usage")),
            Some("message_delta") => d.get("usage"),
            _ => None,
        }?;
        if !u.is_object() {
            return None;
        }
        self.raw.update(u);
        Some(self.raw.canonical())
    }
}

/// Turns upstream Messages stream events into canonical stream events.
#[derive(Debug, Default)]
pub(crate) struct EventDecoder {
    usage: UsageTracker,
    /// Content-block index → tool index, for tool_use blocks.
    tool_blocks: Vec<(u64, u32)>,
    next_tool: u32,
}

impl EventDecoder {
    pub(crate) fn decode(&mut self, event: &SseEvent, out: &mut Vec<StreamEvent>) {
        let data = serde_json::from_str::<Value>(&event.data).ok();
        let d = data.as_ref().unwrap_or(&Value::Null);
        let kind = event_type(event, data.as_ref());
        if kind == Some("message_start") {
            let m = d.get("message").unwrap_or(&Value::Null);
            out.push(StreamEvent::Start {
                id: str_at(m, "id").map(str::to_string),
                model: str_at(m, "model").map(str::to_string),
            });
        }
        if let Some(u) = self.usage.observe(event, data.as_ref()) {
            out.push(StreamEvent::Usage(u));
        }
        match kind {
            Some("content_block_start") => {
                let b = d.get("content_block").unwrap_or(&Value::Null);
                let block = u64_at(d, "index").unwrap_or(0);
                match str_at(b, "type") {
                    Some("text") => {
                        if let Some(t) = str_at(b, "text").filter(|t| !t.is_empty()) {
                            out.push(StreamEvent::Text {
                                choice: 0,
                                text: t.to_string(),
                            });
                        }
                    }
                    Some("tool_use") => {
                        let index = self.next_tool;
                        self.next_tool = self.next_tool.saturating_add(1);
                        self.tool_blocks.push((block, index));
                        out.push(StreamEvent::ToolCallStart {
                            choice: 0,
                            index,
                            id: str_at(b, "id").unwrap_or_default().to_string(),
                            name: str_at(b, "name").unwrap_or_default().to_string(),
                        });
                        if let Some(input) = b
                            .get("input")
                            .filter(|i| i.as_object().is_some_and(|o| !o.is_empty()))
                        {
                            out.push(StreamEvent::ToolCallArgs {
                                choice: 0,
                                index,
                                arguments: input.to_string(),
                            });
                        }
                    }
                    _ => {}
                }
            }
            Some("content_block_delta") => {
                let delta = d.get("delta").unwrap_or(&Value::Null);
                let block = u64_at(d, "index").unwrap_or(0);
                match str_at(delta, "type") {
                    Some("text_delta") => {
                        if let Some(t) = str_at(delta, "text").filter(|t| !t.is_empty()) {
                            out.push(StreamEvent::Text {
                                choice: 0,
                                text: t.to_string(),
                            });
                        }
                    }
                    Some("input_json_delta") => {
                        let tool = self
                            .tool_blocks
                            .iter()
                            .find(|(b, _)| *b == block)
                            .map(|(_, t)| *t);
                        let json = str_at(delta, "partial_json").filter(|j| !j.is_empty());
                        if let (Some(index), Some(json)) = (tool, json) {
                            out.push(StreamEvent::ToolCallArgs {
                                choice: 0,
                                index,
                                arguments: json.to_string(),
                            });
                        }
                    }
                    _ => {}
                }
            }
            Some("message_delta") => {
                if let Some(reason) = d.get("delta").and_then(|x| str_at(x, "stop_reason")) {
                    out.push(StreamEvent::Finish {
                        choice: 0,
                        reason: finish_from_anthropic(reason),
                    });
                }
            }
            Some("message_stop") => out.push(StreamEvent::Done),
            Some("ping") => out.push(StreamEvent::KeepAlive),
            Some("error") => {
                let err = d.get("error").unwrap_or(&Value::Null);
                out.push(StreamEvent::Error(ProviderError::from_anthropic_object(
                    None, err,
                )));
            }
            _ => {}
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Block {
    Text,
    Tool(u32),
}

/// Writes canonical stream events as Messages stream events: `message_start`, content blocks
/// (`content_block_start` / `_delta` / `_stop`, one open at a time), `message_delta` with the
/// stop reason and usage, `message_stop`. Only choice 0 is written (Messages has one).
#[derive(Debug)]
pub(crate) struct EventEncoder {
    id: String,
    model: String,
    started: bool,
    next_block: u32,
    open: Option<(u32, Block)>,
    tools_started: Vec<u32>,
    stop_reason: Option<&'static str>,
    usage: Usage,
    ended: bool,
}

impl EventEncoder {
    pub(crate) fn new(id: String, model: String) -> Self {
        EventEncoder {
            id,
            model,
            started: false,
            next_block: 0,
            open: None,
            tools_started: Vec::new(),
            stop_reason: None,
            usage: Usage::default(),
            ended: false,
        }
    }

    fn start(&mut self, out: &mut Vec<u8>) {
        if self.started {
            return;
        }
        self.started = true;
        let mut usage = encode_usage(&self.usage);
        if let Some(u) = usage.as_object_mut() {
            u.insert("output_tokens".into(), 0.into());
        }
        write_sse(
            out,
            Some("message_start"),
            &json!({
                "type": "message_start",
                "message": {
                    "id": self.id,
                    "type": "message",
                    "role": "assistant",
                    "model": self.model,
                    "content": [],
                    "stop_reason": null,
                    "stop_sequence": null,
                    "usage": usage,
                }
            }),
        );
    }

    fn close_block(&mut self, out: &mut Vec<u8>) {
        if let Some((index, _)) = self.open.take() {
            write_sse(
                out,
                Some("content_block_stop"),
                &json!({"type": "content_block_stop", "index": index}),
            );
        }
    }

    fn open_block(&mut self, out: &mut Vec<u8>, block: Block, content_block: Value) -> u32 {
        self.close_block(out);
        let index = self.next_block;
        self.next_block = self.next_block.saturating_add(1);
        self.open = Some((index, block));
        write_sse(
            out,
            Some("content_block_start"),
            &json!({"type": "content_block_start", "index": index, "content_block": content_block}),
        );
        index
    }

    fn delta(out: &mut Vec<u8>, index: u32, delta: Value) {
        write_sse(
            out,
            Some("content_block_delta"),
            &json!({"type": "content_block_delta", "index": index, "delta": delta}),
        );
    }

    pub(crate) fn encode(&mut self, event: StreamEvent, out: &mut Vec<u8>) -> EventClass {
        if self.ended {
            return EventClass::Preamble;
        }
        match event {
            StreamEvent::Start { id, model } => {
                if !self.started {
                    if let Some(id) = id {
                        self.id = id;
                    }
                    if let Some(model) = model {
                        self.model = model;
                    }
                }
                EventClass::Preamble
            }
            StreamEvent::Text { choice: 0, text } if !text.is_empty() => {
                if self.stop_reason.is_some() {
                    return EventClass::Preamble;
                }
                self.start(out);
                let index = match self.open {
                    Some((i, Block::Text)) => i,
                    _ => self.open_block(out, Block::Text, json!({"type": "text", "text": ""})),
                };
                Self::delta(out, index, json!({"type": "text_delta", "text": text}));
                EventClass::Content
            }
            StreamEvent::ToolCallStart {
                choice: 0,
                index,
                id,
                name,
            } => {
                if self.stop_reason.is_some() || self.tools_started.contains(&index) {
                    return EventClass::Preamble;
                }
                self.start(out);
                self.tools_started.push(index);
                self.open_block(
                    out,
                    Block::Tool(index),
                    json!({"type": "tool_use", "id": id, "name": name, "input": {}}),
                );
                EventClass::Content
            }
            StreamEvent::ToolCallArgs {
                choice: 0,
                index,
                arguments,
            } => match self.open {
                // Arguments for a block already closed cannot be sent any more (blocks do not
                // interleave in this format); providers send each call's arguments together.
                Some((block, Block::Tool(open))) if open == index && !arguments.is_empty() => {
                    Self::delta(
                        out,
                        block,
                        json!({"type": "input_json_delta", "partial_json": arguments}),
                    );
                    EventClass::Content
                }
                _ => EventClass::Preamble,
            },
            StreamEvent::Finish { choice: 0, reason } => {
                if self.stop_reason.is_none() {
                    self.start(out);
                    self.close_block(out);
                    self.stop_reason = Some(finish_to_anthropic(&reason));
                }
                EventClass::Preamble
            }
            StreamEvent::Usage(u) => {
                self.usage = u;
                EventClass::Preamble
            }
            StreamEvent::Error(err) => {
                self.ended = true;
                super::encode_stream_error(ClientFormat::Anthropic, &err, out);
                EventClass::Error
            }
            StreamEvent::KeepAlive => {
                write_sse(out, Some("ping"), &json!({"type": "ping"}));
                EventClass::Preamble
            }
            StreamEvent::Done => {
                self.done(out);
                EventClass::Done
            }
            // Other choices (n > 1 upstream) and empty text.
            _ => EventClass::Preamble,
        }
    }

    fn done(&mut self, out: &mut Vec<u8>) {
        self.start(out);
        self.close_block(out);
        // Cumulative, as Anthropic sends it: the input side is only known here for
        // providers that report usage at the end (OpenAI).
        let usage = encode_usage(&self.usage);
        write_sse(
            out,
            Some("message_delta"),
            &json!({
                "type": "message_delta",
                "delta": {
                    "stop_reason": self.stop_reason.unwrap_or("end_turn"),
                    "stop_sequence": null,
                },
                "usage": usage,
            }),
        );
        write_sse(out, Some("message_stop"), &json!({"type": "message_stop"}));
        self.ended = true;
    }

    /// At the upstream's end of stream: `Done` if a stop reason was seen, else a terminal
    /// error event.
    pub(crate) fn finish(&mut self, out: &mut Vec<u8>) -> EventClass {
        if self.ended {
            return EventClass::Done;
        }
        if self.stop_reason.is_some() {
            self.done(out);
            EventClass::Done
        } else {
            self.encode(StreamEvent::Error(super::openai::truncated_error()), out)
        }
    }

    pub(crate) fn ended(&self) -> bool {
        self.ended
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_results_split_and_merge_back() {
        let body = json!({
            "model": "claude-sonnet-4-5",
            "max_tokens": 1024,
            "system": [{"type": "text", "text": "You are terse."}],
            "messages": [
                {"role": "user", "content": "Weather in Paris and Rome?"},
                {"role": "assistant", "content": [
                    {"type": "text", "text": "Checking."},
                    {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}},
                    {"type": "tool_use", "id": "toolu_2", "name": "get_weather", "input": {"city": "Rome"}}
                ]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_1", "content": "18C"},
                    {"type": "tool_result", "tool_use_id": "toolu_2", "content": [{"type": "text", "text": "25C"}], "is_error": false},
                    {"type": "text", "text": "Thanks"}
                ]}
            ],
            "metadata": {"user_id": "u-1"},
            "tool_choice": {"type": "auto", "disable_parallel_tool_use": true}
        });
        let req = decode_request(body.as_object().unwrap()).unwrap();
        let roles: Vec<Role> = req.messages.iter().map(|m| m.role).collect();
        assert_eq!(
            roles,
            [
                Role::System,
                Role::User,
                Role::Assistant,
                Role::Tool,
                Role::Tool,
                Role::User
            ]
        );
        assert_eq!(req.user.as_deref(), Some("u-1"));
        assert_eq!(req.parallel_tool_calls, Some(false));
        let out = Value::Object(encode_request(&req).unwrap());
        assert_eq!(out["system"], "You are terse.");
        let msgs = out["messages"].as_array().unwrap();
        assert_eq!(msgs.len(), 3);
        assert_eq!(msgs[2]["content"][0]["tool_use_id"], "toolu_1");
        assert_eq!(msgs[2]["content"][1]["content"], "25C");
        assert_eq!(msgs[2]["content"][2]["text"], "Thanks");
        assert_eq!(
            out["tool_choice"],
            json!({"type": "auto", "disable_parallel_tool_use": true})
        );
    }

    #[test]
    fn usage_counts_cache_as_input() {
        let u = decode_usage(&json!({
            "input_tokens": 10, "output_tokens": 5,
            "cache_read_input_tokens": 100, "cache_creation_input_tokens": 20
        }));
        assert_eq!(u.input_tokens, 130);
        assert_eq!(u.cached_tokens, 100);
        assert_eq!(encode_usage(&u)["input_tokens"], 10);
    }
}
