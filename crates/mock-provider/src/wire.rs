//! Wire formats, answers and tools: what each format answers (text or a tool call), its error
//! shapes, and the Anthropic and Gemini routes.

use super::*;

/// Which provider's wire format a request speaks; decides its error shape too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wire {
    OpenAi,
    Anthropic,
    Gemini,
}

/// The format a POST to this route (no query) speaks.
pub(crate) fn wire_of(route: &str) -> Wire {
    if route.ends_with("/v1/messages") {
        Wire::Anthropic
    } else if gemini_call(route).is_some() {
        Wire::Gemini
    } else {
        Wire::OpenAi
    }
}

/// `.../models/{model}:{method}` for the two Gemini content methods: `(model, streaming)`.
pub(crate) fn gemini_call(route: &str) -> Option<(&str, bool)> {
    let (_, tail) = route.rsplit_once("/models/")?;
    let (model, method) = tail.split_once(':')?;
    match method {
        "generateContent" => Some((model, false)),
        "streamGenerateContent" => Some((model, true)),
        _ => None,
    }
}

/// An error response in the format's shape.
pub(crate) fn wire_error(wire: Wire, status: u16, message: &str) -> Response<Body> {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = match wire {
        Wire::OpenAi => error_body(status, message),
        Wire::Anthropic => anthropic_error(status, message),
        Wire::Gemini => gemini_error(status, message),
    };
    json(code, body)
}

pub(crate) fn anthropic_error(status: u16, message: &str) -> serde_json::Value {
    let kind = match status {
        401 => "authentication_error",
        402 => "billing_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        529 => "overloaded_error",
        s if s >= 500 => "api_error",
        _ => "invalid_request_error",
    };
    serde_json::json!({"type": "error", "error": {"type": kind, "message": message}})
}

pub(crate) fn gemini_error(status: u16, message: &str) -> serde_json::Value {
    let kind = match status {
        400 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        409 => "ABORTED",
        429 => "RESOURCE_EXHAUSTED",
        499 => "CANCELLED",
        500 => "INTERNAL",
        501 => "UNIMPLEMENTED",
        503 => "UNAVAILABLE",
        504 => "DEADLINE_EXCEEDED",
        _ => "UNKNOWN",
    };
    serde_json::json!({"error": {"code": status, "message": message, "status": kind}})
}

/// What the mock answers.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Answer {
    /// "Hello from the mock provider." (padded by `content_bytes`); streams send `tok{i} `.
    Default,
    /// Text mentioning the tool result the conversation ends with.
    ToolResult(String),
    /// One call to a declared tool.
    ToolCall {
        name: String,
        args: serde_json::Value,
    },
}

impl Answer {
    pub(crate) fn text(&self, fault: &FaultSpec) -> String {
        match self {
            Answer::Default => content(fault),
            Answer::ToolResult(text) => text.clone(),
            Answer::ToolCall { args, .. } => args.to_string(),
        }
    }

    /// Completion tokens of a non-streaming answer: the words of its text or arguments.
    pub(crate) fn tokens(&self, fault: &FaultSpec) -> usize {
        self.text(fault).split_whitespace().count().max(1)
    }

    /// The content events of a stream, `chunks` of them (a Gemini function call: one).
    pub(crate) fn pieces(&self, chunks: usize, wire: Wire) -> Vec<String> {
        match self {
            Answer::Default => (0..chunks).map(|i| format!("tok{i} ")).collect(),
            Answer::ToolCall { .. } if wire == Wire::Gemini => {
                (0..chunks.min(1)).map(|_| String::new()).collect()
            }
            Answer::ToolResult(text) => split_even(text, chunks),
            Answer::ToolCall { args, .. } => split_even(&args.to_string(), chunks),
        }
    }
}

/// `text` cut into `n` consecutive pieces of near-equal length (some empty if it is short).
pub(crate) fn split_even(text: &str, n: usize) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    (0..n)
        .map(|i| {
            chars[i * chars.len() / n..(i + 1) * chars.len() / n]
                .iter()
                .collect()
        })
        .collect()
}

pub(crate) fn tool_result_text(result: &str) -> Answer {
    Answer::ToolResult(format!("The tool returned: {result}."))
}

