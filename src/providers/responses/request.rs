//! Responses API requests: the client's body decoded into the canonical request, and the check
//! that refuses what only a Responses upstream can honour (see the table in the module doc).

use serde_json::{Map, Value};

use crate::providers::canonical::*;
use crate::providers::json::{opt_bool, opt_f64, opt_str, opt_u64, req_array, req_object, str_at};
use crate::providers::TranslateError;

fn invalid(msg: String) -> TranslateError {
    TranslateError::InvalidRequest(msg)
}

/// Decodes a Responses API request body.
pub fn decode_request(body: &Map<String, Value>) -> Result<ChatRequest, TranslateError> {
    let mut req = ChatRequest {
        source: Some(Format::Responses),
        max_tokens_field: MaxTokensField::MaxCompletionTokens,
        ..ChatRequest::default()
    };
    let mut instructions = None;
    let mut safety_identifier = None;
    for (key, v) in body {
        match key.as_str() {
            "model" => req.model = opt_str(v, "model")?.unwrap_or_default(),
            "input" => req.messages = decode_input(v)?,
            "instructions" => instructions = opt_str(v, "instructions")?,
            "tools" if !v.is_null() => {
                for (i, t) in req_array(v, "tools")?.iter().enumerate() {
                    req.tools.push(decode_tool(t, &format!("tools[{i}]"))?);
                }
            }
            "tool_choice" if !v.is_null() => match decode_tool_choice(v)? {
                Some(c) => req.tool_choice = Some(c),
                None => {
                    req.extra.insert(key.clone(), v.clone());
                }
            },
            "parallel_tool_calls" => req.parallel_tool_calls = opt_bool(v, key)?,
            "max_output_tokens" => req.max_tokens = opt_u64(v, key)?,
            "temperature" => req.temperature = opt_f64(v, key)?,
            "top_p" => req.top_p = opt_f64(v, key)?,
            "text" if !v.is_null() => {
                let text = req_object(v, "text")?;
                if let Some(f) = text.get("format").filter(|f| !f.is_null()) {
                    req.response_format = Some(decode_text_format(f)?);
                }
            }
            "reasoning" if !v.is_null() => req.reasoning = Some(decode_reasoning(v)?),
            "stream" => req.stream = opt_bool(v, key)?.unwrap_or(false),
            "user" => req.user = opt_str(v, key)?,
            "safety_identifier" => safety_identifier = opt_str(v, key)?,
            _ => {
                req.extra.insert(key.clone(), v.clone());
            }
        }
    }
    if req.user.is_none() {
        req.user = safety_identifier;
    }
    if let Some(text) = instructions {
        req.messages.insert(0, Message::text(Role::System, text));
    }
    Ok(req)
}

/// `input`: a string (one user message) or a list of items.
fn decode_input(v: &Value) -> Result<Vec<Message>, TranslateError> {
    let items = match v {
        Value::Null => return Ok(Vec::new()),
        Value::String(s) => return Ok(vec![Message::text(Role::User, s.clone())]),
        Value::Array(items) => items,
        _ => {
            return Err(invalid(
                "input: expected a string or an array of items".into(),
            ))
        }
    };
    let mut messages: Vec<Message> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let path = format!("input[{i}]");
        req_object(item, &path)?;
        let kind = match item.get("type") {
            None | Some(Value::Null) => "message",
            Some(Value::String(s)) => s.as_str(),
            Some(_) => return Err(invalid(format!("{path}.type: expected a string"))),
        };
        match kind {
            "message" => push_message(&mut messages, decode_message(item, &path)?),
            "function_call" => {
                let call = ToolCall {
                    id: req_string(item, "call_id", &path)?,
                    name: req_string(item, "name", &path)?,
                    arguments: match item.get("arguments") {
                        Some(Value::String(s)) => s.clone(),
                        None | Some(Value::Null) => String::new(),
                        Some(_) => {
                            return Err(invalid(format!("{path}.arguments: expected a string")))
                        }
                    },
                };
                assistant(&mut messages).tool_calls.push(call);
            }
            "function_call_output" => {
                let mut m = Message::new(Role::Tool, decode_output(item, &path)?);
                m.tool_call_id = Some(req_string(item, "call_id", &path)?);
                messages.push(m);
            }
            "reasoning" => {
                if let Some(part) = decode_reasoning_item(item, &path)? {
                    assistant(&mut messages).content.push(part);
                }
            }
            other => {
                // item_reference, built-in tool calls and their outputs: only a Responses
                // upstream can take them (check_portable refuses them elsewhere).
                let role = if other.ends_with("_output") || other == "item_reference" {
                    Role::User
                } else {
                    Role::Assistant
                };
                let part = ContentPart::Other {
                    kind: other.to_string(),
                    raw: item.clone(),
                };
                messages.push(Message::new(role, vec![part]));
            }
        }
    }
    Ok(messages)
}

fn req_string(v: &Value, key: &str, path: &str) -> Result<String, TranslateError> {
    str_at(v, key)
        .map(str::to_string)
        .ok_or_else(|| invalid(format!("{path}.{key}: expected a string")))
}

