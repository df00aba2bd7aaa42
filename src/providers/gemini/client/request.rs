//! A Gemini `GenerateContentRequest` decoded into the canonical request.
//!
//! Field names are accepted in both spellings the API takes (`systemInstruction` and
//! `system_instruction`). Tool-call ids: Gemini function calls may carry an `id`; those without
//! get `gemini_call_{n}` (n counting the calls of the request from 0, so the same request
//! always gets the same ids). A `functionResponse` answers the call whose id it names, else the
//! earliest unanswered call of its `name`; one answering no call gets a fresh
//! `gemini_result_{n}` id (the target provider decides whether it accepts it).

use std::collections::{HashMap, HashSet, VecDeque};

use serde_json::{Map, Value};

use super::super::super::canonical::*;
use super::super::super::json::{opt_bool, opt_f64, opt_i64, opt_str, opt_u64, string_list};
use super::super::super::TranslateError;

fn invalid(path: &str, expected: &str) -> TranslateError {
    TranslateError::InvalidRequest(format!("{path}: expected {expected}"))
}

/// `obj[camel]` or `obj[snake]` (`Null` when neither is there).
fn field<'a>(obj: &'a Map<String, Value>, camel: &str, snake: &str) -> &'a Value {
    obj.get(camel)
        .or_else(|| obj.get(snake))
        .unwrap_or(&Value::Null)
}

/// The same on any value (`Null` for non-objects).
fn get<'a>(v: &'a Value, camel: &str, snake: &str) -> &'a Value {
    v.as_object()
        .map_or(&Value::Null, |o| field(o, camel, snake))
}

fn object<'a>(v: &'a Value, path: &str) -> Result<&'a Map<String, Value>, TranslateError> {
    v.as_object().ok_or_else(|| invalid(path, "an object"))
}

/// An optional array (`Null` → empty).
fn list<'a>(v: &'a Value, path: &str) -> Result<&'a [Value], TranslateError> {
    match v {
        Value::Null => Ok(&[]),
        Value::Array(items) => Ok(items),
        _ => Err(invalid(path, "an array")),
    }
}

const KNOWN: &[&str] = &[
    "model",
    "contents",
    "systemInstruction",
    "system_instruction",
    "tools",
    "toolConfig",
    "tool_config",
    "generationConfig",
    "generation_config",
];

/// Decodes a Gemini `GenerateContentRequest` body for `model` (from the path, or an override);
/// `stream` is whether the path was `:streamGenerateContent`.
pub fn decode_request(
    body: &Map<String, Value>,
    model: &str,
    stream: bool,
) -> Result<ChatRequest, TranslateError> {
    let mut req = ChatRequest {
        model: model.strip_prefix("models/").unwrap_or(model).to_string(),
        stream,
        // Gemini streams always carry usage.
        include_usage: stream,
        source: Some(Format::Gemini),
        ..ChatRequest::default()
    };
    let system = field(body, "systemInstruction", "system_instruction");
    if !system.is_null() {
        req.messages.push(decode_system(system)?);
    }
    let contents = field(body, "contents", "contents");
    if contents.is_null() {
        return Err(invalid("contents", "an array of contents"));
    }
    Calls::default().decode_contents(list(contents, "contents")?, &mut req.messages)?;
    decode_tools(field(body, "tools", "tools"), &mut req.tools)?;
    req.tool_choice = decode_tool_config(field(body, "toolConfig", "tool_config"))?;
    let config = field(body, "generationConfig", "generation_config");
    if !config.is_null() {
        decode_generation_config(object(config, "generationConfig")?, &mut req)?;
    }
    for (k, v) in body {
        if !KNOWN.contains(&k.as_str()) {
            req.extra.insert(k.clone(), v.clone());
        }
    }
    Ok(req)
}

/// `systemInstruction`: a content (its text parts) or, as the API also takes, a string.
fn decode_system(v: &Value) -> Result<Message, TranslateError> {
    if let Some(s) = v.as_str() {
        return Ok(Message::text(Role::System, s));
    }
    let parts = list(get(v, "parts", "parts"), "systemInstruction.parts")?;
    let mut content = Vec::with_capacity(parts.len());
    for (i, p) in parts.iter().enumerate() {
        let path = format!("systemInstruction.parts[{i}]");
        match get(p, "text", "text") {
            Value::String(t) => content.push(ContentPart::Text(t.clone())),
            _ => return Err(invalid(&path, "a text part")),
        }
    }
    Ok(Message::new(Role::System, content))
}