/// A message content that is a string or a list of text parts, as one string.
pub(crate) fn plain_text(content: Option<&serde_json::Value>) -> String {
    match content {
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(serde_json::Value::Array(parts)) => parts
            .iter()
            .map(|p| match p.get("text").and_then(|t| t.as_str()) {
                Some(t) => t.to_string(),
                None => plain_text(p.get("content")),
            })
            .collect(),
        Some(serde_json::Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

/// The call to make, given the declared tools as `(name, parameter schema)` and the name tool
/// choice forces (if any); `None` when no tool is declared.
pub(crate) fn call_tool(
    declared: Vec<(String, serde_json::Value)>,
    forced: Option<&str>,
) -> Option<Answer> {
    let (name, schema) = match forced {
        Some(forced) => declared
            .into_iter()
            .find(|(n, _)| n == forced)
            .unwrap_or_else(|| (forced.to_string(), serde_json::Value::Null)),
        None => declared.into_iter().next()?,
    };
    Some(Answer::ToolCall {
        name,
        args: tool_arguments(&schema),
    })
}

/// Each `required` property of a JSON schema with a placeholder value (see the module doc).
pub(crate) fn tool_arguments(schema: &serde_json::Value) -> serde_json::Value {
    let mut args = serde_json::Map::new();
    let required = schema.get("required").and_then(|r| r.as_array());
    for name in required.into_iter().flatten().filter_map(|n| n.as_str()) {
        let prop = schema
            .get("properties")
            .and_then(|p| p.get(name))
            .unwrap_or(&serde_json::Value::Null);
        args.insert(name.to_string(), placeholder(prop));
    }
    serde_json::Value::Object(args)
}

pub(crate) fn placeholder(prop: &serde_json::Value) -> serde_json::Value {
    if let Some(first) = prop
        .get("enum")
        .and_then(|e| e.as_array())
        .and_then(|e| e.first())
    {
        return first.clone();
    }
    let ty = match prop.get("type") {
        Some(serde_json::Value::String(t)) => t.to_ascii_lowercase(),
        Some(serde_json::Value::Array(ts)) => ts
            .iter()
            .filter_map(|t| t.as_str())
            .find(|t| !t.eq_ignore_ascii_case("null"))
            .unwrap_or("")
            .to_ascii_lowercase(),
        _ => String::new(),
    };
    match ty.as_str() {
        "string" => "Paris".into(),
        "integer" | "number" => 1.into(),
        "boolean" => true.into(),
        "array" => serde_json::json!([]),
        "object" => serde_json::json!({}),
        _ => serde_json::Value::Null,
    }
}

/// The default answer replaced by an `x-mock-answer` text.
pub(crate) fn with_override(answer: Answer, text: Option<&str>) -> Answer {
    match (answer, text) {
        (Answer::Default, Some(t)) => Answer::ToolResult(t.to_string()),
        (a, _) => a,
    }
}

pub(crate) fn openai_answer(request: &serde_json::Value) -> Answer {
    let last = request
        .get("messages")
        .and_then(|m| m.as_array())
        .and_then(|m| m.last());
    match last.and_then(|m| m.get("role")).and_then(|r| r.as_str()) {
        Some("tool" | "function") => {
            tool_result_text(&plain_text(last.and_then(|m| m.get("content"))))
        }
        Some("user") => {
            let choice = request.get("tool_choice");
            if choice.and_then(|c| c.as_str()) == Some("none") {
                return Answer::Default;
            }
            let forced = choice
                .and_then(|c| c.pointer("/function/name"))
                .and_then(|n| n.as_str());
            let declared = request
                .get("tools")
                .and_then(|t| t.as_array())
                .into_iter()
                .flatten()
                .filter_map(|t| {
                    let f = t.get("function")?;
                    let name = f.get("name")?.as_str()?.to_string();
                    Some((name, f.get("parameters").cloned().unwrap_or_default()))
                })
                .collect();
            call_tool(declared, forced).unwrap_or(Answer::Default)
        }
        _ => Answer::Default,
    }
}

pub(crate) fn anthropic_answer(request: &serde_json::Value) -> Answer {
    let Some(last) = request
        .get("messages")
        .and_then(|m| m.as_array())
        .and_then(|m| m.last())
    else {
        return Answer::Default;
    };
    if last.get("role").and_then(|r| r.as_str()) != Some("user") {
        return Answer::Default;
    }
    let results: Vec<String> = last
        .get("content")
        .and_then(|c| c.as_array())
        .into_iter()
        .flatten()
        .filter(|b| b.get("type").and_then(|t| t.as_str()) == Some("tool_result"))
        .map(|b| plain_text(b.get("content")))
        .collect();
    if !results.is_empty() {
        return tool_result_text(&results.join(" "));
    }
    let choice = request.get("tool_choice");
    let choice_type = choice.and_then(|c| c.get("type")).and_then(|t| t.as_str());
    if choice_type == Some("none") {
        return Answer::Default;
    }
    let forced = match choice_type {
        Some("tool") => choice.and_then(|c| c.get("name")).and_then(|n| n.as_str()),
        _ => None,
    };
    let declared = request
        .get("tools")
        .and_then(|t| t.as_array())
        .into_iter()
        .flatten()
        .filter_map(|t| {
            let name = t.get("name")?.as_str()?.to_string();
            Some((name, t.get("input_schema").cloned().unwrap_or_default()))
        })
        .collect();
    call_tool(declared, forced).unwrap_or(Answer::Default)
}

/// A Gemini field under its JSON name or its proto (snake_case) name; the API takes both.
pub(crate) fn field<'a>(
    v: &'a serde_json::Value,
    camel: &str,
    snake: &str,
) -> Option<&'a serde_json::Value> {
    v.get(camel).or_else(|| v.get(snake))
}

pub(crate) fn gemini_answer(request: &serde_json::Value) -> Answer {
    let Some(last) = request
        .get("contents")
        .and_then(|c| c.as_array())
        .and_then(|c| c.last())
    else {
        return Answer::Default;
    };
    let parts: Vec<&serde_json::Value> = last
        .get("parts")
        .and_then(|p| p.as_array())
        .into_iter()
        .flatten()
        .collect();
    let responses: Vec<String> = parts
        .iter()
        .filter_map(|p| field(p, "functionResponse", "function_response"))
        .map(|r| r.get("response").unwrap_or(r).to_string())
        .collect();
    if !responses.is_empty() {
        return tool_result_text(&responses.join(" "));
    }
    if !matches!(
        last.get("role").and_then(|r| r.as_str()),
        None | Some("user")
    ) {
        return Answer::Default;
    }
    let config = field(request, "toolConfig", "tool_config")
        .and_then(|c| field(c, "functionCallingConfig", "function_calling_config"));
    let mode = config.and_then(|c| c.get("mode")).and_then(|m| m.as_str());
    if mode.is_some_and(|m| m.eq_ignore_ascii_case("none")) {
        return Answer::Default;
    }
    let forced = config
        .and_then(|c| field(c, "allowedFunctionNames", "allowed_function_names"))
        .and_then(|n| n.get(0))
        .and_then(|n| n.as_str());
    let declared = request
        .get("tools")
        .and_then(|t| t.as_array())
        .into_iter()
        .flatten()
        .filter_map(|t| field(t, "functionDeclarations", "function_declarations"))
        .filter_map(|d| d.as_array())
        .flatten()
        .filter_map(|d| {
            let name = d.get("name")?.as_str()?.to_string();
            let schema = d
                .get("parameters")
                .or_else(|| field(d, "parametersJsonSchema", "parameters_json_schema"));
            Some((name, schema.cloned().unwrap_or_default()))
        })
        .collect();
    call_tool(declared, forced).unwrap_or(Answer::Default)
}

pub(crate) fn header<'a>(headers: &'a hyper::HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.trim().is_empty())
}

