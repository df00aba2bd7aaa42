//! Output guardrails on a stream. The checks need the whole answer, and by then the client has
//! it: a stream is committed at its first content event (DESIGN.md §1), so after that nothing
//! can be denied, redacted or fallen back from. [`StreamGuard`] sits in the pump after the
//! commit: it relays the client-format events unchanged while assembling the text the answer
//! carries — OpenAI `delta.content`, `delta.refusal`, `delta.reasoning_content` / `reasoning`,
//! tool-call and function-call `arguments` and completions' `text`, of every choice; Anthropic
//! `text_delta`, `thinking_delta` and `input_json_delta` (tool input) — each piece apart, and
//! when the upstream ends it runs the checks and writes one final event with the results:
//!
//! - OpenAI format: a chunk with no choices and a `hook_results` object, just before
//!   `data: [DONE]` (which is held back until then);
//! - Anthropic format: an `event: hook_results` event after `message_stop` (the SDKs skip event
//!   types they do not know).
//! - Responses API (`response.output_text.delta`, `response.refusal.delta`,
//!   `response.function_call_arguments.delta`, reasoning summary deltas) and Gemini
//!   (`candidates[].content.parts[]` `text` and `functionCall.args`): checked, but no event is
//!   added (their SDKs validate every event they get); the results are in the request record and
//!   the metrics. A Gemini stream framed as a JSON array (no `alt=sse`) is relayed unchecked.
//!
//! Failures are reported, not enforced (`"enforced": false`, metric verdict `warn`).

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use serde_json::Value;

use super::report;
use super::{Evaluation, Guardrails};
use crate::providers::ClientFormat;
use crate::upstream::sse::SseParser;

/// Largest single event parsed; a larger one switches the guard to plain relaying.
const MAX_EVENT_BYTES: usize = 1 << 20;
/// Most assistant text assembled; the checks see at most this much.
const MAX_TEXT_BYTES: usize = 4 << 20;
/// Most separate pieces kept; later ones are appended to the last.
const MAX_PIECES: usize = 256;

/// Which piece of the answer a delta belongs to: its kind, choice and block or call index.
type PieceKey = (Kind, u64, u64);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Text,
    Refusal,
    Reasoning,
    Arguments,
}

/// The output guardrails of one stream, between the pump and the client.
pub struct StreamGuard {
    set: Arc<Guardrails>,
    format: ClientFormat,
    parser: SseParser,
    /// The pieces assembled so far, in order of first appearance (kept apart so that, say, a
    /// tool call's arguments are not glued onto the text before them).
    pieces: Vec<(PieceKey, String)>,
    /// Bytes in `pieces`.
    assembled: usize,
    /// The OpenAI terminator, written after our event.
    held_done: Option<Bytes>,
    /// An event was too large to parse: relay bytes as they come, check what was assembled.
    broken: bool,
}

impl StreamGuard {
    /// A guard for a stream in `format` (`None`: a non-chat OpenAI-format stream).
    pub fn new(set: Arc<Guardrails>, format: Option<ClientFormat>) -> StreamGuard {
        StreamGuard {
            set,
            format: format.unwrap_or(ClientFormat::OpenAi),
            parser: SseParser::new(MAX_EVENT_BYTES),
            pieces: Vec::new(),
            assembled: 0,
            held_done: None,
            broken: false,
        }
    }

    /// Takes client-format bytes; returns what to write now (whole events, the OpenAI `[DONE]`
    /// held back).
    pub fn relay(&mut self, chunk: &[u8]) -> Bytes {
        if self.broken {
            return Bytes::copy_from_slice(chunk);
        }
        if self.parser.push(chunk).is_err() {
            self.broken = true;
            return Bytes::copy_from_slice(chunk);
        }
        let mut out = BytesMut::new();
        while let Some(event) = self.parser.next_event() {
            if self.format == ClientFormat::OpenAi && event.is_done() {
                self.held_done = Some(event.raw);
                continue;
            }
            self.observe(&event.data);
            out.extend_from_slice(&event.raw);
        }
        out.freeze()
    }

    fn observe(&mut self, data: &str) {
        if self.assembled >= MAX_TEXT_BYTES || !data.starts_with('{') {
            return;
        }
        let Ok(v) = serde_json::from_str::<Value>(data) else {
            return;
        };
        match self.format {
            ClientFormat::OpenAi => self.observe_openai(&v),
            ClientFormat::Anthropic => self.observe_anthropic(&v),
            ClientFormat::Responses => self.observe_responses(&v),
            ClientFormat::Gemini => self.observe_gemini(&v),
        }
    }

