//! The console's last requests: a fixed ring of [`CAPACITY`] compact copies of finished request
//! records. A push takes one short lock and copies into a slot whose strings and attempt list
//! keep their capacity, so once the ring has gone round it allocates nothing. Entries carry ids,
//! names, timings, tokens and cost — never a credential (records hold none), and prompt or
//! completion text only when the record carries it (`log_bodies`), served one entry at a time.

use std::sync::Mutex;
use std::time::{Duration, UNIX_EPOCH};

use serde::ser::{SerializeSeq, Serializer};
use serde::Serialize;

use crate::telemetry::{AttemptRecord, AttemptResult, RequestRecord};

/// Requests kept.
pub const CAPACITY: usize = 200;
/// Attempts kept per request (a deep tree with retries can make more; the rest are counted).
const MAX_ATTEMPTS: usize = 16;
/// Longest string copied into an entry (trace ids and paths are already bounded upstream).
const MAX_FIELD: usize = 256;
/// Prompt and completion text kept per request, when the record carries them.
const MAX_BODY: usize = 4096;

#[derive(Default)]
struct AttemptEntry {
    target: String,
    provider: String,
    model: String,
    status: Option<u16>,
    result: AttemptResult,
    /// From the request's start.
    offset: Duration,
    connect: Option<Duration>,
    headers: Option<Duration>,
    first_token: Option<Duration>,
    total: Duration,
}

#[derive(Default)]
struct Entry {
    id: u64,
    trace_id: String,
    start_unix_ms: u64,
    duration: Duration,
    method: String,
    path: String,
    config: String,
    virtual_key: String,
    model: String,
    stream: bool,
    status: u16,
    outcome: &'static str,
    attempts: Vec<AttemptEntry>,
    /// How many of `attempts` are this entry's (the rest are spare slots).
    attempt_count: usize,
    attempts_dropped: usize,
    tokens: Option<(u64, u64)>,
    cost_usd: Option<f64>,
    cache: &'static str,
    has_bodies: bool,
    request_body: String,
    response_body: String,
}

/// Replaces `dst` with (a bounded prefix of) `src`, keeping `dst`'s allocation.
fn set(dst: &mut String, src: &str, max: usize) {
    dst.clear();
    if src.len() <= max {
        dst.push_str(src);
    } else {
        let mut end = max;
        while !src.is_char_boundary(end) {
            end -= 1;
        }
        dst.push_str(&src[..end]);
    }
}

fn opt(dst: &mut String, src: Option<&str>) {
    set(dst, src.unwrap_or(""), MAX_FIELD);
}

impl AttemptEntry {
    fn fill(&mut self, a: &AttemptRecord, request_start: std::time::SystemTime) {
        set(&mut self.target, &a.target, MAX_FIELD);
        set(&mut self.provider, &a.provider, MAX_FIELD);
        opt(
            &mut self.model,
            a.response_model.as_deref().or(a.request_model.as_deref()),
        );
        self.status = a.status;
        self.result = a.result;
        self.offset = a.start.duration_since(request_start).unwrap_or_default();
        self.connect = a.connect;
        self.headers = a.headers;
        self.first_token = a.first_token;
        self.total = a.total;
    }
}

