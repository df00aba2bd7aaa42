//! The request store: every finished request's record — its trace, metadata, attempts, tokens,
//! cost and (with `telemetry.log_bodies`) its bodies — and the feedback that rates it, kept in
//! one SQLite file or a PostgreSQL database a fleet shares, and queried by the analytics API
//! ([`api`]) that the console's Traces and Analytics views read.
//!
//! The request path only queues (`Store::record`, `Store::feedback`): a bounded channel whose
//! overflow is dropped and counted, never waited for. One writer task ([`writer`]) on the
//! store's own runtime writes batches in single transactions, retries an unreachable database
//! with backoff, then drops and counts; it prunes by age and size between batches ([`prune`]).
//! Reads run on the same runtime, a few at a time, each with a deadline.

pub mod api;
pub mod cli;
mod clock;
pub mod db;
mod params;
mod prune;
mod read;
pub mod rows;
mod summary;
mod writer;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, Semaphore};

use crate::config::{StoreBackend, StoreSettings};
use crate::telemetry::feedback::{Feedback, FeedbackUpdate};
use crate::telemetry::metrics::{StoreDrop, StoreMetrics};
use crate::telemetry::RequestRecord;
pub use clock::{micros, now_us, unix_us};
pub use db::{Db, Dialect, StoreError};
use rows::{body_bytes, FeedbackRow, FeedbackUpdateRow};
use writer::{Op, Writer};

/// Analytics queries running at once; more wait (up to the query deadline).
const MAX_READS: usize = 4;
/// Most body bytes (prompts and answers, `log_bodies`) waiting in the queue: with the
/// database down, a queue of records with 128 KiB of bodies each must not grow to gigabytes.
pub const MAX_QUEUED_BODY_BYTES: usize = 64 << 20;

/// Which sidecar wrote a row: `POD_NAME` (the Kubernetes downward API), else `HOSTNAME`, else
/// `local`; at most 64 characters.
fn gateway_name() -> String {
    let name = std::env::var("POD_NAME")
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_default();
    let name: String = name.trim().chars().take(64).collect();
    if name.is_empty() {
        "local".into()
    } else {
        name
    }
}

/// The store: the queue's sending side, the database for reads, and the runtime both run on.
pub struct Store {
    tx: mpsc::Sender<Op>,
    db: Arc<Db>,
    handle: tokio::runtime::Handle,
    runtime: Option<tokio::runtime::Runtime>,
    metrics: StoreMetrics,
    reads: Arc<Semaphore>,
    /// Body bytes in the queue (bounded by [`MAX_QUEUED_BODY_BYTES`]).
    queued_bytes: Arc<AtomicUsize>,
    /// Answer `/v1/analytics/*` on the proxy port too.
    pub proxy_api: bool,
}

impl Drop for Store {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

impl Store {
    /// Opens the database on a runtime of the store's own (one worker thread) and starts the
    /// writer. SQLite is opened, created and migrated now (an unusable file is an error here);
    /// PostgreSQL connects and migrates when it first can, so a database that is down does not
    /// stop the gateway.
    pub fn open(settings: &StoreSettings, metrics: StoreMetrics) -> Result<Store, StoreError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("switchyard-store")
            .enable_all()
            .build()
            .map_err(|e| StoreError::Db(sqlx::Error::Io(e)))?;
        let handle = runtime.handle().clone();
        let opening = settings.clone();
        // Blocked on from a plain thread: the caller may itself be on a runtime.
        let db = std::thread::scope(|s| {
            s.spawn(|| {
                handle.block_on(async {
                    set_aside_if_not_sqlite(&opening)?;
                    open_and_migrate(&opening).await
                })
            })
            .join()
            .unwrap_or_else(|_| {
                Err(StoreError::Invalid(
                    "request store: the opening thread panicked".into(),
                ))
            })
        })?;
        let db = Arc::new(db);
        let (tx, rx) = mpsc::channel(settings.queue);
        let queued_bytes = Arc::new(AtomicUsize::new(0));
        let max_bytes = match settings.backend {
            StoreBackend::Sqlite(_) => Some(settings.max_bytes),
            StoreBackend::Postgres(_) => None,
        };
        let writer = Writer {
            db: db.clone(),
            rx,
            metrics: metrics.clone(),
            gateway: gateway_name(),
            pruner: prune::Pruner::new(settings.retention, max_bytes),
            migrated: db.dialect == Dialect::Sqlite,
            last_log: None,
            queued_bytes: queued_bytes.clone(),
        };
        handle.spawn(writer.run());
        Ok(Store {
            tx,
            db,
            handle,
            runtime: Some(runtime),
            metrics,
            reads: Arc::new(Semaphore::new(MAX_READS)),
            queued_bytes,
            proxy_api: settings.proxy_api,
        })
    }

    fn enqueue(&self, op: Op) -> bool {
        let sent = self.tx.try_send(op).is_ok();
        if !sent {
            self.metrics.dropped_total.with(&StoreDrop::QueueFull).inc();
        }
        sent
    }