/// The assistant message a function call or reasoning item belongs to: the last message if it
/// is an assistant's, else a new one.
fn assistant(messages: &mut Vec<Message>) -> &mut Message {
    if messages.last().is_none_or(|m| m.role != Role::Assistant) {
        messages.push(Message::new(Role::Assistant, Vec::new()));
    }
    let last = messages.len() - 1;
    &mut messages[last]
}

/// Appends a message; an assistant message right after reasoning (an assistant message holding
/// only thinking, no calls) joins it, so the reasoning stays with its answer.
fn push_message(messages: &mut Vec<Message>, m: Message) {
    if m.role == Role::Assistant {
        if let Some(last) = messages.last_mut() {
            let only_thinking = last.role == Role::Assistant
                && last.tool_calls.is_empty()
                && last.content.iter().all(|p| {
                    matches!(
                        p,
                        ContentPart::Thinking { .. } | ContentPart::RedactedThinking { .. }
                    )
                });
            if only_thinking {
                last.content.extend(m.content);
                return;
            }
        }
    }
    messages.push(m);
}

fn decode_message(item: &Value, path: &str) -> Result<Message, TranslateError> {
    let role = match str_at(item, "role") {
        Some("user") => Role::User,
        Some("assistant") => Role::Assistant,
        Some("system") => Role::System,
        Some("developer") => Role::Developer,
        Some(other) => return Err(invalid(format!("{path}.role: unknown role {other:?}"))),
        None => return Err(invalid(format!("{path}.role: expected a string"))),
    };
    let content = match item.get("content") {
        Some(Value::String(s)) => vec![ContentPart::Text(s.clone())],
        Some(Value::Array(parts)) => parts
            .iter()
            .enumerate()
            .map(|(j, p)| decode_part(p, &format!("{path}.content[{j}]")))
            .collect::<Result<_, _>>()?,
        _ => {
            return Err(invalid(format!(
                "{path}.content: expected a string or an array of content parts"
            )))
        }
    };
    Ok(Message::new(role, content))
}

fn decode_part(p: &Value, path: &str) -> Result<ContentPart, TranslateError> {
    let kind =
        str_at(p, "type").ok_or_else(|| invalid(format!("{path}.type: expected a string")))?;
    Ok(match kind {
        "input_text" | "output_text" | "text" => ContentPart::Text(req_string(p, "text", path)?),
        "refusal" => ContentPart::Text(req_string(p, "refusal", path)?),
        "input_image" => match p.get("image_url") {
            Some(Value::String(url)) => ContentPart::Image {
                source: ImageSource::from_url(url),
                detail: str_at(p, "detail")
                    .filter(|d| *d != "auto")
                    .map(str::to_string),
            },
            // An uploaded file (`file_id`): only OpenAI can resolve it.
            None | Some(Value::Null) => ContentPart::Other {
                kind: kind.to_string(),
                raw: p.clone(),
            },
            Some(_) => return Err(invalid(format!("{path}.image_url: expected a string"))),
        },
        other => ContentPart::Other {
            kind: other.to_string(),
            raw: p.clone(),
        },
    })
}

/// A `function_call_output`'s `output`: a string or a list of input parts.
fn decode_output(item: &Value, path: &str) -> Result<Vec<ContentPart>, TranslateError> {
    match item.get("output") {
        Some(Value::String(s)) => Ok(vec![ContentPart::Text(s.clone())]),
        Some(Value::Array(parts)) => parts
            .iter()
            .enumerate()
            .map(|(j, p)| decode_part(p, &format!("{path}.output[{j}]")))
            .collect(),
        _ => Err(invalid(format!(
            "{path}.output: expected a string or an array of content parts"
        ))),
    }
}

/// A `reasoning` input item: its summary as thinking (the encrypted content as its signature),
/// or, with no summary, the encrypted content alone (`None`: neither).
fn decode_reasoning_item(item: &Value, path: &str) -> Result<Option<ContentPart>, TranslateError> {
    let mut text = String::new();
    if let Some(summary) = item.get("summary").filter(|s| !s.is_null()) {
        for (j, s) in req_array(summary, &format!("{path}.summary"))?
            .iter()
            .enumerate()
        {
            if !text.is_empty() {
                text.push_str("\n\n");
            }
            text.push_str(&req_string(s, "text", &format!("{path}.summary[{j}]"))?);
        }
    }
    let encrypted = opt_str(
        item.get("encrypted_content").unwrap_or(&Value::Null),
        &format!("{path}.encrypted_content"),
    )?;
    Ok(match encrypted {
        Some(data) if text.is_empty() => Some(ContentPart::RedactedThinking { data }),
        None if text.is_empty() => None,
        signature => Some(ContentPart::Thinking { text, signature }),
    })
}