/// `POST .../v1/messages`: the Anthropic Messages API.
pub(crate) fn anthropic_route(
    state: &Arc<MockState>,
    fault: &FaultSpec,
    headers: &hyper::HeaderMap,
    request: &serde_json::Value,
    id: u64,
    answer_override: Option<&str>,
) -> Response<Body> {
    let invalid = |status: u16, message: &str| wire_error(Wire::Anthropic, status, message);
    if header(headers, "x-api-key").is_none() {
        return invalid(401, "x-api-key header is required");
    }
    if header(headers, "anthropic-version").is_none() {
        return invalid(400, "anthropic-version: header is required");
    }
    if !request.is_object() {
        return invalid(400, "The request body is not a valid JSON object");
    }
    for required in ["model", "messages", "max_tokens"] {
        if request.get(required).is_none_or(|v| v.is_null()) {
            return invalid(400, &format!("{required}: Field required"));
        }
    }
    if let Some(message) = anthropic_bad_signature(request) {
        return invalid(400, &message);
    }
    let answer = with_override(anthropic_answer(request), answer_override);
    if request.get("stream").and_then(|s| s.as_bool()) == Some(true) {
        return start_stream(state, fault, request, id, StreamKind::Anthropic, answer);
    }
    let (block, stop) = match &answer {
        Answer::ToolCall { name, args } => (
            serde_json::json!({"type": "tool_use", "id": format!("toolu_mock_{id}"), "name": name, "input": args}),
            "tool_use",
        ),
        _ => (
            serde_json::json!({"type": "text", "text": answer.text(fault)}),
            "end_turn",
        ),
    };
    let thinking = anthropic_thinking(request);
    let mut content = anthropic_thinking_blocks(thinking);
    content.push(block);
    json(
        StatusCode::OK,
        serde_json::json!({
            "id": format!("msg_mock_{id}"),
            "type": "message",
            "role": "assistant",
            "model": model_of(request),
            "content": content,
            "stop_reason": stop,
            "stop_sequence": null,
            "usage": {"input_tokens": prompt_tokens(request), "output_tokens": answer.tokens(fault) + thinking.tokens()},
        }),
    )
}

