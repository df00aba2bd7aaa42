//! An upstream Responses API stream: decoded into canonical events ([`EventDecoder`]), or
//! forwarded untouched to a Responses client while watched for the commit point, usage, the
//! model and its end ([`Passthrough`]).

use serde_json::Value;

use super::error_event;
use super::response::{decode_usage, thinking_of};
use crate::providers::canonical::*;
use crate::providers::json::{str_at, u64_at, write_sse};
use crate::providers::PassthroughStep;
use crate::providers::{openai, EventClass, ProviderError};
use crate::upstream::sse::SseEvent;

/// Most function calls tracked in one stream (item id → tool index); later ones are dropped.
const MAX_CALLS: usize = 1024;

/// The event type: the data's `type`, else the SSE `event:` name.
fn event_type<'a>(event: &'a SseEvent, data: Option<&'a Value>) -> Option<&'a str> {
    data.and_then(|d| str_at(d, "type"))
        .or(event.event.as_deref())
}

/// The `error` of a `response.failed` (inside its response) or an `error` event.
fn stream_error(kind: &str, d: &Value) -> ProviderError {
    let err = if kind == "error" {
        d
    } else {
        d.get("response")
            .and_then(|r| r.get("error"))
            .filter(|e| e.is_object())
            .unwrap_or(d)
    };
    ProviderError::from_openai_object(None, err)
}

/// Classifies one parsed event of a Responses stream.
fn classify(kind: Option<&str>, d: Option<&Value>) -> EventClass {
    let non_empty = |key: &str| {
        d.and_then(|d| str_at(d, key))
            .is_some_and(|s| !s.is_empty())
    };
    match kind {
        Some("response.completed") | Some("response.incomplete") => EventClass::Done,
        Some("response.failed") | Some("error") => EventClass::Error,
        Some(
            "response.output_text.delta"
            | "response.refusal.delta"
            | "response.function_call_arguments.delta"
            | "response.reasoning_summary_text.delta"
            | "response.reasoning_text.delta"
            | "response.custom_tool_call_input.delta",
        ) if non_empty("delta") => EventClass::Content,
        Some("response.output_item.added") => {
            match d
                .and_then(|d| d.get("item"))
                .and_then(|i| str_at(i, "type"))
            {
                Some("message") | Some("reasoning") | None => EventClass::Preamble,
                // A function or built-in tool call: the model committed to something.
                Some(_) => EventClass::Content,
            }
        }
        _ => EventClass::Preamble,
    }
}

/// Responses API stream events decoded into canonical ones.
#[derive(Debug, Default)]
pub struct EventDecoder {
    /// Function-call item id → canonical tool index, and whether any arguments went out.
    calls: Vec<(String, u32, bool)>,
    /// A terminal event went by: nothing more is decoded.
    ended: bool,
}

impl EventDecoder {
    pub fn decode(&mut self, event: &SseEvent, out: &mut Vec<StreamEvent>) {
        if self.ended {
            return;
        }
        let data = serde_json::from_str::<Value>(&event.data).ok();
        let d = data.as_ref().unwrap_or(&Value::Null);
        let Some(kind) = event_type(event, data.as_ref()) else {
            if event.data.trim().is_empty() {
                out.push(StreamEvent::KeepAlive);
            }
            return;
        };
        let delta = || {
            str_at(d, "delta")
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        };
        match kind {
            "response.created" => {
                let r = d.get("response").unwrap_or(&Value::Null);
                out.push(StreamEvent::Start {
                    id: str_at(r, "id").map(str::to_string),
                    model: str_at(r, "model").map(str::to_string),
                });
            }
            "response.output_text.delta" | "response.refusal.delta" => {
                if let Some(text) = delta() {
                    out.push(StreamEvent::Text { choice: 0, text });
                }
            }
            "response.reasoning_summary_text.delta" | "response.reasoning_text.delta" => {
                if let Some(text) = delta() {
                    out.push(StreamEvent::Thinking { choice: 0, text });
                }
            }
            "response.output_item.added" => self.item_added(d, out),
            "response.output_item.done" => Self::item_done(d, out),
            "response.function_call_arguments.delta" => self.arguments(d, delta(), out),
            // Arguments given whole, without deltas.
            "response.function_call_arguments.done" => {
                let item = str_at(d, "item_id").unwrap_or_default();
                if self.calls.iter().any(|c| c.0 == item && !c.2) {
                    let whole = str_at(d, "arguments").filter(|a| !a.is_empty());
                    self.arguments(d, whole.map(str::to_string), out);
                }
            }
            "response.completed" | "response.incomplete" => self.terminal(d, out),
            "response.failed" | "error" => {
                self.ended = true;
                out.push(StreamEvent::Error(stream_error(kind, d)));
            }
            _ => {}
        }
    }

    /// Arguments of the call `d.item_id` names.
    fn arguments(&mut self, d: &Value, arguments: Option<String>, out: &mut Vec<StreamEvent>) {
        let item = str_at(d, "item_id").unwrap_or_default();
        let call = self.calls.iter_mut().find(|c| c.0 == item);
        if let (Some(call), Some(arguments)) = (call, arguments) {
            call.2 = true;
            out.push(StreamEvent::ToolCallArgs {
                choice: 0,
                index: call.1,
                arguments,
            });
        }
    }

