//! A request record, a piece of feedback or its update as rows, and the batched multi-row
//! statements that write them (one SQL text for SQLite and PostgreSQL).

use std::collections::HashSet;
use std::time::SystemTime;

use sqlx::any::AnyArguments;
use sqlx::{Any, Transaction};

use super::clock::{micros, unix_us};
use crate::telemetry::{AttemptResult, RequestRecord};

/// Rows per multi-row `INSERT` (bounded far below both databases' parameter limits).
const ROWS_PER_INSERT: usize = 100;
/// Longest metadata key and value kept as a searchable row.
const MAX_METADATA_KEY: usize = 128;
const MAX_METADATA_VALUE: usize = 512;
/// Durations are bucketed on a log scale of this base for percentiles: each bucket is 5%
/// wide, so a percentile read from them is within 2.5% of the exact value.
pub const BUCKET_BASE: f64 = 1.05;

/// A bound value.
#[derive(Debug, Clone, PartialEq)]
pub enum Val {
    Int(Option<i64>),
    Real(Option<f64>),
    Text(Option<String>),
}

impl From<i64> for Val {
    fn from(v: i64) -> Val {
        Val::Int(Some(v))
    }
}
impl From<Option<i64>> for Val {
    fn from(v: Option<i64>) -> Val {
        Val::Int(v)
    }
}
impl From<Option<f64>> for Val {
    fn from(v: Option<f64>) -> Val {
        Val::Real(v)
    }
}
impl From<String> for Val {
    fn from(v: String) -> Val {
        Val::Text(Some(v))
    }
}
impl From<&str> for Val {
    fn from(v: &str) -> Val {
        Val::Text(Some(v.to_string()))
    }
}
impl From<Option<String>> for Val {
    fn from(v: Option<String>) -> Val {
        Val::Text(v)
    }
}

/// Binds `values` in order to `query`.
pub fn bind_all<'q>(
    mut query: sqlx::query::Query<'q, Any, AnyArguments<'q>>,
    values: Vec<Val>,
) -> sqlx::query::Query<'q, Any, AnyArguments<'q>> {
    for v in values {
        query = match v {
            Val::Int(i) => query.bind(i),
            Val::Real(r) => query.bind(r),
            Val::Text(t) => query.bind(t),
        };
    }
    query
}

/// The body bytes a record carries (what the queue's byte bound counts).
pub fn body_bytes(r: &RequestRecord) -> usize {
    r.bodies
        .as_ref()
        .map_or(0, |b| b.request.len() + b.response.len())
}

/// The duration's log-scale bucket.
pub fn bucket_of(duration_us: i64) -> i64 {
    ((duration_us.max(1) as f64).ln() / BUCKET_BASE.ln()).floor() as i64
}

/// The bucket's representative duration (its geometric middle), in milliseconds.
pub fn bucket_ms(bucket: i64) -> f64 {
    BUCKET_BASE.powf(bucket as f64 + 0.5) / 1000.0
}

/// `s` cut to at most `max` bytes at a character boundary.
fn cut(s: &str, max: usize) -> String {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

/// Rows of one table, written with multi-row inserts.
pub struct Table {
    name: &'static str,
    columns: &'static [&'static str],
    /// `ON CONFLICT …` clause.
    conflict: &'static str,
    rows: Vec<Vec<Val>>,
}

