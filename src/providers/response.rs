//! Whole (non-streaming) responses: translation from the provider's format to the client's
//! (untouched when they match), and token usage from any format's body.

use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use serde_json::Value;

use super::canonical::{ChatRequest, ChatResponse, ClientFormat, Format, Usage};
use super::json::to_vec;
use super::{anthropic, gemini, openai, responses, TranslateError};

/// Per-request facts a translated response or stream needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TranslateContext {
    /// The OpenAI client asked for the final usage chunk (`stream_options.include_usage`).
    pub include_usage: bool,
    /// Reported as `model` only if the provider names none.
    pub requested_model: String,
    /// Unix seconds for OpenAI `created`.
    pub created: u64,
    /// Random hex naming the response (and Gemini's tool calls) when the provider gives no id.
    pub nonce: String,
    /// How a Gemini client's stream is framed (`alt=sse` or a JSON array).
    pub gemini_framing: gemini::client::Framing,
}

impl TranslateContext {
    /// The context for a client request, `created` now and a fresh random nonce.
    pub fn new(request: &ChatRequest) -> TranslateContext {
        let created = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let nonce = format!("{:024x}", rand::random::<u128>() >> 32);
        TranslateContext {
            include_usage: request.include_usage,
            requested_model: request.model.clone(),
            created,
            nonce,
            gemini_framing: gemini::client::Framing::default(),
        }
    }

    /// A response id in the client's style.
    pub fn fallback_id(&self, client: ClientFormat) -> String {
        match client {
            ClientFormat::OpenAi => format!("chatcmpl-{}", self.nonce),
            ClientFormat::Anthropic => format!("msg_{}", self.nonce),
            ClientFormat::Responses => format!("resp_{}", self.nonce),
            ClientFormat::Gemini => self.nonce.clone(),
        }
    }
}

/// A translated response body and what it says about usage.
#[derive(Debug, Clone, PartialEq)]
pub struct TranslatedResponse {
    pub body: Bytes,
    pub usage: Option<Usage>,
    /// The model that answered, as the provider reported it.
    pub model: Option<String>,
}

fn parse(format: Format, body: &[u8]) -> Result<Value, TranslateError> {
    serde_json::from_slice(body).map_err(|e| TranslateError::InvalidResponse {
        format: format.as_str(),
        reason: format!("not JSON: {e}"),
    })
}

/// Decodes a provider's successful response body.
pub fn decode_response(
    format: Format,
    body: &[u8],
    fallback_id: &str,
) -> Result<ChatResponse, TranslateError> {
    let v = parse(format, body)?;
    match format {
        Format::OpenAi => openai::decode_response(&v),
        Format::Anthropic => anthropic::decode_response(&v),
        Format::Gemini => gemini::decode_response(&v, fallback_id),
        Format::Responses => responses::decode_response(&v),
    }
}

/// Encodes a response for the client (ids and `created` the provider did not give come from
/// `ctx`).
pub fn encode_response(
    client: ClientFormat,
    response: &ChatResponse,
    ctx: &TranslateContext,
) -> Bytes {
    let mut r = response.clone();
    if r.id.is_empty() {
        r.id = ctx.fallback_id(client);
    }
    if r.model.is_empty() {
        r.model = ctx.requested_model.clone();
    }
    let v = match client {
        ClientFormat::OpenAi => openai::encode_response(&r, ctx.created),
        ClientFormat::Anthropic => anthropic::encode_response(&r),
        ClientFormat::Responses => responses::encode_response(&r, ctx.created),
        ClientFormat::Gemini => gemini::client::encode_response(&r),
    };
    Bytes::from(to_vec(&v))
}

/// A provider's successful response as the client should see it: the same bytes when the
/// formats match (usage still read), else decoded and re-encoded.
pub fn translate_response(
    upstream: Format,
    client: ClientFormat,
    body: Bytes,
    ctx: &TranslateContext,
) -> Result<TranslatedResponse, TranslateError> {
    if upstream == client.format() {
        let v = serde_json::from_slice::<Value>(&body).ok();
        let usage = v.as_ref().and_then(|v| usage_of_value(upstream, v));
        let model = v
            .as_ref()
            .and_then(|v| v.get("model"))
            .and_then(Value::as_str)
            .map(str::to_string);
        return Ok(TranslatedResponse { body, usage, model });
    }
    let fallback = ctx.fallback_id(client);
    let decoded = decode_response(upstream, &body, &fallback)?;
    Ok(TranslatedResponse {
        body: encode_response(client, &decoded, ctx),
        usage: decoded.usage,
        model: Some(decoded.model).filter(|m| !m.is_empty()),
    })
}

/// The fields of a response body that say who answered and what it used; the rest of the
/// document is skipped without building a tree.
#[derive(serde::Deserialize)]
struct ResponseFacts<'a> {
    #[serde(borrow, default)]
    model: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow, default, rename = "modelVersion")]
    model_version: Option<std::borrow::Cow<'a, str>>,
    #[serde(default)]
    usage: Option<Value>,
    #[serde(default, rename = "usageMetadata")]
    usage_metadata: Option<Value>,
}