/// Tool-call ids across the request (see the module doc).
#[derive(Default)]
struct Calls {
    /// Calls made so far.
    n: usize,
    /// Results without a call.
    orphans: usize,
    /// Call ids by function name, oldest first (answered ones are skipped when met).
    pending: HashMap<String, VecDeque<String>>,
    /// The ids of the calls not answered yet.
    open: HashSet<String>,
}

impl Calls {
    fn decode_contents(
        &mut self,
        contents: &[Value],
        out: &mut Vec<Message>,
    ) -> Result<(), TranslateError> {
        for (i, c) in contents.iter().enumerate() {
            let path = format!("contents[{i}]");
            let obj = object(c, &path)?;
            let role = opt_str(field(obj, "role", "role"), &format!("{path}.role"))?;
            let parts = list(field(obj, "parts", "parts"), &format!("{path}.parts"))?;
            match role.as_deref() {
                Some("model") => out.push(self.model_turn(parts, &path)?),
                // `function` is the role older clients gave function results.
                None | Some("user") | Some("function") | Some("tool") => {
                    self.user_turn(parts, &path, out)?
                }
                Some(other) => {
                    return Err(TranslateError::InvalidRequest(format!(
                        "{path}.role: expected \"user\" or \"model\", got {other:?}"
                    )))
                }
            }
        }
        Ok(())
    }

    /// A `model` content: text, thoughts and function calls.
    fn model_turn(&mut self, parts: &[Value], path: &str) -> Result<Message, TranslateError> {
        let mut m = Message::new(Role::Assistant, Vec::new());
        for (j, p) in parts.iter().enumerate() {
            let path = format!("{path}.parts[{j}]");
            let obj = object(p, &path)?;
            let call = field(obj, "functionCall", "function_call");
            if !call.is_null() {
                m.tool_calls
                    .push(self.call(call, &format!("{path}.functionCall"))?);
                continue;
            }
            let part = decode_part(obj, &path)?;
            // A thought streamed in pieces (and its signature apart, on an empty thought part,
            // as this gateway streams one) is one thinking block: consecutive thought parts
            // join until one carries a signature.
            if matches!(&part, ContentPart::Thinking { text, signature: None } if text.is_empty()) {
                continue;
            }
            if let ContentPart::Thinking { text, signature } = &part {
                if let Some(ContentPart::Thinking {
                    text: prev_text,
                    signature: prev @ None,
                }) = m.content.last_mut()
                {
                    prev_text.push_str(text);
                    prev.clone_from(signature);
                    continue;
                }
            }
            m.content.push(part);
        }
        Ok(m)
    }

    /// A `user` content: its function results as tool messages (first, in order: they answer
    /// the previous turn's calls), then the rest as one user message.
    fn user_turn(
        &mut self,
        parts: &[Value],
        path: &str,
        out: &mut Vec<Message>,
    ) -> Result<(), TranslateError> {
        let mut user = Message::new(Role::User, Vec::new());
        for (j, p) in parts.iter().enumerate() {
            let path = format!("{path}.parts[{j}]");
            let obj = object(p, &path)?;
            let result = field(obj, "functionResponse", "function_response");
            if !result.is_null() {
                out.push(self.result(result, &format!("{path}.functionResponse"))?);
                continue;
            }
            if !field(obj, "functionCall", "function_call").is_null() {
                return Err(TranslateError::InvalidRequest(format!(
                    "{path}: a functionCall part belongs in a \"model\" content"
                )));
            }
            match decode_part(obj, &path)? {
                ContentPart::Thinking {
                    text,
                    signature: None,
                } if text.is_empty() => {}
                part => user.content.push(part),
            }
        }
        if !user.content.is_empty() {
            out.push(user);
        }
        Ok(())
    }

