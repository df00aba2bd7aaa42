//! The Google Gemini `generateContent` wire format. This file is the provider side (`gemini`
//! providers); `client.rs` is the client side (the `google-genai` SDK's routes):
//! request encoding (`contents` with roles `user`/`model`, `systemInstruction`,
//! `generationConfig`, `functionDeclarations`, `functionCall`/`functionResponse` parts,
//! `inlineData` images), response decoding, the `streamGenerateContent?alt=sse` chunk decoder,
//! usage, and the upstream head of this kind: the model's path (`upstream_path`) and the
//! `x-goog-api-key` credential. The default base URL and auth header are in
//! [`crate::vocab::ProviderKind`], where the config compiler reads them.
//!
//! Thinking: canonical reasoning becomes `generationConfig.thinkingConfig`; `thought: true`
//! parts come back as reasoning (`thoughtsTokenCount` counted as output). Thought signatures
//! are not carried through other formats: replayed function calls get the documented
//! `skip_thought_signature_validator` sentinel instead (Gemini 3 requires one), and replayed
//! reasoning from other formats is dropped (see docs/thinking-notes.md).
//!
//! Field names use the proto3 JSON (lowerCamelCase) spelling; the API accepts it and the
//! snake_case one alike. Schemas go in `parametersJsonSchema` / `responseJsonSchema`, which take
//! JSON Schema as OpenAI and Anthropic clients write it (`additionalProperties`, `$ref`, type
//! arrays), where the older `parameters` / `responseSchema` take only an OpenAPI subset.

pub mod client;
#[cfg(test)]
mod provider_tests;

use std::collections::HashMap;

use pingora::http::RequestHeader;
use serde_json::{json, Map, Value};

use super::canonical::*;
use super::endpoint::{insert_credential, join, versioned, RequestHead};
use super::json::{array_at, num, put, str_at, u64_at};
use super::segment::encode_segment;
use super::{ProviderError, TranslateError};
use crate::config::Provider;
use crate::upstream::sse::SseEvent;

// ---------------------------------------------------------------------------------------------
// Requests

/// The documented `thoughtSignature` for function calls Gemini did not itself produce in this
/// conversation.
pub const SKIP_SIGNATURE: &str = "skip_thought_signature_validator";

/// Encodes a request for a Gemini provider. The model goes in the URL path, not the body;
/// `user` has no Gemini equivalent and is dropped.
pub fn encode_request(req: &ChatRequest) -> Result<Map<String, Value>, TranslateError> {
    let (system_parts, contents) = encode_messages(&req.messages)?;
    let mut out = Map::new();
    let contents: Vec<Value> = contents
        .into_iter()
        .map(|(role, parts)| json!({"role": role, "parts": parts}))
        .collect();
    out.insert("contents".into(), Value::Array(contents));
    if !system_parts.is_empty() {
        out.insert("systemInstruction".into(), json!({"parts": system_parts}));
    }
    encode_tools(req, &mut out)?;
    let config = generation_config(req);
    if !config.is_empty() {
        out.insert("generationConfig".into(), Value::Object(config));
    }
    Ok(out)
}

fn unsupported(what: String) -> TranslateError {
    TranslateError::unsupported(Format::Gemini, what)
}

