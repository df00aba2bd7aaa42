//! Anthropic Messages streams: classifying events (for passthrough and the commit point),
//! tracking usage across `message_start` and `message_delta`, decoding events into canonical
//! stream events, and encoding canonical events as Messages events for an Anthropic client.
//! Thinking is model output: a non-empty `thinking_delta`, a `signature_delta` or a
//! `redacted_thinking` block commits the stream, whether passed through or translated (see
//! docs/thinking-notes.md).

use serde_json::{json, Value};

use super::{encode_usage, finish_from_anthropic, finish_to_anthropic, RawUsage};
use crate::providers::canonical::*;
use crate::providers::json::{str_at, u64_at, write_sse};
use crate::providers::{encode_stream_error, openai, EventClass, ProviderError};
use crate::upstream::sse::SseEvent;

/// The event type: the `type` of the data, else the SSE `event:` name.
fn event_type<'a>(event: &'a SseEvent, data: Option<&'a Value>) -> Option<&'a str> {
    data.and_then(|d| str_at(d, "type"))
        .or(event.event.as_deref())
}

/// Classifies an already parsed Messages stream event (for passthrough).
pub(crate) fn classify(event: &SseEvent, data: Option<&Value>) -> EventClass {
    let non_empty = |v: Option<&Value>, key: &str| {
        v.and_then(|v| str_at(v, key))
            .is_some_and(|s| !s.is_empty())
    };
    match event_type(event, data) {
        Some("message_stop") => EventClass::Done,
        Some("error") => EventClass::Error,
        Some("content_block_start") => {
            let block = data.and_then(|d| d.get("content_block"));
            match block.and_then(|b| str_at(b, "type")) {
                Some("text") if non_empty(block, "text") => EventClass::Content,
                Some("thinking") if non_empty(block, "thinking") => EventClass::Content,
                Some("text") | Some("thinking") | None => EventClass::Preamble,
                // tool_use, server_tool_use, tool results, redacted_thinking: the model
                // committed to something.
                Some(_) => EventClass::Content,
            }
        }
        Some("content_block_delta") => {
            let delta = data.and_then(|d| d.get("delta"));
            if non_empty(delta, "text")
                || non_empty(delta, "partial_json")
                || non_empty(delta, "thinking")
                || non_empty(delta, "signature")
            {
                EventClass::Content
            } else {
                EventClass::Preamble
            }
        }
        _ => EventClass::Preamble,
    }
}

/// Classifies one event of a Messages stream.
pub fn classify_event(event: &SseEvent) -> EventClass {
    let data = serde_json::from_str::<Value>(&event.data).ok();
    classify(event, data.as_ref())
}

/// Tracks usage across a Messages stream (`message_start`, then `message_delta`s).
#[derive(Debug, Default)]
pub(crate) struct UsageTracker {
    raw: RawUsage,
}

impl UsageTracker {
    /// Updates from an event; returns the new snapshot when the event carried usage.
    pub(crate) fn observe(&mut self, event: &SseEvent, data: Option<&Value>) -> Option<Usage> {
        let d = data?;
        let u = match event_type(event, data) {
            Some("message_start") => d.get("message").and_then(|m| m.get("usage")),
            Some("message_delta") => d.get("usage"),
            _ => None,
        }?;
        if !u.is_object() {
            return None;
        }
        self.raw.update(u);
        Some(self.raw.canonical())
    }
}

/// Turns upstream Messages stream events into canonical stream events.
#[derive(Debug, Default)]
pub(crate) struct EventDecoder {
    usage: UsageTracker,
    /// Content-block index → tool index, for tool_use blocks.
    tool_blocks: Vec<(u64, u32)>,
    next_tool: u32,
}

impl EventDecoder {
    pub(crate) fn decode(&mut self, event: &SseEvent, out: &mut Vec<StreamEvent>) {
        let data = serde_json::from_str::<Value>(&event.data).ok();
        let d = data.as_ref().unwrap_or(&Value::Null);
        let kind = event_type(event, data.as_ref());
        if kind == Some("message_start") {
            let m = d.get("message").unwrap_or(&Value::Null);
            out.push(StreamEvent::Start {
                id: str_at(m, "id").map(str::to_string),
                model: str_at(m, "model").map(str::to_string),
            });
        }
        if let Some(u) = self.usage.observe(event, data.as_ref()) {
            out.push(StreamEvent::Usage(u));
        }
        match kind {
            Some("content_block_start") => self.block_start(d, out),
            Some("content_block_delta") => self.block_delta(d, out),
            Some("message_delta") => {
                if let Some(reason) = d.get("delta").and_then(|x| str_at(x, "stop_reason")) {
                    out.push(StreamEvent::Finish {
                        choice: 0,
                        reason: finish_from_anthropic(reason),
                    });
                }
            }
            Some("message_stop") => out.push(StreamEvent::Done),
            Some("ping") => out.push(StreamEvent::KeepAlive),
            Some("error") => {
                let err = d.get("error").unwrap_or(&Value::Null);
                out.push(StreamEvent::Error(ProviderError::from_anthropic_object(
                    None, err,
                )));
            }
            _ => {}
        }
    }

