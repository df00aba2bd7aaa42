//! Incremental server-sent-events framing (placeholder until the full parser lands).

use bytes::{Bytes, BytesMut};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    pub event: Option<String>,
    pub data: String,
    pub id: Option<String>,
    pub raw: Bytes,
}

impl SseEvent {
    pub fn is_done(&self) -> bool {
        self.data == "[DONE]"
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SseError {
    #[error("an SSE event exceeds {limit} bytes")]
    EventTooLarge { limit: usize },
}

pub struct SseParser {
    buf: BytesMut,
    max: usize,
}

impl SseParser {
    pub fn new(max_event_bytes: usize) -> Self {
        SseParser {
            buf: BytesMut::new(),
            max: max_event_bytes,
        }
    }
    pub fn push(&mut self, chunk: &[u8]) -> Result<(), SseError> {
        self.buf.extend_from_slice(chunk);
        if self.buf.len() > self.max && memchr::memmem::find(&self.buf, b"\n\n").is_none() {
            return Err(SseError::EventTooLarge { limit: self.max });
        }
        Ok(())
    }
    pub fn next_event(&mut self) -> Option<SseEvent> {
        let end = memchr::memmem::find(&self.buf, b"\n\n")?;
        let raw = self.buf.split_to(end + 2).freeze();
        Some(parse(raw))
    }
    pub fn finish(&mut self) -> Option<SseEvent> {
        if self.buf.is_empty() {
            return None;
        }
        let raw = self.buf.split().freeze();
        Some(parse(raw))
    }
    pub fn pending_bytes(&self) -> usize {
        self.buf.len()
    }
}

fn parse(raw: Bytes) -> SseEvent {
    let text = String::from_utf8_lossy(&raw);
    let mut data = Vec::new();
    let mut event = None;
    for line in text.lines() {
        if let Some(d) = line.strip_prefix("data:") {
            data.push(d.strip_prefix(' ').unwrap_or(d).to_string());
        } else if let Some(e) = line.strip_prefix("event:") {
            event = Some(e.trim().to_string());
        }
    }
    SseEvent {
        event,
        data: data.join("\n"),
        id: None,
        raw,
    }
}