/// One content: a role and its parts.
type Content = (&'static str, Vec<Value>);

/// The `systemInstruction` parts (system and developer messages, wherever they are) and the
/// contents, same-role turns merged.
fn encode_messages(messages: &[Message]) -> Result<(Vec<Value>, Vec<Content>), TranslateError> {
    let mut system_parts = Vec::new();
    let mut contents: Vec<Content> = Vec::new();
    // functionResponse parts name the function; tool messages only carry the call id.
    let mut call_names: HashMap<&str, &str> = HashMap::new();
    for m in messages {
        match m.role {
            Role::System | Role::Developer => encode_system(m, &mut system_parts)?,
            Role::User => {
                let parts = encode_parts(&m.content)?;
                push_content(&mut contents, "user", parts);
            }
            Role::Assistant => {
                let mut parts = encode_parts(&m.content)?;
                for (i, c) in m.tool_calls.iter().enumerate() {
                    call_names.insert(c.id.as_str(), c.name.as_str());
                    parts.push(function_call_part(c, i == 0));
                }
                push_content(&mut contents, "model", parts);
            }
            Role::Tool => {
                let part = function_response_part(m, &call_names)?;
                push_content(&mut contents, "user", vec![part]);
            }
        }
    }
    Ok((system_parts, contents))
}

/// A system or developer message's text parts (anything else is refused).
fn encode_system(m: &Message, system_parts: &mut Vec<Value>) -> Result<(), TranslateError> {
    for p in &m.content {
        match p {
            ContentPart::Text(t) if !t.is_empty() => system_parts.push(json!({"text": t})),
            ContentPart::Text(_)
            | ContentPart::Thinking { .. }
            | ContentPart::RedactedThinking { .. } => {}
            ContentPart::Image { .. } => {
                return Err(unsupported("an image in a system message".into()))
            }
            ContentPart::Other { kind, .. } => {
                return Err(unsupported(format!("a {kind:?} part in a system message")))
            }
        }
    }
    Ok(())
}

/// A replayed tool call as a `functionCall` part.
fn function_call_part(c: &ToolCall, first_of_turn: bool) -> Value {
    let mut part = json!({
        "functionCall": {
            "name": c.name,
            "args": super::json::arguments_object(&c.arguments),
        }
    });
    // Gemini 3 rejects replayed function calls without the thought signature
    // it issued; a translated history has none, and Google documents this
    // sentinel for calls it did not produce (on the first call of a turn).
    if first_of_turn {
        if let Some(obj) = part.as_object_mut() {
            obj.insert("thoughtSignature".into(), SKIP_SIGNATURE.into());
        }
    }
    part
}

/// A tool message as a `functionResponse` part, named after the call it answers.
fn function_response_part(
    m: &Message,
    call_names: &HashMap<&str, &str>,
) -> Result<Value, TranslateError> {
    if let Some(p) = m
        .content
        .iter()
        .find(|p| !matches!(p, ContentPart::Text(_) | ContentPart::Thinking { .. }))
    {
        let what = match p {
            ContentPart::Other { kind, .. } => format!("a {kind:?} part"),
            _ => "an image".to_string(),
        };
        return Err(unsupported(format!("{what} in a tool result")));
    }
    let id = m.tool_call_id.as_deref().unwrap_or_default();
    let name = call_names
        .get(id)
        .copied()
        .or(m.name.as_deref())
        .unwrap_or(id);
    let text = m.joined_text();
    // `response` must be an object: a JSON object result is passed as is.
    let response = match serde_json::from_str::<Value>(&text) {
        Ok(v @ Value::Object(_)) => v,
        Ok(other) if !text.trim().is_empty() => json!({"content": other}),
        _ => json!({"content": text}),
    };
    Ok(json!({"functionResponse": {"name": name, "response": response}}))
}

/// `tools` (function declarations only: provider tools are refused) and `toolConfig`.
fn encode_tools(req: &ChatRequest, out: &mut Map<String, Value>) -> Result<(), TranslateError> {
    if !req.tools.is_empty() {
        let mut decls = Vec::with_capacity(req.tools.len());
        for t in &req.tools {
            if t.builtin.is_some() {
                return Err(unsupported(format!("the provider tool {:?}", t.name)));
            }
            let mut d = Map::new();
            d.insert("name".into(), t.name.clone().into());
            put(&mut d, "description", t.description.clone());
            put(&mut d, "parametersJsonSchema", t.parameters.clone());
            decls.push(Value::Object(d));
        }
        out.insert("tools".into(), json!([{"functionDeclarations": decls}]));
    }
    if let Some(choice) = &req.tool_choice {
        let config = match choice {
            ToolChoice::Auto => json!({"mode": "AUTO"}),
            ToolChoice::None => json!({"mode": "NONE"}),
            ToolChoice::Required => json!({"mode": "ANY"}),
            ToolChoice::Function(name) => json!({"mode": "ANY", "allowedFunctionNames": [name]}),
        };
        out.insert(
            "toolConfig".into(),
            json!({"functionCallingConfig": config}),
        );
    }
    Ok(())
}

/// `generationConfig`: sampling, length, stop sequences and JSON mode (empty when the request
/// sets none of them).
fn generation_config(req: &ChatRequest) -> Map<String, Value> {
    let mut config = Map::new();
    put(&mut config, "temperature", req.temperature.map(num));
    put(&mut config, "topP", req.top_p.map(num));
    put(&mut config, "topK", req.top_k);
    put(&mut config, "maxOutputTokens", req.max_tokens);
    if !req.stop.is_empty() {
        config.insert("stopSequences".into(), json!(req.stop));
    }
    put(&mut config, "candidateCount", req.n);
    put(&mut config, "seed", req.seed);
    put(
        &mut config,
        "presencePenalty",
        req.presence_penalty.map(num),
    );
    put(
        &mut config,
        "frequencyPenalty",
        req.frequency_penalty.map(num),
    );
    match &req.response_format {
        Some(ResponseFormat::JsonObject) => {
            config.insert("responseMimeType".into(), "application/json".into());
        }
        Some(ResponseFormat::JsonSchema { schema, .. }) => {
            config.insert("responseMimeType".into(), "application/json".into());
            put(&mut config, "responseJsonSchema", schema.clone());
        }
        Some(ResponseFormat::Text) | None => {}
    }
    if let Some(thinking) = req.reasoning.as_ref().and_then(thinking_config) {
        config.insert("thinkingConfig".into(), thinking);
    }
    config
}

/// `thinkingConfig` for a request's reasoning: a budget (the client's, else its effort's, see
/// docs/thinking-notes.md; 0 turns thinking off) and `includeThoughts`. `thinkingBudget` is
/// what Gemini 2.5 takes and Gemini 3 still accepts (`thinkingLevel` is Gemini 3's only).
fn thinking_config(r: &Reasoning) -> Option<Value> {
    let mut c = Map::new();
    if r.disabled || r.effort.as_deref() == Some("none") {
        c.insert("thinkingBudget".into(), 0.into());
    } else {
        let budget = r.budget_tokens.or_else(|| {
            r.effort
                .as_deref()
                .map(super::anthropic::thinking::budget_for_effort)
        });
        put(&mut c, "thinkingBudget", budget);
        put(&mut c, "includeThoughts", r.include_thoughts);
    }
    (!c.is_empty()).then_some(Value::Object(c))
}

/// A Gemini request's `thinkingConfig` as canonical reasoning (for the client codec):
/// `thinkingBudget` (0: off, -1: dynamic, so no budget), `includeThoughts`, and
/// `thinkingLevel` as the effort.
#[allow(dead_code)]
pub(super) fn reasoning_of_thinking_config(c: &Value) -> Option<Reasoning> {
    if !c.is_object() {
        return None;
    }
    let budget = c.get("thinkingBudget").and_then(Value::as_i64);
    Some(Reasoning {
        effort: str_at(c, "thinkingLevel").map(str::to_ascii_lowercase),
        budget_tokens: budget
            .and_then(|b| u64::try_from(b).ok())
            .filter(|b| *b > 0),
        include_thoughts: c.get("includeThoughts").and_then(Value::as_bool),
        summary: None,
        disabled: budget == Some(0),
    })
}

fn push_content(contents: &mut Vec<Content>, role: &'static str, parts: Vec<Value>) {
    if parts.is_empty() {
        // Gemini rejects a content without parts.
        return;
    }
    match contents.last_mut() {
        Some((last, existing)) if *last == role => existing.extend(parts),
        _ => contents.push((role, parts)),
    }
}

fn encode_parts(content: &[ContentPart]) -> Result<Vec<Value>, TranslateError> {
    let mut out = Vec::with_capacity(content.len());
    for p in content {
        match p {
            ContentPart::Text(t) if t.is_empty() => {}
            ContentPart::Text(t) => out.push(json!({"text": t})),
            ContentPart::Image { source, .. } => out.push(match source {
                ImageSource::Base64 { media_type, data } => {
                    json!({"inlineData": {"mimeType": media_type, "data": data}})
                }
                ImageSource::Url(url) => {
                    json!({"fileData": {"mimeType": guess_image_type(url), "fileUri": url}})
                }
            }),
            ContentPart::Thinking { .. } | ContentPart::RedactedThinking { .. } => {}
            ContentPart::Other { kind, .. } => {
                return Err(TranslateError::unsupported(
                    Format::Gemini,
                    format!("a {kind:?} content part"),
                ))
            }
        }
    }
    Ok(out)
}

/// The MIME type of an image URL from its extension (Gemini's `fileData` wants one).
fn guess_image_type(url: &str) -> &'static str {
    let path = url
        .split(['?', '#'])
        .next()
        .unwrap_or(url)
        .to_ascii_lowercase();
    if path.ends_with(".png") {
        "image/png"
    } else if path.ends_with(".webp") {
        "image/webp"
    } else if path.ends_with(".gif") {
        "image/gif"
    } else if path.ends_with(".heic") {
        "image/heic"
    } else {
        "image/jpeg"
    }
}

