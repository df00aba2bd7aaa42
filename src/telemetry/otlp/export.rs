//! The [`OtlpExporter`]: a bounded queue the request path pushes spans into without ever
//! waiting, and the thread (its own current-thread runtime) that batches them into OTLP/HTTP
//! protobuf export requests.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::InstrumentationScope;
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message;
use tokio::sync::mpsc;

use super::settings::OtlpSettings;
use super::spans::{event_span, kv, record_spans, AttrValue};
use super::transport::{Client, SendError, Target};
use super::OtlpError;
use crate::telemetry::record::{RequestRecord, TraceContext};

/// Export failures are logged at most this often.
const WARN_INTERVAL: Duration = Duration::from_secs(60);

/// Queue and batch sizes of an [`OtlpExporter`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExportOptions {
    /// Records (or events) waiting to be sent; past this they are dropped and counted.
    pub queue_records: usize,
    /// Spans per export request at most.
    pub batch_spans: usize,
    /// A partial batch is sent after this long.
    pub interval: Duration,
}

impl Default for ExportOptions {
    fn default() -> Self {
        ExportOptions {
            queue_records: 2048,
            batch_spans: 512,
            interval: Duration::from_secs(1),
        }
    }
}

#[derive(Debug, Default)]
struct Stats {
    dropped: AtomicU64,
    failed_exports: AtomicU64,
    exported_spans: AtomicU64,
}

enum Control {
    Flush(std::sync::mpsc::Sender<()>),
}

/// Ships spans to an OTLP/HTTP collector from a background thread. Cloning shares the queue;
/// the thread sends what is left and ends once every clone is dropped.
#[derive(Clone)]
pub struct OtlpExporter {
    queue: mpsc::Sender<Vec<Span>>,
    control: mpsc::UnboundedSender<Control>,
    stats: Arc<Stats>,
}

impl fmt::Debug for OtlpExporter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OtlpExporter")
            .field("dropped", &self.dropped())
            .field("failed_exports", &self.failed_exports())
            .field("exported_spans", &self.exported_spans())
            .finish()
    }
}

impl OtlpExporter {
    /// Starts the exporter thread with the default queue (2048 records) and batching (512 spans
    /// or 1 s).
    pub fn start(settings: OtlpSettings) -> Result<OtlpExporter, OtlpError> {
        Self::start_with(settings, ExportOptions::default())
    }

    /// Starts the exporter thread: its own current-thread tokio runtime, so it works from any
    /// thread or runtime. Fails on an unusable endpoint or header, never later.
    pub fn start_with(
        settings: OtlpSettings,
        options: ExportOptions,
    ) -> Result<OtlpExporter, OtlpError> {
        let target = Target::new(&settings)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(OtlpError::Runtime)?;
        let options = ExportOptions {
            queue_records: options.queue_records.max(1),
            batch_spans: options.batch_spans.max(1),
            interval: options.interval.max(Duration::from_millis(10)),
        };
        let (queue, rx) = mpsc::channel(options.queue_records);
        let (control, control_rx) = mpsc::unbounded_channel();
        let stats = Arc::new(Stats::default());
        let worker = Worker {
            client: Client::new(target, settings.timeout),
            resource: Resource {
                attributes: vec![kv("service.name", settings.service_name.clone())],
                ..Default::default()
            },
            stats: stats.clone(),
            options,
            warned_at: None,
            failures_since_warn: 0,
        };
        std::thread::Builder::new()
            .name("switchyard-otlp".to_string())
            .spawn(move || runtime.block_on(worker.run(rx, control_rx)))
            .map_err(OtlpError::Thread)?;
        Ok(OtlpExporter {
            queue,
            control,
            stats,
        })
    }

