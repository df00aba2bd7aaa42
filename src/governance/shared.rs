//! Limits shared by every replica through Redis (`state: { redis_url, on_state_error }`).
//!
//! - One round trip per admission: `scripts/admit.lua` checks every limit of every governed key
//!   and charges them atomically, on the Redis server's clock. Keys
//!   `switchyard:gov:<virtual key>:{rpm,tpm,conc,usd:d:<YYYYMMDD>,usd:m:<YYYYMM>}` expire on
//!   their own.
//! - Settlement (`scripts/settle.lua`) is sent from a task on the state thread, never awaited by
//!   a request; at most [`MAX_PENDING_SETTLES`] are in flight, beyond that they are dropped and
//!   counted (the reservation then stands as the charge).
//! - Concurrency slots are leases in a sorted set scored by expiry; this process renews its own
//!   every [`LEASE_RENEW`], so a crashed replica's slots free themselves after [`LEASE_TTL`].
//! - The connection is `redis`'s `ConnectionManager` (multiplexed, reconnects by itself).
//!   Every call has a deadline (`state.timeout_ms`); a call that finds its connection dropped
//!   is tried once more on the new one within that deadline (so a Redis restart is not an
//!   error). After a failure the state counts as down for [`DOWN_FOR`] (requests follow
//!   `on_state_error` at once instead of each waiting out a deadline; `allow` admits against
//!   this process's own counters, see `Governance`), then the next request tries again. Failures are counted in
//!   `switchyard_state_errors_total{op}` and logged at most every [`LOG_EVERY`].

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, Mutex, PoisonError};
use std::time::{Duration, Instant};

use redis::aio::ConnectionManager;
use redis::Script;

use super::engine::{AdmitError, Charge, KeyReport, Refusal};
use super::gcra::Standing;
use super::period::Periods;
use crate::config::StateSettings;
use crate::redis_state::{self, RedisThread};
use crate::telemetry::metrics::{GovernanceMetrics, StateOp};
use crate::vocab::LimitKind;

static ADMIT: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("scripts/admit.lua")));
static SETTLE: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("scripts/settle.lua")));
static RENEW: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("scripts/renew.lua")));

/// How long a concurrency lease lives without renewal.
pub const LEASE_TTL: Duration = Duration::from_secs(60);
/// How often this process renews its leases.
pub const LEASE_RENEW: Duration = Duration::from_secs(20);
/// After a failed call, how long requests skip Redis and follow `on_state_error`.
pub const DOWN_FOR: Duration = Duration::from_millis(500);
/// Settlements in flight at most.
pub const MAX_PENDING_SETTLES: usize = 4096;
/// At most one log line per this interval about an unreachable state.
pub const LOG_EVERY: Duration = Duration::from_secs(10);

pub use crate::redis_state::RedisStateError as StateError;

/// The code the Redis script reports (1-based, in [`LimitKind::ALL`] order).
pub(super) fn limit_from_code(code: i64) -> Option<LimitKind> {
    usize::try_from(code - 1)
        .ok()
        .and_then(|i| LimitKind::ALL.get(i).copied())
}

pub struct SharedEngine {
    conn: ConnectionManager,
    /// The state thread's runtime: settlements and lease renewal run there.
    handle: tokio::runtime::Handle,
    timeout: Duration,
    deny: bool,
    metrics: GovernanceMetrics,
    epoch: Instant,
    /// `epoch`-relative microseconds until which the state counts as down.
    down_until: AtomicU64,
    was_down: AtomicBool,
    /// `epoch`-relative microseconds of the last log line about the state (0: none yet).
    last_log: AtomicU64,
    pending_settles: AtomicUsize,
    lease_prefix: String,
    lease_seq: AtomicU64,
    /// Leases held by requests in flight here: member → the lease sets it is in.
    leases: Mutex<HashMap<String, Vec<String>>>,
}

fn key(name: &str, what: &str) -> String {
    format!("switchyard:gov:{name}:{what}")
}

/// The five Redis keys of one virtual key for these periods (see `scripts/admit.lua`).
fn keys_of(name: &str, periods: &Periods) -> [String; 5] {
    [
        key(name, "rpm"),
        key(name, "tpm"),
        key(name, "conc"),
        key(name, &format!("usd:d:{}", periods.day_label())),
        key(name, &format!("usd:m:{}", periods.month_label())),
    ]
}

fn limit_arg(v: Option<u64>) -> i64 {
    v.map_or(-1, |v| i64::try_from(v).unwrap_or(i64::MAX))
}

/// A day key lives to the end of its day and one more; a month key to its end and two more.
fn ttls(periods: &Periods) -> (u64, u64) {
    (
        periods.day_ends_in.as_secs() + 86_400,
        periods.month_ends_in.as_secs() + 2 * 86_400,
    )
}