// ---------------------------------------------------------------------------------------------
// Upstream head

/// The upstream path and query for one attempt to a `gemini` provider: a chat request goes to
/// `{base}/v1beta/models/{model}:generateContent`, or `:streamGenerateContent?alt=sse` (a base
/// already ending in a version segment such as `/v1` keeps it); anything else to `{base}` +
/// the client path as sent.
pub(crate) fn upstream_path(provider: &Provider, head: &RequestHead<'_>) -> String {
    let base = provider.base_url.path.as_str();
    let Some(chat) = head.chat else {
        // A Gemini client's own route (`/v1beta/models/{m}:countTokens`): its version unless
        // the base already names one.
        let client = head.client_path_and_query;
        if let Some(route) = crate::vocab::gemini_route(client) {
            let rest = &client[1 + route.version.len()..];
            return join(&versioned(base, &format!("/{}", route.version)), rest);
        }
        return join(base, client);
    };
    let method = if chat.stream {
        "streamGenerateContent?alt=sse"
    } else {
        "generateContent"
    };
    format!(
        "{}/models/{}:{method}",
        versioned(base, "/v1beta"),
        model_path_segment(chat.model)
    )
}

/// The `{model}` path segment: a leading `models/` is dropped, and anything outside the
/// URL-safe set percent-encoded.
pub fn model_path_segment(model: &str) -> String {
    encode_segment(model.strip_prefix("models/").unwrap_or(model))
}

