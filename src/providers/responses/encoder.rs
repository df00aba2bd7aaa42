//! Canonical stream events as the Responses API's typed stream events, for a Responses client:
//! `response.created`, `response.in_progress`, per output item `response.output_item.added` …
//! `response.output_item.done` (messages with their content part and text deltas, reasoning
//! summaries, function calls with their argument deltas), then exactly one terminal event:
//! `response.completed`, `response.incomplete` or `error`. Every event carries the next
//! `sequence_number`.

use serde_json::{json, Value};

use super::response::{
    function_call_item, message_item, output_text, reasoning_item, response_object,
};
use super::{error_event, response_id, status_of};
use crate::providers::canonical::*;
use crate::providers::json::{write_keep_alive, write_sse};
use crate::providers::{openai, EventClass, ProviderError};

/// The message or reasoning item being written (at most one at a time; function calls are
/// tracked apart and may stay open side by side).
#[derive(Debug)]
enum Open {
    Message {
        output_index: usize,
        id: String,
        text: String,
    },
    Reasoning {
        output_index: usize,
        id: String,
        text: String,
        signature: Option<String>,
    },
}

#[derive(Debug)]
struct Call {
    /// The canonical tool index.
    index: u32,
    output_index: usize,
    id: String,
    call: ToolCall,
    open: bool,
}

/// Canonical stream events as Responses API stream events (choice 0 only).
#[derive(Debug)]
pub struct EventEncoder {
    id: String,
    model: String,
    created: u64,
    seq: u64,
    started: bool,
    ended: bool,
    /// Every output item so far, as added and then as done.
    output: Vec<Value>,
    open: Option<Open>,
    calls: Vec<Call>,
    finish: Option<FinishReason>,
    usage: Option<Usage>,
}

impl EventEncoder {
    pub fn new(id: String, model: String, created: u64) -> EventEncoder {
        EventEncoder {
            id: response_id(&id),
            model,
            created,
            seq: 0,
            started: false,
            ended: false,
            output: Vec::new(),
            open: None,
            calls: Vec::new(),
            finish: None,
            usage: None,
        }
    }

    /// Writes one event of `kind`, numbered.
    fn emit(&mut self, out: &mut Vec<u8>, kind: &str, mut data: Value) {
        if let Some(obj) = data.as_object_mut() {
            obj.insert("type".into(), Value::String(kind.to_string()));
            obj.insert("sequence_number".into(), self.seq.into());
        }
        self.seq = self.seq.saturating_add(1);
        write_sse(out, Some(kind), &data);
    }

    fn response(&self, status: &str, incomplete: Value, usage: Option<&Usage>) -> Value {
        response_object(
            &self.id,
            &self.model,
            self.created,
            status,
            incomplete,
            self.output.clone(),
            usage,
        )
    }

    fn start(&mut self, out: &mut Vec<u8>) {
        if self.started {
            return;
        }
        self.started = true;
        let response = self.response("in_progress", Value::Null, None);
        self.emit(out, "response.created", json!({ "response": response }));
        self.emit(out, "response.in_progress", json!({ "response": response }));
    }

    /// An id for the next output item.
    fn item_id(&self, prefix: &str) -> String {
        let base = self.id.trim_start_matches("resp_");
        format!("{prefix}_{base}_{}", self.output.len())
    }

    /// Adds an output item; its index.
    fn add_item(&mut self, out: &mut Vec<u8>, item: Value) -> usize {
        let output_index = self.output.len();
        self.output.push(item.clone());
        self.emit(
            out,
            "response.output_item.added",
            json!({"output_index": output_index, "item": item}),
        );
        output_index
    }

    fn item_done(&mut self, out: &mut Vec<u8>, output_index: usize, item: Value) {
        if let Some(slot) = self.output.get_mut(output_index) {
            *slot = item.clone();
        }
        self.emit(
            out,
            "response.output_item.done",
            json!({"output_index": output_index, "item": item}),
        );
    }

