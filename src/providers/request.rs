//! Client chat requests across attempts: decoded once ([`DecodedRequest`]), then encoded per
//! attempt for the target provider's format ([`DecodedRequest::encode`]) with that target's
//! `override_params` and model applied.
//!
//! Overrides are merged (shallowly, as Portkey does) into the client's own JSON body, in the
//! client's spelling, before translation — so `override_params: {model: …, max_tokens: …}`
//! means the same whichever provider the target is. When the target speaks the client's
//! format, the body is never re-encoded through the canonical model: the original bytes go out
//! unchanged when nothing changes, else the merged JSON object (unknown fields and all).

use std::borrow::Cow;

use bytes::Bytes;
use serde_json::{Map, Value};

use super::canonical::{ChatRequest, ClientFormat, Format};
use super::endpoint::ChatCall;
use super::json::to_vec;
use super::{anthropic, gemini, openai, responses, TranslateError};
use crate::vocab::ProviderKind;

/// A client's chat request, parsed once.
#[derive(Debug, Clone)]
pub struct DecodedRequest {
    format: ClientFormat,
    raw: Bytes,
    body: Map<String, Value>,
    request: ChatRequest,
    /// What the path says of the call (Gemini: the model and the stream flag).
    path: Option<PathCall>,
}

/// The facts of a chat call its path carries rather than its body (a Gemini client's
/// `models/{model}:streamGenerateContent`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathCall {
    pub model: String,
    pub stream: bool,
}

/// One attempt's upstream body and the facts the head and the response side need.
#[derive(Debug, Clone)]
pub struct EncodedRequest {
    /// The upstream format the body is in.
    pub format: Format,
    pub body: Bytes,
    /// The model asked of the provider (after overrides); for Gemini it goes in the path, for
    /// Azure it picks the deployment.
    pub model: String,
    pub stream: bool,
    /// Whether the body is the client's bytes unchanged.
    pub passthrough: bool,
}

impl EncodedRequest {
    /// What [`super::build_request`] needs to pick the provider's chat endpoint.
    pub fn chat_call(&self) -> ChatCall<'_> {
        ChatCall {
            model: &self.model,
            stream: self.stream,
            format: self.format,
        }
    }
}

/// Merges `overrides` into `body`: each top-level key replaces the client's (Portkey's
/// `override_params`).
pub fn apply_overrides(body: &mut Map<String, Value>, overrides: &Map<String, Value>) {
    for (k, v) in overrides {
        body.insert(k.clone(), v.clone());
    }
}

fn decode_map(
    format: ClientFormat,
    body: &Map<String, Value>,
    path: Option<&PathCall>,
) -> Result<ChatRequest, TranslateError> {
    match format {
        ClientFormat::OpenAi => openai::decode_request(body),
        ClientFormat::Anthropic => anthropic::decode_request(body),
        ClientFormat::Responses => responses::decode_request(body),
        ClientFormat::Gemini => {
            let Some(path) = path else {
                return Err(TranslateError::InvalidRequest(
                    "a Gemini request names its model in the path".into(),
                ));
            };
            // `override_params` (or a target's model) may set `model` in the body.
            let model = body
                .get("model")
                .and_then(Value::as_str)
                .unwrap_or(&path.model);
            gemini::client::decode_request(body, model, path.stream)
        }
    }
}

impl DecodedRequest {
    /// Parses and decodes a client body. Errors are the client's (answer 400).
    pub fn decode(format: ClientFormat, raw: Bytes) -> Result<DecodedRequest, TranslateError> {
        let body = match serde_json::from_slice::<Value>(&raw) {
            Ok(Value::Object(map)) => map,
            Ok(_) => {
                return Err(TranslateError::InvalidRequest(
                    "the body must be a JSON object".into(),
                ))
            }
            Err(e) => {
                return Err(TranslateError::InvalidRequest(format!(
                    "the body is not valid JSON: {e}"
                )))
            }
        };
        DecodedRequest::from_parts(format, raw, body)
    }

