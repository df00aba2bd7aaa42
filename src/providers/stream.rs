//! The stream translator: a state machine fed one upstream SSE event at a time that writes the
//! client's SSE bytes, says what each event means for the commit point ([`EventClass`]), and
//! keeps the usage so far.
//!
//! Same-format streams are passed through byte for byte (never re-encoded), except that an
//! OpenAI stream's usage-only chunk (`choices: []`) is dropped when the client did not ask for
//! it — we always ask upstream. Other pairs decode into canonical [`StreamEvent`]s and encode
//! them for the client.
//!
//! End of stream: the caller calls [`StreamTranslator::finish`] when the upstream body ends.
//! A stream that ended properly yields `Done` (any missing terminator is written: Gemini has
//! none); one cut short yields `Error` after writing a terminal error event, so a client never
//! sees a truncated answer as a complete one.

use serde_json::Value;

use super::canonical::{ClientFormat, Format, StreamEvent, Usage};
use super::json::str_at;
use super::response::TranslateContext;
use super::{anthropic, encode_stream_error, gemini, openai, responses, EventClass, ProviderError};
use crate::upstream::sse::SseEvent;

enum Decoder {
    OpenAi(openai::ChunkDecoder),
    Anthropic(anthropic::EventDecoder),
    Gemini(gemini::ChunkDecoder),
    Responses(responses::EventDecoder),
}

enum Encoder {
    OpenAi(openai::ChunkEncoder),
    Anthropic(anthropic::EventEncoder),
    Responses(responses::EventEncoder),
    Gemini(gemini::client::ChunkEncoder),
}

impl Encoder {
    fn encode(&mut self, event: StreamEvent, out: &mut Vec<u8>) -> EventClass {
        match self {
            Encoder::OpenAi(e) => e.encode(event, out),
            Encoder::Anthropic(e) => e.encode(event, out),
            Encoder::Responses(e) => e.encode(event, out),
            Encoder::Gemini(e) => e.encode(event, out),
        }
    }

    fn finish(&mut self, out: &mut Vec<u8>) -> EventClass {
        match self {
            Encoder::OpenAi(e) => e.finish(out),
            Encoder::Anthropic(e) => e.finish(out),
            Encoder::Responses(e) => e.finish(out),
            Encoder::Gemini(e) => e.finish(out),
        }
    }

    fn ended(&self) -> bool {
        match self {
            Encoder::OpenAi(e) => e.ended(),
            Encoder::Anthropic(e) => e.ended(),
            Encoder::Responses(e) => e.ended(),
            Encoder::Gemini(e) => e.ended(),
        }
    }
}

pub use super::PassthroughStep;

enum Mode {
    OpenAiPassthrough {
        /// Forward the usage-only chunk.
        include_usage: bool,
        /// Some choice reported a `finish_reason`.
        finished: bool,
    },
    AnthropicPassthrough {
        usage: anthropic::UsageTracker,
        /// A `message_delta` with a `stop_reason` went by.
        stopped: bool,
    },
    ResponsesPassthrough(responses::Passthrough),
    GeminiPassthrough(gemini::client::Passthrough),
    Translate(Box<Translation>),
}

struct Translation {
    decoder: Decoder,
    encoder: Encoder,
    /// Reused between events.
    scratch: Vec<StreamEvent>,
}

/// Translates one upstream stream for one client. See the module doc.
pub struct StreamTranslator {
    client: ClientFormat,
    /// A Gemini client's framing (unused for other clients).
    gemini_framing: gemini::client::Framing,
    mode: Mode,
    seen: Seen,
    /// The terminal class once the stream ended (`Done` or `Error`); nothing is written after.
    ended: Option<EventClass>,
}

/// Which class wins when one upstream event yields several client events: an error, then
/// content (the commit point must not be missed), then the end.
fn rank(c: EventClass) -> u8 {
    match c {
        EventClass::Preamble => 0,
        EventClass::Done => 1,
        EventClass::Content => 2,
        EventClass::Error => 3,
    }
}

/// What the stream has told so far, whichever way it is translated.
#[derive(Default)]
struct Seen {
    usage: Usage,
    /// The model the provider says is answering (the first it names).
    model: Option<String>,
}