    /// A `content_block_start`: text or thinking already in it, a whole redacted-thinking
    /// block, or the start of a tool call (with its input, should the block carry one).
    fn block_start(&mut self, d: &Value, out: &mut Vec<StreamEvent>) {
        let b = d.get("content_block").unwrap_or(&Value::Null);
        let block = u64_at(d, "index").unwrap_or(0);
        match str_at(b, "type") {
            Some("text") => {
                if let Some(t) = str_at(b, "text").filter(|t| !t.is_empty()) {
                    out.push(StreamEvent::Text {
                        choice: 0,
                        text: t.to_string(),
                    });
                }
            }
            Some("thinking") => {
                if let Some(t) = str_at(b, "thinking").filter(|t| !t.is_empty()) {
                    out.push(StreamEvent::Thinking {
                        choice: 0,
                        text: t.to_string(),
                    });
                }
                if let Some(s) = str_at(b, "signature").filter(|s| !s.is_empty()) {
                    out.push(StreamEvent::ThinkingSignature {
                        choice: 0,
                        signature: s.to_string(),
                    });
                }
            }
            Some("redacted_thinking") => out.push(StreamEvent::RedactedThinking {
                choice: 0,
                data: str_at(b, "data").unwrap_or_default().to_string(),
            }),
            Some("tool_use") => {
                let index = self.next_tool;
                self.next_tool = self.next_tool.saturating_add(1);
                self.tool_blocks.push((block, index));
                out.push(StreamEvent::ToolCallStart {
                    choice: 0,
                    index,
                    id: str_at(b, "id").unwrap_or_default().to_string(),
                    name: str_at(b, "name").unwrap_or_default().to_string(),
                });
                if let Some(input) = b
                    .get("input")
                    .filter(|i| i.as_object().is_some_and(|o| !o.is_empty()))
                {
                    out.push(StreamEvent::ToolCallArgs {
                        choice: 0,
                        index,
                        arguments: input.to_string(),
                    });
                }
            }
            _ => {}
        }
    }

