//! The writer: one task that takes what the request path queued, in batches, and writes each
//! batch in one transaction — retried with backoff while the database is unreachable, then
//! dropped and counted. It also prunes by age and (SQLite) size, between batches.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};

use super::db::{Db, StoreError};
use super::prune::Pruner;
use super::rows::{claim_feedback, FeedbackRow, FeedbackUpdateRow, RequestRows};
use crate::telemetry::metrics::{StoreDrop, StoreMetrics, StoreOp};
use crate::telemetry::RequestRecord;

/// Most queued items one batch takes.
pub const MAX_BATCH: usize = 1000;
/// Waits between tries of a failing batch (then it is dropped).
const BACKOFF: [Duration; 3] = [
    Duration::from_millis(250),
    Duration::from_secs(1),
    Duration::from_secs(4),
];
/// At most one error line per this long.
const LOG_EVERY: Duration = Duration::from_secs(10);

/// What the request path hands over.
pub enum Op {
    Request(Arc<RequestRecord>),
    Feedback(FeedbackRow),
    FeedbackUpdate(FeedbackUpdateRow),
    /// Answered once everything queued before it is written (or dropped).
    Flush(oneshot::Sender<()>),
}

/// One batch, sorted by kind.
#[derive(Default)]
struct Batch {
    records: Vec<Arc<RequestRecord>>,
    feedback: Vec<FeedbackRow>,
    updates: Vec<FeedbackUpdateRow>,
    flushes: Vec<oneshot::Sender<()>>,
}

impl Batch {
    fn push(&mut self, op: Op) {
        match op {
            Op::Request(r) => self.records.push(r),
            Op::Feedback(f) => self.feedback.push(f),
            Op::FeedbackUpdate(u) => self.updates.push(u),
            Op::Flush(done) => self.flushes.push(done),
        }
    }

    fn items(&self) -> usize {
        self.records.len() + self.feedback.len() + self.updates.len()
    }
}

pub struct Writer {
    pub db: Arc<Db>,
    pub rx: mpsc::Receiver<Op>,
    pub metrics: StoreMetrics,
    pub gateway: String,
    pub pruner: Pruner,
    /// Whether this process has applied the migrations (PostgreSQL: lazily, once reachable).
    pub migrated: bool,
    pub last_log: Option<Instant>,
    /// Body bytes queued (the request path adds, the writer takes away).
    pub queued_bytes: Arc<std::sync::atomic::AtomicUsize>,
}

impl Writer {
    /// Runs until every sender is gone.
    pub async fn run(mut self) {
        loop {
            let wait = self.pruner.until_due();
            let first = tokio::select! {
                op = self.rx.recv() => match op {
                    Some(op) => op,
                    None => break,
                },
                _ = tokio::time::sleep(wait) => {
                    self.prune().await;
                    continue;
                }
            };
            let mut batch = Batch::default();
            batch.push(first);
            while batch.items() < MAX_BATCH {
                match self.rx.try_recv() {
                    Ok(op) => batch.push(op),
                    Err(_) => break,
                }
            }
            self.metrics.queue_depth.set(self.rx.len() as i64);
            self.write(&batch).await;
            // Counted until written (or dropped): the batch in hand is part of the bound.
            let taken: usize = batch
                .records
                .iter()
                .map(|r| super::rows::body_bytes(r))
                .sum();
            self.queued_bytes
                .fetch_sub(taken, std::sync::atomic::Ordering::Relaxed);
            for done in batch.flushes {
                let _ = done.send(());
            }
            if self.pruner.due() {
                self.prune().await;
            } else if self.migrated {
                if let Err(e) = self.pruner.size(&self.db).await {
                    self.metrics.errors_total.with(&StoreOp::Prune).inc();
                    self.log(&e, 0);
                }
            }
        }
    }

    /// Writes the batch, retrying with backoff; drops and counts it when every try failed.
    async fn write(&mut self, batch: &Batch) {
        if batch.items() == 0 {
            return;
        }
        for (try_no, pause) in std::iter::once(None)
            .chain(BACKOFF.iter().copied().map(Some))
            .enumerate()
        {
            if let Some(pause) = pause {
                tokio::time::sleep(pause).await;
            }
            match self.try_write(batch).await {
                Ok(()) => {
                    self.metrics
                        .written_total
                        .inc_by(batch.records.len() as u64);
                    return;
                }
                Err(e) => {
                    self.metrics.errors_total.with(&StoreOp::Write).inc();
                    self.log(&e, try_no);
                }
            }
        }
        self.metrics
            .dropped_total
            .with(&StoreDrop::WriteFailed)
            .inc_by(batch.items() as u64);
    }

    async fn try_write(&mut self, batch: &Batch) -> Result<(), StoreError> {
        if !self.migrated {
            self.db.migrate().await.inspect_err(|_| {
                self.metrics.errors_total.with(&StoreOp::Connect).inc();
            })?;
            self.migrated = true;
        }
        let mut rows = RequestRows::new();
        for r in &batch.records {
            rows.add(r, &self.gateway);
        }
        let mut tx = self.db.pool.begin().await?;
        // Feedback is matched again from the oldest request or feedback of the batch on.
        let oldest = batch
            .feedback
            .iter()
            .map(|f| f.created_us)
            .chain(rows.oldest_start_us)
            .min();
        let dialect = self.db.dialect;
        rows.requests.insert(&mut tx, dialect).await?;
        rows.metadata.insert(&mut tx, dialect).await?;
        rows.attempts.insert(&mut tx, dialect).await?;
        rows.bodies.insert(&mut tx, dialect).await?;
        for f in &batch.feedback {
            f.insert(&mut tx, &self.gateway).await?;
        }
        for u in &batch.updates {
            u.apply(&mut tx).await?;
        }
        tx.commit().await?;
        // After the commit, in a statement of its own: two pods' transactions (READ
        // COMMITTED) cannot see each other's rows, so feedback one pod writes while another
        // writes the request it rates is matched by whichever of the two claims runs after both
        // commits — and each runs after its own.
        if let Some(since) = oldest {
            claim_feedback(&self.db, since).await?;
        }
        Ok(())
    }

    async fn prune(&mut self) {
        if !self.migrated {
            // Nothing to prune before the schema exists (PostgreSQL still unreachable).
            self.pruner.postpone();
            return;
        }
        if let Err(e) = self.pruner.run(&self.db).await {
            self.metrics.errors_total.with(&StoreOp::Prune).inc();
            self.log(&e, 0);
        }
    }

    /// One line per [`LOG_EVERY`] at most: an unreachable database must not flood the log.
    fn log(&mut self, e: &StoreError, try_no: usize) {
        let now = Instant::now();
        if self
            .last_log
            .is_some_and(|t| now.duration_since(t) < LOG_EVERY)
        {
            return;
        }
        self.last_log = Some(now);
        tracing::warn!(error = %e, try_no, "request store: write failed; retrying, then dropping (counted in switchyard_store_dropped_total)");
    }
}