    fn call(&mut self, v: &Value, path: &str) -> Result<ToolCall, TranslateError> {
        let obj = object(v, path)?;
        let name = opt_str(field(obj, "name", "name"), &format!("{path}.name"))?
            .ok_or_else(|| invalid(&format!("{path}.name"), "a string"))?;
        let id = opt_str(field(obj, "id", "id"), &format!("{path}.id"))?
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| format!("gemini_call_{}", self.n));
        self.n = self.n.saturating_add(1);
        let arguments = match field(obj, "args", "args") {
            Value::Null => "{}".to_string(),
            args @ Value::Object(_) => args.to_string(),
            _ => return Err(invalid(&format!("{path}.args"), "an object")),
        };
        self.pending
            .entry(name.clone())
            .or_default()
            .push_back(id.clone());
        self.open.insert(id.clone());
        Ok(ToolCall {
            id,
            name,
            arguments,
        })
    }

    /// A `functionResponse` as a tool message (see the module doc for its id). The result text
    /// is the `response` object's one `output`/`content`/`result` string when that is all it
    /// holds, else the object as JSON; a `response` holding only `error` marks a failed call.
    fn result(&mut self, v: &Value, path: &str) -> Result<Message, TranslateError> {
        let obj = object(v, path)?;
        let name = opt_str(field(obj, "name", "name"), &format!("{path}.name"))?
            .ok_or_else(|| invalid(&format!("{path}.name"), "a string"))?;
        let given = opt_str(field(obj, "id", "id"), &format!("{path}.id"))?;
        let id = self.answer(&name, given);
        let response = field(obj, "response", "response");
        let (text, is_error) = match response {
            Value::Null => (String::new(), false),
            Value::Object(r) => {
                let single = (r.len() == 1)
                    .then(|| r.iter().next())
                    .flatten()
                    .filter(|(k, _)| matches!(k.as_str(), "output" | "content" | "result"))
                    .and_then(|(_, v)| v.as_str());
                let is_error = r.len() == 1 && r.contains_key("error");
                (
                    single.map_or_else(|| response.to_string(), str::to_string),
                    is_error,
                )
            }
            _ => return Err(invalid(&format!("{path}.response"), "an object")),
        };
        let mut m = Message::text(Role::Tool, text);
        m.name = Some(name);
        m.tool_call_id = Some(id);
        m.is_error = is_error;
        Ok(m)
    }

    /// The id a result answers (amortized constant time: each call is met once).
    fn answer(&mut self, name: &str, given: Option<String>) -> String {
        let given = given.filter(|s| !s.is_empty());
        if let Some(id) = given.as_ref().filter(|id| self.open.remove(id.as_str())) {
            return id.clone();
        }
        if let Some(queue) = self.pending.get_mut(name) {
            while let Some(id) = queue.pop_front() {
                if self.open.remove(&id) {
                    return id;
                }
            }
        }
        given.unwrap_or_else(|| {
            let id = format!("gemini_result_{}", self.orphans);
            self.orphans = self.orphans.saturating_add(1);
            id
        })
    }
}

/// One non-function part: text, a thought, inline or file data.
fn decode_part(obj: &Map<String, Value>, path: &str) -> Result<ContentPart, TranslateError> {
    let thought = opt_bool(field(obj, "thought", "thought"), &format!("{path}.thought"))?;
    let signature = opt_str(
        field(obj, "thoughtSignature", "thought_signature"),
        &format!("{path}.thoughtSignature"),
    )?;
    if let Some(text) = obj.get("text") {
        let text = opt_str(text, &format!("{path}.text"))?.unwrap_or_default();
        if thought == Some(true) {
            return Ok(ContentPart::Thinking { text, signature });
        }
        return Ok(ContentPart::Text(text));
    }
    let inline = field(obj, "inlineData", "inline_data");
    if !inline.is_null() {
        let path = format!("{path}.inlineData");
        let mime = mime_type(inline, &path)?;
        let data = opt_str(get(inline, "data", "data"), &format!("{path}.data"))?
            .ok_or_else(|| invalid(&format!("{path}.data"), "a base64 string"))?;
        if mime.starts_with("image/") {
            return Ok(ContentPart::Image {
                source: ImageSource::Base64 {
                    media_type: mime,
                    data,
                },
                detail: None,
            });
        }
        return Ok(other("inlineData", obj));
    }
    let file = field(obj, "fileData", "file_data");
    if !file.is_null() {
        let path = format!("{path}.fileData");
        let mime = mime_type(file, &path)?;
        let uri = opt_str(get(file, "fileUri", "file_uri"), &format!("{path}.fileUri"))?
            .ok_or_else(|| invalid(&format!("{path}.fileUri"), "a string"))?;
        if mime.starts_with("image/") && !uri.starts_with("gs://") {
            return Ok(ContentPart::Image {
                source: ImageSource::Url(uri),
                detail: None,
            });
        }
        return Ok(other("fileData", obj));
    }
    // executableCode, codeExecutionResult, videoMetadata…: Gemini's own.
    let kind = obj.keys().find(|k| {
        !matches!(
            k.as_str(),
            "thought" | "thoughtSignature" | "thought_signature"
        )
    });
    match kind {
        Some(kind) => Ok(other(kind, obj)),
        // A part holding only a signature (or nothing): the signature of the thought before.
        None => Ok(ContentPart::Thinking {
            text: String::new(),
            signature,
        }),
    }
}

fn other(kind: &str, obj: &Map<String, Value>) -> ContentPart {
    ContentPart::Other {
        kind: kind.to_string(),
        raw: Value::Object(obj.clone()),
    }
}