/// The credential, in `x-goog-api-key` unless the config names another header.
pub(crate) fn auth_headers(
    provider: &Provider,
    client: &RequestHeader,
    req: &mut RequestHeader,
) -> pingora::Result<()> {
    insert_credential(provider, client, req)
}

/// Headers of another provider's API, not forwarded to a Gemini provider.
pub(crate) fn is_foreign_header(name: &str) -> bool {
    name.starts_with("openai-") || name.starts_with("anthropic-")
}

// ---------------------------------------------------------------------------------------------
// Responses

pub(crate) fn finish_from_gemini(s: &str) -> FinishReason {
    match s {
        "STOP" => FinishReason::Stop,
        "MAX_TOKENS" => FinishReason::Length,
        "SAFETY" | "RECITATION" | "BLOCKLIST" | "PROHIBITED_CONTENT" | "SPII" | "IMAGE_SAFETY" => {
            FinishReason::ContentFilter
        }
        other => FinishReason::Other(other.to_string()),
    }
}

/// Gemini's usage fields as last sent (stream chunks may carry only some).
#[derive(Debug, Clone, Copy, Default)]
struct RawUsage {
    prompt: u64,
    candidates: u64,
    cached: u64,
    thoughts: u64,
    tool_prompt: u64,
}

impl RawUsage {
    fn update(&mut self, u: &Value) {
        for (key, field) in [
            ("promptTokenCount", &mut self.prompt),
            ("candidatesTokenCount", &mut self.candidates),
            ("cachedContentTokenCount", &mut self.cached),
            ("thoughtsTokenCount", &mut self.thoughts),
            ("toolUsePromptTokenCount", &mut self.tool_prompt),
        ] {
            if let Some(n) = u64_at(u, key) {
                *field = n;
            }
        }
    }

