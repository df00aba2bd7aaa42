//! Reading requests back: the filtered, newest-first page of `GET /v1/analytics/requests`, and
//! one request whole (attempts, bodies, feedback) for `GET /v1/analytics/requests/{id}`.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{json, Map, Value};
use sqlx::any::AnyRow;
use sqlx::Row;

use super::params::{FeedbackFilter, Params};
use super::rows::{bind_all, Val};
use super::Db;

/// Why a read gave no answer.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("{0}")]
    Db(#[from] sqlx::Error),
    #[error("the query did not finish in time")]
    Timeout,
}

/// SQL text built in order, with `?` in each pushed fragment numbered as it is appended.
#[derive(Default)]
pub struct Sql {
    pub text: String,
    pub args: Vec<Val>,
}

impl Sql {
    pub fn push(&mut self, fragment: &str, args: impl IntoIterator<Item = Val>) -> &mut Sql {
        let mut args = args.into_iter();
        for (i, piece) in fragment.split('?').enumerate() {
            if i > 0 {
                match args.next() {
                    Some(a) => self.args.push(a),
                    None => self.args.push(Val::Text(None)),
                }
                self.text.push_str(&format!("${}", self.args.len()));
            }
            self.text.push_str(piece);
        }
        self
    }

    pub async fn fetch(self, db: &Db) -> Result<Vec<AnyRow>, sqlx::Error> {
        bind_all(sqlx::query(&self.text), self.args)
            .fetch_all(&db.pool)
            .await
    }
}

/// The columns a request is shown with.
const REQUEST_COLUMNS: &str = "r.id, r.trace_id, r.w3c_trace_id, r.client_span, r.start_us, \
    r.duration_us, r.ttft_us, r.method, r.path, r.operation, r.config, r.virtual_key, r.model, \
    r.response_model, r.provider, r.provider_kind, r.stream, r.status, r.outcome, r.fallback, \
    r.attempt_count, r.input_tokens, r.output_tokens, r.cost_nano_usd, r.cache, r.metadata, r.gateway";

/// `AND r.id IN (…)`: the requests whose feedback values sum to `cmp` (`> 0`, …).
fn rated(cmp: &str) -> String {
    format!(
        " AND r.id IN (SELECT f.request_id FROM feedback f WHERE f.request_id IS NOT NULL \
         GROUP BY f.request_id HAVING SUM(f.value) {cmp})"
    )
}

/// `AND …` for every filter of `p` (time window first: every query is bounded by it).
pub fn filters(sql: &mut Sql, p: &Params) {
    sql.push(
        " WHERE r.start_us >= ? AND r.start_us < ?",
        [p.from_us.into(), p.to_us.into()],
    );
    if let Some(t) = &p.trace_id {
        sql.push(" AND r.trace_id = ?", [t.clone().into()]);
    }
    for (key, value) in &p.metadata {
        sql.push(
            " AND r.id IN (SELECT m.request_id FROM request_metadata m WHERE m.key = ? \
             AND m.value = ? AND m.start_us >= ? AND m.start_us < ?)",
            [
                key.clone().into(),
                value.clone().into(),
                p.from_us.into(),
                p.to_us.into(),
            ],
        );
    }
    for (column, value) in &p.columns {
        if *column == "model" {
            sql.push(
                " AND (r.model = ? OR r.request_model = ?)",
                [value.clone().into(), value.clone().into()],
            );
        } else {
            sql.push(&format!(" AND r.{column} = ?"), [value.clone().into()]);
        }
    }
    let feedback = match p.feedback {
        None => return,
        Some(FeedbackFilter::Any) => {
            " AND EXISTS (SELECT 1 FROM feedback f WHERE f.request_id = r.id)".to_string()
        }
        Some(FeedbackFilter::None) => {
            " AND NOT EXISTS (SELECT 1 FROM feedback f WHERE f.request_id = r.id)".to_string()
        }
        // From the feedback table (small), not a sum per request of the window: rare negative
        // feedback would otherwise scan the whole window for a page.
        Some(FeedbackFilter::Positive) => rated("> 0"),
        Some(FeedbackFilter::Negative) => rated("< 0"),
        Some(FeedbackFilter::Neutral) => rated("= 0"),
    };
    sql.push(&feedback, []);
}