fn mime_type(v: &Value, path: &str) -> Result<String, TranslateError> {
    Ok(opt_str(get(v, "mimeType", "mime_type"), &format!("{path}.mimeType"))?.unwrap_or_default())
}

/// `tools`: function declarations become tools; every other tool (`googleSearch`,
/// `codeExecution`, `urlContext`, …) a provider tool only Gemini can take.
fn decode_tools(v: &Value, out: &mut Vec<Tool>) -> Result<(), TranslateError> {
    for (i, t) in list(v, "tools")?.iter().enumerate() {
        let path = format!("tools[{i}]");
        for (key, value) in object(t, &path)? {
            if matches!(
                key.as_str(),
                "functionDeclarations" | "function_declarations"
            ) {
                let path = format!("{path}.functionDeclarations");
                for (j, d) in list(value, &path)?.iter().enumerate() {
                    out.push(declaration(d, &format!("{path}[{j}]"))?);
                }
                continue;
            }
            let mut raw = Map::new();
            raw.insert(key.clone(), value.clone());
            out.push(Tool {
                name: key.clone(),
                description: None,
                parameters: None,
                strict: None,
                builtin: Some(Value::Object(raw)),
            });
        }
    }
    Ok(())
}

fn declaration(d: &Value, path: &str) -> Result<Tool, TranslateError> {
    let obj = object(d, path)?;
    let name = opt_str(field(obj, "name", "name"), &format!("{path}.name"))?
        .ok_or_else(|| invalid(&format!("{path}.name"), "a string"))?;
    let description = opt_str(
        field(obj, "description", "description"),
        &format!("{path}.description"),
    )?;
    let json_schema = field(obj, "parametersJsonSchema", "parameters_json_schema");
    let parameters = if !json_schema.is_null() {
        Some(json_schema.clone())
    } else {
        match field(obj, "parameters", "parameters") {
            Value::Null => None,
            schema => Some(openapi_to_json_schema(schema)),
        }
    };
    Ok(Tool {
        name,
        description,
        parameters,
        strict: None,
        builtin: None,
    })
}

/// A Gemini `Schema` (an OpenAPI subset, types often upper-case: `OBJECT`) as JSON Schema:
/// types lower-cased, `nullable: true` as a `null` type, `propertyOrdering` dropped. The depth
/// is bounded by the JSON parser's.
pub(super) fn openapi_to_json_schema(v: &Value) -> Value {
    match v {
        Value::Object(obj) => {
            let mut out = Map::with_capacity(obj.len());
            let nullable = obj.get("nullable").and_then(Value::as_bool) == Some(true);
            for (k, v) in obj {
                match k.as_str() {
                    "nullable" | "propertyOrdering" | "property_ordering" => {}
                    "type" => {
                        let t = match v.as_str() {
                            Some(s) => Value::String(s.to_ascii_lowercase()),
                            None => v.clone(),
                        };
                        let t = if nullable {
                            Value::Array(vec![t, Value::String("null".into())])
                        } else {
                            t
                        };
                        out.insert(k.clone(), t);
                    }
                    // Property names are data, not schemas.
                    "properties" => {
                        let props = v.as_object().map_or_else(
                            || v.clone(),
                            |p| {
                                Value::Object(
                                    p.iter()
                                        .map(|(n, s)| (n.clone(), openapi_to_json_schema(s)))
                                        .collect(),
                                )
                            },
                        );
                        out.insert(k.clone(), props);
                    }
                    "enum" | "required" | "example" | "default" => {
                        out.insert(k.clone(), v.clone());
                    }
                    _ => {
                        out.insert(k.clone(), openapi_to_json_schema(v));
                    }
                }
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(openapi_to_json_schema).collect()),
        other => other.clone(),
    }
}

/// `toolConfig.functionCallingConfig`: `AUTO`, `NONE`, `ANY` (one allowed name: that function;
/// several: any tool — the canonical choice names at most one), `VALIDATED` as `AUTO`.
fn decode_tool_config(v: &Value) -> Result<Option<ToolChoice>, TranslateError> {
    if v.is_null() {
        return Ok(None);
    }
    let config = get(v, "functionCallingConfig", "function_calling_config");
    if config.is_null() {
        return Ok(None);
    }
    let path = "toolConfig.functionCallingConfig";
    object(config, path)?;
    let mode = opt_str(get(config, "mode", "mode"), &format!("{path}.mode"))?;
    let allowed = string_list(
        get(config, "allowedFunctionNames", "allowed_function_names"),
        &format!("{path}.allowedFunctionNames"),
    )?;
    let choice = match mode.as_deref().map(str::to_ascii_uppercase).as_deref() {
        None | Some("MODE_UNSPECIFIED") => return Ok(None),
        Some("AUTO") | Some("VALIDATED") => ToolChoice::Auto,
        Some("NONE") => ToolChoice::None,
        Some("ANY") => match allowed.as_slice() {
            [one] => ToolChoice::Function(one.clone()),
            _ => ToolChoice::Required,
        },
        Some(other) => {
            return Err(TranslateError::InvalidRequest(format!(
                "{path}.mode: expected AUTO, ANY, NONE or VALIDATED, got {other:?}"
            )))
        }
    };
    Ok(Some(choice))
}

fn decode_generation_config(
    c: &Map<String, Value>,
    req: &mut ChatRequest,
) -> Result<(), TranslateError> {
    let p = |name: &str| format!("generationConfig.{name}");
    req.temperature = opt_f64(field(c, "temperature", "temperature"), &p("temperature"))?;
    req.top_p = opt_f64(field(c, "topP", "top_p"), &p("topP"))?;
    req.top_k = match field(c, "topK", "top_k") {
        Value::Null => None,
        v => Some(
            opt_f64(v, &p("topK"))?
                .filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f <= u32::MAX as f64)
                .map(|f| f as u64)
                .ok_or_else(|| invalid(&p("topK"), "a non-negative integer"))?,
        ),
    };
    req.n = opt_u64(
        field(c, "candidateCount", "candidate_count"),
        &p("candidateCount"),
    )?;
    req.max_tokens = opt_u64(
        field(c, "maxOutputTokens", "max_output_tokens"),
        &p("maxOutputTokens"),
    )?;
    req.stop = string_list(
        field(c, "stopSequences", "stop_sequences"),
        &p("stopSequences"),
    )?;
    req.seed = opt_i64(field(c, "seed", "seed"), &p("seed"))?;
    req.presence_penalty = opt_f64(
        field(c, "presencePenalty", "presence_penalty"),
        &p("presencePenalty"),
    )?;
    req.frequency_penalty = opt_f64(
        field(c, "frequencyPenalty", "frequency_penalty"),
        &p("frequencyPenalty"),
    )?;
    req.response_format = response_format(c)?;
    let thinking = field(c, "thinkingConfig", "thinking_config");
    if !thinking.is_null() {
        req.reasoning = Some(reasoning(object(thinking, &p("thinkingConfig"))?)?);
    }
    Ok(())
}