    /// Parses and decodes a client body with what its path says of the call.
    pub fn decode_route(
        format: ClientFormat,
        raw: Bytes,
        path: Option<PathCall>,
    ) -> Result<DecodedRequest, TranslateError> {
        let body = match serde_json::from_slice::<Value>(&raw) {
            Ok(Value::Object(map)) => map,
            _ => {
                return Err(TranslateError::InvalidRequest(
                    "the body must be a JSON object".into(),
                ))
            }
        };
        DecodedRequest::from_route(format, raw, body, path)
    }

    /// Decodes a body the caller already parsed (`raw` must be its bytes).
    pub fn from_parts(
        format: ClientFormat,
        raw: Bytes,
        body: Map<String, Value>,
    ) -> Result<DecodedRequest, TranslateError> {
        DecodedRequest::from_route(format, raw, body, None)
    }

    /// Decodes a body the caller already parsed, with what its path says of the call.
    pub fn from_route(
        format: ClientFormat,
        raw: Bytes,
        body: Map<String, Value>,
        path: Option<PathCall>,
    ) -> Result<DecodedRequest, TranslateError> {
        let request = decode_map(format, &body, path.as_ref())?;
        Ok(DecodedRequest {
            format,
            raw,
            body,
            request,
            path,
        })
    }

    pub fn format(&self) -> ClientFormat {
        self.format
    }

    /// The canonical request (before any target's overrides).
    pub fn request(&self) -> &ChatRequest {
        &self.request
    }

    /// The client's JSON body as parsed.
    pub fn body(&self) -> &Map<String, Value> {
        &self.body
    }

    /// The client's bytes.
    pub fn raw(&self) -> &Bytes {
        &self.raw
    }

    pub fn model(&self) -> &str {
        &self.request.model
    }

    pub fn is_stream(&self) -> bool {
        self.request.stream
    }

    /// Whether an OpenAI client asked for the final usage chunk.
    pub fn include_usage(&self) -> bool {
        self.request.include_usage
    }