/// Seven stats per key (see `scripts/admit.lua`) as a report.
fn report_of(charge: &Charge, s: &[i64]) -> KeyReport {
    let l = &charge.key.limits;
    let standing = |limit: Option<u64>, remaining: i64, reset: i64| {
        limit.filter(|_| remaining >= 0).map(|limit| Standing {
            limit,
            remaining: remaining as u64,
            reset_us: reset.max(0) as u64,
        })
    };
    KeyReport {
        requests: standing(l.rpm, s[0], s[1]),
        tokens: standing(l.tpm, s[2], s[3]),
        inflight: s[4].max(0) as u64,
        day_spent_pico: s[5].max(0) as u64,
        month_spent_pico: s[6].max(0) as u64,
    }
}

impl SharedEngine {
    /// Starts the state thread and a lazily connecting client: nothing here waits for Redis.
    pub fn start(
        settings: &StateSettings,
        metrics: GovernanceMetrics,
    ) -> Result<Arc<SharedEngine>, StateError> {
        let RedisThread { conn, handle } = redis_state::start(settings, "state")?;
        let timeout = settings.timeout;
        let engine = Arc::new(SharedEngine {
            conn,
            handle,
            timeout,
            deny: !settings.on_state_error_allow,
            metrics,
            epoch: Instant::now(),
            down_until: AtomicU64::new(0),
            was_down: AtomicBool::new(false),
            last_log: AtomicU64::new(0),
            pending_settles: AtomicUsize::new(0),
            lease_prefix: format!("{:016x}", rand::random::<u64>()),
            lease_seq: AtomicU64::new(0),
            leases: Mutex::new(HashMap::new()),
        });
        // The state thread renews this engine's concurrency leases for as long as it lives.
        let weak = Arc::downgrade(&engine);
        engine.handle.spawn(async move {
            let mut tick = tokio::time::interval(LEASE_RENEW);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(engine) = weak.upgrade() else { return };
                engine.renew().await;
            }
        });
        Ok(engine)
    }

    fn now_us(&self) -> u64 {
        self.epoch.elapsed().as_micros() as u64 + 1
    }

    /// One script call with the deadline; failures mark the state down.
    async fn call(&self, op: StateOp, invocation: redis::ScriptInvocation<'_>) -> Option<Vec<i64>> {
        let mut conn = self.conn.clone();
        let attempt = async {
            match invocation.invoke_async(&mut conn).await {
                // The connection was dropped (Redis restarted, a proxy cut it): the manager is
                // already reconnecting, and one more try waits for the new connection. Without
                // it the first call after every Redis restart failed and opened the
                // `on_state_error` window although Redis was back.
                Err(e)
                    if e.is_io_error()
                        || e.is_connection_dropped()
                        || e.is_unrecoverable_error() =>
                {
                    invocation.invoke_async(&mut conn).await
                }
                other => other,
            }
        };
        let result = tokio::time::timeout(self.timeout, attempt).await;
        let error = match result {
            Ok(Ok(v)) => {
                if self.was_down.swap(false, Ordering::Relaxed) {
                    tracing::info!("governance state (Redis) reachable again");
                }
                return Some(v);
            }
            Ok(Err(e)) => e.to_string(),
            Err(_) => format!("no answer within {} ms", self.timeout.as_millis()),
        };
        self.failed(op, &error);
        None
    }

    fn failed(&self, op: StateOp, error: &str) {
        let now = self.now_us();
        self.down_until
            .store(now + DOWN_FOR.as_micros() as u64, Ordering::Relaxed);
        self.was_down.store(true, Ordering::Relaxed);
        self.metrics.state_errors_total.with(&op).inc();
        let last = self.last_log.load(Ordering::Relaxed);
        if (last == 0 || now.saturating_sub(last) >= LOG_EVERY.as_micros() as u64)
            && self
                .last_log
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::warn!(
                op = op.as_str(),
                error,
                on_state_error = if self.deny { "deny" } else { "allow" },
                "governance state (Redis) unreachable; requests follow on_state_error until it answers"
            );
        }
    }

    fn is_down(&self) -> bool {
        self.now_us() < self.down_until.load(Ordering::Relaxed)
    }

    /// Admits against Redis: `Ok(lease)` when admitted (the lease to free at settlement).
    pub async fn admit(
        &self,
        charges: &[Charge],
        periods: &Periods,
        reports: &mut Vec<KeyReport>,
    ) -> Result<Option<String>, AdmitError> {
        if self.is_down() {
            self.metrics.state_errors_total.with(&StateOp::Admit).inc();
            return Err(AdmitError::StateDown { deny: self.deny });
        }
        let needs_lease = charges.iter().any(|c| c.key.limits.concurrent.is_some());
        let lease = needs_lease.then(|| {
            format!(
                "{}:{}",
                self.lease_prefix,
                self.lease_seq.fetch_add(1, Ordering::Relaxed)
            )
        });
        let (day_ttl, month_ttl) = ttls(periods);
        let mut inv = ADMIT.prepare_invoke();
        inv.arg(charges.len())
            .arg(lease.as_deref().unwrap_or(""))
            .arg(LEASE_TTL.as_micros() as u64)
            .arg(day_ttl)
            .arg(month_ttl)
            .arg(periods.day_ends_in.as_micros() as u64)
            .arg(periods.month_ends_in.as_micros() as u64);
        for c in charges {
            for k in keys_of(&c.key.name, periods) {
                inv.key(k);
            }
            let l = &c.key.limits;
            inv.arg(limit_arg(l.rpm))
                .arg(limit_arg(l.tpm))
                .arg(c.tokens)
                .arg(limit_arg(l.concurrent))
                .arg(limit_arg(c.day_cap))
                .arg(limit_arg(c.month_cap))
                .arg(c.pico);
        }
        let Some(out) = self.call(StateOp::Admit, inv).await else {
            return Err(AdmitError::StateDown { deny: self.deny });
        };
        match out.first() {
            Some(0) if out.len() == 1 + 7 * charges.len() => {
                for (c, s) in charges.iter().zip(out[1..].chunks(7)) {
                    reports.push(report_of(c, s));
                }
                if let Some(lease) = &lease {
                    let sets = charges
                        .iter()
                        .filter(|c| c.key.limits.concurrent.is_some())
                        .map(|c| key(&c.key.name, "conc"))
                        .collect();
                    self.leases
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .insert(lease.clone(), sets);
                }
                Ok(lease)
            }
            Some(1) if out.len() == 11 => {
                let index = usize::try_from(out[1]).unwrap_or(0).min(charges.len() - 1);
                let Some(limit) = limit_from_code(out[2]) else {
                    self.failed(
                        StateOp::Admit,
                        "unexpected limit code from the admit script",
                    );
                    return Err(AdmitError::StateDown { deny: self.deny });
                };
                let refusal = Refusal {
                    key_index: index,
                    limit,
                    retry_after_us: out[3].max(1) as u64,
                };
                Err(AdmitError::Refused(
                    refusal,
                    Some(report_of(&charges[index], &out[4..])),
                ))
            }
            _ => {
                self.failed(StateOp::Admit, "unexpected answer from the admit script");
                Err(AdmitError::StateDown { deny: self.deny })
            }
        }
    }

    /// Sends the settlement from the state thread; never waits.
    pub fn settle(
        self: &Arc<Self>,
        charges: Vec<Charge>,
        deltas: Vec<(i64, i64)>,
        periods: Periods,
        lease: Option<String>,
    ) {
        if let Some(lease) = &lease {
            self.leases
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(lease);
        }
        let nothing_to_do = lease.is_none() && deltas.iter().all(|&(t, p)| t == 0 && p == 0);
        if nothing_to_do {
            return;
        }
        if self.pending_settles.fetch_add(1, Ordering::Relaxed) >= MAX_PENDING_SETTLES {
            self.pending_settles.fetch_sub(1, Ordering::Relaxed);
            self.metrics
                .state_errors_total
                .with(&StateOp::SettleDropped)
                .inc();
            return;
        }
        let engine = self.clone();
        self.handle.spawn(async move {
            engine
                .settle_now(&charges, &deltas, &periods, lease.as_deref())
                .await;
            engine.pending_settles.fetch_sub(1, Ordering::Relaxed);
        });
    }

    async fn settle_now(
        &self,
        charges: &[Charge],
        deltas: &[(i64, i64)],
        periods: &Periods,
        lease: Option<&str>,
    ) {
        let (day_ttl, month_ttl) = ttls(periods);
        let mut inv = SETTLE.prepare_invoke();
        inv.arg(charges.len())
            .arg(lease.unwrap_or(""))
            .arg(day_ttl)
            .arg(month_ttl);
        for (c, &(tokens, pico)) in charges.iter().zip(deltas) {
            for k in keys_of(&c.key.name, periods) {
                inv.key(k);
            }
            let l = &c.key.limits;
            let capped = c.day_cap.is_some() || c.month_cap.is_some();
            inv.arg(limit_arg(l.rpm))
                .arg(limit_arg(l.tpm))
                .arg(limit_arg(l.concurrent))
                .arg(tokens)
                .arg(if capped { pico } else { 0 });
        }
        if let Some(out) = self.call(StateOp::Settle, inv).await {
            if out.len() == 7 * charges.len() {
                for (c, s) in charges.iter().zip(out.chunks(7)) {
                    let mut r = report_of(c, s);
                    // Settlement does not read the request bucket.
                    r.requests = None;
                    self.metrics.report(&c.key, &r);
                }
            }
        }
    }

    /// Renews the leases of requests still in flight here.
    async fn renew(&self) {
        let held: Vec<(String, String)> = self
            .leases
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .flat_map(|(member, sets)| sets.iter().map(|s| (s.clone(), member.clone())))
            .collect();
        for batch in held.chunks(256) {
            let mut inv = RENEW.prepare_invoke();
            inv.arg(LEASE_TTL.as_micros() as u64);
            for (set, member) in batch {
                inv.key(set).arg(member);
            }
            let mut conn = self.conn.clone();
            let result: Result<Result<i64, _>, _> =
                tokio::time::timeout(self.timeout, inv.invoke_async(&mut conn)).await;
            if !matches!(result, Ok(Ok(_))) {
                self.failed(StateOp::Renew, "lease renewal failed");
                return;
            }
        }
    }
}
