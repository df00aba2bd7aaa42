//! The console: a live page on the admin port that shows what this sidecar is doing now.
//!
//! It owns two pieces of state of its own, fed once per request from the request record: the
//! last requests ([`ring`]) and, while someone watches, the window's attempt durations
//! ([`latency`]: exact P50/P95/P99, not interpolated inside histogram buckets). Everything else
//! is read when someone looks: the counts ([`sampler`], [`stats`]) come from the Prometheus
//! families `/metrics` serves, circuit states from the breakers, the config hash and reload
//! result from the reloader.
//!
//! Cost is bounded by who watches. While at least one viewer is connected to `/events` (or a
//! poller of `/api/console` came by in the last few seconds) one sampler task reads the metrics
//! once a second and publishes one frame that every viewer sends as is. When the last viewer
//! leaves, the task ends and drops its per-second samples: no per-client state, no sampling.
//!
//! The page itself ([`assets`]) is HTML, CSS and vanilla JS embedded in the binary.

pub mod assets;
pub mod latency;
pub mod ring;
pub mod sampler;
pub mod stats;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use bytes::Bytes;
use tokio::sync::watch;

use crate::config::watch::Reloader;
use crate::config::Snapshot;
use crate::router::Breakers;
use crate::telemetry::{Metrics, RequestRecord};
use latency::Latencies;
use ring::RecentRequests;
use sampler::{Counts, Sampler};
use stats::Sources;

/// How often a frame is published.
pub const TICK: Duration = Duration::from_secs(1);
/// How long one `/api/console` poll keeps the sampler running.
const POLL_LEASE: Duration = Duration::from_secs(5);
/// Most `/events` viewers at once; more get 503.
pub const MAX_VIEWERS: usize = 64;
/// Most requests one delta frame carries: above this many requests a second, the page shows
/// the newest of each second (a viewer's first frame, and `/api/console`, carry all that are
/// kept). Bounds what a tick costs: one short serialisation and one small write per viewer.
pub const MAX_DELTA_REQUESTS: usize = 50;

/// The runtime's clock (the same as `Instant::now()` except in tests with paused time).
fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

/// One published frame.
pub struct Tick {
    pub seq: u64,
    /// The figures (a JSON object).
    stats: Bytes,
    /// The SSE event for viewers that saw the previous frame: figures plus the requests that
    /// finished since.
    pub delta_event: Bytes,
}

#[derive(Default)]
struct SamplerState {
    running: bool,
    sampler: Sampler,
    seq: u64,
    /// Newest request id already published in a delta.
    published_request: u64,
    lease_until: Option<Instant>,
}

/// The console's state, shared by the proxy (which feeds the ring) and the admin service.
pub struct Console {
    pub requests: RecentRequests,
    metrics: Arc<Metrics>,
    breakers: Arc<Breakers>,
    live: Arc<ArcSwap<Snapshot>>,
    reloader: Option<Arc<Reloader>>,
    state: Mutex<SamplerState>,
    /// Attempt durations over the window, kept only while the sampler runs (`collecting`).
    latencies: Mutex<Latencies>,
    collecting: AtomicBool,
    viewers: AtomicUsize,
    frames: watch::Sender<Option<Arc<Tick>>>,
    /// The full frame of the latest tick, built for the first viewer that needs it.
    full: Mutex<Option<(u64, Bytes)>>,
}

/// A connected `/events` viewer; leaving decrements the count.
pub struct Viewer {
    console: Arc<Console>,
}

impl Drop for Viewer {
    fn drop(&mut self) {
        let left = self.console.viewers.fetch_sub(1, Ordering::AcqRel) - 1;
        self.console.metrics.console_viewers.set(left as i64);
    }
}

/// `data: <json>\n\n`.
fn sse_event(json: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(json.len() + 8);
    out.extend_from_slice(b"data: ");
    out.extend_from_slice(json);
    out.extend_from_slice(b"\n\n");
    Bytes::from(out)
}

/// `{"seq":N,"mode":"…","stats":{…},"requests":[…]}`.
fn frame_json(seq: u64, mode: &str, stats: &[u8], requests: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(stats.len() + requests.len() + 64);
    out.extend_from_slice(format!("{{\"seq\":{seq},\"mode\":\"{mode}\",\"stats\":").as_bytes());
    out.extend_from_slice(stats);
    out.extend_from_slice(b",\"requests\":");
    out.extend_from_slice(requests);
    out.push(b'}');
    out
}

