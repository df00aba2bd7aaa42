//! The figures part of a console frame: per-target and per-config rows over the last minute,
//! circuit states from the breakers, and the config's hash and reload status. Rows come from
//! the live config (every leaf of every named config) plus any target the metrics have seen
//! that the config no longer names.

use std::collections::BTreeSet;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use super::latency::{Latencies, Percentiles};
use super::sampler::{AttemptKey, SparkPoint, Window};
use crate::config::watch::ReloadStatus;
use crate::config::{RouteConfig, Snapshot, Target, TargetKind};
use crate::router::breaker::CircuitState;
use crate::router::Breakers;

/// Rounds to 0.1 (ms) or 0.001 (rates).
fn round(x: f64, places: i32) -> f64 {
    let f = 10f64.powi(places);
    (x * f).round() / f
}

#[derive(Serialize, Default)]
pub struct Quantiles {
    pub p50: Option<f64>,
    pub p95: Option<f64>,
    pub p99: Option<f64>,
}

impl Quantiles {
    /// In milliseconds, to 0.1 ms.
    fn of(p: Option<Percentiles>) -> Quantiles {
        let ms = |s: f64| round(s * 1000.0, 1);
        Quantiles {
            p50: p.map(|p| ms(p.p50)),
            p95: p.map(|p| ms(p.p95)),
            p99: p.map(|p| ms(p.p99)),
        }
    }
}

#[derive(Serialize)]
pub struct Circuit {
    /// `closed`, `open`, `half_open`, `disabled`, or `unknown` (a target the config no longer
    /// names).
    pub state: &'static str,
    /// While open: seconds until a half-open probe is let through.
    pub half_open_in_s: Option<f64>,
}

#[derive(Serialize)]
pub struct TargetRow {
    pub config: String,
    pub target: String,
    pub provider: String,
    /// Calls per second made to it over the window.
    pub rps: f64,
    pub calls: u64,
    pub ok: u64,
    pub errors: u64,
    pub timeouts: u64,
    /// Requests that skipped it because its circuit was open.
    pub skipped: u64,
    pub latency_ms: Quantiles,
    pub ttft_ms: Quantiles,
    pub circuit: Circuit,
}

#[derive(Serialize)]
pub struct SparkView {
    pub ago_s: f64,
    pub fallback_rate: Option<f64>,
    pub retry_rate: Option<f64>,
}

impl From<SparkPoint> for SparkView {
    fn from(p: SparkPoint) -> Self {
        SparkView {
            ago_s: round(p.ago_s, 1),
            fallback_rate: p.fallback_rate.map(|r| round(r, 3)),
            retry_rate: p.retry_rate.map(|r| round(r, 3)),
        }
    }
}

#[derive(Serialize)]
pub struct ConfigRow {
    pub name: String,
    pub requests: u64,
    pub rps: f64,
    pub fallback_ok: u64,
    pub errors: u64,
    /// Fallbacks per request (`switchyard_fallbacks_total / switchyard_requests_total`).
    pub fallback_rate: Option<f64>,
    /// Retries per request.
    pub retry_rate: Option<f64>,
    /// Ten-second steps over the last ten minutes, oldest first.
    pub spark: Vec<SparkView>,
}

#[derive(Serialize)]
pub struct ConfigInfo {
    pub hash: String,
    /// Whether a config file is watched (the embedded config and the demo's embedded copy are
    /// not).
    pub hot_reload: bool,
    pub last_reload_unix_ms: Option<u64>,
    pub last_reload_error: Option<String>,
    pub log_bodies: bool,
}

#[derive(Serialize)]
pub struct Stats {
    pub now_unix_ms: u64,
    /// Length of the window the figures cover (grows to 60 s after the console opens).
    pub window_s: f64,
    pub config: ConfigInfo,
    pub targets: Vec<TargetRow>,
    pub configs: Vec<ConfigRow>,
}

/// What the rows are built from.
pub struct Sources<'a> {
    pub snapshot: &'a Snapshot,
    pub breakers: &'a Breakers,
    pub reload: Option<ReloadStatus>,
    pub window: &'a Window,
    /// The window's attempt durations (percentiles).
    pub latencies: &'a Latencies,
    pub now: Instant,
    pub spark: &'a dyn Fn(&str) -> Vec<SparkPoint>,
}

fn leaves<'t>(t: &'t Target, out: &mut Vec<&'t Target>) {
    match &t.kind {
        TargetKind::Leaf { .. } => out.push(t),
        TargetKind::Group { targets, .. } => targets.iter().for_each(|c| leaves(c, out)),
    }
}

fn provider_of(t: &Target) -> &str {
    match &t.kind {
        TargetKind::Leaf { virtual_key } => &virtual_key.provider.name,
        TargetKind::Group { .. } => "other",
    }
}