impl Table {
    fn new(name: &'static str, columns: &'static [&'static str], conflict: &'static str) -> Table {
        Table {
            name,
            columns,
            conflict,
            rows: Vec::new(),
        }
    }

    fn push(&mut self, row: Vec<Val>) {
        debug_assert_eq!(row.len(), self.columns.len());
        self.rows.push(row);
    }

    /// Writes every row in the transaction. SQLite gets anonymous `?` placeholders: `$N` is a
    /// *named* parameter there, which sqlx binds by looking each name up in a linear list —
    /// quadratic in a multi-row insert's 3 100 parameters (61 % of the writer's time, measured
    /// by the store bench). PostgreSQL needs `$N`.
    pub async fn insert(
        self,
        tx: &mut Transaction<'_, Any>,
        dialect: super::Dialect,
    ) -> Result<(), sqlx::Error> {
        let width = self.columns.len();
        let mut rows = self.rows.into_iter().peekable();
        while rows.peek().is_some() {
            let chunk: Vec<Vec<Val>> = rows.by_ref().take(ROWS_PER_INSERT).collect();
            let mut sql = format!(
                "INSERT INTO {} ({}) VALUES ",
                self.name,
                self.columns.join(", ")
            );
            for r in 0..chunk.len() {
                sql.push_str(if r == 0 { "(" } else { ", (" });
                for c in 0..width {
                    if c > 0 {
                        sql.push_str(", ");
                    }
                    match dialect {
                        super::Dialect::Sqlite => sql.push('?'),
                        super::Dialect::Postgres => {
                            sql.push_str(&format!("${}", r * width + c + 1))
                        }
                    }
                }
                sql.push(')');
            }
            sql.push(' ');
            sql.push_str(self.conflict);
            let values = chunk.into_iter().flatten().collect();
            bind_all(sqlx::query(&sql), values)
                .execute(&mut **tx)
                .await?;
        }
        Ok(())
    }
}

/// What a batch of records writes.
pub struct RequestRows {
    pub requests: Table,
    pub metadata: Table,
    pub attempts: Table,
    pub bodies: Table,
    /// The oldest request start in the batch: unclaimed feedback from then on is matched.
    pub oldest_start_us: Option<i64>,
}

const REQUEST_COLUMNS: &[&str] = &[
    "id",
    "trace_id",
    "w3c_trace_id",
    "parent_span_id",
    "client_span",
    "start_us",
    "duration_us",
    "duration_bucket",
    "ttft_us",
    "method",
    "path",
    "operation",
    "config",
    "virtual_key",
    "model",
    "request_model",
    "response_model",
    "provider",
    "provider_kind",
    "stream",
    "status",
    "outcome",
    "is_error",
    "fallback",
    "attempt_count",
    "input_tokens",
    "output_tokens",
    "cost_nano_usd",
    "cache",
    "metadata",
    "gateway",
];
const ATTEMPT_COLUMNS: &[&str] = &[
    "request_id",
    "seq",
    "target",
    "provider",
    "provider_kind",
    "request_model",
    "response_model",
    "status",
    "result",
    "offset_us",
    "connect_us",
    "headers_us",
    "first_token_us",
    "total_us",
    "input_tokens",
    "output_tokens",
];

impl Default for RequestRows {
    fn default() -> Self {
        RequestRows::new()
    }
}

impl RequestRows {
    pub fn new() -> RequestRows {
        RequestRows {
            requests: Table::new("requests", REQUEST_COLUMNS, "ON CONFLICT (id) DO NOTHING"),
            metadata: Table::new(
                "request_metadata",
                &["request_id", "key", "value", "start_us"],
                "ON CONFLICT (request_id, key) DO NOTHING",
            ),
            attempts: Table::new(
                "attempts",
                ATTEMPT_COLUMNS,
                "ON CONFLICT (request_id, seq) DO NOTHING",
            ),
            bodies: Table::new(
                "bodies",
                &["request_id", "request", "response"],
                "ON CONFLICT (request_id) DO NOTHING",
            ),
            oldest_start_us: None,
        }
    }

    pub fn len(&self) -> usize {
        self.requests.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.requests.rows.is_empty()
    }