/// RFC 3339 with microseconds, UTC.
pub fn rfc3339(us: i64) -> Value {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(us) * 1000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .map_or(Value::Null, Value::String)
}

fn ms(us: Option<i64>) -> Value {
    us.map_or(Value::Null, |us| json!(us as f64 / 1000.0))
}

fn int(row: &AnyRow, col: &str) -> Option<i64> {
    row.try_get::<Option<i64>, _>(col).ok().flatten()
}

fn text(row: &AnyRow, col: &str) -> Option<String> {
    row.try_get::<Option<String>, _>(col).ok().flatten()
}

fn real(row: &AnyRow, col: &str) -> Option<f64> {
    row.try_get::<Option<f64>, _>(col).ok().flatten()
}

/// A JSON text column, parsed (NULL, or text that is not JSON, is `null`).
fn json_col(row: &AnyRow, col: &str) -> Value {
    text(row, col)
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(Value::Null)
}

/// One request row as the API shows it (without its feedback).
fn request_json(row: &AnyRow) -> Map<String, Value> {
    let start = int(row, "start_us").unwrap_or(0);
    let v = json!({
        "id": text(row, "id"),
        "trace_id": text(row, "trace_id"),
        "w3c_trace_id": text(row, "w3c_trace_id"),
        "client_span": json_col(row, "client_span"),
        "start": rfc3339(start),
        "start_unix_ms": start / 1000,
        "duration_ms": ms(int(row, "duration_us")),
        "ttft_ms": ms(int(row, "ttft_us")),
        "method": text(row, "method"),
        "path": text(row, "path"),
        "operation": text(row, "operation"),
        "config": text(row, "config"),
        "virtual_key": text(row, "virtual_key"),
        "model": text(row, "model"),
        "response_model": text(row, "response_model"),
        "provider": text(row, "provider"),
        "provider_kind": text(row, "provider_kind"),
        "stream": int(row, "stream") == Some(1),
        "status": int(row, "status"),
        "outcome": text(row, "outcome"),
        "fallback": int(row, "fallback") == Some(1),
        "attempt_count": int(row, "attempt_count"),
        "input_tokens": int(row, "input_tokens"),
        "output_tokens": int(row, "output_tokens"),
        "cost_usd": int(row, "cost_nano_usd").map(|n| n as f64 / 1e9),
        "cache": text(row, "cache"),
        "metadata": json_col(row, "metadata"),
        "gateway": text(row, "gateway"),
    });
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

/// The feedback of `ids`, by request id, oldest first.
async fn feedback_of(db: &Db, ids: &[String]) -> Result<HashMap<String, Vec<Value>>, sqlx::Error> {
    let mut out: HashMap<String, Vec<Value>> = HashMap::new();
    if ids.is_empty() {
        return Ok(out);
    }
    let mut sql = Sql::default();
    sql.push(
        "SELECT f.request_id, f.id, f.value, f.weight, f.metadata, f.created_us, f.updated_us \
         FROM feedback f WHERE f.request_id IN (",
        [],
    );
    for (i, id) in ids.iter().enumerate() {
        sql.push(if i == 0 { "?" } else { ", ?" }, [id.clone().into()]);
    }
    sql.push(") ORDER BY f.created_us", []);
    for row in sql.fetch(db).await? {
        let Some(request) = text(&row, "request_id") else {
            continue;
        };
        out.entry(request).or_default().push(json!({
            "id": text(&row, "id"),
            "value": int(&row, "value"),
            "weight": real(&row, "weight"),
            "metadata": json_col(&row, "metadata"),
            "created": rfc3339(int(&row, "created_us").unwrap_or(0)),
            "updated": int(&row, "updated_us").map_or(Value::Null, rfc3339),
        }));
    }
    Ok(out)
}

/// `GET /v1/analytics/requests`.
pub async fn list(db: Arc<Db>, p: Params) -> Result<Value, sqlx::Error> {
    let mut sql = Sql::default();
    sql.push(&format!("SELECT {REQUEST_COLUMNS} FROM requests r"), []);
    filters(&mut sql, &p);
    if let Some((start, id)) = &p.cursor {
        sql.push(
            " AND (r.start_us < ? OR (r.start_us = ? AND r.id < ?))",
            [(*start).into(), (*start).into(), id.clone().into()],
        );
    }
    sql.push(
        " ORDER BY r.start_us DESC, r.id DESC LIMIT ?",
        [(p.limit + 1).into()],
    );
    let mut rows = sql.fetch(&db).await?;
    let has_more = rows.len() as i64 > p.limit;
    rows.truncate(p.limit as usize);
    let mut data: Vec<Map<String, Value>> = rows.iter().map(request_json).collect();
    let ids: Vec<String> = data
        .iter()
        .filter_map(|r| r.get("id")?.as_str().map(str::to_string))
        .collect();
    let mut feedback = feedback_of(&db, &ids).await?;
    for (r, id) in data.iter_mut().zip(&ids) {
        r.insert(
            "feedback".into(),
            Value::Array(feedback.remove(id).unwrap_or_default()),
        );
    }
    let next_cursor = match (has_more, rows.last()) {
        (true, Some(last)) => json!(format!(
            "{}.{}",
            int(last, "start_us").unwrap_or(0),
            text(last, "id").unwrap_or_default()
        )),
        _ => Value::Null,
    };
    Ok(json!({
        "object": "list",
        "data": data,
        "has_more": has_more,
        "next_cursor": next_cursor,
    }))
}

/// `GET /v1/analytics/requests/{id}`: `None` when no such request is stored.
pub async fn one(db: Arc<Db>, id: String) -> Result<Option<Value>, sqlx::Error> {
    let mut sql = Sql::default();
    sql.push(
        &format!("SELECT {REQUEST_COLUMNS} FROM requests r WHERE r.id = ?"),
        [id.clone().into()],
    );
    let Some(row) = sql.fetch(&db).await?.into_iter().next() else {
        return Ok(None);
    };
    let mut request = request_json(&row);
    let mut feedback = feedback_of(&db, std::slice::from_ref(&id)).await?;
    request.insert(
        "feedback".into(),
        Value::Array(feedback.remove(&id).unwrap_or_default()),
    );
    request.insert("attempts".into(), attempts_of(&db, &id).await?);
    let mut sql = Sql::default();
    sql.push(
        "SELECT request, response FROM bodies WHERE request_id = ?",
        [id.into()],
    );
    let bodies = sql.fetch(&db).await?.into_iter().next().map_or(
        Value::Null,
        |b| json!({"request": text(&b, "request"), "response": text(&b, "response")}),
    );
    request.insert("bodies".into(), bodies);
    Ok(Some(Value::Object(request)))
}

async fn attempts_of(db: &Db, id: &str) -> Result<Value, sqlx::Error> {
    let mut sql = Sql::default();
    sql.push(
        "SELECT seq, target, provider, provider_kind, request_model, response_model, status, \
         result, offset_us, connect_us, headers_us, first_token_us, total_us, input_tokens, \
         output_tokens FROM attempts WHERE request_id = ? ORDER BY seq",
        [id.to_string().into()],
    );
    let rows = sql.fetch(db).await?;
    Ok(Value::Array(
        rows.iter()
            .map(|a| {
                json!({
                    "seq": int(a, "seq"),
                    "target": text(a, "target"),
                    "provider": text(a, "provider"),
                    "provider_kind": text(a, "provider_kind"),
                    "request_model": text(a, "request_model"),
                    "response_model": text(a, "response_model"),
                    "status": int(a, "status"),
                    "result": text(a, "result"),
                    "offset_ms": ms(int(a, "offset_us")),
                    "connect_ms": ms(int(a, "connect_us")),
                    "headers_ms": ms(int(a, "headers_us")),
                    "first_token_ms": ms(int(a, "first_token_us")),
                    "total_ms": ms(int(a, "total_us")),
                    "input_tokens": int(a, "input_tokens"),
                    "output_tokens": int(a, "output_tokens"),
                })
            })
            .collect(),
    ))
}