    /// Queues a finished request's record; never waits (a full queue, in records or in body
    /// bytes, drops it, counted).
    pub fn record(&self, record: Arc<RequestRecord>) {
        let bytes = body_bytes(&record);
        if bytes > 0 {
            let before = self.queued_bytes.fetch_add(bytes, Ordering::Relaxed);
            if before + bytes > MAX_QUEUED_BODY_BYTES {
                self.queued_bytes.fetch_sub(bytes, Ordering::Relaxed);
                self.metrics.dropped_total.with(&StoreDrop::QueueFull).inc();
                return;
            }
        }
        if !self.enqueue(Op::Request(record)) && bytes > 0 {
            self.queued_bytes.fetch_sub(bytes, Ordering::Relaxed);
        }
    }

    /// Queues a new piece of feedback under its id.
    pub fn feedback(&self, id: &str, feedback: &Feedback) {
        self.enqueue(Op::Feedback(FeedbackRow {
            id: id.to_string(),
            trace_id: feedback.trace_id.clone(),
            value: i64::from(feedback.value),
            weight: feedback.weight,
            metadata: metadata_text(feedback.metadata.as_ref()),
            created_us: now_us(),
        }));
    }

    /// Queues the update of feedback `id`.
    pub fn feedback_update(&self, id: &str, update: &FeedbackUpdate) {
        self.enqueue(Op::FeedbackUpdate(FeedbackUpdateRow {
            id: id.to_string(),
            value: i64::from(update.value),
            weight: update.weight,
            metadata: metadata_text(update.metadata.as_ref()),
            updated_us: now_us(),
        }));
    }

    /// Waits (at most `timeout`) until everything queued so far is written or dropped.
    /// Returns whether it was.
    pub async fn flush(&self, timeout: Duration) -> bool {
        let (done, wait) = oneshot::channel();
        let sent = tokio::time::timeout(timeout, self.tx.send(Op::Flush(done))).await;
        if !matches!(sent, Ok(Ok(()))) {
            return false;
        }
        matches!(tokio::time::timeout(timeout, wait).await, Ok(Ok(())))
    }

    /// Runs `query` against the database on the store's runtime, with the read deadline.
    async fn read<T, F, Fut>(&self, query: F) -> Result<T, read::ReadError>
    where
        T: Send + 'static,
        F: FnOnce(Arc<Db>) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = Result<T, sqlx::Error>> + Send + 'static,
    {
        let db = self.db.clone();
        let reads = self.reads.clone();
        // The wait for a read slot is inside the deadline: while the database is down, calls
        // do not queue up behind each other's 5 s.
        let task = self
            .handle
            .spawn(tokio::time::timeout(db::STATEMENT_TIMEOUT, async move {
                let _permit = reads.acquire_owned().await;
                query(db).await
            }));
        match task.await {
            Ok(Ok(Ok(v))) => Ok(v),
            Ok(Ok(Err(e))) => {
                self.metrics
                    .errors_total
                    .with(&crate::telemetry::metrics::StoreOp::Read)
                    .inc();
                Err(read::ReadError::Db(e))
            }
            Ok(Err(_)) => Err(read::ReadError::Timeout),
            Err(_) => Err(read::ReadError::Timeout),
        }
    }
}

/// The database, migrated now when it is SQLite (PostgreSQL: lazily, by the writer).
async fn open_and_migrate(settings: &StoreSettings) -> Result<Db, StoreError> {
    let db = Db::open(settings).await?;
    if db.dialect == Dialect::Sqlite {
        db.migrate().await?;
    }
    Ok(db)
}

/// A file at the SQLite path that is not a SQLite database (a truncated header, another
/// file) is renamed aside, kept for its owner, and a new database started: the gateway's
/// requests must not wait on its analytics file, and nothing is deleted.
fn set_aside_if_not_sqlite(settings: &StoreSettings) -> Result<(), StoreError> {
    use std::io::Read;
    const MAGIC: &[u8; 16] = b"SQLite format 3\0";
    let StoreBackend::Sqlite(path) = &settings.backend else {
        return Ok(());
    };
    let mut head = Vec::with_capacity(16);
    match std::fs::File::open(path) {
        Ok(f) => f.take(16).read_to_end(&mut head)?,
        Err(_) => return Ok(()),
    };
    if head.is_empty() || head == MAGIC {
        return Ok(());
    }
    let mut aside = path.clone().into_os_string();
    aside.push(format!(".corrupt-{}", now_us() / 1_000_000));
    std::fs::rename(path, &aside)?;
    for suffix in ["-wal", "-shm"] {
        let mut side = path.clone().into_os_string();
        side.push(suffix);
        let _ = std::fs::remove_file(side);
    }
    tracing::error!(file = %path.display(), kept_as = ?aside, "request store: the file is not a usable SQLite database; it is kept aside and a new one started");
    Ok(())
}

fn metadata_text(m: Option<&serde_json::Map<String, serde_json::Value>>) -> Option<String> {
    m.and_then(|m| serde_json::to_string(m).ok())
}