    /// Queues the spans of a finished request; unsampled records are skipped. Never blocks: a
    /// full queue drops the record and counts it in [`OtlpExporter::dropped`].
    pub fn export(&self, record: &RequestRecord) {
        if !record.trace.sampled {
            return;
        }
        if self.queue.capacity() == 0 {
            self.stats.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        self.push(record_spans(record));
    }

    /// Queues a zero-duration span `name` (e.g. `gen_ai.feedback`) in `trace`, child of its
    /// request span, with `attrs` (at most 32; strings cut to 256 characters). Skipped when the
    /// trace is not sampled; never blocks.
    pub fn event(&self, trace: &TraceContext, name: &str, attrs: Vec<(String, AttrValue)>) {
        if !trace.sampled {
            return;
        }
        self.push(vec![event_span(trace, name, attrs)]);
    }

    fn push(&self, spans: Vec<Span>) {
        if self.queue.try_send(spans).is_err() {
            self.stats.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Sends everything queued before this call, waiting at most `timeout`; `true` when done
    /// (sent or failed), `false` on timeout or when the exporter thread is gone. Blocks the
    /// calling thread: for shutdown and tests, not the request path.
    pub fn flush(&self, timeout: Duration) -> bool {
        let (ack, done) = std::sync::mpsc::channel();
        if self.control.send(Control::Flush(ack)).is_err() {
            return false;
        }
        done.recv_timeout(timeout).is_ok()
    }

    /// Records and events dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.stats.dropped.load(Ordering::Relaxed)
    }

    /// Export requests that failed (no answer in time, connection error, non-2xx).
    pub fn failed_exports(&self) -> u64 {
        self.stats.failed_exports.load(Ordering::Relaxed)
    }

    /// Spans the collector accepted (answered 2xx for).
    pub fn exported_spans(&self) -> u64 {
        self.stats.exported_spans.load(Ordering::Relaxed)
    }
}

/// The exporter thread's state.
struct Worker {
    client: Client,
    resource: Resource,
    stats: Arc<Stats>,
    options: ExportOptions,
    warned_at: Option<Instant>,
    failures_since_warn: u64,
}

impl Worker {
    async fn run(
        mut self,
        mut queue: mpsc::Receiver<Vec<Span>>,
        mut control: mpsc::UnboundedReceiver<Control>,
    ) {
        let mut pending: Vec<Span> = Vec::new();
        let mut ticker = tokio::time::interval(self.options.interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut control_open = true;
        loop {
            tokio::select! {
                biased;
                message = control.recv(), if control_open => match message {
                    Some(Control::Flush(ack)) => {
                        while let Ok(spans) = queue.try_recv() {
                            pending.extend(spans);
                        }
                        self.send_all(&mut pending).await;
                        let _ = ack.send(());
                    }
                    None => control_open = false,
                },
                spans = queue.recv() => match spans {
                    Some(spans) => {
                        pending.extend(spans);
                        while pending.len() >= self.options.batch_spans {
                            self.send_batch(&mut pending).await;
                        }
                    }
                    None => {
                        self.send_all(&mut pending).await;
                        return;
                    }
                },
                _ = ticker.tick() => self.send_all(&mut pending).await,
            }
        }
    }

    async fn send_all(&mut self, pending: &mut Vec<Span>) {
        while !pending.is_empty() {
            self.send_batch(pending).await;
        }
    }

    /// Sends the first `batch_spans` of `pending`.
    async fn send_batch(&mut self, pending: &mut Vec<Span>) {
        let take = pending.len().min(self.options.batch_spans);
        let spans: Vec<Span> = pending.drain(..take).collect();
        if spans.is_empty() {
            return;
        }
        let count = spans.len() as u64;
        let request = ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(self.resource.clone()),
                scope_spans: vec![ScopeSpans {
                    scope: Some(InstrumentationScope {
                        name: "switchyard".to_string(),
                        version: env!("CARGO_PKG_VERSION").to_string(),
                        ..Default::default()
                    }),
                    spans,
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        let body = Bytes::from(request.encode_to_vec());
        match self.client.post(body).await {
            Ok(()) => {
                self.stats
                    .exported_spans
                    .fetch_add(count, Ordering::Relaxed);
            }
            Err(error) => {
                self.stats.failed_exports.fetch_add(1, Ordering::Relaxed);
                self.warn(&error, count);
            }
        }
    }

    /// Logs a failed export, at most once per [`WARN_INTERVAL`].
    fn warn(&mut self, error: &SendError, spans: u64) {
        let now = Instant::now();
        if self
            .warned_at
            .is_some_and(|at| now.duration_since(at) < WARN_INTERVAL)
        {
            self.failures_since_warn += 1;
            return;
        }
        tracing::warn!(
            endpoint = %self.client.target.display,
            error = %error,
            spans,
            earlier_failures_not_logged = self.failures_since_warn,
            "OTLP trace export failed"
        );
        self.warned_at = Some(now);
        self.failures_since_warn = 0;
    }
}