    /// The body for one attempt against a provider of `kind`: `overrides` merged into the
    /// client body, then `model` (if given) set, then translated to the provider's format.
    /// OpenAI-format streams always ask for `stream_options.include_usage` (see
    /// [`super::StreamTranslator`] for dropping the chunk again).
    ///
    /// Errors: `InvalidRequest` when the overrides make the body invalid or a model the target
    /// needs (Gemini, Azure) is missing; `Unsupported` when the request uses something the
    /// target format cannot carry (this target fails, others may not).
    pub fn encode(
        &self,
        kind: ProviderKind,
        overrides: &Map<String, Value>,
        model: Option<&str>,
    ) -> Result<EncodedRequest, TranslateError> {
        let target = Format::upstream(kind, Some(self.format));
        let changed = !overrides.is_empty() || model.is_some_and(|m| m != self.request.model);
        let merged: Cow<'_, Map<String, Value>> = if changed {
            let mut body = self.body.clone();
            apply_overrides(&mut body, overrides);
            if let Some(m) = model {
                body.insert("model".into(), Value::String(m.to_string()));
            }
            Cow::Owned(body)
        } else {
            Cow::Borrowed(&self.body)
        };
        let request: Cow<'_, ChatRequest> = if changed {
            Cow::Owned(decode_map(self.format, &merged, self.path.as_ref())?)
        } else {
            Cow::Borrowed(&self.request)
        };
        if request.model.is_empty()
            && matches!(kind, ProviderKind::Gemini | ProviderKind::AzureOpenAi)
        {
            return Err(TranslateError::InvalidRequest(
                "model: required to address this provider".into(),
            ));
        }
        if target == self.format.format() {
            return Ok(self.same_format(target, merged, &request, changed));
        }
        if self.format == ClientFormat::Responses {
            responses::check_portable(&request)?;
        }
        let map = match target {
            Format::OpenAi => openai::encode_request(&request, kind)?,
            Format::Anthropic => anthropic::encode_request(&request)?,
            Format::Gemini => gemini::encode_request(&request)?,
            // Only a Responses client is served in the Responses format (same format, above).
            Format::Responses => {
                return Err(TranslateError::unsupported(
                    target,
                    "only Responses API requests are sent in it",
                ))
            }
        };
        Ok(EncodedRequest {
            format: target,
            body: Bytes::from(to_vec(&Value::Object(map))),
            model: request.model.clone(),
            stream: request.stream,
            passthrough: false,
        })
    }

    fn same_format(
        &self,
        target: Format,
        merged: Cow<'_, Map<String, Value>>,
        request: &ChatRequest,
        changed: bool,
    ) -> EncodedRequest {
        let force_usage = target == Format::OpenAi && request.stream && !request.include_usage;
        let unsigned = target == Format::Anthropic && has_unsigned_thinking(&self.raw);
        let body = if !changed && !force_usage && !unsigned {
            self.raw.clone()
        } else {
            let mut body = merged.into_owned();
            if unsigned {
                anthropic::strip_unsigned_thinking(&mut body);
            }
            if target == Format::Gemini {
                // A Gemini body has no model (the path names it) nor stream flag.
                body.remove("model");
                body.remove("stream");
            }
            if force_usage {
                let opts = body
                    .entry("stream_options")
                    .or_insert_with(|| Value::Object(Map::new()));
                if !opts.is_object() {
                    *opts = Value::Object(Map::new());
                }
                if let Some(o) = opts.as_object_mut() {
                    o.insert("include_usage".into(), Value::Bool(true));
                }
            }
            Bytes::from(to_vec(&Value::Object(body)))
        };
        EncodedRequest {
            format: target,
            passthrough: body == self.raw,
            body,
            model: request.model.clone(),
            stream: request.stream,
        }
    }
}