    /// A function call starts (other items start silently: their content follows).
    fn item_added(&mut self, d: &Value, out: &mut Vec<StreamEvent>) {
        let item = d.get("item").unwrap_or(&Value::Null);
        if str_at(item, "type") != Some("function_call") || self.calls.len() >= MAX_CALLS {
            return;
        }
        let index = u32::try_from(self.calls.len()).unwrap_or(u32::MAX);
        let arguments = str_at(item, "arguments").filter(|a| !a.is_empty());
        self.calls.push((
            str_at(item, "id").unwrap_or_default().to_string(),
            index,
            arguments.is_some(),
        ));
        out.push(StreamEvent::ToolCallStart {
            choice: 0,
            index,
            id: str_at(item, "call_id").unwrap_or_default().to_string(),
            name: str_at(item, "name").unwrap_or_default().to_string(),
        });
        if let Some(arguments) = arguments {
            out.push(StreamEvent::ToolCallArgs {
                choice: 0,
                index,
                arguments: arguments.to_string(),
            });
        }
    }

    /// A reasoning item's encrypted content arrives with its `done`.
    fn item_done(d: &Value, out: &mut Vec<StreamEvent>) {
        let item = d.get("item").unwrap_or(&Value::Null);
        if str_at(item, "type") != Some("reasoning") {
            return;
        }
        match thinking_of(item) {
            Some(ContentPart::Thinking {
                signature: Some(signature),
                ..
            }) => out.push(StreamEvent::ThinkingSignature {
                choice: 0,
                signature,
            }),
            Some(ContentPart::RedactedThinking { data }) => {
                out.push(StreamEvent::RedactedThinking { choice: 0, data })
            }
            _ => {}
        }
    }

    /// `response.completed` / `response.incomplete`: usage, the finish, the end.
    fn terminal(&mut self, d: &Value, out: &mut Vec<StreamEvent>) {
        self.ended = true;
        let r = d.get("response").unwrap_or(&Value::Null);
        if let Some(u) = r.get("usage").filter(|u| u.is_object()) {
            out.push(StreamEvent::Usage(decode_usage(u)));
        }
        let reason = r
            .get("incomplete_details")
            .and_then(|x| str_at(x, "reason"));
        let reason = match (str_at(r, "status"), reason) {
            (Some("incomplete"), Some("content_filter")) => FinishReason::ContentFilter,
            (Some("incomplete"), _) => FinishReason::Length,
            _ if !self.calls.is_empty() => FinishReason::ToolCalls,
            _ => FinishReason::Stop,
        };
        out.push(StreamEvent::Finish { choice: 0, reason });
        out.push(StreamEvent::Done);
    }
}

/// A Responses upstream stream to a Responses client: forwarded as it is, watched for usage,
/// the model, the commit point and its end.
#[derive(Debug, Default)]
pub struct Passthrough {
    /// A terminal event (`response.completed`/`incomplete`/`failed`, `error`) went by.
    terminal: bool,
    /// The highest `sequence_number` forwarded (a gateway error event follows it).
    last_seq: Option<u64>,
}

impl Passthrough {
    pub fn push(&mut self, event: &SseEvent, out: &mut Vec<u8>) -> PassthroughStep {
        out.extend_from_slice(&event.raw);
        let data = serde_json::from_str::<Value>(&event.data).ok();
        let kind = event_type(event, data.as_ref());
        let mut step = PassthroughStep {
            class: classify(kind, data.as_ref()),
            ..PassthroughStep::default()
        };
        let Some(d) = &data else {
            return step;
        };
        if let Some(seq) = u64_at(d, "sequence_number") {
            self.last_seq = Some(self.last_seq.map_or(seq, |s| s.max(seq)));
        }
        let response = d.get("response").unwrap_or(&Value::Null);
        if let Some(u) = response.get("usage").filter(|u| u.is_object()) {
            step.usage = Some(decode_usage(u));
        }
        step.model = str_at(response, "model")
            .filter(|m| !m.is_empty())
            .map(str::to_string);
        if matches!(step.class, EventClass::Done | EventClass::Error) {
            self.terminal = true;
        }
        step
    }

    fn next_seq(&self) -> u64 {
        self.last_seq.map_or(0, |s| s.saturating_add(1))
    }

    /// Ends the client stream with `err` (numbered after the last event forwarded).
    pub fn abort(&mut self, err: &ProviderError, out: &mut Vec<u8>) {
        if self.terminal {
            return;
        }
        self.terminal = true;
        write_sse(out, Some("error"), &error_event(err, self.next_seq()));
    }

    /// At the end of the upstream body: `Done` if the stream completed, else a terminal error
    /// event written and `Error`.
    pub fn finish(&mut self, out: &mut Vec<u8>) -> EventClass {
        if self.terminal {
            return EventClass::Done;
        }
        self.abort(&openai::truncated_error(), out);
        EventClass::Error
    }
}