/// An OpenAI stream to an OpenAI client: forwarded as it is, but for the usage-only chunk
/// when the client did not ask for it.
fn openai_passthrough(
    event: &SseEvent,
    include_usage: bool,
    finished: &mut bool,
    seen: &mut Seen,
    out: &mut Vec<u8>,
) -> EventClass {
    if event.is_done() {
        out.extend_from_slice(&event.raw);
        return EventClass::Done;
    }
    if event.data.trim().is_empty() {
        out.extend_from_slice(&event.raw);
        return openai::classify_event(event);
    }
    let Ok(v) = serde_json::from_str::<Value>(&event.data) else {
        out.extend_from_slice(&event.raw);
        return openai::classify_event(event);
    };
    if let Some(u) = v.get("usage").filter(|u| u.is_object()) {
        seen.usage = openai::decode_usage(u);
    }
    if seen.model.is_none() {
        seen.model = str_at(&v, "model")
            .filter(|m| !m.is_empty())
            .map(str::to_string);
    }
    let any_finish = v
        .get("choices")
        .and_then(Value::as_array)
        .is_some_and(|cs| cs.iter().any(|c| str_at(c, "finish_reason").is_some()));
    *finished |= any_finish;
    if !include_usage && openai::is_usage_only(&v) {
        return EventClass::Preamble;
    }
    out.extend_from_slice(&event.raw);
    openai::classify_value(&v)
}

/// An Anthropic stream to an Anthropic client: forwarded as it is, watched for usage, the
/// model and the stop reason.
fn anthropic_passthrough(
    event: &SseEvent,
    usage: &mut anthropic::UsageTracker,
    stopped: &mut bool,
    seen: &mut Seen,
    out: &mut Vec<u8>,
) -> EventClass {
    let data = serde_json::from_str::<Value>(&event.data).ok();
    if let Some(u) = usage.observe(event, data.as_ref()) {
        seen.usage = u;
    }
    if let Some(d) = &data {
        if str_at(d, "type") == Some("message_start") && seen.model.is_none() {
            seen.model = d
                .get("message")
                .and_then(|m| str_at(m, "model"))
                .map(str::to_string);
        }
        if d.get("delta")
            .and_then(|x| str_at(x, "stop_reason"))
            .is_some()
        {
            *stopped = true;
        }
    }
    out.extend_from_slice(&event.raw);
    anthropic::classify(event, data.as_ref())
}

impl Seen {
    /// Takes in what a passthrough step told; its class.
    fn step(&mut self, step: PassthroughStep) -> EventClass {
        if let Some(u) = step.usage {
            self.usage = u;
        }
        if self.model.is_none() {
            self.model = step.model;
        }
        step.class
    }
}

impl Translation {
    /// Decodes one upstream event and encodes what it means for the client; the class is the
    /// highest-ranked of the events written.
    fn push(&mut self, event: &SseEvent, seen: &mut Seen, out: &mut Vec<u8>) -> EventClass {
        let Translation {
            decoder,
            encoder,
            scratch,
        } = self;
        scratch.clear();
        match decoder {
            Decoder::OpenAi(d) => d.decode(event, scratch),
            Decoder::Anthropic(d) => d.decode(event, scratch),
            Decoder::Gemini(d) => d.decode(event, scratch),
            Decoder::Responses(d) => d.decode(event, scratch),
        }
        let mut class = EventClass::Preamble;
        for e in scratch.drain(..) {
            match &e {
                StreamEvent::Usage(u) => seen.usage = *u,
                StreamEvent::Start { model: Some(m), .. } if seen.model.is_none() => {
                    seen.model = Some(m.clone())
                }
                _ => {}
            }
            let c = encoder.encode(e, out);
            if rank(c) > rank(class) {
                class = c;
            }
        }
        if encoder.ended() && class == EventClass::Preamble {
            // Ended by an event that maps to nothing visible (cannot happen today).
            class = EventClass::Done;
        }
        class
    }
}

