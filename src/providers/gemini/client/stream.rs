//! Gemini client streams, in either framing: server-sent events (`data: {chunk}\r\n\r\n`) or
//! one JSON array (`[` chunk `,\r\n` chunk … `]`, a valid JSON document once complete). Each
//! chunk is a `GenerateContentResponse` holding the new parts; the last one carries the
//! `finishReason`s and the `usageMetadata`.
//!
//! Function calls are written whole once their arguments are complete (at the next call, the
//! choice's finish or the end), as Gemini streams them. Keep-alives write nothing (an SSE
//! comment line is not something every Gemini client skips, and an array has no comments).

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::super::super::canonical::{ClientFormat, FinishReason, StreamEvent, ToolCall, Usage};
use super::super::super::error::error_body_object;
use super::super::super::json::str_at;
use super::super::super::openai::truncated_error;
use super::super::super::PassthroughStep;
use super::super::super::{EventClass, ProviderError};
use super::super::decode_usage;
use super::framing::Framing;
use super::response::{call_part, encode_usage, finish_to_gemini, thought_part, MALFORMED};
use crate::upstream::sse::SseEvent;

/// Writes the elements of a client stream in its framing.
#[derive(Debug)]
struct Writer {
    framing: Framing,
    /// Elements written so far.
    written: usize,
}

impl Writer {
    fn new(framing: Framing) -> Writer {
        Writer {
            framing,
            written: 0,
        }
    }

    /// One element, its JSON text as given.
    fn raw(&mut self, json: &[u8], out: &mut Vec<u8>) {
        match self.framing {
            Framing::Sse => {
                out.extend_from_slice(b"data: ");
                out.extend_from_slice(json);
                out.extend_from_slice(b"\r\n\r\n");
            }
            Framing::JsonArray => {
                out.extend_from_slice(if self.written == 0 { b"[" } else { b",\r\n" });
                out.extend_from_slice(json);
            }
        }
        self.written = self.written.saturating_add(1);
    }

    fn element(&mut self, v: &Value, out: &mut Vec<u8>) {
        // Serializing a `Value` into a Vec cannot fail.
        let bytes = serde_json::to_vec(v).unwrap_or_default();
        self.raw(&bytes, out);
    }

    /// The end of the stream: an array is closed (`[]` when it had no element).
    fn close(&mut self, out: &mut Vec<u8>) {
        if self.framing == Framing::JsonArray {
            if self.written == 0 {
                out.push(b'[');
            }
            out.push(b']');
        }
    }

    /// A terminal error element, then the end.
    fn error(&mut self, err: &ProviderError, out: &mut Vec<u8>) {
        self.element(
            &Value::Object(error_body_object(ClientFormat::Gemini, err)),
            out,
        );
        self.close(out);
    }
}

/// A terminal error in a Gemini client stream that has written nothing yet: SSE
/// `data: {"error": {code, message, status}}`, or the array `[{"error": …}]`.
pub fn encode_stream_error(err: &ProviderError, framing: Framing, out: &mut Vec<u8>) {
    Writer::new(framing).error(err, out);
}

#[derive(Debug, Default)]
struct ChoiceState {
    /// The finish reason, once the choice finished (written in the last chunk).
    finish: Option<String>,
    /// The call being received: its arguments are complete at the next call or the finish.
    pending: Option<ToolCall>,
    pending_index: u32,
    /// A call was dropped for arguments that are not a JSON object.
    malformed: bool,
}

/// Canonical stream events as a Gemini client stream (see the module doc).
#[derive(Debug)]
pub struct ChunkEncoder {
    id: String,
    model: String,
    writer: Writer,
    choices: BTreeMap<u32, ChoiceState>,
    usage: Option<Usage>,
    ended: bool,
    /// Whether the id/model are fixed (after the first chunk written).
    fixed: bool,
}

impl ChunkEncoder {
    pub fn new(id: String, model: String, framing: Framing) -> ChunkEncoder {
        ChunkEncoder {
            id,
            model,
            writer: Writer::new(framing),
            choices: BTreeMap::new(),
            usage: None,
            ended: false,
            fixed: false,
        }
    }

    /// Writes one chunk of `candidates` (and the usage, when given).
    fn chunk(&mut self, candidates: Vec<Value>, usage: Option<Value>, out: &mut Vec<u8>) {
        self.fixed = true;
        let mut v = json!({
            "candidates": candidates,
            "modelVersion": self.model,
            "responseId": self.id,
        });
        if let (Some(u), Some(obj)) = (usage, v.as_object_mut()) {
            obj.insert("usageMetadata".into(), u);
        }
        self.writer.element(&v, out);
    }

