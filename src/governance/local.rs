//! In-process limits (no `state:` configured): one small record of counters per virtual key,
//! behind a short `std` mutex that is never held across an `.await`. Several keys are locked in
//! name order, checked together and then charged together, so a request is admitted against all
//! of them or none.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::Instant;

use super::engine::{AdmitError, Charge, KeyReport, Refusal};
use super::gcra::Gcra;
use super::period::Periods;
use crate::vocab::LimitKind;

/// Counters of one virtual key. They outlive reloads (keyed by the key's name); the limits are
/// read from the snapshot of each request.
#[derive(Debug, Default)]
struct Counters {
    rpm_tat: i64,
    tpm_tat: i64,
    inflight: u64,
    /// (day, pico-USD spent or reserved in it).
    day: (i64, u64),
    /// (month, pico-USD spent or reserved in it).
    month: (i64, u64),
}

impl Counters {
    /// Starts a new day or month at zero when the period rolled over.
    fn roll(&mut self, periods: &Periods) {
        if self.day.0 != periods.day {
            self.day = (periods.day, 0);
        }
        if self.month.0 != periods.month {
            self.month = (periods.month, 0);
        }
    }
}

pub struct LocalEngine {
    keys: RwLock<HashMap<String, Arc<Mutex<Counters>>>>,
    epoch: Instant,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Counters stay consistent under a panic elsewhere (each update is one assignment).
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Default for LocalEngine {
    fn default() -> Self {
        LocalEngine::new()
    }
}

impl LocalEngine {
    pub fn new() -> LocalEngine {
        LocalEngine {
            keys: RwLock::new(HashMap::new()),
            epoch: Instant::now(),
        }
    }

    fn now_us(&self) -> i64 {
        self.epoch.elapsed().as_micros() as i64
    }

    fn counters(&self, name: &str) -> Arc<Mutex<Counters>> {
        if let Some(c) = self
            .keys
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(name)
        {
            return c.clone();
        }
        self.keys
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(name.to_string())
            .or_default()
            .clone()
    }

    /// Forgets keys the config no longer has.
    pub fn retain(&self, keep: impl Fn(&str) -> bool) {
        self.keys
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|k, _| keep(k));
    }

    /// Checks every charge, then applies all of them; `charges` are sorted by key name.
    pub fn admit(
        &self,
        charges: &[Charge],
        periods: &Periods,
        reports: &mut Vec<KeyReport>,
    ) -> Result<(), AdmitError> {
        let now = self.now_us();
        let cells: Vec<_> = charges.iter().map(|c| self.counters(&c.key.name)).collect();
        let mut guards: Vec<_> = cells.iter().map(|c| lock(c)).collect();
        let mut next = Vec::with_capacity(charges.len());
        for (i, (charge, g)) in charges.iter().zip(guards.iter_mut()).enumerate() {
            g.roll(periods);
            match check(charge, g, now, periods) {
                Ok(tats) => next.push(tats),
                Err((limit, retry_after_us)) => {
                    let refusal = Refusal {
                        key_index: i,
                        limit,
                        retry_after_us,
                    };
                    return Err(AdmitError::Refused(refusal, Some(report(charge, g, now))));
                }
            }
        }
        for ((charge, g), (rpm_tat, tpm_tat)) in charges.iter().zip(guards.iter_mut()).zip(next) {
            g.rpm_tat = rpm_tat;
            g.tpm_tat = tpm_tat;
            g.inflight += 1;
            g.day.1 = g.day.1.saturating_add(charge.pico);
            g.month.1 = g.month.1.saturating_add(charge.pico);
            reports.push(report(charge, g, now));
        }
        Ok(())
    }

    /// Gives back the concurrency slot and replaces each reservation by what was used.
    pub fn settle(
        &self,
        charges: &[Charge],
        used: &[(i64, i64)],
        periods: &Periods,
        reports: &mut Vec<KeyReport>,
    ) {
        let now = self.now_us();
        for (charge, &(tokens_delta, pico_delta)) in charges.iter().zip(used) {
            let cell = self.counters(&charge.key.name);
            let mut g = lock(&cell);
            g.inflight = g.inflight.saturating_sub(1);
            if let Some(tpm) = charge.key.limits.tpm {
                g.tpm_tat = Gcra::tokens(tpm).adjust(g.tpm_tat, now, tokens_delta);
            }
            // A correction belongs to the period its reservation was made in; once that period
            // has rolled over its counter is gone and there is nothing left to correct.
            if g.day.0 == periods.day {
                g.day.1 = add_signed(g.day.1, pico_delta);
            }
            if g.month.0 == periods.month {
                g.month.1 = add_signed(g.month.1, pico_delta);
            }
            reports.push(report(charge, &g, now));
        }
    }
}

/// Every limit of one key against its counters: the new TATs, or the limit that refuses and
/// how long until the request would fit (microseconds).
fn check(
    charge: &Charge,
    g: &Counters,
    now: i64,
    periods: &Periods,
) -> Result<(i64, i64), (LimitKind, u64)> {
    let l = &charge.key.limits;
    let rpm_tat = match l.rpm {
        Some(rpm) => Gcra::requests(rpm)
            .take(g.rpm_tat, now, 1)
            .map_err(|wait| (LimitKind::Rpm, wait))?,
        None => g.rpm_tat,
    };
    let tpm_tat = match l.tpm {
        Some(tpm) => Gcra::tokens(tpm)
            .take(g.tpm_tat, now, charge.tokens)
            .map_err(|wait| (LimitKind::Tpm, wait))?,
        None => g.tpm_tat,
    };
    if l.concurrent.is_some_and(|max| g.inflight >= max) {
        return Err((LimitKind::Concurrent, 1_000_000));
    }
    if charge
        .day_cap
        .is_some_and(|cap| !fits(g.day.1, charge.pico, cap))
    {
        return Err((LimitKind::UsdPerDay, periods.day_ends_in.as_micros() as u64));
    }
    if charge
        .month_cap
        .is_some_and(|cap| !fits(g.month.1, charge.pico, cap))
    {
        return Err((
            LimitKind::UsdPerMonth,
            periods.month_ends_in.as_micros() as u64,
        ));
    }
    Ok((rpm_tat, tpm_tat))
}

/// A spend cap admits while something is left and the reservation fits in it.
pub fn fits(spent: u64, reserve: u64, cap: u64) -> bool {
    spent < cap && spent.saturating_add(reserve) <= cap
}

fn add_signed(v: u64, delta: i64) -> u64 {
    if delta >= 0 {
        v.saturating_add(delta as u64)
    } else {
        v.saturating_sub(delta.unsigned_abs())
    }
}

fn report(charge: &Charge, g: &Counters, now: i64) -> KeyReport {
    let l = &charge.key.limits;
    KeyReport {
        requests: l.rpm.map(|r| Gcra::requests(r).standing(g.rpm_tat, now)),
        tokens: l.tpm.map(|t| Gcra::tokens(t).standing(g.tpm_tat, now)),
        inflight: g.inflight,
        day_spent_pico: g.day.1,
        month_spent_pico: g.month.1,
    }
}