/// `responseMimeType` with `responseJsonSchema` or `responseSchema`.
fn response_format(c: &Map<String, Value>) -> Result<Option<ResponseFormat>, TranslateError> {
    let mime = opt_str(
        field(c, "responseMimeType", "response_mime_type"),
        "generationConfig.responseMimeType",
    )?;
    let json_schema = field(c, "responseJsonSchema", "response_json_schema");
    let schema = if !json_schema.is_null() {
        Some(json_schema.clone())
    } else {
        match field(c, "responseSchema", "response_schema") {
            Value::Null => None,
            s => Some(openapi_to_json_schema(s)),
        }
    };
    Ok(match (mime.as_deref(), schema) {
        (Some("application/json"), Some(schema)) => Some(ResponseFormat::JsonSchema {
            name: "response".into(),
            description: None,
            schema: Some(schema),
            strict: None,
        }),
        (Some("application/json"), None) => Some(ResponseFormat::JsonObject),
        (Some("text/plain"), _) => Some(ResponseFormat::Text),
        _ => None,
    })
}

/// `thinkingConfig`: `thinkingBudget` (0: off, -1: the model decides), `includeThoughts`,
/// `thinkingLevel` (as the effort, lower-cased).
fn reasoning(t: &Map<String, Value>) -> Result<Reasoning, TranslateError> {
    let path = "generationConfig.thinkingConfig";
    let budget = opt_i64(
        field(t, "thinkingBudget", "thinking_budget"),
        &format!("{path}.thinkingBudget"),
    )?;
    let level = opt_str(
        field(t, "thinkingLevel", "thinking_level"),
        &format!("{path}.thinkingLevel"),
    )?;
    Ok(Reasoning {
        effort: level
            .filter(|l| !l.eq_ignore_ascii_case("THINKING_LEVEL_UNSPECIFIED"))
            .map(|l| l.to_ascii_lowercase()),
        budget_tokens: budget.filter(|b| *b > 0).map(|b| b as u64),
        include_thoughts: opt_bool(
            field(t, "includeThoughts", "include_thoughts"),
            &format!("{path}.includeThoughts"),
        )?,
        summary: None,
        disabled: budget == Some(0),
    })
}