impl Entry {
    fn fill(&mut self, id: u64, r: &RequestRecord) {
        self.id = id;
        set(&mut self.trace_id, &r.trace.display_id, MAX_FIELD);
        self.start_unix_ms = r
            .start
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        self.duration = r.duration;
        set(&mut self.method, &r.method, 16);
        set(&mut self.path, &r.path, MAX_FIELD);
        set(&mut self.config, &r.config, MAX_FIELD);
        opt(&mut self.virtual_key, r.virtual_key.as_deref());
        opt(
            &mut self.model,
            r.response_model.as_deref().or(r.request_model.as_deref()),
        );
        self.stream = r.stream;
        self.status = r.status;
        self.outcome = r.outcome;
        let kept = r.attempts.len().min(MAX_ATTEMPTS);
        while self.attempts.len() < kept {
            self.attempts.push(AttemptEntry::default());
        }
        for (slot, a) in self.attempts.iter_mut().zip(&r.attempts) {
            slot.fill(a, r.start);
        }
        self.attempt_count = kept;
        self.attempts_dropped = r.attempts.len() - kept;
        self.tokens = r.usage.map(|u| (u.input_tokens, u.output_tokens));
        self.cost_usd = r.cost_usd;
        self.cache = r.cache;
        match &r.bodies {
            Some(b) => {
                self.has_bodies = true;
                set(&mut self.request_body, &b.request, MAX_BODY);
                set(&mut self.response_body, &b.response, MAX_BODY);
            }
            None => {
                self.has_bodies = false;
                self.request_body.clear();
                self.response_body.clear();
            }
        }
    }
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e4).round() / 10.0
}

#[derive(Serialize)]
struct AttemptView<'a> {
    target: &'a str,
    provider: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    model: &'a str,
    status: Option<u16>,
    result: &'a str,
    offset_ms: f64,
    connect_ms: Option<f64>,
    headers_ms: Option<f64>,
    first_token_ms: Option<f64>,
    total_ms: f64,
}

#[derive(Serialize)]
struct Tokens {
    input: u64,
    output: u64,
}

#[derive(Serialize)]
struct Bodies<'a> {
    request: &'a str,
    response: &'a str,
}

#[derive(Serialize)]
struct EntryView<'a> {
    id: u64,
    trace_id: &'a str,
    start_unix_ms: u64,
    duration_ms: f64,
    method: &'a str,
    path: &'a str,
    config: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    virtual_key: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    model: &'a str,
    stream: bool,
    status: u16,
    outcome: &'a str,
    attempts: Vec<AttemptView<'a>>,
    #[serde(skip_serializing_if = "is_zero")]
    attempts_dropped: usize,
    tokens: Option<Tokens>,
    cost_usd: Option<f64>,
    cache: &'a str,
    /// Whether prompt and completion text can be fetched (`log_bodies`).
    has_bodies: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    bodies: Option<Bodies<'a>>,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

impl Entry {
    fn view(&self, with_bodies: bool) -> EntryView<'_> {
        EntryView {
            id: self.id,
            trace_id: &self.trace_id,
            start_unix_ms: self.start_unix_ms,
            duration_ms: ms(self.duration),
            method: &self.method,
            path: &self.path,
            config: &self.config,
            virtual_key: &self.virtual_key,
            model: &self.model,
            stream: self.stream,
            status: self.status,
            outcome: self.outcome,
            attempts: self.attempts[..self.attempt_count]
                .iter()
                .map(|a| AttemptView {
                    target: &a.target,
                    provider: &a.provider,
                    model: &a.model,
                    status: a.status,
                    result: a.result.as_str(),
                    offset_ms: ms(a.offset),
                    connect_ms: a.connect.map(ms),
                    headers_ms: a.headers.map(ms),
                    first_token_ms: a.first_token.map(ms),
                    total_ms: ms(a.total),
                })
                .collect(),
            attempts_dropped: self.attempts_dropped,
            tokens: self.tokens.map(|(input, output)| Tokens { input, output }),
            cost_usd: self.cost_usd,
            cache: self.cache,
            has_bodies: self.has_bodies,
            bodies: (with_bodies && self.has_bodies).then_some(Bodies {
                request: &self.request_body,
                response: &self.response_body,
            }),
        }
    }
}

#[derive(Default)]
struct Ring {
    slots: Vec<Entry>,
    /// Id of the next request pushed; ids start at 1.
    next: u64,
}

impl Ring {
    fn get(&self, id: u64) -> Option<&Entry> {
        let slot = self.slots.get((id % CAPACITY as u64) as usize)?;
        (slot.id == id && id != 0).then_some(slot)
    }