/// Usage and the answering model of a same-format response, read without translating it.
pub fn facts_of_response(format: Format, body: &[u8]) -> (Option<Usage>, Option<String>) {
    let Ok(facts) = serde_json::from_slice::<ResponseFacts<'_>>(body) else {
        return (None, None);
    };
    let (model, usage) = match format {
        Format::Gemini => (facts.model_version, facts.usage_metadata),
        Format::OpenAi | Format::Anthropic | Format::Responses => (facts.model, facts.usage),
    };
    let usage = usage.filter(Value::is_object).map(|u| match format {
        Format::OpenAi => openai::decode_usage(&u),
        Format::Anthropic => anthropic::decode_usage(&u),
        Format::Gemini => gemini::decode_usage(&u),
        Format::Responses => responses::decode_usage(&u),
    });
    (usage, model.map(|m| m.into_owned()))
}

fn usage_of_value(format: Format, v: &Value) -> Option<Usage> {
    let (key, decode): (&str, fn(&Value) -> Usage) = match format {
        Format::OpenAi => ("usage", openai::decode_usage),
        Format::Anthropic => ("usage", anthropic::decode_usage),
        Format::Gemini => ("usageMetadata", gemini::decode_usage),
        Format::Responses => ("usage", responses::decode_usage),
    };
    v.get(key).filter(|u| u.is_object()).map(decode)
}

/// Token usage from a provider's (non-streaming) response body in `format`, if it reports any.
pub fn usage_of_response(format: Format, body: &[u8]) -> Option<Usage> {
    let v = serde_json::from_slice::<Value>(body).ok()?;
    usage_of_value(format, &v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ctx() -> TranslateContext {
        TranslateContext {
            include_usage: false,
            requested_model: "asked".into(),
            created: 1_700_000_000,
            nonce: "abc".into(),
            gemini_framing: Default::default(),
        }
    }

    #[test]
    fn same_format_is_untouched_but_usage_is_read() {
        let body = Bytes::from_static(
            br#"{"id":"x","model":"gpt-4o-2024-08-06","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":4,"total_tokens":7}}"#,
        );
        let t =
            translate_response(Format::OpenAi, ClientFormat::OpenAi, body.clone(), &ctx()).unwrap();
        assert_eq!(t.body, body);
        assert_eq!(t.usage.unwrap().output_tokens, 4);
        assert_eq!(t.model.as_deref(), Some("gpt-4o-2024-08-06"));
        // Garbage passes through too: not ours to judge.
        let junk = Bytes::from_static(b"not json");
        let t =
            translate_response(Format::OpenAi, ClientFormat::OpenAi, junk.clone(), &ctx()).unwrap();
        assert_eq!((t.body, t.usage), (junk, None));
    }

    #[test]
    fn missing_ids_and_models_are_filled() {
        let gemini = json!({"candidates": [{"content": {"parts": [{"text": "hi"}], "role": "model"}, "finishReason": "STOP"}]});
        let t = translate_response(
            Format::Gemini,
            ClientFormat::Anthropic,
            Bytes::from(gemini.to_string()),
            &ctx(),
        )
        .unwrap();
        let v: Value = serde_json::from_slice(&t.body).unwrap();
        assert_eq!(v["id"], "msg_abc");
        assert_eq!(v["model"], "asked");
        assert_eq!(v["stop_reason"], "end_turn");
        assert!(translate_response(
            Format::Gemini,
            ClientFormat::OpenAi,
            Bytes::from_static(b"{}"),
            &ctx()
        )
        .is_err());
    }

    #[test]
    fn facts_are_read_from_every_format_without_translating() {
        let (u, m) = facts_of_response(
            Format::OpenAi,
            br#"{"id":"x","model":"gpt-4o","choices":[{"message":{"content":"hi"}}],"usage":{"prompt_tokens":12,"completion_tokens":3,"total_tokens":15}}"#,
        );
        assert_eq!(m.as_deref(), Some("gpt-4o"));
        let u = u.unwrap();
        assert_eq!((u.input_tokens, u.output_tokens), (12, 3));
        let (u, m) = facts_of_response(
            Format::Gemini,
            br#"{"candidates":[],"usageMetadata":{"promptTokenCount":7,"candidatesTokenCount":2},"modelVersion":"gemini-2.5-flash"}"#,
        );
        assert_eq!(m.as_deref(), Some("gemini-2.5-flash"));
        assert_eq!(u.unwrap().input_tokens, 7);
        let (u, m) = facts_of_response(
            Format::Anthropic,
            br#"{"model":"claude-haiku-4-5","usage":{"input_tokens":5,"output_tokens":4}}"#,
        );
        assert_eq!(
            (u.unwrap().output_tokens, m.as_deref()),
            (4, Some("claude-haiku-4-5"))
        );
        assert_eq!(facts_of_response(Format::OpenAi, b"not json"), (None, None));
        assert_eq!(
            facts_of_response(Format::OpenAi, br#"{"usage":"odd"}"#),
            (None, None)
        );
    }
}