    fn canonical(&self) -> Usage {
        Usage {
            input_tokens: self.prompt.saturating_add(self.tool_prompt),
            // Gemini counts thoughts apart from candidates; ours include reasoning.
            output_tokens: self.candidates.saturating_add(self.thoughts),
            cached_tokens: self.cached,
            cache_creation_tokens: 0,
            reasoning_tokens: self.thoughts,
        }
    }
}

/// Usage from a Gemini `usageMetadata` object.
pub fn decode_usage(u: &Value) -> Usage {
    let mut raw = RawUsage::default();
    raw.update(u);
    raw.canonical()
}

/// A tool-call id for Gemini calls, which usually have none: unique per response.
fn call_id(call: &Value, response_id: &str, n: u32) -> String {
    match str_at(call, "id").filter(|s| !s.is_empty()) {
        Some(id) => id.to_string(),
        None => format!("call_{response_id}_{n}"),
    }
}

/// Decodes a `GenerateContentResponse`. `fallback_id` names the response (and its tool calls)
/// when Gemini sent no `responseId`.
pub fn decode_response(v: &Value, fallback_id: &str) -> Result<ChatResponse, TranslateError> {
    let candidates = v.get("candidates").and_then(Value::as_array);
    let blocked = v
        .get("promptFeedback")
        .and_then(|f| str_at(f, "blockReason"))
        .is_some();
    if candidates.is_none() && !blocked {
        return Err(TranslateError::InvalidResponse {
            format: "gemini",
            reason: "no candidates".into(),
        });
    }
    let id = str_at(v, "responseId")
        .filter(|s| !s.is_empty())
        .unwrap_or(fallback_id)
        .to_string();
    let mut choices = Vec::new();
    let mut calls = 0u32;
    for (i, c) in candidates.into_iter().flatten().enumerate() {
        choices.push(decode_candidate(i, c, &id, &mut calls));
    }
    if choices.is_empty() {
        // The prompt itself was blocked.
        choices.push(Choice {
            index: 0,
            finish_reason: Some(FinishReason::ContentFilter),
            ..Choice::default()
        });
    }
    Ok(ChatResponse {
        id,
        model: str_at(v, "modelVersion").unwrap_or_default().to_string(),
        created: None,
        choices,
        usage: v
            .get("usageMetadata")
            .filter(|u| u.is_object())
            .map(decode_usage),
    })
}

