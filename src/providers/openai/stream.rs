//! OpenAI streams: classifying chat-completions, completions and responses stream events
//! (for passthrough and the commit point), decoding `chat.completion.chunk` events into
//! canonical stream events, and encoding canonical events as chunks for an OpenAI client.
//! Reasoning travels as the compatible servers' `delta.reasoning_content` (read also as
//! `delta.reasoning`) and commits the stream like content.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::{
    decode_usage, encode_usage, finish_from_openai, finish_to_openai, reasoning_text,
    truncated_error,
};
use crate::providers::canonical::*;
use crate::providers::json::{array_at, str_at, u64_at, write_keep_alive, write_sse};
use crate::providers::{encode_stream_error, EventClass, ProviderError};
use crate::upstream::sse::SseEvent;

/// Classifies one event of a chat-completions, completions or responses stream.
pub fn classify_event(event: &SseEvent) -> EventClass {
    if event.is_done() {
        return EventClass::Done;
    }
    if event.data.trim().is_empty() {
        return match event.event.as_deref() {
            Some("error") => EventClass::Error,
            _ => EventClass::Preamble,
        };
    }
    if event.event.as_deref() == Some("error") {
        return EventClass::Error;
    }
    let Ok(value) = serde_json::from_str::<Value>(&event.data) else {
        // Not ours to judge: a provider's own format we pass through untouched.
        return EventClass::Content;
    };
    classify_value(&value)
}

/// [`classify_event`] for an already parsed `data:` payload.
pub(crate) fn classify_value(value: &Value) -> EventClass {
    if value.get("error").is_some_and(|e| !e.is_null()) {
        return EventClass::Error;
    }
    // Responses API: typed events; only output deltas are content.
    if let Some(kind) = value.get("type").and_then(|t| t.as_str()) {
        if kind == "error" || kind == "response.failed" {
            return EventClass::Error;
        }
        if kind.starts_with("response.") {
            return if kind.ends_with(".delta") || kind == "response.completed" {
                EventClass::Content
            } else {
                EventClass::Preamble
            };
        }
    }
    let Some(choices) = value.get("choices").and_then(|c| c.as_array()) else {
        return EventClass::Preamble;
    };
    let has_content = choices.iter().any(|choice| {
        let text = choice.get("text").and_then(|t| t.as_str());
        let delta = choice.get("delta");
        let non_empty_str =
            |v: Option<&Value>| v.and_then(|v| v.as_str()).is_some_and(|s| !s.is_empty());
        text.is_some_and(|t| !t.is_empty())
            || delta.is_some_and(|d| {
                non_empty_str(d.get("content"))
                    || non_empty_str(d.get("refusal"))
                    || reasoning_text(d).is_some_and(|s| !s.is_empty())
                    || d.get("tool_calls").is_some_and(|t| !t.is_null())
                    || d.get("function_call").is_some_and(|t| !t.is_null())
            })
    });
    if has_content {
        EventClass::Content
    } else {
        EventClass::Preamble
    }
}

/// Whether a chunk carries only usage (`choices: []` and a non-null `usage`): the chunk
/// `stream_options.include_usage` adds at the end.
pub(crate) fn is_usage_only(value: &Value) -> bool {
    value
        .get("choices")
        .and_then(Value::as_array)
        .is_some_and(Vec::is_empty)
        && value.get("usage").is_some_and(Value::is_object)
}

/// Turns upstream `chat.completion.chunk` events into canonical stream events.
#[derive(Debug, Default)]
pub(crate) struct ChunkDecoder {
    started: bool,
    /// (choice, tool index) pairs whose start was reported.
    tools: Vec<(u32, u32)>,
}

impl ChunkDecoder {
    pub(crate) fn decode(&mut self, event: &SseEvent, out: &mut Vec<StreamEvent>) {
        if event.is_done() {
            out.push(StreamEvent::Done);
            return;
        }
        if event.data.trim().is_empty() {
            out.push(StreamEvent::KeepAlive);
            return;
        }
        let Ok(v) = serde_json::from_str::<Value>(&event.data) else {
            return;
        };
        if let Some(err) = v.get("error").filter(|e| !e.is_null()) {
            out.push(StreamEvent::Error(ProviderError::from_openai_object(
                None, err,
            )));
            return;
        }
        if !self.started {
            self.started = true;
            out.push(StreamEvent::Start {
                id: str_at(&v, "id")
                    .filter(|s| !s.is_empty())
                    .map(str::to_string),
                model: str_at(&v, "model")
                    .filter(|s| !s.is_empty())
                    .map(str::to_string),
            });
        }
        for c in array_at(&v, "choices") {
            let Some(choice) = u64_at(c, "index")
                .or(Some(0))
                .and_then(|n| u32::try_from(n).ok())
            else {
                continue;
            };
            self.choice(choice, c, out);
        }
        if let Some(u) = v.get("usage").filter(|u| u.is_object()) {
            out.push(StreamEvent::Usage(decode_usage(u)));
        }
    }