    /// Adds one record's rows.
    pub fn add(&mut self, r: &RequestRecord, gateway: &str) {
        let id = hex::encode(r.trace.span_id);
        let start_us = unix_us(r.start);
        self.oldest_start_us = Some(self.oldest_start_us.map_or(start_us, |o| o.min(start_us)));
        self.requests.push(request_row(r, &id, start_us, gateway));
        for (key, value) in r.metadata.iter().flatten() {
            let value = match value {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            self.metadata.push(vec![
                id.clone().into(),
                cut(key, MAX_METADATA_KEY).into(),
                cut(&value, MAX_METADATA_VALUE).into(),
                start_us.into(),
            ]);
        }
        for (seq, a) in r.attempts.iter().enumerate() {
            self.attempts.push(vec![
                id.clone().into(),
                (seq as i64).into(),
                a.target.clone().into(),
                a.provider.clone().into(),
                a.provider_kind.into(),
                a.request_model.clone().into(),
                a.response_model.clone().into(),
                a.status.map(i64::from).into(),
                a.result.as_str().into(),
                since(r.start, a.start).into(),
                a.connect.map(micros).into(),
                a.headers.map(micros).into(),
                a.first_token.map(micros).into(),
                micros(a.total).into(),
                a.usage.map(|u| u.input_tokens as i64).into(),
                a.usage.map(|u| u.output_tokens as i64).into(),
            ]);
        }
        if let Some(b) = &r.bodies {
            self.bodies.push(vec![
                id.into(),
                b.request.clone().into(),
                b.response.clone().into(),
            ]);
        }
    }
}

/// Microseconds from `start` to `t` (0 if before).
fn since(start: SystemTime, t: SystemTime) -> i64 {
    t.duration_since(start).map(micros).unwrap_or(0)
}

fn request_row(r: &RequestRecord, id: &str, start_us: i64, gateway: &str) -> Vec<Val> {
    let winner = r
        .attempts
        .iter()
        .rev()
        .find(|a| a.result == AttemptResult::Ok);
    let ttft = winner.and_then(|w| Some(since(r.start, w.start) + micros(w.first_token?)));
    let targets: HashSet<&str> = r.attempts.iter().map(|a| a.target.as_str()).collect();
    let is_error = r.status >= 400 || r.outcome == "stream_aborted";
    let model = winner
        .and_then(|w| w.request_model.clone())
        .or_else(|| r.request_model.clone());
    let duration_us = micros(r.duration);
    vec![
        id.into(),
        r.trace.display_id.clone().into(),
        hex::encode(r.trace.trace_id).into(),
        r.trace.parent_span_id.map(hex::encode).into(),
        r.client_span
            .as_ref()
            .and_then(|s| serde_json::to_string(s).ok())
            .into(),
        start_us.into(),
        duration_us.into(),
        bucket_of(duration_us).into(),
        ttft.into(),
        r.method.clone().into(),
        r.path.clone().into(),
        r.operation.into(),
        r.config.clone().into(),
        r.virtual_key.clone().into(),
        model.into(),
        r.request_model.clone().into(),
        r.response_model.clone().into(),
        winner.map(|w| w.provider.clone()).into(),
        winner.map(|w| w.provider_kind.to_string()).into(),
        i64::from(r.stream).into(),
        i64::from(r.status).into(),
        r.outcome.into(),
        i64::from(is_error).into(),
        i64::from(targets.len() > 1).into(),
        (r.attempts.len() as i64).into(),
        r.usage.map(|u| u.input_tokens as i64).into(),
        r.usage.map(|u| u.output_tokens as i64).into(),
        // Integer nano-dollars: exact sums, and no NULL float parameter (sqlx 0.8's Any driver
        // binds a NULL f64 as float4, which poisons PostgreSQL's cached insert statement).
        r.cost_usd.map(|c| (c * 1e9).round() as i64).into(),
        r.cache.into(),
        r.metadata
            .as_ref()
            .and_then(|m| serde_json::to_string(m).ok())
            .into(),
        gateway.into(),
    ]
}

/// Feedback rows: inserted with the request they rate (the one of their trace that started
/// last before the feedback was sent), when it is already written.
pub struct FeedbackRow {
    pub id: String,
    pub trace_id: String,
    pub value: i64,
    pub weight: f64,
    pub metadata: Option<String>,
    pub created_us: i64,
}

impl FeedbackRow {
    pub async fn insert(
        &self,
        tx: &mut Transaction<'_, Any>,
        gateway: &str,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO feedback (id, trace_id, value, weight, metadata, created_us, gateway, request_id) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, \
               (SELECT r.id FROM requests r WHERE r.trace_id = $2 AND r.start_us <= $6 \
                ORDER BY r.start_us DESC LIMIT 1)) \
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(self.id.clone())
        .bind(self.trace_id.clone())
        .bind(self.value)
        .bind(self.weight)
        .bind(self.metadata.clone())
        .bind(self.created_us)
        .bind(gateway.to_string())
        .execute(&mut **tx)
        .await?;
        Ok(())
    }
}

/// `PUT /v1/feedback/{id}`: the new value, weight and metadata.
pub struct FeedbackUpdateRow {
    pub id: String,
    pub value: i64,
    pub weight: f64,
    pub metadata: Option<String>,
    pub updated_us: i64,
}

impl FeedbackUpdateRow {
    pub async fn apply(&self, tx: &mut Transaction<'_, Any>) -> Result<(), sqlx::Error> {
        sqlx::query(
            "UPDATE feedback SET value = $2, weight = $3, metadata = $4, updated_us = $5 WHERE id = $1",
        )
        .bind(self.id.clone())
        .bind(self.value)
        .bind(self.weight)
        .bind(self.metadata.clone())
        .bind(self.updated_us)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }
}

/// Feedback sent after the batch's oldest request started is matched again now that the
/// batch is in: feedback that arrived before the request it rates was written (another pod's,
/// or a race with this pod's queue) is then given it — the latest request of its trace that
/// started before the feedback was sent.
pub async fn claim_feedback(db: &super::Db, since_us: i64) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE feedback SET request_id = \
           (SELECT r.id FROM requests r WHERE r.trace_id = feedback.trace_id \
              AND r.start_us <= feedback.created_us ORDER BY r.start_us DESC LIMIT 1) \
         WHERE created_us >= $1",
    )
    .bind(since_us)
    .execute(&db.pool)
    .await?;
    Ok(())
}