/// One candidate as a choice; `calls` numbers the tool calls across the response.
fn decode_candidate(i: usize, c: &Value, response_id: &str, calls: &mut u32) -> Choice {
    let mut text: Option<String> = None;
    let mut tool_calls = Vec::new();
    let mut thinking: Vec<ContentPart> = Vec::new();
    for p in array_at(c.get("content").unwrap_or(&Value::Null), "parts") {
        if let Some(t) = thought_text(p) {
            // Consecutive thought parts are one reasoning block.
            match thinking.last_mut() {
                _ if t.is_empty() => {}
                Some(ContentPart::Thinking { text, .. }) => text.push_str(t),
                _ => thinking.push(ContentPart::Thinking {
                    text: t.to_string(),
                    signature: None,
                }),
            }
            continue;
        }
        if let Some(t) = str_at(p, "text") {
            text.get_or_insert_with(String::new).push_str(t);
        }
        if let Some(call) = p.get("functionCall").filter(|f| f.is_object()) {
            tool_calls.push(ToolCall {
                id: call_id(call, response_id, *calls),
                name: str_at(call, "name").unwrap_or_default().to_string(),
                arguments: call
                    .get("args")
                    .map_or_else(|| "{}".to_string(), Value::to_string),
            });
            *calls = calls.saturating_add(1);
        }
    }
    let finish_reason = str_at(c, "finishReason").map(|r| {
        let reason = finish_from_gemini(r);
        if reason == FinishReason::Stop && !tool_calls.is_empty() {
            FinishReason::ToolCalls
        } else {
            reason
        }
    });
    Choice {
        index: u64_at(c, "index")
            .and_then(|n| u32::try_from(n).ok())
            .unwrap_or(i as u32),
        text,
        refusal: None,
        tool_calls,
        finish_reason,
        thinking,
    }
}

/// The text of a `thought: true` part (a thought summary). Its `thoughtSignature` is not
/// carried: it only validates at Gemini, and Gemini-to-Gemini traffic is never translated
/// (another format's client would be handed a token its own provider rejects).
fn thought_text(p: &Value) -> Option<&str> {
    if p.get("thought").and_then(Value::as_bool) != Some(true) {
        return None;
    }
    Some(str_at(p, "text").unwrap_or_default())
}

// ---------------------------------------------------------------------------------------------
// Streams

/// Turns `streamGenerateContent?alt=sse` chunks into canonical stream events. Gemini has no
/// end marker: the stream is complete when every candidate has a `finishReason` and the
/// connection ends.
#[derive(Debug, Default)]
pub(crate) struct ChunkDecoder {
    started: bool,
    response_id: String,
    usage: RawUsage,
    /// Per choice: tool calls seen so far.
    calls: HashMap<u32, u32>,
    finished: Vec<u32>,
}

impl ChunkDecoder {
    pub(crate) fn new(fallback_id: &str) -> Self {
        ChunkDecoder {
            response_id: fallback_id.to_string(),
            ..ChunkDecoder::default()
        }
    }

    pub(crate) fn decode(&mut self, event: &SseEvent, out: &mut Vec<StreamEvent>) {
        if event.data.trim().is_empty() {
            out.push(StreamEvent::KeepAlive);
            return;
        }
        let Ok(v) = serde_json::from_str::<Value>(&event.data) else {
            return;
        };
        match v {
            // The non-SSE stream shape (a JSON array), should a server send it as one event.
            Value::Array(items) => items.iter().for_each(|item| self.chunk(item, out)),
            other => self.chunk(&other, out),
        }
    }

    fn chunk(&mut self, v: &Value, out: &mut Vec<StreamEvent>) {
        if let Some(err) = v.get("error").filter(|e| !e.is_null()) {
            out.push(StreamEvent::Error(ProviderError::from_gemini_object(
                None, err,
            )));
            return;
        }
        if !self.started {
            self.started = true;
            if let Some(id) = str_at(v, "responseId").filter(|s| !s.is_empty()) {
                self.response_id = id.to_string();
            }
            out.push(StreamEvent::Start {
                id: Some(self.response_id.clone()),
                model: str_at(v, "modelVersion").map(str::to_string),
            });
        }
        if let Some(u) = v.get("usageMetadata").filter(|u| u.is_object()) {
            self.usage.update(u);
            out.push(StreamEvent::Usage(self.usage.canonical()));
        }
        let candidates = array_at(v, "candidates");
        for (i, c) in candidates.iter().enumerate() {
            let Some(choice) = u64_at(c, "index")
                .or(Some(i as u64))
                .and_then(|n| u32::try_from(n).ok())
            else {
                continue;
            };
            if !self.finished.contains(&choice) {
                self.candidate(choice, c, out);
            }
        }
        if candidates.is_empty()
            && v.get("promptFeedback")
                .and_then(|f| str_at(f, "blockReason"))
                .is_some()
            && !self.finished.contains(&0)
        {
            self.finished.push(0);
            out.push(StreamEvent::Finish {
                choice: 0,
                reason: FinishReason::ContentFilter,
            });
        }
    }

