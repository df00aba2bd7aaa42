//! The semantic cache's embeddings calls: `POST /v1/embeddings` to the config's embedder target
//! through the same router and upstream client as any request (its breaker, deadline and
//! `switchyard_upstream_attempts_total{target="<config>/cache.embedder"}`), recorded in a
//! journal of its own — an embeddings call is not an attempt of the chat request.

use std::sync::atomic::AtomicU64;
use std::time::Instant;

use async_trait::async_trait;
use bytes::Bytes;
use pingora::http::RequestHeader;

use super::attempt::request::Internal;
use super::attempt::{AttemptRunner, ClientRequest};
use super::journal::Journal;
use crate::cache::TargetEmbedder;
use crate::config::{Snapshot, Target};
use crate::router::condition::Facts;
use crate::router::{Breakers, Router};
use crate::telemetry::{AttemptResult, Metrics, TraceContext};
use crate::upstream::UpstreamClient;

/// Everything an embeddings call borrows from the gateway for one request.
pub struct EmbedCalls<'a> {
    pub client: &'a UpstreamClient,
    pub metrics: &'a Metrics,
    pub breakers: &'a Breakers,
    pub snapshot: &'a Snapshot,
    pub config: &'a str,
    pub trace: &'a TraceContext,
}

#[derive(serde::Deserialize)]
struct EmbeddingsReply {
    data: Vec<EmbeddingItem>,
}

#[derive(serde::Deserialize)]
struct EmbeddingItem {
    embedding: Vec<f32>,
}

#[async_trait]
impl TargetEmbedder for EmbedCalls<'_> {
    async fn embed(&self, target: &Target, model: &str, text: &str) -> Result<Vec<f32>, String> {
        let mut json = serde_json::Map::new();
        json.insert("model".into(), model.into());
        json.insert("input".into(), text.into());
        let body = serde_json::to_vec(&json)
            .map(Bytes::from)
            .map_err(|e| e.to_string())?;
        let mut head = RequestHeader::build(http::Method::POST, b"/v1/embeddings", Some(2))
            .map_err(|e| e.to_string())?;
        head.insert_header(http::header::CONTENT_TYPE, "application/json")
            .map_err(|e| e.to_string())?;
        let request = ClientRequest::internal(Internal {
            path: "/v1/embeddings",
            body,
            json,
            model: model.to_string(),
        });
        let journal = Journal::new(self.trace.clone());
        let wait = AtomicU64::new(0);
        let runner = AttemptRunner {
            journal: &journal,
            client: self.client,
            metrics: self.metrics,
            snapshot: self.snapshot,
            request: &request,
            client_head: &head,
            config: self.config,
            upstream_wait_ns: &wait,
            screened: None,
        };
        let router = Router {
            attempts: &runner,
            breakers: self.breakers,
            facts: Facts {
                metadata: None,
                params: None,
            },
        };
        let started = Instant::now();
        let won = router
            .run(target)
            .await
            .map_err(|f| format!("the embeddings call failed ({})", f.kind.label()))?;
        let prepared = won.ready;
        prepared
            .labels
            .record(self.metrics, AttemptResult::Ok, started.elapsed());
        let held = prepared.held;
        prepared.response.finish().await;
        let reply: EmbeddingsReply = serde_json::from_slice(&held)
            .map_err(|e| format!("the embeddings answer is not an embeddings list: {e}"))?;
        reply
            .data
            .into_iter()
            .next()
            .map(|d| d.embedding)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| "the embeddings answer holds no vector".to_string())
    }
}