    fn observe_responses(&mut self, v: &Value) {
        let index = |key: &str| v.get(key).and_then(Value::as_u64).unwrap_or(0);
        let kind = match v.get("type").and_then(Value::as_str) {
            Some("response.output_text.delta") => Kind::Text,
            Some("response.refusal.delta") => Kind::Refusal,
            Some("response.function_call_arguments.delta") => Kind::Arguments,
            Some("response.reasoning_summary_text.delta" | "response.reasoning_text.delta") => {
                Kind::Reasoning
            }
            _ => return,
        };
        let key = (kind, index("output_index"), index("content_index"));
        self.push(key, v.get("delta"));
    }

    fn observe_gemini(&mut self, v: &Value) {
        let Some(candidates) = v.get("candidates").and_then(Value::as_array) else {
            return;
        };
        for c in candidates {
            let choice = c.get("index").and_then(Value::as_u64).unwrap_or(0);
            let parts = c.pointer("/content/parts").and_then(Value::as_array);
            for (i, part) in parts.into_iter().flatten().enumerate() {
                let thought = part.get("thought").and_then(Value::as_bool) == Some(true);
                let kind = if thought { Kind::Reasoning } else { Kind::Text };
                self.push((kind, choice, 0), part.get("text"));
                if let Some(args) = part.pointer("/functionCall/args") {
                    let text = args.to_string();
                    self.push(
                        (Kind::Arguments, choice, i as u64),
                        Some(&Value::String(text)),
                    );
                }
            }
        }
    }

    fn observe_openai(&mut self, v: &Value) {
        let Some(choices) = v.get("choices").and_then(Value::as_array) else {
            return;
        };
        for c in choices {
            let choice = c.get("index").and_then(Value::as_u64).unwrap_or(0);
            self.push((Kind::Text, choice, 0), c.get("text"));
            let Some(delta) = c.get("delta") else {
                continue;
            };
            self.push((Kind::Text, choice, 0), delta.get("content"));
            self.push((Kind::Refusal, choice, 0), delta.get("refusal"));
            for key in ["reasoning_content", "reasoning"] {
                self.push((Kind::Reasoning, choice, 0), delta.get(key));
            }
            if let Some(calls) = delta.get("tool_calls").and_then(Value::as_array) {
                for call in calls {
                    let index = call.get("index").and_then(Value::as_u64).unwrap_or(0);
                    let args = call.pointer("/function/arguments");
                    self.push((Kind::Arguments, choice, index), args);
                }
            }
            let args = delta.pointer("/function_call/arguments");
            self.push((Kind::Arguments, choice, u64::MAX), args);
        }
    }

    fn observe_anthropic(&mut self, v: &Value) {
        if v.get("type").and_then(Value::as_str) != Some("content_block_delta") {
            return;
        }
        let index = v.get("index").and_then(Value::as_u64).unwrap_or(0);
        let Some(delta) = v.get("delta") else {
            return;
        };
        let (kind, field) = match delta.get("type").and_then(Value::as_str) {
            Some("text_delta") => (Kind::Text, "text"),
            Some("thinking_delta") => (Kind::Reasoning, "thinking"),
            Some("input_json_delta") => (Kind::Arguments, "partial_json"),
            _ => return,
        };
        self.push((kind, 0, index), delta.get(field));
    }

    /// Appends a delta's text to its piece, within [`MAX_TEXT_BYTES`] and [`MAX_PIECES`].
    fn push(&mut self, key: PieceKey, piece: Option<&Value>) {
        let Some(p) = piece.and_then(Value::as_str).filter(|p| !p.is_empty()) else {
            return;
        };
        let room = MAX_TEXT_BYTES.saturating_sub(self.assembled);
        let mut cut = p.len().min(room);
        while !p.is_char_boundary(cut) {
            cut -= 1;
        }
        let at = match self.pieces.iter().position(|(k, _)| *k == key) {
            Some(at) => at,
            None if self.pieces.len() < MAX_PIECES => {
                self.pieces.push((key, String::new()));
                self.pieces.len() - 1
            }
            None => self.pieces.len() - 1,
        };
        self.pieces[at].1.push_str(&p[..cut]);
        self.assembled += cut;
    }

