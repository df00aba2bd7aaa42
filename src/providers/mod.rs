//! Provider adapters and translation: one module per wire format (`openai` — also Azure and
//! OpenAI-compatible —, `anthropic`, `gemini`), each owning its kind's translation, upstream
//! paths and auth headers; the canonical model they translate through ([`canonical`]); the
//! upstream request head ([`head`], dispatching on the kind, over the shared pieces in
//! [`endpoint`]); and the per-request pieces the gateway drives: [`request`] (decode once,
//! encode per attempt), [`response`], [`stream`] and [`error`].
//!
//! Per request: [`DecodedRequest::decode`] the client body (format from the route,
//! [`ClientFormat::from_path`]); per attempt [`DecodedRequest::encode`] for the target's kind,
//! then [`build_request`] with [`EncodedRequest::chat_call`]; on 2xx [`translate_response`] or a
//! [`StreamTranslator`] fed each upstream [`SseEvent`]; on an error status [`translate_error`].
//! Same-format traffic is passed through untouched wherever nothing needs to change.

pub mod anthropic;
pub mod canonical;
pub mod endpoint;
pub mod error;
pub mod gemini;
pub mod head;
mod json;
pub mod openai;
pub mod request;
pub mod response;
pub mod responses;
mod segment;
pub mod stream;
mod translate_error;

pub use canonical::{
    ChatRequest, ChatResponse, Choice, ClientFormat, ContentPart, FinishReason, Format,
    ImageSource, MaxTokensField, Message, Reasoning, ResponseFormat, Role, StreamEvent, Tool,
    ToolCall, ToolChoice, Usage,
};
pub use endpoint::{ChatCall, RequestHead};
pub use error::{
    decode_error, encode_error, encode_stream_error, translate_error, ErrorKind, ProviderError,
    TranslateError,
};
pub use head::{build_request, upstream_path};
pub use openai::AZURE_DEFAULT_API_VERSION;
pub use request::{apply_overrides, DecodedRequest, EncodedRequest};
pub use response::{
    decode_response, encode_response, facts_of_response, translate_response, usage_of_response,
    TranslateContext, TranslatedResponse,
};
pub use stream::StreamTranslator;

use crate::upstream::sse::SseEvent;
use crate::vocab::ProviderKind;

/// What a stream event means for the commit point (DESIGN.md §1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EventClass {
    /// Role-only or empty deltas, comments, keep-alives: buffered before the commit point.
    #[default]
    Preamble,
    /// The first of these commits the stream to the client.
    Content,
    /// An error reported inside a 200 stream.
    Error,
    /// The end marker (`data: [DONE]`, `message_stop`, or a complete stream's end).
    Done,
}

impl Format {
    /// The wire format a provider kind speaks.
    pub fn of(kind: ProviderKind) -> Format {
        match kind {
            ProviderKind::OpenAi | ProviderKind::AzureOpenAi | ProviderKind::OpenAiCompatible => {
                Format::OpenAi
            }
            ProviderKind::Anthropic => Format::Anthropic,
            ProviderKind::Gemini => Format::Gemini,
        }
    }

    /// The format a provider of `kind` is asked in for a request of `client` format (`None`:
    /// not a chat route). `openai` and `azure-openai` providers serve a Responses API client
    /// natively (so `previous_response_id`, stored responses and built-in tools work);
    /// `openai-compatible` ones get it translated to Chat Completions, the API they all speak
    /// (stateful features are then refused, so a fallback to a native target can serve them).
    pub fn upstream(kind: ProviderKind, client: Option<ClientFormat>) -> Format {
        match (kind, client) {
            (ProviderKind::OpenAi | ProviderKind::AzureOpenAi, Some(ClientFormat::Responses)) => {
                Format::Responses
            }
            _ => Format::of(kind),
        }
    }
}

/// What a same-format stream's event told, beyond the bytes it forwarded (the Responses and
/// Gemini passthroughs' answer to the stream translator).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PassthroughStep {
    /// What the event means for the commit point.
    pub class: EventClass,
    /// The usage so far, when the event carried it.
    pub usage: Option<Usage>,
    /// The model answering, when the event named it.
    pub model: Option<String>,
}

/// Classifies an event of an OpenAI-format stream.
pub fn classify_event(event: &SseEvent) -> EventClass {
    openai::classify_event(event)
}
