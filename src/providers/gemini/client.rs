//! Gemini as a client format: the `google-genai` SDK's `models/{model}:generateContent` and
//! `:streamGenerateContent` (server-sent events with `alt=sse`, else one JSON array streamed)
//! decoded into the canonical model, and canonical responses and stream events encoded back.
//! The model and the stream flag come from the path, not the body.

use serde_json::{json, Map, Value};

use super::super::canonical::{ChatRequest, ChatResponse, StreamEvent};
use super::super::stream::PassthroughStep;
use super::super::{EventClass, ProviderError, TranslateError};
use crate::upstream::sse::SseEvent;

/// How a Gemini client's stream is framed: `alt=sse` asks for server-sent events, anything
/// else gets one JSON array whose elements arrive as they are produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Framing {
    #[default]
    Sse,
    JsonArray,
}

impl Framing {
    /// The framing a request's query asks for.
    pub fn of_query(query: Option<&str>) -> Framing {
        let sse = query.is_some_and(|q| {
            q.split('&')
                .any(|pair| pair.eq_ignore_ascii_case("alt=sse"))
        });
        if sse {
            Framing::Sse
        } else {
            Framing::JsonArray
        }
    }

    /// The content type of the client's stream.
    pub fn content_type(self) -> &'static str {
        match self {
            Framing::Sse => "text/event-stream",
            Framing::JsonArray => "application/json",
        }
    }
}

/// Decodes a Gemini `GenerateContentRequest` body for `model` (from the path, or an override);
/// `stream` is whether the path was `:streamGenerateContent`.
pub fn decode_request(
    body: &Map<String, Value>,
    model: &str,
    stream: bool,
) -> Result<ChatRequest, TranslateError> {
    let _ = (body, model, stream);
    Err(TranslateError::InvalidRequest(
        "Gemini client requests are not translated yet".into(),
    ))
}

/// A canonical response as a Gemini `GenerateContentResponse`.
pub fn encode_response(response: &ChatResponse) -> Value {
    json!({ "responseId": response.id, "modelVersion": response.model, "candidates": [] })
}

/// Canonical stream events as a Gemini client stream.
pub struct ChunkEncoder {
    framing: Framing,
    ended: bool,
}

impl ChunkEncoder {
    pub fn new(id: String, model: String, framing: Framing) -> ChunkEncoder {
        let _ = (id, model);
        ChunkEncoder {
            framing,
            ended: false,
        }
    }

    pub fn encode(&mut self, event: StreamEvent, out: &mut Vec<u8>) -> EventClass {
        let _ = (event, out, self.framing);
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

/// A Gemini upstream stream (always `alt=sse`) to a Gemini client: forwarded event by event,
/// reframed as a JSON array when the client did not ask for `alt=sse`.
pub struct Passthrough {
    framing: Framing,
}

impl Passthrough {
    pub fn new(framing: Framing) -> Passthrough {
        Passthrough { framing }
    }

    pub fn push(&mut self, event: &SseEvent, out: &mut Vec<u8>) -> PassthroughStep {
        let _ = self.framing;
        out.extend_from_slice(&event.raw);
        PassthroughStep::default()
    }

    pub fn finish(&mut self, out: &mut Vec<u8>) -> EventClass {
        let _ = out;
        EventClass::Done
    }
}

/// A terminal error in a Gemini client stream.
pub fn encode_stream_error(err: &ProviderError, framing: Framing, out: &mut Vec<u8>) {
    let _ = (err, framing, out);
}