/// Whether an Anthropic body may hold a thinking block with an empty signature: one the gateway
/// wrote for an Anthropic client when another format answered (it had no signature to give).
/// Anthropic refuses such blocks, so they are taken out before the body goes to Anthropic.
pub fn has_unsigned_thinking(raw: &[u8]) -> bool {
    [&b"\"signature\":\"\""[..], &b"\"signature\": \"\""[..]]
        .iter()
        .any(|needle| memchr::memmem::find(raw, needle).is_some())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn decoded(format: ClientFormat, v: Value) -> DecodedRequest {
        DecodedRequest::decode(format, Bytes::from(v.to_string())).unwrap()
    }

    #[test]
    fn unsigned_thinking_is_taken_out_before_anthropic() {
        // Turn 1 was answered by another format: its thinking came back with no signature.
        let raw = Bytes::from(
            serde_json::to_vec(&json!({"model": "claude", "max_tokens": 10, "messages": [
                {"role": "user", "content": "q"},
                {"role": "assistant", "content": [
                    {"type": "thinking", "thinking": "hm", "signature": ""},
                    {"type": "thinking", "thinking": "signed", "signature": "sig"},
                    {"type": "text", "text": "a"}]},
                {"role": "user", "content": "q2"}]}))
            .unwrap(),
        );
        assert!(has_unsigned_thinking(&raw));
        let d = DecodedRequest::decode(ClientFormat::Anthropic, raw.clone()).unwrap();
        let e = d
            .encode(ProviderKind::Anthropic, &Map::new(), None)
            .unwrap();
        assert!(!e.passthrough);
        let v: Value = serde_json::from_slice(&e.body).unwrap();
        let blocks = &v["messages"][1]["content"];
        assert_eq!(blocks.as_array().map(Vec::len), Some(2), "{v}");
        assert_eq!(blocks[0]["signature"], "sig");
        // Signed thinking alone goes out untouched.
        let signed = Bytes::from_static(br#"{"model":"c","max_tokens":1,"messages":[{"role":"assistant","content":[{"type":"thinking","thinking":"x","signature":"s"}]}]}"#);
        assert!(!has_unsigned_thinking(&signed));
    }

    #[test]
    fn same_format_without_changes_is_the_original_bytes() {
        let raw = Bytes::from_static(
            br#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],  "x_unknown":1}"#,
        );
        let d = DecodedRequest::decode(ClientFormat::OpenAi, raw.clone()).unwrap();
        let e = d.encode(ProviderKind::OpenAi, &Map::new(), None).unwrap();
        assert!(e.passthrough);
        assert_eq!(e.body, raw);
        let e = d
            .encode(
                ProviderKind::OpenAiCompatible,
                &Map::new(),
                Some("gpt-4o-mini"),
            )
            .unwrap();
        assert_eq!(e.body, raw);
    }

    #[test]
    fn same_format_overrides_keep_unknown_fields() {
        let d = decoded(
            ClientFormat::OpenAi,
            json!({"model": "a", "messages": [], "stream": true, "x_unknown": {"k": 1}}),
        );
        let overrides = json!({"model": "b", "temperature": 0.2});
        let e = d
            .encode(ProviderKind::OpenAi, overrides.as_object().unwrap(), None)
            .unwrap();
        let v: Value = serde_json::from_slice(&e.body).unwrap();
        assert_eq!(v["model"], "b");
        assert_eq!(v["temperature"], 0.2);
        assert_eq!(v["x_unknown"], json!({"k": 1}));
        assert_eq!(v["stream_options"], json!({"include_usage": true}));
        assert_eq!(e.model, "b");
        assert!(e.stream && !e.passthrough);
        // Anthropic → Anthropic never gains stream_options.
        let a = decoded(
            ClientFormat::Anthropic,
            json!({"model": "c", "max_tokens": 5, "messages": [], "stream": true}),
        );
        let e = a
            .encode(ProviderKind::Anthropic, &Map::new(), None)
            .unwrap();
        assert!(e.passthrough);
    }

    #[test]
    fn cross_format_overrides_apply_before_translation() {
        let d = decoded(
            ClientFormat::OpenAi,
            json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}),
        );
        let overrides = json!({"model": "claude-haiku-4-5", "max_tokens": 64});
        let e = d
            .encode(
                ProviderKind::Anthropic,
                overrides.as_object().unwrap(),
                None,
            )
            .unwrap();
        let v: Value = serde_json::from_slice(&e.body).unwrap();
        assert_eq!(v["model"], "claude-haiku-4-5");
        assert_eq!(v["max_tokens"], 64);
        assert_eq!(e.format, Format::Anthropic);
        let e = d
            .encode(ProviderKind::Gemini, &Map::new(), Some("gemini-2.5-flash"))
            .unwrap();
        assert_eq!(e.model, "gemini-2.5-flash");
        let v: Value = serde_json::from_slice(&e.body).unwrap();
        assert!(v.get("model").is_none());
        let bad = json!({"messages": "nope"});
        assert!(matches!(
            d.encode(ProviderKind::Anthropic, bad.as_object().unwrap(), None),
            Err(TranslateError::InvalidRequest(_))
        ));
    }

    #[test]
    fn a_model_is_required_where_it_addresses_the_provider() {
        let d = decoded(ClientFormat::OpenAi, json!({"messages": []}));
        assert!(d.encode(ProviderKind::Gemini, &Map::new(), None).is_err());
        assert!(d.encode(ProviderKind::OpenAi, &Map::new(), None).is_ok());
    }

    #[test]
    fn bodies_that_are_not_objects_are_invalid() {
        for raw in ["[]", "nope", "", "{\"messages\": 1}"] {
            assert!(matches!(
                DecodedRequest::decode(ClientFormat::Anthropic, Bytes::from(raw)),
                Err(TranslateError::InvalidRequest(_))
            ));
        }
    }
}
