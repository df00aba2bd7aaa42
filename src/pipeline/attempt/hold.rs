//! Holding an answer until the commit point: a whole body is read (translated, and screened
//! by the target's output guardrails); a stream is read until its first content event. Until
//! then anything that goes wrong is a failure the router may still move on from.

use std::time::Instant;

use bytes::{Bytes, BytesMut};

use super::failure::{failure, translate_failure, Reply};
use super::runner::{AttemptLabels, AttemptRunner};
use super::translation::Translation;
use crate::config::Target;
use crate::error::GatewayError;
use crate::guardrails::report::Denial;
use crate::guardrails::{self, AttemptChecks, Guardrails};
use crate::providers::{self, translate_response, ClientFormat, EventClass, StreamTranslator};
use crate::router::{Failure, FailureKind};
use crate::telemetry::metrics::GenAiLabels;
use crate::telemetry::AttemptRecord;
use crate::upstream::sse::{SseEvent, SseParser};
use crate::upstream::UpstreamResponse;

/// Largest single SSE event held before the commit point.
pub const MAX_SSE_EVENT_BYTES: usize = 1 << 20;

/// A response at the commit point, not yet written to the client.
pub struct Prepared {
    pub response: UpstreamResponse,
    /// The whole body (non-streaming), or the stream's events so far.
    pub held: Bytes,
    pub is_stream: bool,
    /// The stream already ended (everything is in `held`).
    pub upstream_ended: bool,
    pub labels: AttemptLabels,
    /// For a chat stream: the translator the rest of the stream goes through (and the parser
    /// holding any partial event). `None`: the rest is forwarded byte for byte.
    pub pump: Option<Box<StreamPump>>,
    /// This attempt's record so far; the commit completes it.
    pub record: Box<AttemptRecord>,
    /// Guardrail results to report at the commit (`None`: no guardrail ran or failed).
    pub guard: Option<Box<AttemptChecks>>,
}

/// A chat stream after the commit point: upstream events in, client-format events out.
pub struct StreamPump {
    pub parser: SseParser,
    pub translator: StreamTranslator,
    pub client: ClientFormat,
}

impl StreamPump {
    fn new(t: Translation<'_>) -> Option<Box<StreamPump>> {
        Some(Box::new(StreamPump {
            parser: SseParser::new(MAX_SSE_EVENT_BYTES),
            translator: StreamTranslator::new(t.upstream, t.client, t.ctx?),
            client: t.client,
        }))
    }
}

/// An attempt whose response headers arrived, on its way to the commit point.
pub struct Held<'r> {
    pub leaf: &'r Target,
    pub labels: AttemptLabels,
    pub response: UpstreamResponse,
    pub sent: Instant,
    pub translation: Option<Translation<'r>>,
    pub record: Box<AttemptRecord>,
}