    /// The upstream ended properly: runs the checks on the assembled text and returns their
    /// results and the bytes that end the stream (anything still buffered, our event, then the
    /// held terminator). `input` are the request's input results, repeated in the event.
    pub fn finish(&mut self, input: &[&Evaluation]) -> (Evaluation, Bytes) {
        let mut out = BytesMut::new();
        if !self.broken {
            if let Some(event) = self.parser.finish() {
                if self.format == ClientFormat::OpenAi && event.is_done() {
                    self.held_done = Some(event.raw);
                } else {
                    self.observe(&event.data);
                    out.extend_from_slice(&event.raw);
                }
            }
        }
        let mut texts: Vec<String> = std::mem::take(&mut self.pieces)
            .into_iter()
            .map(|(_, text)| text)
            .collect();
        let (eval, _) = self.set.run(&mut texts, false);
        let results = report::hook_results(input, Some(&eval));
        match self.format {
            ClientFormat::OpenAi => {
                let chunk = serde_json::json!({
                    "object": "chat.completion.chunk",
                    "choices": [],
                    "hook_results": results,
                });
                out.extend_from_slice(b"data: ");
                out.extend_from_slice(chunk.to_string().as_bytes());
                out.extend_from_slice(b"\n\n");
                if let Some(done) = self.held_done.take() {
                    out.extend_from_slice(&done);
                }
            }
            ClientFormat::Anthropic => {
                let event = serde_json::json!({"type": "hook_results", "hook_results": results});
                out.extend_from_slice(b"event: hook_results\ndata: ");
                out.extend_from_slice(event.to_string().as_bytes());
                out.extend_from_slice(b"\n\n");
            }
            // See the module doc: no event their SDKs would refuse.
            ClientFormat::Responses | ClientFormat::Gemini => {}
        }
        (eval, out.freeze())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guardrails::spec::GuardrailSpec;
    use crate::guardrails::{compile, Stage};

    fn set(v: serde_json::Value) -> Arc<Guardrails> {
        let specs: Vec<GuardrailSpec> = serde_json::from_value(v).unwrap();
        compile(Stage::Output, &specs, "x").unwrap().unwrap()
    }

    #[test]
    fn openai_stream_event_goes_before_done() {
        let mut g = StreamGuard::new(
            set(
                serde_json::json!([{"check": "contains", "words": ["tok1"], "operator": "none", "action": "deny"}]),
            ),
            Some(ClientFormat::OpenAi),
        );
        let mut written = Vec::new();
        for chunk in [
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"tok0 \"}}]}\n\ndata: {\"choices\":[{\"index\":0,\"delta\":{\"con",
            "tent\":\"tok1 \"}}]}\n\n",
            "data: [DONE]\n\n",
        ] {
            written.extend_from_slice(&g.relay(chunk.as_bytes()));
        }
        assert!(!String::from_utf8_lossy(&written).contains("[DONE]"));
        let (eval, end) = g.finish(&[]);
        assert!(eval.any_failed());
        assert!(!eval.denied(), "a stream's deny is reported, not enforced");
        let end = String::from_utf8(end.to_vec()).unwrap();
        assert!(end.starts_with("data: {"), "{end}");
        assert!(end.ends_with("data: [DONE]\n\n"), "{end}");
        assert!(end.contains("\"hook_results\""), "{end}");
        assert!(end.contains("\"verdict\":false"), "{end}");
    }

    #[test]
    fn anthropic_stream_event_comes_last() {
        let mut g = StreamGuard::new(
            set(serde_json::json!([{"check": "word_count", "min": 2}])),
            Some(ClientFormat::Anthropic),
        );
        let input = "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"one two\"}}\n\nevent: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";
        let relayed = g.relay(input.as_bytes());
        assert_eq!(relayed, input.as_bytes());
        let (eval, end) = g.finish(&[]);
        assert!(!eval.any_failed());
        assert!(String::from_utf8_lossy(&end).starts_with("event: hook_results\n"));
    }

    fn deny(word: &str) -> Arc<Guardrails> {
        set(
            serde_json::json!([{"check": "contains", "words": [word], "operator": "none", "action": "deny"}]),
        )
    }

    fn fails(format: ClientFormat, word: &str, stream: &str) -> bool {
        let mut g = StreamGuard::new(deny(word), Some(format));
        let _ = g.relay(stream.as_bytes());
        g.finish(&[]).0.any_failed()
    }

    #[test]
    fn openai_stream_checks_tool_arguments_refusal_reasoning_and_every_choice() {
        let stream = concat!(
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"name\":\"f\",\"arguments\":\"{\\\"q\\\":\\\"zeb\"}}]}}]}\n\n",
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"ra\\\"}\"}}]}}]}\n\n",
            "data: {\"choices\":[{\"index\":1,\"delta\":{\"content\":\"second choice\"}}]}\n\n",
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"refusal\":\"I refuse\"}}]}\n\n",
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"reasoning_content\":\"pondering\"}}]}\n\n",
            "data: [DONE]\n\n",
        );
        for word in ["zebra", "second", "refuse", "pondering"] {
            assert!(fails(ClientFormat::OpenAi, word, stream), "{word}");
        }
        assert!(!fails(ClientFormat::OpenAi, "absent", stream));
        // Pieces are kept apart: the end of one is not glued to the start of the next.
        assert!(!fails(ClientFormat::OpenAi, "choiceI", stream));
    }

    #[test]
    fn anthropic_stream_checks_tool_input_and_thinking() {
        let stream = concat!(
            "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"thinking_delta\",\"thinking\":\"musing\"}}\n\n",
            "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"q\\\":\\\"zeb\"}}\n\n",
            "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"ra\\\"}\"}}\n\n",
            "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
        );
        for word in ["zebra", "musing"] {
            assert!(fails(ClientFormat::Anthropic, word, stream), "{word}");
        }
        assert!(!fails(ClientFormat::Anthropic, "absent", stream));
    }
}
