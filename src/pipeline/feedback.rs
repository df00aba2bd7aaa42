//! The feedback API, in Portkey's shape. `POST /v1/feedback` (one object or a bulk array):
//! each piece validated, counted, logged with the trace it rates, exported as an OTLP event in
//! that trace, remembered under a new id and answered with a `feedback_ids` entry.
//! `PUT /v1/feedback/{id}` replaces the value, weight and metadata of one of those: counted in
//! `switchyard_feedback_updates_total`, logged and exported the same way under the same id
//! and trace; an id the gateway does not hold (never issued, evicted, before a restart) is a
//! 404.

use bytes::Bytes;
use pingora::prelude::Session;
use serde_json::{json, Map, Value};

use super::context::Context;
use super::reject::Rejection;
use super::write::{write_json, Finished};
use super::{body, Pipeline};
use crate::error::GatewayError;
use crate::ingress;
use crate::telemetry::feedback::{Feedback, FeedbackUpdate, MAX_KEPT_IDS};
use crate::telemetry::metrics::FeedbackLabels;
use crate::telemetry::otlp::AttrValue;
use crate::telemetry::{trace, TraceContext};

/// Largest feedback body accepted (a bulk list of up to `feedback::MAX_BULK` pieces).
const MAX_FEEDBACK_BYTES: usize = 256 * 1024;
/// The update route's path, before the id.
const UPDATE_PREFIX: &str = "/v1/feedback/";

/// Whether the request is a feedback call (a POST, or a PUT of one id).
pub fn is_feedback(session: &Session) -> bool {
    let head = session.req_header();
    let path = head.uri.path();
    (head.method == http::Method::POST && path == "/v1/feedback")
        || (head.method == http::Method::PUT && update_id(path).is_some())
}

/// The id of `PUT /v1/feedback/{id}` (the canonical path: one non-empty segment).
fn update_id(path: &str) -> Option<&str> {
    path.strip_prefix(UPDATE_PREFIX)
        .filter(|id| !id.is_empty() && !id.contains('/'))
}

/// `{"feedback": v}`: what the access-log line and the console record carry.
fn recorded(v: Value) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("feedback".into(), v);
    m
}

impl Pipeline {
    pub(super) async fn feedback(
        &self,
        session: &mut Session,
        ctx: &mut Context<'_>,
    ) -> Result<Finished, Rejection> {
        // A config or virtual key, when sent, names the config the feedback is counted under.
        if let Ok(resolved) = ingress::resolve(ctx.snapshot, &session.req_header().headers) {
            ctx.facts.config.clear();
            ctx.facts.config.push_str(resolved.config_label());
            ctx.facts.virtual_key = resolved.virtual_key.as_ref().map(|k| k.label.clone());
        }
        let body = body::read(session, ctx, &self.metrics, MAX_FEEDBACK_BYTES).await?;
        let update = update_id(session.req_header().uri.path()).map(str::to_string);
        let answer = match update {
            Some(id) => self.update_feedback(ctx, &id, &body)?,
            None => self.create_feedback(ctx, &body)?,
        };
        Ok(write_json(session, Bytes::from(answer.to_string()), &ctx.headers).await)
    }