impl AttemptRunner<'_> {
    /// Reads a whole (non-streaming) answer, translates it and runs the target's output
    /// guardrails on it.
    pub(super) async fn read_whole(&self, held: Held<'_>) -> Result<Box<Prepared>, Failure<Reply>> {
        let Held {
            leaf,
            labels,
            mut response,
            sent,
            translation,
            mut record,
        } = held;
        let limit = self.snapshot.limits.max_response_body_bytes;
        let body = match self.waiting(response.read_to_end(limit)).await {
            Ok(body) => body,
            Err(e) => return Err(self.transport_failure(leaf, &labels, sent, e)),
        };
        let body = match translation {
            Some(t @ Translation { ctx: Some(ctx), .. }) if t.crosses() => {
                match translate_response(t.upstream, t.client, body, ctx) {
                    Ok(translated) => {
                        record.usage = translated.usage;
                        record.response_model = translated.model;
                        translated.body
                    }
                    Err(e) => {
                        labels.record(self.metrics, FailureKind::Stream.result(), sent.elapsed());
                        return Err(translate_failure(leaf, e));
                    }
                }
            }
            Some(t) => {
                (record.usage, record.response_model) =
                    providers::facts_of_response(t.upstream, &body);
                body
            }
            None => body,
        };
        let (held, guard) = match &leaf.settings.output_guardrails {
            Some(set) if guardrails::text::checks_output(self.request.operation(), false) => {
                self.screen_output(set, &labels, sent, body)?
            }
            _ => (body, None),
        };
        Ok(Box::new(Prepared {
            response,
            held,
            is_stream: false,
            upstream_ended: true,
            labels,
            pump: None,
            record,
            guard,
        }))
    }

    /// The target's output guardrails on a whole answer: a block is a failure (which may fall
    /// back), a redaction changes the answer, a failed warn check is reported at the commit.
    #[allow(clippy::type_complexity)]
    fn screen_output(
        &self,
        set: &Guardrails,
        labels: &AttemptLabels,
        sent: Instant,
        body: Bytes,
    ) -> Result<(Bytes, Option<Box<AttemptChecks>>), Failure<Reply>> {
        let (eval, redacted) = guardrails::text::screen_response(set, self.request.format, &body);
        eval.record(self.metrics, self.config);
        if eval.blocks() {
            let kind = FailureKind::Guardrail {
                fallback: eval.falls_back(),
                retry: eval.retries(),
            };
            labels.record(self.metrics, kind.result(), sent.elapsed());
            let denial = Denial {
                input: self.screened.map(|s| s.eval.clone()).into_iter().collect(),
                output: Some(eval),
            };
            return Err(failure(kind, Reply::Guardrail(Box::new(denial))));
        }
        let guard = eval.any_failed().then(|| {
            Box::new(AttemptChecks {
                output: Some(eval),
                ..Default::default()
            })
        });
        Ok((redacted.unwrap_or(body), guard))
    }

    /// Reads a stream until its first content event, with the target's output guardrails
    /// set up to watch the rest.
    pub(super) async fn hold_stream(
        &self,
        held: Held<'_>,
    ) -> Result<Box<Prepared>, Failure<Reply>> {
        let pump = held.translation.and_then(StreamPump::new);
        let guard = match &held.leaf.settings.output_guardrails {
            Some(set) if guardrails::text::checks_output(self.request.operation(), true) => {
                Some(set.clone())
            }
            _ => None,
        };
        let mut prepared = self.read_to_content(held, pump).await?;
        // A Gemini client's JSON-array stream is not server-sent events: relayed unchecked.
        let sse = prepared
            .pump
            .as_ref()
            .is_none_or(|p| p.translator.content_type().is_none());
        if let Some(set) = guard.filter(|_| sse) {
            prepared.guard.get_or_insert_default().stream = Some(
                guardrails::stream::StreamGuard::new(set, self.request.format),
            );
        }
        Ok(prepared)
    }

    /// An error event, a stream that ends with no content, or any read failure before the first
    /// content event is a failure. With a `pump` the events are translated as they are held
    /// (and the pump goes on to the commit); without one the raw bytes are held.
    async fn read_to_content(
        &self,
        held: Held<'_>,
        mut pump: Option<Box<StreamPump>>,
    ) -> Result<Box<Prepared>, Failure<Reply>> {
        let Held {
            leaf,
            labels,
            mut response,
            sent,
            mut record,
            ..
        } = held;
        let stream_failure = |reason: String| {
            labels.record(self.metrics, FailureKind::Stream.result(), sent.elapsed());
            failure(
                FailureKind::Stream,
                Reply::Gateway(GatewayError::UpstreamInvalid {
                    target: leaf.path.clone(),
                    reason,
                }),
            )
        };
        let mut scan = Scan::default();
        loop {
            let chunk = match self.waiting(response.next_chunk(true)).await {
                Ok(Some(c)) => c,
                Ok(None) => return Err(stream_failure(NO_CONTENT.into())),
                Err(e) => return Err(self.transport_failure(leaf, &labels, sent, e)),
            };
            if scan.push(&mut pump, &chunk).map_err(stream_failure)? {
                break;
            }
        }
        self.first_token(&labels, &mut record, sent);
        let held = match pump {
            Some(_) => Bytes::from(scan.out),
            None => scan.raw.freeze(),
        };
        Ok(Box::new(Prepared {
            response,
            held,
            is_stream: true,
            upstream_ended: false,
            labels,
            pump,
            record,
            guard: None,
        }))
    }

    /// Time to the first content event: on the record and in the TTFT histograms.
    fn first_token(&self, labels: &AttemptLabels, record: &mut AttemptRecord, sent: Instant) {
        let first = sent.elapsed();
        record.first_token = Some(first);
        self.metrics
            .time_to_first_token_seconds
            .with(&labels.target_labels())
            .observe(first.as_secs_f64());
        let genai = GenAiLabels {
            operation: self.request.operation(),
            provider: record.provider_kind,
            model: &labels.model,
        };
        self.metrics
            .genai
            .time_to_first_chunk
            .with(&genai)
            .observe(first.as_secs_f64());
    }
}

const NO_CONTENT: &str = "the stream ended before any content";

/// A stream read up to its first content event.
#[derive(Default)]
struct Scan {
    /// The raw bytes held (no pump).
    raw: BytesMut,
    /// Their parser (no pump).
    parser: Option<SseParser>,
    /// The translated events held (with a pump).
    out: Vec<u8>,
}

impl Scan {
    /// Takes one chunk: `Ok(true)` once a content event arrived (the rest of the chunk is
    /// translated too), an error reason for a stream that failed before any content.
    fn push(&mut self, pump: &mut Option<Box<StreamPump>>, chunk: &[u8]) -> Result<bool, String> {
        let parser = match pump.as_mut() {
            Some(p) => &mut p.parser,
            None => {
                self.raw.extend_from_slice(chunk);
                self.parser
                    .get_or_insert_with(|| SseParser::new(MAX_SSE_EVENT_BYTES))
            }
        };
        if parser.push(chunk).is_err() {
            return Err(format!("an SSE event exceeds {MAX_SSE_EVENT_BYTES} bytes"));
        }
        let mut committed = false;
        while let Some(event) = self.next_event(pump) {
            let class = match pump.as_mut() {
                Some(p) => p.translator.push(&event, &mut self.out),
                None => providers::classify_event(&event),
            };
            if committed {
                // Past the commit point already: translate the rest of this chunk.
                continue;
            }
            match class {
                EventClass::Preamble => {}
                EventClass::Content => committed = true,
                EventClass::Error => {
                    let shown: String = event.data.chars().take(300).collect();
                    return Err(format!(
                        "the stream reported an error before any content: {shown}"
                    ));
                }
                EventClass::Done => return Err(NO_CONTENT.into()),
            }
        }
        Ok(committed)
    }

    /// The next complete event, from the pump's parser when there is one.
    fn next_event(&mut self, pump: &mut Option<Box<StreamPump>>) -> Option<SseEvent> {
        match pump {
            Some(p) => p.parser.next_event(),
            None => self.parser.as_mut()?.next_event(),
        }
    }
}