    /// Ids held, newest first.
    fn ids_newest_first(&self) -> impl Iterator<Item = u64> + '_ {
        let newest = self.next.saturating_sub(1);
        let oldest = self.next.saturating_sub(self.slots.len() as u64);
        (oldest.max(1)..=newest).rev()
    }
}

/// The last [`CAPACITY`] requests.
pub struct RecentRequests {
    ring: Mutex<Ring>,
}

impl Default for RecentRequests {
    fn default() -> Self {
        Self::new()
    }
}

impl RecentRequests {
    pub fn new() -> Self {
        RecentRequests {
            ring: Mutex::new(Ring {
                slots: Vec::with_capacity(CAPACITY),
                next: 1,
            }),
        }
    }

    /// Copies a finished request in, evicting the oldest when full.
    pub fn push(&self, record: &RequestRecord) {
        let Ok(mut ring) = self.ring.lock() else {
            return;
        };
        let id = ring.next;
        ring.next += 1;
        let index = (id % CAPACITY as u64) as usize;
        if ring.slots.len() <= index {
            ring.slots.resize_with(index + 1, Entry::default);
        }
        ring.slots[index].fill(id, record);
    }

    /// The id of the newest request (0: none yet).
    pub fn newest(&self) -> u64 {
        self.ring.lock().map(|r| r.next - 1).unwrap_or(0)
    }