impl Sources<'_> {
    fn row(&self, key: &AttemptKey, leaf: Option<&Target>) -> TargetRow {
        let w = self.window;
        let secs = w.span.as_secs_f64();
        let a = w.attempts.get(key).copied().unwrap_or_default();
        let tk = (key.1.clone(), key.2.clone());
        let circuit = match leaf {
            None => Circuit {
                state: "unknown",
                half_open_in_s: None,
            },
            Some(leaf) if !leaf.settings.circuit_breaker.enabled => Circuit {
                state: "disabled",
                half_open_in_s: None,
            },
            Some(leaf) => {
                let (state, left) = self
                    .breakers
                    .peek(&leaf.breaker_key)
                    .map(|b| b.status(&leaf.settings.circuit_breaker))
                    .unwrap_or((CircuitState::Closed, None));
                Circuit {
                    state: match state {
                        CircuitState::Closed => "closed",
                        CircuitState::Open => "open",
                        CircuitState::HalfOpen => "half_open",
                    },
                    half_open_in_s: left.map(|d: Duration| round(d.as_secs_f64(), 1)),
                }
            }
        };
        TargetRow {
            config: key.0.clone(),
            target: key.1.clone(),
            provider: key.2.clone(),
            rps: if secs > 0.0 {
                round(a.calls as f64 / secs, 2)
            } else {
                0.0
            },
            calls: a.calls,
            ok: a.ok,
            errors: a.errors,
            timeouts: a.timeouts,
            skipped: a.skipped,
            latency_ms: Quantiles::of(self.latencies.latency(&tk, self.now)),
            ttft_ms: Quantiles::of(self.latencies.ttft(&tk, self.now)),
            circuit,
        }
    }

    fn targets(&self) -> Vec<TargetRow> {
        let snapshot = self.snapshot;
        let seen: BTreeSet<&AttemptKey> = self.window.seen.iter().collect();
        let mut listed: BTreeSet<AttemptKey> = BTreeSet::new();
        let mut rows = Vec::new();
        let mut named: Vec<&RouteConfig> = snapshot.configs.values().map(|c| &**c).collect();
        named.sort_by(|a, b| a.name.cmp(&b.name));
        let mut direct: Vec<&RouteConfig> = snapshot.direct_routes.values().map(|c| &**c).collect();
        direct.sort_by(|a, b| a.root.label().cmp(b.root.label()));
        for (config, always) in named
            .into_iter()
            .map(|c| (c, true))
            .chain(direct.into_iter().map(|c| (c, false)))
        {
            let mut found = Vec::new();
            leaves(&config.root, &mut found);
            for leaf in found {
                let key = (
                    config.name.clone(),
                    leaf.label().to_string(),
                    provider_of(leaf).to_string(),
                );
                // A virtual key used alone shows once it has been called.
                if (always || seen.contains(&key)) && listed.insert(key.clone()) {
                    rows.push(self.row(&key, Some(leaf)));
                }
            }
        }
        for key in seen {
            if !listed.contains(key) {
                rows.push(self.row(key, None));
            }
        }
        rows
    }

    fn configs(&self) -> Vec<ConfigRow> {
        let w = self.window;
        let secs = w.span.as_secs_f64();
        let mut names: BTreeSet<&str> = self.snapshot.configs.keys().map(String::as_str).collect();
        names.extend(
            w.configs
                .iter()
                .filter(|(_, c)| c.requests > 0)
                .map(|(k, _)| k.as_str()),
        );
        names
            .into_iter()
            .map(|name| {
                let c = w.configs.get(name).copied().unwrap_or_default();
                let rate =
                    |n: u64| (c.requests > 0).then(|| round(n as f64 / c.requests as f64, 3));
                ConfigRow {
                    name: name.to_string(),
                    requests: c.requests,
                    rps: if secs > 0.0 {
                        round(c.requests as f64 / secs, 2)
                    } else {
                        0.0
                    },
                    fallback_ok: c.fallback_ok,
                    errors: c.errors,
                    fallback_rate: rate(c.fallbacks),
                    retry_rate: rate(c.retries),
                    spark: (self.spark)(name)
                        .into_iter()
                        .map(SparkView::from)
                        .collect(),
                }
            })
            .collect()
    }

    pub fn stats(&self) -> Stats {
        let snapshot = self.snapshot;
        Stats {
            now_unix_ms: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_millis() as u64)
                .unwrap_or(0),
            window_s: round(self.window.span.as_secs_f64(), 1),
            config: ConfigInfo {
                hash: snapshot.hash.clone(),
                hot_reload: self.reload.is_some(),
                last_reload_unix_ms: self.reload.as_ref().and_then(|r| r.last_reload_unix_ms),
                last_reload_error: self.reload.as_ref().and_then(|r| r.last_error.clone()),
                log_bodies: snapshot.telemetry.log_bodies,
            },
            targets: self.targets(),
            configs: self.configs(),
        }
    }
}