impl StreamTranslator {
    /// A translator from an upstream stream in `upstream` format to a `client`-format stream.
    pub fn new(upstream: Format, client: ClientFormat, ctx: &TranslateContext) -> Self {
        let mode = match (upstream, client) {
            (Format::OpenAi, ClientFormat::OpenAi) => Mode::OpenAiPassthrough {
                include_usage: ctx.include_usage,
                finished: false,
            },
            (Format::Anthropic, ClientFormat::Anthropic) => Mode::AnthropicPassthrough {
                usage: anthropic::UsageTracker::default(),
                stopped: false,
            },
            (Format::Responses, ClientFormat::Responses) => {
                Mode::ResponsesPassthrough(responses::Passthrough::default())
            }
            (Format::Gemini, ClientFormat::Gemini) => {
                Mode::GeminiPassthrough(gemini::client::Passthrough::new(ctx.gemini_framing))
            }
            _ => {
                let decoder = match upstream {
                    Format::OpenAi => Decoder::OpenAi(openai::ChunkDecoder::default()),
                    Format::Anthropic => Decoder::Anthropic(anthropic::EventDecoder::default()),
                    Format::Gemini => {
                        Decoder::Gemini(gemini::ChunkDecoder::new(&ctx.fallback_id(client)))
                    }
                    Format::Responses => Decoder::Responses(responses::EventDecoder::default()),
                };
                let id = ctx.fallback_id(client);
                let model = ctx.requested_model.clone();
                let encoder = match client {
                    ClientFormat::OpenAi => Encoder::OpenAi(openai::ChunkEncoder::new(
                        id,
                        model,
                        ctx.created,
                        ctx.include_usage,
                    )),
                    ClientFormat::Anthropic => {
                        Encoder::Anthropic(anthropic::EventEncoder::new(id, model))
                    }
                    ClientFormat::Responses => {
                        Encoder::Responses(responses::EventEncoder::new(id, model, ctx.created))
                    }
                    ClientFormat::Gemini => Encoder::Gemini(gemini::client::ChunkEncoder::new(
                        id,
                        model,
                        ctx.gemini_framing,
                    )),
                };
                Mode::Translate(Box::new(Translation {
                    decoder,
                    encoder,
                    scratch: Vec::new(),
                }))
            }
        };
        StreamTranslator {
            client,
            gemini_framing: ctx.gemini_framing,
            mode,
            seen: Seen::default(),
            ended: None,
        }
    }