    /// One candidate of a chunk (not yet finished): its thoughts, text, whole function calls,
    /// and its finish reason.
    fn candidate(&mut self, choice: u32, c: &Value, out: &mut Vec<StreamEvent>) {
        for p in array_at(c.get("content").unwrap_or(&Value::Null), "parts") {
            if let Some(t) = thought_text(p) {
                if !t.is_empty() {
                    out.push(StreamEvent::Thinking {
                        choice,
                        text: t.to_string(),
                    });
                }
                continue;
            }
            if let Some(t) = str_at(p, "text").filter(|t| !t.is_empty()) {
                out.push(StreamEvent::Text {
                    choice,
                    text: t.to_string(),
                });
            }
            if let Some(call) = p.get("functionCall").filter(|f| f.is_object()) {
                let n = self.calls.entry(choice).or_insert(0);
                let index = *n;
                *n = n.saturating_add(1);
                out.push(StreamEvent::ToolCallStart {
                    choice,
                    index,
                    id: call_id(call, &self.response_id, index),
                    name: str_at(call, "name").unwrap_or_default().to_string(),
                });
                let args = call
                    .get("args")
                    .map_or_else(|| "{}".to_string(), Value::to_string);
                out.push(StreamEvent::ToolCallArgs {
                    choice,
                    index,
                    arguments: args,
                });
            }
        }
        if let Some(r) = str_at(c, "finishReason") {
            let mut reason = finish_from_gemini(r);
            if reason == FinishReason::Stop && self.calls.get(&choice).is_some_and(|n| *n > 0) {
                reason = FinishReason::ToolCalls;
            }
            self.finished.push(choice);
            out.push(StreamEvent::Finish { choice, reason });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_segments_are_escaped() {
        assert_eq!(
            model_path_segment("models/gemini-2.5-flash"),
            "gemini-2.5-flash"
        );
        assert_eq!(model_path_segment("a/../b?c"), "a%2F..%2Fb%3Fc");
    }

    #[test]
    fn usage_counts_thoughts_as_output() {
        let u = decode_usage(&json!({
            "promptTokenCount": 100, "candidatesTokenCount": 20,
            "thoughtsTokenCount": 30, "cachedContentTokenCount": 60, "totalTokenCount": 150
        }));
        assert_eq!(
            u,
            Usage {
                input_tokens: 100,
                output_tokens: 50,
                cached_tokens: 60,
                cache_creation_tokens: 0,
                reasoning_tokens: 30
            }
        );
    }

    #[test]
    fn tool_results_name_their_function() {
        let mut assistant = Message::new(Role::Assistant, vec![]);
        assistant.tool_calls.push(ToolCall {
            id: "call_9".into(),
            name: "lookup".into(),
            arguments: "{\"q\":\"x\"}".into(),
        });
        let mut tool = Message::text(Role::Tool, "[1,2]");
        tool.tool_call_id = Some("call_9".into());
        let req = ChatRequest {
            messages: vec![Message::text(Role::User, "hi"), assistant, tool],
            ..ChatRequest::default()
        };
        let out = encode_request(&req).unwrap();
        assert_eq!(
            out["contents"][2]["parts"][0],
            json!({"functionResponse": {"name": "lookup", "response": {"content": [1, 2]}}})
        );
    }
}