    /// A chunk of new parts for `choice` (nothing for a finished choice).
    fn parts(&mut self, choice: u32, parts: Vec<Value>, out: &mut Vec<u8>) -> EventClass {
        let state = self.choices.entry(choice).or_default();
        if state.finish.is_some() || parts.is_empty() {
            return EventClass::Preamble;
        }
        let candidate = json!({"content": {"role": "model", "parts": parts}, "index": choice});
        self.chunk(vec![candidate], None, out);
        EventClass::Content
    }

    /// Writes `choice`'s call in progress, if any, now that its arguments are complete.
    fn flush_call(&mut self, choice: u32, out: &mut Vec<u8>) -> EventClass {
        let Some(state) = self.choices.get_mut(&choice) else {
            return EventClass::Preamble;
        };
        let Some(call) = state.pending.take() else {
            return EventClass::Preamble;
        };
        match call_part(&call) {
            Some(part) => self.parts(choice, vec![part], out),
            None => {
                state.malformed = true;
                EventClass::Preamble
            }
        }
    }

    /// Writes one event; returns what it means for the commit point.
    pub fn encode(&mut self, event: StreamEvent, out: &mut Vec<u8>) -> EventClass {
        if self.ended {
            return EventClass::Preamble;
        }
        match event {
            StreamEvent::Start { id, model } => {
                if !self.fixed {
                    if let Some(id) = id.filter(|s| !s.is_empty()) {
                        self.id = id;
                    }
                    if let Some(model) = model.filter(|s| !s.is_empty()) {
                        self.model = model;
                    }
                }
                EventClass::Preamble
            }
            StreamEvent::Text { choice, text } => {
                let flushed = self.flush_call(choice, out);
                if text.is_empty() {
                    return flushed;
                }
                self.parts(choice, vec![json!({"text": text})], out)
            }
            // Content after a call means its arguments are complete: it goes out first.
            StreamEvent::Thinking { choice, text } => {
                let flushed = self.flush_call(choice, out);
                if text.is_empty() {
                    return flushed;
                }
                self.parts(choice, vec![thought_part(&text, None)], out)
            }
            StreamEvent::ThinkingSignature { choice, signature } => {
                self.flush_call(choice, out);
                self.parts(choice, vec![thought_part("", Some(&signature))], out)
            }
            // Gemini cannot carry another provider's encrypted reasoning.
            StreamEvent::RedactedThinking { .. } => EventClass::Preamble,
            StreamEvent::ToolCallStart {
                choice,
                index,
                id,
                name,
            } => {
                let class = self.flush_call(choice, out);
                let state = self.choices.entry(choice).or_default();
                if state.finish.is_none() {
                    state.pending = Some(ToolCall {
                        id,
                        name,
                        arguments: String::new(),
                    });
                    state.pending_index = index;
                }
                class
            }
            StreamEvent::ToolCallArgs {
                choice,
                index,
                arguments,
            } => {
                if let Some(state) = self.choices.get_mut(&choice) {
                    if let Some(call) = state
                        .pending
                        .as_mut()
                        .filter(|_| state.pending_index == index)
                    {
                        call.arguments.push_str(&arguments);
                    }
                }
                EventClass::Preamble
            }
            StreamEvent::Finish { choice, reason } => self.finish_choice(choice, &reason, out),
            StreamEvent::Usage(u) => {
                self.usage = Some(u);
                EventClass::Preamble
            }
            StreamEvent::Error(err) => {
                self.ended = true;
                self.writer.error(&err, out);
                EventClass::Error
            }
            StreamEvent::KeepAlive => EventClass::Preamble,
            StreamEvent::Done => {
                self.done(out);
                EventClass::Done
            }
        }
    }

    /// Records `choice`'s finish (written in the last chunk), after its last call.
    fn finish_choice(
        &mut self,
        choice: u32,
        reason: &FinishReason,
        out: &mut Vec<u8>,
    ) -> EventClass {
        let class = self.flush_call(choice, out);
        let state = self.choices.entry(choice).or_default();
        if state.finish.is_none() {
            let plain = matches!(reason, FinishReason::Stop | FinishReason::ToolCalls);
            state.finish = Some(if plain && state.malformed {
                MALFORMED.to_string()
            } else {
                finish_to_gemini(reason)
            });
        }
        class
    }

