//! Provider adapters: each owns one wire format, building the upstream request and classifying
//! what comes back. This issue ships the OpenAI format (`openai`, `openai-compatible`); the
//! canonical model and the other providers come with their own issue.

pub mod openai;

use crate::upstream::sse::SseEvent;

/// What a stream event means for the commit point (DESIGN.md §1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventClass {
    /// Role-only or empty deltas, comments, keep-alives: buffered before the commit point.
    Preamble,
    /// The first of these commits the stream to the client.
    Content,
    /// An error reported inside a 200 stream.
    Error,
    /// The end marker (`data: [DONE]`).
    Done,
}

/// Classifies an event of an OpenAI-format stream.
pub fn classify_event(event: &SseEvent) -> EventClass {
    openai::classify_event(event)
}