impl Console {
    pub fn new(
        metrics: Arc<Metrics>,
        breakers: Arc<Breakers>,
        live: Arc<ArcSwap<Snapshot>>,
        reloader: Option<Arc<Reloader>>,
    ) -> Arc<Console> {
        Arc::new(Console {
            requests: RecentRequests::new(),
            metrics,
            breakers,
            live,
            reloader,
            state: Mutex::new(SamplerState::default()),
            latencies: Mutex::new(Latencies::default()),
            collecting: AtomicBool::new(false),
            viewers: AtomicUsize::new(0),
            frames: watch::Sender::new(None),
            full: Mutex::new(None),
        })
    }

    /// The request path's one call: keep a copy of the finished request, and its attempts'
    /// durations while the console is watched.
    pub fn record(&self, record: &RequestRecord) {
        self.requests.push(record);
        if self.collecting.load(Ordering::Acquire) {
            if let Ok(mut latencies) = self.latencies.lock() {
                latencies.record(now(), record);
            }
        }
    }

    /// Attempt durations held (0 once the console is closed).
    pub fn latency_samples_held(&self) -> usize {
        self.latencies.lock().map(|l| l.held()).unwrap_or(0)
    }

    /// Starts (a fresh store) or stops (forgetting it) keeping attempt durations.
    fn collect(&self, on: bool) {
        if let Ok(mut latencies) = self.latencies.lock() {
            *latencies = Latencies::new(now());
        }
        self.collecting.store(on, Ordering::Release);
    }

    /// Open `/events` streams.
    pub fn viewers(&self) -> usize {
        self.viewers.load(Ordering::Acquire)
    }

    /// Whether the sampler task is running.
    pub fn sampling(&self) -> bool {
        self.state.lock().map(|s| s.running).unwrap_or(false)
    }

    /// Per-second samples held (0 once the console is closed).
    pub fn samples_held(&self) -> usize {
        self.state.lock().map(|s| s.sampler.held()).unwrap_or(0)
    }

    /// Registers a viewer (`None` when [`MAX_VIEWERS`] are connected) and starts the sampler.
    pub fn join(self: &Arc<Self>) -> Option<(Viewer, watch::Receiver<Option<Arc<Tick>>>)> {
        let mut n = self.viewers.load(Ordering::Acquire);
        loop {
            if n >= MAX_VIEWERS {
                return None;
            }
            match self
                .viewers
                .compare_exchange(n, n + 1, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => break,
                Err(now) => n = now,
            }
        }
        self.metrics.console_viewers.set(n as i64 + 1);
        let viewer = Viewer {
            console: self.clone(),
        };
        let rx = self.frames.subscribe();
        self.ensure_sampling();
        Some((viewer, rx))
    }

    fn wanted(&self, state: &SamplerState, now: Instant) -> bool {
        self.viewers() > 0 || state.lease_until.is_some_and(|t| t > now)
    }

    /// Starts the sampler task on the current runtime unless it runs.
    fn ensure_sampling(self: &Arc<Self>) {
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        if state.running {
            return;
        }
        state.running = true;
        self.collect(true);
        self.metrics.console_sampling.set(1);
        drop(state);
        handle.spawn(self.clone().sample_while_watched());
    }