    /// The last chunk: every choice's finish reason (`STOP` for any left open) and the usage;
    /// an array is closed.
    fn done(&mut self, out: &mut Vec<u8>) {
        if self.choices.is_empty() {
            self.choices.insert(0, ChoiceState::default());
        }
        let open: Vec<u32> = self
            .choices
            .iter()
            .filter(|(_, s)| s.finish.is_none())
            .map(|(i, _)| *i)
            .collect();
        for choice in open {
            self.finish_choice(choice, &FinishReason::Stop, out);
        }
        let candidates: Vec<Value> = self
            .choices
            .iter()
            .map(|(i, s)| {
                json!({
                    "content": {"role": "model", "parts": []},
                    "finishReason": s.finish.as_deref().unwrap_or("STOP"),
                    "index": i,
                })
            })
            .collect();
        let usage = encode_usage(&self.usage.unwrap_or_default());
        self.chunk(candidates, Some(usage), out);
        self.writer.close(out);
        self.ended = true;
    }

    /// At the upstream's end of stream: `Done` if every choice finished, else the terminal
    /// error (a stream cut short is never shown as complete).
    pub fn finish(&mut self, out: &mut Vec<u8>) -> EventClass {
        if self.ended {
            return EventClass::Done;
        }
        let complete =
            !self.choices.is_empty() && self.choices.values().all(|s| s.finish.is_some());
        if complete {
            self.done(out);
            EventClass::Done
        } else {
            self.encode(StreamEvent::Error(truncated_error()), out)
        }
    }

    pub fn ended(&self) -> bool {
        self.ended
    }
}

/// A Gemini upstream stream (always `alt=sse`) to a Gemini client: forwarded event by event
/// (byte for byte with `alt=sse`), else each event's JSON as an element of the array.
#[derive(Debug)]
pub struct Passthrough {
    writer: Writer,
    /// A chunk with a `finishReason` went by.
    finished: bool,
    ended: bool,
}

impl Passthrough {
    pub fn new(framing: Framing) -> Passthrough {
        Passthrough {
            writer: Writer::new(framing),
            finished: false,
            ended: false,
        }
    }

    pub fn push(&mut self, event: &SseEvent, out: &mut Vec<u8>) -> PassthroughStep {
        if self.ended {
            return PassthroughStep::default();
        }
        let data = event.data.trim();
        let parsed = serde_json::from_str::<Value>(data).ok();
        match self.writer.framing {
            Framing::Sse => out.extend_from_slice(&event.raw),
            // Only JSON goes in the array (comments and blank events have no place in it).
            Framing::JsonArray if parsed.is_some() => self.writer.raw(data.as_bytes(), out),
            Framing::JsonArray => {}
        }
        let Some(v) = parsed else {
            return PassthroughStep::default();
        };
        let mut step = PassthroughStep {
            usage: v
                .get("usageMetadata")
                .filter(|u| u.is_object())
                .map(decode_usage),
            model: str_at(&v, "modelVersion")
                .filter(|m| !m.is_empty())
                .map(str::to_string),
            ..PassthroughStep::default()
        };
        if v.get("error").is_some_and(|e| !e.is_null()) {
            self.writer.close(out);
            self.ended = true;
            step.class = EventClass::Error;
            return step;
        }
        let candidates = v.get("candidates").and_then(Value::as_array);
        for c in candidates.into_iter().flatten() {
            if str_at(c, "finishReason").is_some() {
                self.finished = true;
            }
            let content = c
                .get("content")
                .and_then(|x| x.get("parts"))
                .and_then(Value::as_array)
                .is_some_and(|parts| parts.iter().any(is_content));
            if content {
                step.class = EventClass::Content;
            }
        }
        // A blocked prompt ends the stream with no candidate.
        if v.get("promptFeedback")
            .and_then(|f| str_at(f, "blockReason"))
            .is_some()
        {
            self.finished = true;
        }
        step
    }

    /// The end of the upstream body: `Done` (the array closed) if a finish reason went by,
    /// else the terminal error.
    pub fn finish(&mut self, out: &mut Vec<u8>) -> EventClass {
        if self.ended {
            return EventClass::Done;
        }
        self.ended = true;
        if self.finished {
            self.writer.close(out);
            EventClass::Done
        } else {
            self.writer.error(&truncated_error(), out);
            EventClass::Error
        }
    }

    /// Ends the stream with `err` (a failure after the commit point).
    pub fn abort(&mut self, err: &ProviderError, out: &mut Vec<u8>) {
        if !self.ended {
            self.ended = true;
            self.writer.error(err, out);
        }
    }
}

/// Whether a part is something the client sees: text (a thought's too) or a function call.
fn is_content(part: &Value) -> bool {
    str_at(part, "text").is_some_and(|t| !t.is_empty())
        || part.get("functionCall").is_some_and(Value::is_object)
        || part.get("function_call").is_some_and(Value::is_object)
}