    /// The content type of the client's stream when it is not server-sent events (a Gemini
    /// client's JSON array); `None`: the upstream's (`text/event-stream`).
    pub fn content_type(&self) -> Option<&'static str> {
        match (self.client, self.gemini_framing) {
            (ClientFormat::Gemini, gemini::client::Framing::JsonArray) => {
                Some(gemini::client::Framing::JsonArray.content_type())
            }
            _ => None,
        }
    }

    /// Writes a terminal error event in the client's format and framing.
    fn write_error(&self, err: &ProviderError, out: &mut Vec<u8>) {
        match self.client {
            ClientFormat::Gemini => {
                gemini::client::encode_stream_error(err, self.gemini_framing, out)
            }
            client => encode_stream_error(client, err, out),
        }
    }

    /// Whether upstream bytes are forwarded as they are.
    pub fn is_passthrough(&self) -> bool {
        !matches!(self.mode, Mode::Translate(_))
    }

    /// The usage so far (the final figures once the stream has ended).
    pub fn usage(&self) -> Usage {
        self.seen.usage
    }

    /// The model the provider says is answering, once it has said.
    pub fn model(&self) -> Option<&str> {
        self.seen.model.as_deref()
    }

    /// Whether the client stream has been terminated (its end marker or an error written).
    pub fn is_ended(&self) -> bool {
        self.ended.is_some()
    }

    /// Feeds one upstream event, appending the client's bytes to `out`.
    pub fn push(&mut self, event: &SseEvent, out: &mut Vec<u8>) -> EventClass {
        if self.ended.is_some() {
            return EventClass::Preamble;
        }
        let seen = &mut self.seen;
        let class = match &mut self.mode {
            Mode::OpenAiPassthrough {
                include_usage,
                finished,
            } => openai_passthrough(event, *include_usage, finished, seen, out),
            Mode::AnthropicPassthrough { usage, stopped } => {
                anthropic_passthrough(event, usage, stopped, seen, out)
            }
            Mode::ResponsesPassthrough(p) => seen.step(p.push(event, out)),
            Mode::GeminiPassthrough(p) => seen.step(p.push(event, out)),
            Mode::Translate(tr) => tr.push(event, seen, out),
        };
        if matches!(class, EventClass::Done | EventClass::Error) {
            self.ended = Some(class);
        }
        class
    }

    /// At the end of the upstream body: writes whatever terminator is missing and returns
    /// `Done`, or, for a stream cut short, writes a terminal error event and returns `Error`.
    /// Idempotent: after the stream ended it writes nothing and returns how it ended.
    pub fn finish(&mut self, out: &mut Vec<u8>) -> EventClass {
        if let Some(class) = self.ended {
            return class;
        }
        let class = match &mut self.mode {
            Mode::OpenAiPassthrough { finished, .. } => {
                if *finished {
                    out.extend_from_slice(b"data: [DONE]\n\n");
                    EventClass::Done
                } else {
                    encode_stream_error(self.client, &openai::truncated_error(), out);
                    EventClass::Error
                }
            }
            Mode::AnthropicPassthrough { stopped, .. } => {
                if *stopped {
                    out.extend_from_slice(
                        b"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
                    );
                    EventClass::Done
                } else {
                    encode_stream_error(self.client, &openai::truncated_error(), out);
                    EventClass::Error
                }
            }
            Mode::ResponsesPassthrough(p) => p.finish(out),
            Mode::GeminiPassthrough(p) => p.finish(out),
            Mode::Translate(tr) => tr.encoder.finish(out),
        };
        self.ended = Some(class);
        class
    }

    /// Ends the client stream with `err` (a failure after the commit point: a timeout, a
    /// reset). Writes nothing if the stream already ended.
    pub fn abort(&mut self, err: &ProviderError, out: &mut Vec<u8>) {
        if self.ended.is_some() {
            return;
        }
        match &mut self.mode {
            Mode::Translate(tr) => {
                tr.encoder.encode(StreamEvent::Error(err.clone()), out);
            }
            // A JSON array already opened must be continued and closed, not restarted.
            Mode::GeminiPassthrough(p) => p.abort(err, out),
            // Numbered after the upstream's last event.
            Mode::ResponsesPassthrough(p) => p.abort(err, out),
            _ => self.write_error(err, out),
        }
        self.ended = Some(EventClass::Error);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn ctx(include_usage: bool) -> TranslateContext {
        TranslateContext {
            include_usage,
            requested_model: "m".into(),
            created: 1,
            nonce: "n".into(),
            gemini_framing: Default::default(),
        }
    }

    fn ev(raw: &str) -> SseEvent {
        let mut p = crate::upstream::sse::SseParser::new(1 << 20);
        p.push(raw.as_bytes()).unwrap();
        p.next_event().unwrap_or(SseEvent {
            event: None,
            data: String::new(),
            id: None,
            raw: Bytes::new(),
        })
    }

    #[test]
    fn openai_passthrough_drops_the_usage_chunk_unless_asked() {
        let events = [
            "data: {\"id\":\"c\",\"model\":\"gpt\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n",
            "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"}}]}\n\n",
            "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n",
            "data: {\"id\":\"c\",\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":1,\"total_tokens\":6}}\n\n",
            "data: [DONE]\n\n",
        ];
        for include in [false, true] {
            let mut t = StreamTranslator::new(Format::OpenAi, ClientFormat::OpenAi, &ctx(include));
            let mut out = Vec::new();
            let classes: Vec<EventClass> =
                events.iter().map(|e| t.push(&ev(e), &mut out)).collect();
            assert_eq!(
                classes,
                [
                    EventClass::Preamble,
                    EventClass::Content,
                    EventClass::Preamble,
                    EventClass::Preamble,
                    EventClass::Done
                ]
            );
            let expected: String = events
                .iter()
                .enumerate()
                .filter(|(i, _)| include || *i != 3)
                .map(|(_, e)| *e)
                .collect();
            assert_eq!(String::from_utf8(out).unwrap(), expected);
            assert_eq!(t.usage().input_tokens, 5);
            assert_eq!(t.model(), Some("gpt"));
            let mut tail = Vec::new();
            assert_eq!(t.finish(&mut tail), EventClass::Done);
            assert!(tail.is_empty());
        }
    }

    #[test]
    fn a_cut_stream_ends_with_an_error() {
        let mut t = StreamTranslator::new(Format::Anthropic, ClientFormat::OpenAi, &ctx(false));
        let mut out = Vec::new();
        t.push(&ev("event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"model\":\"claude\",\"usage\":{\"input_tokens\":3,\"output_tokens\":1}}}\n\n"), &mut out);
        t.push(&ev("event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n"), &mut out);
        assert_eq!(
            t.push(&ev("event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hel\"}}\n\n"), &mut out),
            EventClass::Content
        );
        out.clear();
        assert_eq!(t.finish(&mut out), EventClass::Error);
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("data: {\"error\":"), "{text}");
        assert!(!text.contains("[DONE]"));
        assert_eq!(t.usage().input_tokens, 3);
        let mut more = Vec::new();
        t.abort(
            &ProviderError::new(super::super::ErrorKind::Timeout, "late"),
            &mut more,
        );
        assert!(more.is_empty());
    }
}