    /// One choice of a chunk: its reasoning (`reasoning_content`/`reasoning`), text and
    /// refusal, tool-call deltas, and finish reason.
    fn choice(&mut self, choice: u32, c: &Value, out: &mut Vec<StreamEvent>) {
        let delta = c.get("delta").unwrap_or(&Value::Null);
        if let Some(text) = reasoning_text(delta).filter(|t| !t.is_empty()) {
            out.push(StreamEvent::Thinking {
                choice,
                text: text.to_string(),
            });
        }
        for key in ["content", "refusal"] {
            if let Some(text) = str_at(delta, key).filter(|t| !t.is_empty()) {
                out.push(StreamEvent::Text {
                    choice,
                    text: text.to_string(),
                });
            }
        }
        for (pos, t) in array_at(delta, "tool_calls").iter().enumerate() {
            let index = u64_at(t, "index")
                .and_then(|n| u32::try_from(n).ok())
                .unwrap_or(pos as u32);
            let f = t.get("function").unwrap_or(&Value::Null);
            self.tool_delta(choice, index, str_at(t, "id"), f, out);
        }
        if let Some(f) = delta.get("function_call").filter(|f| f.is_object()) {
            self.tool_delta(choice, 0, None, f, out);
        }
        if let Some(reason) = str_at(c, "finish_reason") {
            out.push(StreamEvent::Finish {
                choice,
                reason: finish_from_openai(reason),
            });
        }
    }

    fn tool_delta(
        &mut self,
        choice: u32,
        index: u32,
        id: Option<&str>,
        f: &Value,
        out: &mut Vec<StreamEvent>,
    ) {
        let name = str_at(f, "name");
        if !self.tools.contains(&(choice, index)) {
            if id.is_none() && name.is_none() {
                // Arguments for a call that was never announced: nothing to attach them to.
                return;
            }
            self.tools.push((choice, index));
            out.push(StreamEvent::ToolCallStart {
                choice,
                index,
                id: id
                    .map(str::to_string)
                    .unwrap_or_else(|| format!("call_{index}")),
                name: name.unwrap_or_default().to_string(),
            });
        }
        if let Some(args) = str_at(f, "arguments").filter(|a| !a.is_empty()) {
            out.push(StreamEvent::ToolCallArgs {
                choice,
                index,
                arguments: args.to_string(),
            });
        }
    }
}

#[derive(Debug, Default)]
struct ChoiceState {
    role_sent: bool,
    finished: bool,
    /// Tool indexes started (arguments for others are dropped).
    tools: Vec<u32>,
}

/// Writes canonical stream events as `chat.completion.chunk` events: a role chunk first for
/// each choice, content and tool-call deltas, one finish chunk per choice, the usage chunk
/// (`choices: []`) when the client asked for it, then `data: [DONE]`.
#[derive(Debug)]
pub(crate) struct ChunkEncoder {
    id: String,
    model: String,
    created: u64,
    include_usage: bool,
    choices: BTreeMap<u32, ChoiceState>,
    usage: Option<Usage>,
    /// `[DONE]` or an error was written: nothing more is.
    ended: bool,
    /// Whether the id/model are fixed (after the first chunk written).
    fixed: bool,
}

impl ChunkEncoder {
    pub(crate) fn new(id: String, model: String, created: u64, include_usage: bool) -> Self {
        ChunkEncoder {
            id,
            model,
            created,
            include_usage,
            choices: BTreeMap::new(),
            usage: None,
            ended: false,
            fixed: false,
        }
    }

    fn chunk(&mut self, out: &mut Vec<u8>, choices: Value, usage: Option<Value>) {
        self.fixed = true;
        let mut v = json!({
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": choices,
        });
        if let (Some(u), Some(obj)) = (usage, v.as_object_mut()) {
            obj.insert("usage".into(), u);
        }
        write_sse(out, None, &v);
    }

    fn choice_delta(&mut self, out: &mut Vec<u8>, choice: u32, delta: Value) {
        self.chunk(
            out,
            json!([{"index": choice, "delta": delta, "logprobs": null, "finish_reason": null}]),
            None,
        );
    }

    /// Writes the role chunk for `choice` if not yet written; `false` if the choice finished.
    fn open_choice(&mut self, out: &mut Vec<u8>, choice: u32) -> bool {
        let state = self.choices.entry(choice).or_default();
        if state.finished {
            return false;
        }
        if !state.role_sent {
            state.role_sent = true;
            self.choice_delta(
                out,
                choice,
                json!({"role": "assistant", "content": "", "refusal": null}),
            );
        }
        true
    }