    /// `POST /v1/feedback`: the answer, each piece counted, exported and remembered.
    fn create_feedback(&self, ctx: &mut Context<'_>, body: &[u8]) -> Result<Value, Rejection> {
        let all =
            Feedback::parse_many(body).map_err(|e| GatewayError::InvalidRequest(e.to_string()))?;
        let mut ids = Vec::with_capacity(all.len());
        let mut logged = Vec::with_capacity(all.len());
        for feedback in &all {
            let id = hex::encode(rand::random::<[u8; 16]>());
            let value = feedback.value.to_string();
            let labels = FeedbackLabels {
                config: &ctx.facts.config,
                value: &value,
            };
            self.metrics.genai.feedback_total.with(&labels).inc();
            self.feedback_book.insert(&id, feedback);
            if let Some(store) = &self.store {
                store.feedback(&id, feedback);
            }
            self.export_feedback(
                &id,
                &feedback.trace_id,
                (feedback.value, feedback.weight),
                false,
            );
            if let Ok(Value::Object(mut v)) = serde_json::to_value(feedback) {
                v.insert("feedback_id".into(), id.clone().into());
                logged.push(Value::Object(v));
            }
            ids.push(id);
        }
        let mut answer = json!({
            "status": "success",
            "message": "feedback recorded",
            "feedback_ids": ids,
        });
        // One object: answered and recorded as one (with its trace id), as before bulk.
        let logged = match (&all[..], logged.len()) {
            ([one], 1) => {
                answer["trace_id"] = one.trace_id.clone().into();
                logged.pop().unwrap_or_default()
            }
            _ => Value::Array(logged),
        };
        ctx.facts.metadata = Some(recorded(logged));
        Ok(answer)
    }

    /// `PUT /v1/feedback/{id}`: the answer, the update counted, logged and exported under the
    /// trace the feedback rates.
    fn update_feedback(
        &self,
        ctx: &mut Context<'_>,
        id: &str,
        body: &[u8],
    ) -> Result<Value, Rejection> {
        let update =
            FeedbackUpdate::parse(body).map_err(|e| GatewayError::InvalidRequest(e.to_string()))?;
        let Some(before) = self.feedback_book.update(id, &update) else {
            return Err(GatewayError::NotFound(format!(
                "no feedback with id \"{}\": ids are those POST /v1/feedback answered (the newest \
                 {MAX_KEPT_IDS} since this gateway started)",
                ingress::path::bounded(id)
            ))
            .into());
        };
        let value = update.value.to_string();
        let labels = FeedbackLabels {
            config: &ctx.facts.config,
            value: &value,
        };
        self.metrics
            .genai
            .feedback_updates_total
            .with(&labels)
            .inc();
        self.export_feedback(id, &before.trace_id, (update.value, update.weight), true);
        if let Some(store) = &self.store {
            store.feedback_update(id, &update);
        }
        let mut logged = serde_json::to_value(&update).unwrap_or_default();
        if let Value::Object(v) = &mut logged {
            v.insert("feedback_id".into(), id.into());
            v.insert("trace_id".into(), before.trace_id.clone().into());
            v.insert("updated".into(), true.into());
            v.insert(
                "previous".into(),
                json!({"value": before.value, "weight": before.weight}),
            );
        }
        ctx.facts.metadata = Some(recorded(logged));
        Ok(json!({
            "status": "success",
            "message": "feedback updated",
            "feedback_ids": [id],
            "trace_id": before.trace_id,
        }))
    }

    /// The feedback (or its update) as an OTLP event in the trace it rates.
    fn export_feedback(
        &self,
        id: &str,
        trace_id_text: &str,
        (value, weight): (i8, f64),
        updated: bool,
    ) {
        let Some(otlp) = &self.otlp else {
            return;
        };
        let mut trace_id = [0u8; 16];
        if hex::decode_to_slice(trace_id_text, &mut trace_id).is_err() {
            return;
        }
        let rated = TraceContext {
            trace_id,
            span_id: trace::new_span_id(),
            parent_span_id: None,
            sampled: true,
            display_id: trace_id_text.to_string(),
        };
        otlp.event(
            &rated,
            "gen_ai.feedback",
            vec![
                ("switchyard.feedback.id".into(), AttrValue::from(id)),
                (
                    "switchyard.feedback.value".into(),
                    AttrValue::Int(i64::from(value)),
                ),
                (
                    "switchyard.feedback.weight".into(),
                    AttrValue::Double(weight),
                ),
                (
                    "switchyard.feedback.updated".into(),
                    AttrValue::Bool(updated),
                ),
            ],
        );
    }
}