    /// A `content_block_delta`: text, thinking, a thinking block's signature, or arguments of
    /// the tool call its block started.
    fn block_delta(&mut self, d: &Value, out: &mut Vec<StreamEvent>) {
        let delta = d.get("delta").unwrap_or(&Value::Null);
        let block = u64_at(d, "index").unwrap_or(0);
        match str_at(delta, "type") {
            Some("text_delta") => {
                if let Some(t) = str_at(delta, "text").filter(|t| !t.is_empty()) {
                    out.push(StreamEvent::Text {
                        choice: 0,
                        text: t.to_string(),
                    });
                }
            }
            Some("thinking_delta") => {
                if let Some(t) = str_at(delta, "thinking").filter(|t| !t.is_empty()) {
                    out.push(StreamEvent::Thinking {
                        choice: 0,
                        text: t.to_string(),
                    });
                }
            }
            Some("signature_delta") => {
                if let Some(s) = str_at(delta, "signature").filter(|s| !s.is_empty()) {
                    out.push(StreamEvent::ThinkingSignature {
                        choice: 0,
                        signature: s.to_string(),
                    });
                }
            }
            Some("input_json_delta") => {
                let tool = self
                    .tool_blocks
                    .iter()
                    .find(|(b, _)| *b == block)
                    .map(|(_, t)| *t);
                let json = str_at(delta, "partial_json").filter(|j| !j.is_empty());
                if let (Some(index), Some(json)) = (tool, json) {
                    out.push(StreamEvent::ToolCallArgs {
                        choice: 0,
                        index,
                        arguments: json.to_string(),
                    });
                }
            }
            _ => {}
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Block {
    Text,
    Thinking,
    Tool(u32),
}

/// Writes canonical stream events as Messages stream events: `message_start`, content blocks
/// (`content_block_start` / `_delta` / `_stop`, one open at a time), `message_delta` with the
/// stop reason and usage, `message_stop`. Only choice 0 is written (Messages has one).
#[derive(Debug)]
pub(crate) struct EventEncoder {
    id: String,
    model: String,
    started: bool,
    next_block: u32,
    open: Option<(u32, Block)>,
    tools_started: Vec<u32>,
    stop_reason: Option<&'static str>,
    usage: Usage,
    ended: bool,
}

impl EventEncoder {
    pub(crate) fn new(id: String, model: String) -> Self {
        EventEncoder {
            id,
            model,
            started: false,
            next_block: 0,
            open: None,
            tools_started: Vec::new(),
            stop_reason: None,
            usage: Usage::default(),
            ended: false,
        }
    }

    fn start(&mut self, out: &mut Vec<u8>) {
        if self.started {
            return;
        }
        self.started = true;
        let mut usage = encode_usage(&self.usage);
        if let Some(u) = usage.as_object_mut() {
            u.insert("output_tokens".into(), 0.into());
        }
        write_sse(
            out,
            Some("message_start"),
            &json!({
                "type": "message_start",
                "message": {
                    "id": self.id,
                    "type": "message",
                    "role": "assistant",
                    "model": self.model,
                    "content": [],
                    "stop_reason": null,
                    "stop_sequence": null,
                    "usage": usage,
                }
            }),
        );
    }

    fn close_block(&mut self, out: &mut Vec<u8>) {
        if let Some((index, _)) = self.open.take() {
            write_sse(
                out,
                Some("content_block_stop"),
                &json!({"type": "content_block_stop", "index": index}),
            );
        }
    }

    fn open_block(&mut self, out: &mut Vec<u8>, block: Block, content_block: Value) -> u32 {
        self.close_block(out);
        let index = self.next_block;
        self.next_block = self.next_block.saturating_add(1);
        self.open = Some((index, block));
        write_sse(
            out,
            Some("content_block_start"),
            &json!({"type": "content_block_start", "index": index, "content_block": content_block}),
        );
        index
    }

    fn delta(out: &mut Vec<u8>, index: u32, delta: Value) {
        write_sse(
            out,
            Some("content_block_delta"),
            &json!({"type": "content_block_delta", "index": index, "delta": delta}),
        );
    }

    pub(crate) fn encode(&mut self, event: StreamEvent, out: &mut Vec<u8>) -> EventClass {
        if self.ended {
            return EventClass::Preamble;
        }
        match event {
            StreamEvent::Start { id, model } => {
                if !self.started {
                    if let Some(id) = id {
                        self.id = id;
                    }
                    if let Some(model) = model {
                        self.model = model;
                    }
                }
                EventClass::Preamble
            }
            StreamEvent::Text { choice: 0, text } if !text.is_empty() => self.text(out, text),
            StreamEvent::Thinking { choice: 0, text } if !text.is_empty() => {
                self.thinking(out, text)
            }
            StreamEvent::ThinkingSignature {
                choice: 0,
                signature,
            } => self.signature(out, signature),
            StreamEvent::RedactedThinking { choice: 0, data } => self.redacted(out, data),
            StreamEvent::ToolCallStart {
                choice: 0,
                index,
                id,
                name,
            } => self.tool_call_start(out, index, id, name),
            StreamEvent::ToolCallArgs {
                choice: 0,
                index,
                arguments,
            } => self.tool_call_args(out, index, arguments),
            StreamEvent::Finish { choice: 0, reason } => {
                if self.stop_reason.is_none() {
                    self.start(out);
                    self.close_block(out);
                    self.stop_reason = Some(finish_to_anthropic(&reason));
                }
                EventClass::Preamble
            }
            StreamEvent::Usage(u) => {
                self.usage = u;
                EventClass::Preamble
            }
            StreamEvent::Error(err) => {
                self.ended = true;
                encode_stream_error(ClientFormat::Anthropic, &err, out);
                EventClass::Error
            }
            StreamEvent::KeepAlive => {
                write_sse(out, Some("ping"), &json!({"type": "ping"}));
                EventClass::Preamble
            }
            StreamEvent::Done => {
                self.done(out);
                EventClass::Done
            }
            // Other choices (n > 1 upstream) and empty text.
            _ => EventClass::Preamble,
        }
    }

    /// Text of the answer, in the open text block or a new one.
    fn text(&mut self, out: &mut Vec<u8>, text: String) -> EventClass {
        if self.stop_reason.is_some() {
            return EventClass::Preamble;
        }
        self.start(out);
        let index = match self.open {
            Some((i, Block::Text)) => i,
            _ => self.open_block(out, Block::Text, json!({"type": "text", "text": ""})),
        };
        Self::delta(out, index, json!({"type": "text_delta", "text": text}));
        EventClass::Content
    }

    /// Reasoning text, in the open thinking block or a new one (opened with an empty
    /// signature, which a `signature_delta` replaces).
    fn thinking(&mut self, out: &mut Vec<u8>, text: String) -> EventClass {
        if self.stop_reason.is_some() {
            return EventClass::Preamble;
        }
        self.start(out);
        let index = self.thinking_block(out);
        Self::delta(
            out,
            index,
            json!({"type": "thinking_delta", "thinking": text}),
        );
        EventClass::Content
    }

    fn thinking_block(&mut self, out: &mut Vec<u8>) -> u32 {
        match self.open {
            Some((i, Block::Thinking)) => i,
            _ => self.open_block(
                out,
                Block::Thinking,
                json!({"type": "thinking", "thinking": "", "signature": ""}),
            ),
        }
    }

    /// The signature ends its thinking block (Anthropic sends it last).
    fn signature(&mut self, out: &mut Vec<u8>, signature: String) -> EventClass {
        if self.stop_reason.is_some() || signature.is_empty() {
            return EventClass::Preamble;
        }
        self.start(out);
        let index = self.thinking_block(out);
        Self::delta(
            out,
            index,
            json!({"type": "signature_delta", "signature": signature}),
        );
        self.close_block(out);
        EventClass::Content
    }

    /// A whole `redacted_thinking` block.
    fn redacted(&mut self, out: &mut Vec<u8>, data: String) -> EventClass {
        if self.stop_reason.is_some() {
            return EventClass::Preamble;
        }
        self.start(out);
        self.open_block(
            out,
            Block::Thinking,
            json!({"type": "redacted_thinking", "data": data}),
        );
        self.close_block(out);
        EventClass::Content
    }

    /// A tool call starts: a new `tool_use` block (once per call).
    fn tool_call_start(
        &mut self,
        out: &mut Vec<u8>,
        index: u32,
        id: String,
        name: String,
    ) -> EventClass {
        if self.stop_reason.is_some() || self.tools_started.contains(&index) {
            return EventClass::Preamble;
        }
        self.start(out);
        self.tools_started.push(index);
        self.open_block(
            out,
            Block::Tool(index),
            json!({"type": "tool_use", "id": id, "name": name, "input": {}}),
        );
        EventClass::Content
    }

    /// Arguments of the tool call whose block is open.
    fn tool_call_args(&mut self, out: &mut Vec<u8>, index: u32, arguments: String) -> EventClass {
        match self.open {
            // Arguments for a block already closed cannot be sent any more (blocks do not
            // interleave in this format); providers send each call's arguments together.
            Some((block, Block::Tool(open))) if open == index && !arguments.is_empty() => {
                Self::delta(
                    out,
                    block,
                    json!({"type": "input_json_delta", "partial_json": arguments}),
                );
                EventClass::Content
            }
            _ => EventClass::Preamble,
        }
    }

    fn done(&mut self, out: &mut Vec<u8>) {
        self.start(out);
        self.close_block(out);
        // Cumulative, as Anthropic sends it: the input side is only known here for
        // providers that report usage at the end (OpenAI).
        let usage = encode_usage(&self.usage);
        write_sse(
            out,
            Some("message_delta"),
            &json!({
                "type": "message_delta",
                "delta": {
                    "stop_reason": self.stop_reason.unwrap_or("end_turn"),
                    "stop_sequence": null,
                },
                "usage": usage,
            }),
        );
        write_sse(out, Some("message_stop"), &json!({"type": "message_stop"}));
        self.ended = true;
    }

    /// At the upstream's end of stream: `Done` if a stop reason was seen, else a terminal
    /// error event.
    pub(crate) fn finish(&mut self, out: &mut Vec<u8>) -> EventClass {
        if self.ended {
            return EventClass::Done;
        }
        if self.stop_reason.is_some() {
            self.done(out);
            EventClass::Done
        } else {
            self.encode(StreamEvent::Error(openai::truncated_error()), out)
        }
    }

    pub(crate) fn ended(&self) -> bool {
        self.ended
    }
}
