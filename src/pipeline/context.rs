//! The per-request context: everything a request accumulates on its way through the phases
//! (its journal, time spent on upstreams, what its record will say, its limit reservation, the
//! headers every answer carries), and what the admission phases hand to cache and routing.

use std::sync::atomic::AtomicU64;

use bytes::Bytes;
use pingora::prelude::Session;

use super::attempt::ClientRequest;
use super::journal::Journal;
use crate::config::Snapshot;
use crate::governance::Ticket;
use crate::guardrails::Screened;
use crate::ingress::Resolved;
use crate::providers::ClientFormat;
use crate::telemetry::TraceContext;

/// Whether a failed write to this client was a stall (it stopped reading), not a hang-up.
/// Given by the server, which owns the connection.
pub type StallProbe = fn(&Session) -> bool;

/// What the rest of the request path learns about a request, for its record.
pub struct Facts {
    pub config: String,
    pub virtual_key: Option<String>,
    pub model: Option<String>,
    pub stream: bool,
    pub metadata: Option<serde_json::Map<String, serde_json::Value>>,
    /// The request body, kept for the access log (`log_bodies`, not `x-switchyard-log: off`).
    pub request_body: Option<Bytes>,
    /// `x-portkey-cache-status` of the request.
    pub cache: &'static str,
}

/// One request's state from its head to its record.
pub struct Context<'a> {
    /// The config snapshot the request runs on (loaded once).
    pub snapshot: &'a Snapshot,
    pub journal: Journal,
    /// Nanoseconds spent waiting on upstreams (for the overhead metric).
    pub upstream_wait_ns: AtomicU64,
    pub facts: Facts,
    /// The request's limit reservations, settled with its record when it ends.
    pub governed: Option<Ticket>,
    /// Headers on every answer from here on: the trace id, then `x-ratelimit-*` of the
    /// presented virtual key, then the cache status when the config caches.
    pub headers: Vec<(&'static str, String)>,
    /// The wire format our own errors are written in (the client's API).
    pub client: ClientFormat,
    /// The Azure OpenAI deployment the client's path named (its model), once ingress has
    /// rewritten the path to the gateway's route.
    pub deployment: Option<String>,
    /// The request body was read: a rejection after this may keep the connection.
    pub body_read: bool,
    /// Keep (up to a bound of) the bodies for the access log.
    pub keep_body: bool,
    pub stalled: StallProbe,
}

impl<'a> Context<'a> {
    pub fn new(snapshot: &'a Snapshot, trace: TraceContext, stalled: StallProbe) -> Context<'a> {
        let headers = vec![
            ("x-portkey-trace-id", trace.display_id.clone()),
            ("x-switchyard-trace-id", trace.display_id.clone()),
        ];
        Context {
            snapshot,
            journal: Journal::new(trace),
            upstream_wait_ns: AtomicU64::new(0),
            facts: Facts {
                config: String::from("none"),
                virtual_key: None,
                model: None,
                stream: false,
                metadata: None,
                request_body: None,
                cache: "DISABLED",
            },
            governed: None,
            headers,
            client: ClientFormat::OpenAi,
            deployment: None,
            body_read: false,
            keep_body: false,
            stalled,
        }
    }
}

/// A request past admission: what cache and routing work on.
#[derive(Clone, Copy)]
pub struct Admitted<'r> {
    pub resolved: &'r Resolved,
    pub request: &'r ClientRequest,
    /// The config's input guardrail results (`None`: it has none).
    pub screened: Option<&'r Screened>,
}