    async fn sample_while_watched(self: Arc<Self>) {
        let mut every = tokio::time::interval(TICK);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            every.tick().await;
            let tick = {
                let Ok(mut state) = self.state.lock() else {
                    return;
                };
                let now = now();
                if !self.wanted(&state, now) {
                    // Checked under the lock `ensure_sampling` takes: a viewer joining now
                    // either is seen here or starts a new task.
                    state.running = false;
                    state.lease_until = None;
                    state.sampler.clear_fine();
                    self.collect(false);
                    if let Ok(mut full) = self.full.lock() {
                        *full = None;
                    }
                    self.metrics.console_sampling.set(0);
                    self.frames.send_replace(None);
                    return;
                }
                self.tick(&mut state, now)
            };
            self.frames.send_replace(Some(Arc::new(tick)));
        }
    }

    /// Samples the metrics and builds the next frame.
    fn tick(&self, state: &mut SamplerState, now: Instant) -> Tick {
        state.sampler.push(now, Counts::read(&self.metrics));
        let stats = self.stats_json(&state.sampler, now);
        let (requests, newest) = self
            .requests
            .json_since(state.published_request, MAX_DELTA_REQUESTS);
        state.published_request = newest;
        state.seq += 1;
        let delta_event = sse_event(&frame_json(state.seq, "delta", &stats, &requests));
        Tick {
            seq: state.seq,
            stats: Bytes::from(stats),
            delta_event,
        }
    }

    fn stats_json(&self, sampler: &Sampler, now: Instant) -> Vec<u8> {
        let snapshot = self.live.load();
        let window = sampler.window();
        let spark = |config: &str| sampler.spark(config, now);
        let Ok(latencies) = self.latencies.lock() else {
            return b"{}".to_vec();
        };
        let sources = Sources {
            snapshot: &snapshot,
            breakers: &self.breakers,
            reload: self.reloader.as_ref().map(|r| r.status()),
            window: &window,
            latencies: &latencies,
            now,
            spark: &spark,
        };
        serde_json::to_vec(&sources.stats()).unwrap_or_else(|_| b"{}".to_vec())
    }

    /// A frame with every request held, for a viewer that is new or fell behind; built once
    /// per tick however many viewers join.
    pub fn full_event(&self, tick: &Tick) -> Bytes {
        let Ok(mut full) = self.full.lock() else {
            return sse_event(&self.full_json(tick));
        };
        match &*full {
            Some((seq, event)) if *seq == tick.seq => event.clone(),
            _ => {
                let event = sse_event(&self.full_json(tick));
                *full = Some((tick.seq, event.clone()));
                event
            }
        }
    }

    fn full_json(&self, tick: &Tick) -> Vec<u8> {
        let (requests, _) = self.requests.json_since(0, ring::CAPACITY);
        frame_json(tick.seq, "full", &tick.stats, &requests)
    }

    /// `/api/console`: the latest full frame as JSON. Polling keeps the sampler running for a
    /// few seconds; the first poll samples at once.
    pub fn poll(self: &Arc<Self>) -> Vec<u8> {
        let now = now();
        let fresh = {
            let Ok(mut state) = self.state.lock() else {
                return b"{}".to_vec();
            };
            state.lease_until = Some(now + POLL_LEASE);
            match self.frames.borrow().clone() {
                Some(t) if state.running => Some(t),
                _ => None,
            }
        };
        let tick = match fresh {
            Some(t) => t,
            None => {
                let Ok(mut state) = self.state.lock() else {
                    return b"{}".to_vec();
                };
                Arc::new(self.tick(&mut state, now))
            }
        };
        self.ensure_sampling();
        self.full_json(&tick)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn console() -> Arc<Console> {
        let snapshot = crate::config::load_str("providers: {}\n", None).unwrap();
        let metrics = Arc::new(Metrics::new().unwrap());
        Console::new(
            metrics,
            Arc::new(Breakers::new(None)),
            Arc::new(ArcSwap::from_pointee(snapshot)),
            None,
        )
    }

    #[tokio::test(start_paused = true)]
    async fn the_sampler_runs_only_while_watched_and_forgets_its_samples() {
        let c = console();
        assert!(!c.sampling());
        let (viewer, mut rx) = c.join().unwrap();
        assert!(c.sampling());
        assert_eq!(c.metrics.console_viewers.get(), 1);
        for _ in 0..3 {
            rx.changed().await.unwrap();
        }
        let tick = rx.borrow().clone().unwrap();
        assert!(tick.seq >= 3);
        assert!(c.samples_held() >= 3);
        c.record(&ring::tests::record(1, 2));
        assert_eq!(c.latency_samples_held(), 2);
        drop(viewer);
        drop(rx);
        assert_eq!(c.viewers(), 0);
        assert_eq!(c.metrics.console_viewers.get(), 0);
        tokio::time::sleep(TICK * 2).await;
        assert!(!c.sampling());
        assert_eq!(c.samples_held(), 0);
        assert_eq!(c.latency_samples_held(), 0, "durations are forgotten too");
        c.record(&ring::tests::record(2, 1));
        assert_eq!(
            c.latency_samples_held(),
            0,
            "and not kept while nobody watches"
        );
        assert_eq!(c.metrics.console_sampling.get(), 0);
        assert!(c.frames.borrow().is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn viewers_are_capped() {
        let c = console();
        let held: Vec<_> = (0..MAX_VIEWERS).map(|_| c.join().unwrap()).collect();
        assert!(c.join().is_none());
        drop(held);
        assert!(c.join().is_some());
    }

    #[tokio::test(start_paused = true)]
    async fn a_poll_answers_at_once_and_its_lease_runs_out() {
        let c = console();
        let frame: serde_json::Value = serde_json::from_slice(&c.poll()).unwrap();
        assert_eq!(frame["mode"], "full");
        assert!(frame["stats"]["config"]["hash"].is_string());
        assert!(frame["requests"].as_array().unwrap().is_empty());
        assert!(c.sampling());
        tokio::time::sleep(POLL_LEASE + TICK * 2).await;
        assert!(!c.sampling());
    }
}
