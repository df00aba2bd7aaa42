//! Gemini as a client format: the `google-genai` SDK's `models/{model}:generateContent` and
//! `:streamGenerateContent` (server-sent events with `alt=sse`, else one JSON array streamed)
//! decoded into the canonical model, and canonical responses and stream events encoded back.
//! The model and the stream flag come from the path, not the body.
//!
//! - [`framing`]: `alt=sse` or the JSON array, and the cache key of each;
//! - [`request`]: `GenerateContentRequest` → canonical (tool-call ids and their pairing);
//! - [`response`]: canonical → `GenerateContentResponse` (malformed call arguments);
//! - [`stream`]: the stream encoder, the Gemini → Gemini passthrough and in-stream errors.

pub mod framing;
pub mod request;
pub mod response;
pub mod stream;
#[cfg(test)]
mod tests;

pub use framing::{cache_path, Framing};
pub use request::decode_request;
pub use response::encode_response;
pub use stream::{encode_stream_error, ChunkEncoder, Passthrough};