fn decode_tool(t: &Value, path: &str) -> Result<Tool, TranslateError> {
    req_object(t, path)?;
    let kind =
        str_at(t, "type").ok_or_else(|| invalid(format!("{path}.type: expected a string")))?;
    if kind != "function" {
        return Ok(Tool {
            name: str_at(t, "name").unwrap_or(kind).to_string(),
            description: None,
            parameters: None,
            strict: None,
            builtin: Some(t.clone()),
        });
    }
    Ok(Tool {
        name: req_string(t, "name", path)?,
        description: opt_str(
            t.get("description").unwrap_or(&Value::Null),
            &format!("{path}.description"),
        )?,
        parameters: t.get("parameters").filter(|p| !p.is_null()).cloned(),
        strict: opt_bool(
            t.get("strict").unwrap_or(&Value::Null),
            &format!("{path}.strict"),
        )?,
        builtin: None,
    })
}

/// `auto`/`none`/`required`/`{type: function, name}`; `None` for the other (built-in,
/// `allowed_tools`, `mcp`, `custom`) choices, kept in `extra`.
fn decode_tool_choice(v: &Value) -> Result<Option<ToolChoice>, TranslateError> {
    match v {
        Value::String(s) => match s.as_str() {
            "auto" => Ok(Some(ToolChoice::Auto)),
            "none" => Ok(Some(ToolChoice::None)),
            "required" => Ok(Some(ToolChoice::Required)),
            other => Err(invalid(format!("tool_choice: unknown value {other:?}"))),
        },
        Value::Object(_) => match str_at(v, "type") {
            Some("function") => Ok(Some(ToolChoice::Function(req_string(
                v,
                "name",
                "tool_choice",
            )?))),
            Some(_) => Ok(None),
            None => Err(invalid("tool_choice.type: expected a string".into())),
        },
        _ => Err(invalid(
            "tool_choice: expected a string or an object".into(),
        )),
    }
}

/// `text.format`.
fn decode_text_format(f: &Value) -> Result<ResponseFormat, TranslateError> {
    match str_at(f, "type") {
        Some("text") => Ok(ResponseFormat::Text),
        Some("json_object") => Ok(ResponseFormat::JsonObject),
        Some("json_schema") => Ok(ResponseFormat::JsonSchema {
            name: req_string(f, "name", "text.format")?,
            description: opt_str(
                f.get("description").unwrap_or(&Value::Null),
                "text.format.description",
            )?,
            schema: f.get("schema").filter(|s| !s.is_null()).cloned(),
            strict: opt_bool(
                f.get("strict").unwrap_or(&Value::Null),
                "text.format.strict",
            )?,
        }),
        Some(other) => Err(invalid(format!("text.format.type: unknown type {other:?}"))),
        None => Err(invalid("text.format.type: expected a string".into())),
    }
}

/// `reasoning: {effort, summary}` (`generate_summary` is the summary's old name).
fn decode_reasoning(v: &Value) -> Result<Reasoning, TranslateError> {
    req_object(v, "reasoning")?;
    let effort = opt_str(v.get("effort").unwrap_or(&Value::Null), "reasoning.effort")?;
    let summary = match opt_str(
        v.get("summary").unwrap_or(&Value::Null),
        "reasoning.summary",
    )? {
        Some(s) => Some(s),
        None => opt_str(
            v.get("generate_summary").unwrap_or(&Value::Null),
            "reasoning.generate_summary",
        )?,
    };
    let disabled = effort.as_deref() == Some("none");
    Ok(Reasoning {
        effort: effort.filter(|_| !disabled),
        budget_tokens: None,
        include_thoughts: summary.as_ref().map(|s| s != "none"),
        summary,
        disabled,
    })
}

fn unsupported(what: String) -> TranslateError {
    TranslateError::unsupported(Format::Responses, what)
}

/// Refuses (`Unsupported`) a request decoded from the Responses format that uses what only a
/// Responses upstream can honour (see the table in the module doc), before it is encoded for
/// another format.
pub fn check_portable(request: &ChatRequest) -> Result<(), TranslateError> {
    let set = |key: &str| request.extra.get(key).is_some_and(|v| !v.is_null());
    for key in ["previous_response_id", "conversation", "prompt"] {
        if set(key) {
            return Err(unsupported(format!(
                "`{key}` needs OpenAI's Responses API (stored state)"
            )));
        }
    }
    if request.extra.get("background") == Some(&Value::Bool(true)) {
        return Err(unsupported(
            "`background: true` needs OpenAI's Responses API".into(),
        ));
    }
    if set("tool_choice") {
        return Err(unsupported(
            "a `tool_choice` naming a built-in tool or `allowed_tools`".into(),
        ));
    }
    if let Some(t) = request.tools.iter().find(|t| t.builtin.is_some()) {
        return Err(unsupported(format!("the built-in tool {:?}", t.name)));
    }
    for (i, m) in request.messages.iter().enumerate() {
        for part in &m.content {
            match part {
                ContentPart::Other { kind, .. } => {
                    return Err(unsupported(format!(
                        "the input item or part {kind:?} (message {i})"
                    )))
                }
                ContentPart::RedactedThinking { .. } => {
                    return Err(unsupported(format!(
                        "a reasoning item with only `encrypted_content` (message {i})"
                    )))
                }
                _ => {}
            }
        }
    }
    Ok(())
}