    /// How many requests are held (at most [`CAPACITY`]).
    pub fn len(&self) -> usize {
        self.ring
            .lock()
            .map(|r| r.ids_newest_first().count())
            .unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A JSON array of the requests newer than `after` (the newest `limit` of them), newest
    /// first, without bodies; and the newest id it covers.
    pub fn json_since(&self, after: u64, limit: usize) -> (Vec<u8>, u64) {
        let mut out = Vec::with_capacity(256);
        let Ok(ring) = self.ring.lock() else {
            return (b"[]".to_vec(), after);
        };
        let newest = ring.next - 1;
        let written = (|| -> Result<(), serde_json::Error> {
            let mut ser = serde_json::Serializer::new(&mut out);
            let mut seq = (&mut ser).serialize_seq(None)?;
            for id in ring
                .ids_newest_first()
                .take_while(|id| *id > after)
                .take(limit)
            {
                if let Some(e) = ring.get(id) {
                    seq.serialize_element(&e.view(false))?;
                }
            }
            seq.end()
        })();
        drop(ring);
        if written.is_err() {
            out = b"[]".to_vec();
        }
        (out, newest.max(after))
    }

    /// One request as JSON, with its prompt and completion text when it has them.
    pub fn json_one(&self, id: u64) -> Option<Vec<u8>> {
        let ring = self.ring.lock().ok()?;
        let entry = ring.get(id)?;
        serde_json::to_vec(&entry.view(true)).ok()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::telemetry::{Bodies as RecordBodies, TraceContext};
    use std::time::SystemTime;

    pub(crate) fn record(n: usize, attempts: usize) -> RequestRecord {
        let start = SystemTime::now();
        RequestRecord {
            trace: TraceContext {
                trace_id: [1; 16],
                span_id: [2; 8],
                parent_span_id: None,
                sampled: true,
                display_id: format!("trace-{n}"),
            },
            start,
            duration: Duration::from_millis(12),
            method: "POST".into(),
            path: "/v1/chat/completions".into(),
            operation: "chat",
            config: "chat".into(),
            virtual_key: Some("vk-a".into()),
            request_model: Some("gpt-4o-mini".into()),
            response_model: None,
            stream: false,
            status: 200,
            outcome: if attempts > 1 { "fallback_ok" } else { "ok" },
            attempts: (0..attempts)
                .map(|i| AttemptRecord {
                    span_id: [3; 8],
                    target: format!("config.targets[{i}]"),
                    provider: "p".into(),
                    provider_kind: "openai",
                    request_model: Some("gpt-4o-mini".into()),
                    response_model: None,
                    status: Some(200),
                    result: AttemptResult::Ok,
                    start: start + Duration::from_millis(i as u64),
                    connect: None,
                    headers: Some(Duration::from_millis(1)),
                    first_token: None,
                    total: Duration::from_millis(2),
                    usage: None,
                })
                .collect(),
            usage: None,
            cost_usd: None,
            cache: "DISABLED",
            metadata: None,
            bodies: None,
            client_span: None,
        }
    }

    fn parse(bytes: &[u8]) -> Vec<serde_json::Value> {
        serde_json::from_slice(bytes).unwrap()
    }

    #[test]
    fn keeps_the_last_capacity_requests_newest_first() {
        let ring = RecentRequests::new();
        assert_eq!(parse(&ring.json_since(0, CAPACITY).0).len(), 0);
        for n in 0..CAPACITY + 57 {
            ring.push(&record(n, 1 + n % 3));
        }
        assert_eq!(ring.len(), CAPACITY);
        let (json, newest) = ring.json_since(0, CAPACITY);
        let all = parse(&json);
        assert_eq!(all.len(), CAPACITY);
        assert_eq!(newest, (CAPACITY + 57) as u64);
        assert_eq!(all[0]["trace_id"], format!("trace-{}", CAPACITY + 56));
        assert_eq!(all[CAPACITY - 1]["trace_id"], "trace-57");
        let n = CAPACITY + 56;
        assert_eq!(all[0]["attempts"].as_array().unwrap().len(), 1 + n % 3);
        // Slots are reused: a shorter attempt list after a longer one shows only its own.
        ring.push(&record(9999, 1));
        let (json, _) = ring.json_since(newest, CAPACITY);
        let delta = parse(&json);
        assert_eq!(delta.len(), 1);
        assert_eq!(delta[0]["attempts"].as_array().unwrap().len(), 1);
        assert_eq!(delta[0]["attempts"][0]["offset_ms"], 0.0);
        // A delta is bounded too: the newest `limit`.
        for n in 0..10 {
            ring.push(&record(20_000 + n, 1));
        }
        let (json, last) = ring.json_since(newest + 1, 3);
        let bounded = parse(&json);
        assert_eq!(bounded.len(), 3);
        assert_eq!(bounded[0]["trace_id"], "trace-20009");
        assert_eq!(last, newest + 11);
        // Evicted ids are gone.
        assert!(ring.json_one(1).is_none());
        assert!(ring.json_one(newest + 1).is_some());
    }

    #[test]
    fn bodies_only_when_the_record_has_them_and_only_one_at_a_time() {
        let ring = RecentRequests::new();
        ring.push(&record(0, 1));
        let mut with = record(1, 2);
        with.bodies = Some(RecordBodies {
            request: "x".repeat(10_000),
            response: "the answer".into(),
        });
        ring.push(&with);
        let list = parse(&ring.json_since(0, CAPACITY).0);
        assert!(list.iter().all(|e| e.get("bodies").is_none()));
        assert_eq!(list[0]["has_bodies"], true);
        assert_eq!(list[1]["has_bodies"], false);
        let one: serde_json::Value = serde_json::from_slice(&ring.json_one(2).unwrap()).unwrap();
        assert_eq!(one["bodies"]["response"], "the answer");
        assert_eq!(
            one["bodies"]["request"].as_str().unwrap().len(),
            MAX_BODY,
            "bounded"
        );
        let none: serde_json::Value = serde_json::from_slice(&ring.json_one(1).unwrap()).unwrap();
        assert!(none.get("bodies").is_none());
    }

    #[test]
    fn attempts_beyond_the_bound_are_counted_not_kept() {
        let ring = RecentRequests::new();
        ring.push(&record(0, MAX_ATTEMPTS + 4));
        let list = parse(&ring.json_since(0, CAPACITY).0);
        assert_eq!(list[0]["attempts"].as_array().unwrap().len(), MAX_ATTEMPTS);
        assert_eq!(list[0]["attempts_dropped"], 4);
    }
}