    /// The status of an item closed now: `incomplete` once the response was cut (output limit,
    /// content filter), as OpenAI marks the item in progress then.
    fn item_status(&self) -> &'static str {
        match self.finish {
            Some(FinishReason::Length | FinishReason::ContentFilter) => "incomplete",
            _ => "completed",
        }
    }

    /// Closes the open message or reasoning item.
    fn close_open(&mut self, out: &mut Vec<u8>) {
        match self.open.take() {
            Some(Open::Message {
                output_index,
                id,
                text,
            }) => {
                let at = json!({"item_id": id, "output_index": output_index, "content_index": 0});
                let mut done = at.clone();
                merge(&mut done, json!({"text": text, "logprobs": []}));
                self.emit(out, "response.output_text.done", done);
                let mut part = at;
                merge(&mut part, json!({"part": output_text(&text)}));
                self.emit(out, "response.content_part.done", part);
                let item = message_item(&id, self.item_status(), vec![output_text(&text)]);
                self.item_done(out, output_index, item);
            }
            Some(Open::Reasoning {
                output_index,
                id,
                text,
                signature,
            }) => {
                let at = json!({"item_id": id, "output_index": output_index, "summary_index": 0});
                let mut done = at.clone();
                merge(&mut done, json!({"text": text}));
                self.emit(out, "response.reasoning_summary_text.done", done);
                let mut part = at;
                merge(
                    &mut part,
                    json!({"part": {"type": "summary_text", "text": text}}),
                );
                self.emit(out, "response.reasoning_summary_part.done", part);
                let thinking = ContentPart::Thinking { text, signature };
                let item = reasoning_item(&id, &thinking).unwrap_or(Value::Null);
                self.item_done(out, output_index, item);
            }
            None => {}
        }
    }

    fn close_calls(&mut self, out: &mut Vec<u8>) {
        let mut done = Vec::new();
        for c in self.calls.iter_mut().filter(|c| c.open) {
            c.open = false;
            done.push((c.output_index, c.id.clone(), c.call.clone()));
        }
        for (output_index, id, call) in done {
            self.emit(
                out,
                "response.function_call_arguments.done",
                json!({"item_id": id, "output_index": output_index, "arguments": call.arguments, "name": call.name}),
            );
            let item = function_call_item(&id, &call, self.item_status());
            self.item_done(out, output_index, item);
        }
    }

    /// Text of the answer, in the open message or a new one.
    fn text(&mut self, out: &mut Vec<u8>, text: String) -> EventClass {
        self.start(out);
        if !matches!(self.open, Some(Open::Message { .. })) {
            self.close_open(out);
            let id = self.item_id("msg");
            let output_index = self.add_item(out, message_item(&id, "in_progress", Vec::new()));
            self.emit(
                out,
                "response.content_part.added",
                json!({"item_id": id, "output_index": output_index, "content_index": 0, "part": output_text("")}),
            );
            self.open = Some(Open::Message {
                output_index,
                id,
                text: String::new(),
            });
        }
        let Some(Open::Message {
            output_index,
            id,
            text: all,
        }) = &mut self.open
        else {
            return EventClass::Preamble;
        };
        all.push_str(&text);
        let data = json!({"item_id": id, "output_index": output_index, "content_index": 0, "delta": text, "logprobs": []});
        self.emit(out, "response.output_text.delta", data);
        EventClass::Content
    }

    /// Reasoning text, in the open reasoning item or a new one.
    fn thinking(&mut self, out: &mut Vec<u8>, text: String) -> EventClass {
        self.start(out);
        if !matches!(self.open, Some(Open::Reasoning { .. })) {
            self.close_open(out);
            let id = self.item_id("rs");
            let item = json!({"id": id, "type": "reasoning", "summary": []});
            let output_index = self.add_item(out, item);
            self.emit(
                out,
                "response.reasoning_summary_part.added",
                json!({"item_id": id, "output_index": output_index, "summary_index": 0, "part": {"type": "summary_text", "text": ""}}),
            );
            self.open = Some(Open::Reasoning {
                output_index,
                id,
                text: String::new(),
                signature: None,
            });
        }
        let Some(Open::Reasoning {
            output_index,
            id,
            text: all,
            ..
        }) = &mut self.open
        else {
            return EventClass::Preamble;
        };
        all.push_str(&text);
        let data =
            json!({"item_id": id, "output_index": output_index, "summary_index": 0, "delta": text});
        self.emit(out, "response.reasoning_summary_text.delta", data);
        EventClass::Content
    }

    /// The signature ends the reasoning item in progress (kept as its `encrypted_content`).
    fn signature(&mut self, out: &mut Vec<u8>, sig: String) {
        if let Some(Open::Reasoning { signature, .. }) = &mut self.open {
            *signature = Some(sig);
            self.close_open(out);
        }
    }

    /// A whole encrypted reasoning block: one reasoning item with no summary.
    fn redacted(&mut self, out: &mut Vec<u8>, data: String) {
        self.start(out);
        self.close_open(out);
        let id = self.item_id("rs");
        let Some(item) = reasoning_item(&id, &ContentPart::RedactedThinking { data }) else {
            return;
        };
        let output_index = self.add_item(out, item.clone());
        self.item_done(out, output_index, item);
    }

    fn tool_call_start(
        &mut self,
        out: &mut Vec<u8>,
        index: u32,
        id: String,
        name: String,
    ) -> EventClass {
        if self.calls.iter().any(|c| c.index == index) {
            return EventClass::Preamble;
        }
        self.start(out);
        self.close_open(out);
        let item_id = self.item_id("fc");
        let call = ToolCall {
            id,
            name,
            arguments: String::new(),
        };
        let output_index = self.add_item(out, function_call_item(&item_id, &call, "in_progress"));
        self.calls.push(Call {
            index,
            output_index,
            id: item_id,
            call,
            open: true,
        });
        EventClass::Content
    }

    fn tool_call_args(&mut self, out: &mut Vec<u8>, index: u32, arguments: String) -> EventClass {
        let Some(c) = self
            .calls
            .iter_mut()
            .find(|c| c.index == index && c.open)
            .filter(|_| !arguments.is_empty())
        else {
            return EventClass::Preamble;
        };
        c.call.arguments.push_str(&arguments);
        let data = json!({"item_id": c.id, "output_index": c.output_index, "delta": arguments});
        self.emit(out, "response.function_call_arguments.delta", data);
        EventClass::Content
    }

    /// Closes every item and writes `response.completed` (or `response.incomplete`).
    fn done(&mut self, out: &mut Vec<u8>) {
        self.start(out);
        self.close_open(out);
        self.close_calls(out);
        let (status, incomplete) = status_of(self.finish.as_ref());
        let response = self.response(status, incomplete, self.usage.as_ref());
        let kind = if status == "completed" {
            "response.completed"
        } else {
            "response.incomplete"
        };
        self.emit(out, kind, json!({ "response": response }));
        self.ended = true;
    }

    /// The terminal `error` event, after `response.created` (the SDK's stream helper wants
    /// one before anything else).
    fn error(&mut self, out: &mut Vec<u8>, err: &ProviderError) -> EventClass {
        self.start(out);
        let data = error_event(err, self.seq);
        self.seq = self.seq.saturating_add(1);
        write_sse(out, Some("error"), &data);
        self.ended = true;
        EventClass::Error
    }

    pub fn encode(&mut self, event: StreamEvent, out: &mut Vec<u8>) -> EventClass {
        if self.ended {
            return EventClass::Preamble;
        }
        let open = self.finish.is_none();
        match event {
            StreamEvent::Start { id, model } => {
                if !self.started {
                    if let Some(id) = id.filter(|i| !i.is_empty()) {
                        self.id = response_id(&id);
                    }
                    if let Some(model) = model.filter(|m| !m.is_empty()) {
                        self.model = model;
                    }
                }
                EventClass::Preamble
            }
            StreamEvent::Text { choice: 0, text } if open && !text.is_empty() => {
                self.text(out, text)
            }
            StreamEvent::Thinking { choice: 0, text } if open && !text.is_empty() => {
                self.thinking(out, text)
            }
            StreamEvent::ThinkingSignature {
                choice: 0,
                signature,
            } if open => {
                self.signature(out, signature);
                EventClass::Preamble
            }
            StreamEvent::RedactedThinking { choice: 0, data } if open => {
                self.redacted(out, data);
                EventClass::Preamble
            }
            StreamEvent::ToolCallStart {
                choice: 0,
                index,
                id,
                name,
            } if open => self.tool_call_start(out, index, id, name),
            StreamEvent::ToolCallArgs {
                choice: 0,
                index,
                arguments,
            } => self.tool_call_args(out, index, arguments),
            StreamEvent::Finish { choice: 0, reason } => {
                self.finish.get_or_insert(reason);
                EventClass::Preamble
            }
            StreamEvent::Usage(u) => {
                self.usage = Some(u);
                EventClass::Preamble
            }
            StreamEvent::Error(err) => self.error(out, &err),
            StreamEvent::KeepAlive => {
                write_keep_alive(out);
                EventClass::Preamble
            }
            StreamEvent::Done => {
                self.done(out);
                EventClass::Done
            }
            // Other choices, empty text, content after the finish.
            _ => EventClass::Preamble,
        }
    }

    /// At the upstream's end of stream: `Done` (the terminal event written) if the response
    /// finished, else a terminal `error` event and `Error`.
    pub fn finish(&mut self, out: &mut Vec<u8>) -> EventClass {
        if self.ended {
            return EventClass::Done;
        }
        if self.finish.is_some() {
            self.done(out);
            EventClass::Done
        } else {
            self.error(out, &openai::truncated_error())
        }
    }

    pub fn ended(&self) -> bool {
        self.ended
    }
}

/// Adds `extra`'s fields to `v` (both objects).
fn merge(v: &mut Value, extra: Value) {
    if let (Some(obj), Value::Object(more)) = (v.as_object_mut(), extra) {
        obj.extend(more);
    }
}