    /// Writes one event; returns what it means for the commit point.
    pub(crate) fn encode(&mut self, event: StreamEvent, out: &mut Vec<u8>) -> EventClass {
        if self.ended {
            return EventClass::Preamble;
        }
        match event {
            StreamEvent::Start { id, model } => {
                if !self.fixed {
                    if let Some(id) = id {
                        self.id = id;
                    }
                    if let Some(model) = model {
                        self.model = model;
                    }
                }
                EventClass::Preamble
            }
            StreamEvent::Text { choice, text } => {
                if text.is_empty() || !self.open_choice(out, choice) {
                    return EventClass::Preamble;
                }
                self.choice_delta(out, choice, json!({"content": text}));
                EventClass::Content
            }
            StreamEvent::ToolCallStart {
                choice,
                index,
                id,
                name,
            } => self.tool_call_start(out, choice, index, id, name),
            StreamEvent::ToolCallArgs {
                choice,
                index,
                arguments,
            } => self.tool_call_args(out, choice, index, arguments),
            StreamEvent::Finish { choice, reason } => self.finish_choice(out, choice, &reason),
            StreamEvent::Usage(u) => {
                self.usage = Some(u);
                EventClass::Preamble
            }
            StreamEvent::Error(err) => {
                self.ended = true;
                encode_stream_error(ClientFormat::OpenAi, &err, out);
                EventClass::Error
            }
            StreamEvent::KeepAlive => {
                write_keep_alive(out);
                EventClass::Preamble
            }
            StreamEvent::Done => {
                self.done(out);
                EventClass::Done
            }
            // `reasoning_content`: not OpenAI's (it shows no reasoning) but what compatible
            // clients read. Model output has begun: it commits the stream.
            StreamEvent::Thinking { choice, text } => {
                if text.is_empty() || !self.open_choice(out, choice) {
                    return EventClass::Preamble;
                }
                self.choice_delta(out, choice, json!({"reasoning_content": text}));
                EventClass::Content
            }
            // Signatures and encrypted reasoning only replay in their own format.
            StreamEvent::ThinkingSignature { .. } | StreamEvent::RedactedThinking { .. } => {
                EventClass::Preamble
            }
        }
    }

    /// The first delta of a tool call (its id and name); a call already started is not
    /// started again.
    fn tool_call_start(
        &mut self,
        out: &mut Vec<u8>,
        choice: u32,
        index: u32,
        id: String,
        name: String,
    ) -> EventClass {
        if !self.open_choice(out, choice) {
            return EventClass::Preamble;
        }
        if let Some(state) = self.choices.get_mut(&choice) {
            if state.tools.contains(&index) {
                return EventClass::Preamble;
            }
            state.tools.push(index);
        }
        self.choice_delta(
            out,
            choice,
            json!({"tool_calls": [{
                "index": index,
                "id": id,
                "type": "function",
                "function": {"name": name, "arguments": ""},
            }]}),
        );
        EventClass::Content
    }

    /// More arguments of a started tool call (dropped for a call never started).
    fn tool_call_args(
        &mut self,
        out: &mut Vec<u8>,
        choice: u32,
        index: u32,
        arguments: String,
    ) -> EventClass {
        let started = self
            .choices
            .get(&choice)
            .is_some_and(|s| !s.finished && s.tools.contains(&index));
        if !started || arguments.is_empty() {
            return EventClass::Preamble;
        }
        self.choice_delta(
            out,
            choice,
            json!({"tool_calls": [{"index": index, "function": {"arguments": arguments}}]}),
        );
        EventClass::Content
    }

    /// The finish chunk of `choice` (once; nothing more is written for it).
    fn finish_choice(
        &mut self,
        out: &mut Vec<u8>,
        choice: u32,
        reason: &FinishReason,
    ) -> EventClass {
        if !self.open_choice(out, choice) {
            return EventClass::Preamble;
        }
        if let Some(state) = self.choices.get_mut(&choice) {
            state.finished = true;
        }
        self.chunk(
            out,
            json!([{
                "index": choice,
                "delta": {},
                "logprobs": null,
                "finish_reason": finish_to_openai(reason),
            }]),
            None,
        );
        EventClass::Preamble
    }

    /// Ends the stream properly: finishes open choices, the usage chunk if asked, `[DONE]`.
    fn done(&mut self, out: &mut Vec<u8>) {
        if self.choices.is_empty() {
            // An answer with no events at all still has one (empty) choice.
            self.open_choice(out, 0);
        }
        let open: Vec<u32> = self
            .choices
            .iter()
            .filter(|(_, s)| !s.finished)
            .map(|(i, _)| *i)
            .collect();
        for choice in open {
            self.encode(
                StreamEvent::Finish {
                    choice,
                    reason: FinishReason::Stop,
                },
                out,
            );
        }
        if self.include_usage {
            let usage = encode_usage(&self.usage.unwrap_or_default());
            self.chunk(out, json!([]), Some(usage));
        }
        out.extend_from_slice(b"data: [DONE]\n\n");
        self.ended = true;
    }

    /// At the upstream's end of stream: `Done` if the answer was complete (every choice
    /// finished; only Gemini ends this way), else a terminal error event.
    pub(crate) fn finish(&mut self, out: &mut Vec<u8>) -> EventClass {
        if self.ended {
            return EventClass::Done;
        }
        let complete = !self.choices.is_empty() && self.choices.values().all(|s| s.finished);
        if complete {
            self.done(out);
            EventClass::Done
        } else {
            self.encode(StreamEvent::Error(truncated_error()), out)
        }
    }

    pub(crate) fn ended(&self) -> bool {
        self.ended
    }
}