pub(crate) fn gemini_prompt_tokens(request: &serde_json::Value) -> usize {
    request
        .get("contents")
        .map(|c| c.to_string())
        .unwrap_or_default()
        .split_whitespace()
        .count()
        .max(1)
}

pub(crate) fn gemini_usage(prompt: usize, completion: usize) -> serde_json::Value {
    serde_json::json!({"promptTokenCount": prompt, "candidatesTokenCount": completion, "totalTokenCount": prompt + completion})
}

/// One Gemini `GenerateContentResponse` with a single candidate.
pub(crate) fn gemini_response(
    model: &str,
    id: u64,
    parts: serde_json::Value,
    finish: Option<&str>,
    usage: Option<serde_json::Value>,
) -> serde_json::Value {
    let mut candidate =
        serde_json::json!({"content": {"role": "model", "parts": parts}, "index": 0});
    let mut response = serde_json::json!({"candidates": [], "modelVersion": model, "responseId": format!("mock-resp-{id}")});
    if let Some(finish) = finish {
        candidate["finishReason"] = finish.into();
    }
    response["candidates"] = serde_json::json!([candidate]);
    if let Some(usage) = usage {
        response["usageMetadata"] = usage;
    }
    response
}

/// The answer's part; a function call made while thinking carries the thought signature (as
/// Gemini 3 signs every function call).
pub(crate) fn gemini_part(
    answer: &Answer,
    fault: &FaultSpec,
    thinking: Thinking,
) -> serde_json::Value {
    match answer {
        Answer::ToolCall { name, args } => {
            let mut part = serde_json::json!({"functionCall": {"name": name, "args": args}});
            if thinking.on {
                part["thoughtSignature"] = GEMINI_SIGNATURE.into();
            }
            part
        }
        _ => serde_json::json!({"text": answer.text(fault)}),
    }
}

/// `POST .../models/{model}:generateContent` and `:streamGenerateContent`: the Gemini API.
pub(crate) fn gemini_route(
    state: &Arc<MockState>,
    fault: &FaultSpec,
    path: &str,
    headers: &hyper::HeaderMap,
    request: &serde_json::Value,
    id: u64,
) -> Response<Body> {
    let (route, query) = path.split_once('?').unwrap_or((path, ""));
    let Some((model, streaming)) = gemini_call(route) else {
        return wire_error(Wire::Gemini, 404, "unknown method");
    };
    let params: Vec<(&str, &str)> = query.split('&').filter_map(|p| p.split_once('=')).collect();
    let query_key = params.iter().any(|(k, v)| *k == "key" && !v.is_empty());
    if header(headers, "x-goog-api-key").is_none() && !query_key {
        return wire_error(
            Wire::Gemini,
            403,
            "Method doesn't allow unregistered callers (callers without established identity). \
             Please use API Key or other form of API consumer identity to call this API.",
        );
    }
    if !request.is_object() {
        return wire_error(Wire::Gemini, 400, "Invalid JSON payload received.");
    }
    if request
        .get("contents")
        .and_then(|c| c.as_array())
        .is_none_or(|c| c.is_empty())
    {
        return wire_error(
            Wire::Gemini,
            400,
            "* GenerateContentRequest.contents: contents is not specified\n",
        );
    }
    if let Some(message) = gemini_bad_signature(request) {
        return wire_error(Wire::Gemini, 400, &message);
    }
    let answer = gemini_answer(request);
    if streaming {
        let sse = params.contains(&("alt", "sse"));
        let kind = StreamKind::Gemini {
            model: model.to_string(),
            sse,
        };
        return start_stream(state, fault, request, id, kind, answer);
    }
    let thinking = gemini_thinking(request);
    let mut parts = Vec::new();
    if thinking.visible {
        parts.push(gemini_thought_part());
    }
    parts.push(gemini_part(&answer, fault, thinking));
    let usage = gemini_usage(gemini_prompt_tokens(request), answer.tokens(fault));
    json(
        StatusCode::OK,
        gemini_response(
            model,
            id,
            serde_json::Value::Array(parts),
            Some("STOP"),
            Some(with_thoughts(usage, thinking.tokens())),
        ),
    )
}
