//! The rate algorithm behind `rpm` and `tpm`: GCRA (the generic cell rate algorithm, the one
//! `governor` implements), a token bucket that holds one minute of the limit and refills
//! continuously. Its whole state is one timestamp, the *theoretical arrival time* (TAT): the
//! instant the bucket will be full again. That makes it cheap to share (one Redis string per
//! key, updated by `scripts/admit.lua` with this same arithmetic) and lets a reload change the
//! limit without resetting what was used: the TAT is kept, only the limit it is read against
//! changes.
//!
//! Times are microseconds on one clock: the process's monotonic clock locally, the Redis
//! server's `TIME` when shared (so replicas with skewed clocks agree).

/// One minute in microseconds.
pub const MINUTE_US: f64 = 60_000_000.0;

/// A rate of `limit` units per minute with a burst of `limit`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Gcra {
    /// Microseconds one unit occupies.
    unit: f64,
    /// How far ahead of now the TAT may be: the bucket's size in time.
    tau: f64,
    limit: u64,
}

/// Where a bucket stands after a take: what the `x-ratelimit-*` headers report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Standing {
    pub limit: u64,
    pub remaining: u64,
    /// Until the bucket is full again.
    pub reset_us: u64,
}

impl Gcra {
    /// Requests per minute. The unit is rounded up to whole microseconds and the bucket sized
    /// at exactly `limit` units, so a burst admits exactly `limit` requests (no float drift).
    pub fn requests(limit: u64) -> Gcra {
        let unit = (MINUTE_US / limit.max(1) as f64).ceil();
        Gcra {
            unit,
            tau: unit * limit as f64,
            limit,
        }
    }

    /// Tokens per minute (units may be fractions of a microsecond).
    pub fn tokens(limit: u64) -> Gcra {
        Gcra {
            unit: MINUTE_US / limit.max(1) as f64,
            tau: if limit == 0 { 0.0 } else { MINUTE_US },
            limit,
        }
    }

    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// Takes `n` units at `now` from a bucket whose TAT is `tat`: the new TAT, or how long
    /// until `n` units would fit (microseconds).
    pub fn take(&self, tat: i64, now: i64, n: u64) -> Result<i64, u64> {
        let base = tat.max(now);
        let new = base + (n as f64 * self.unit).ceil() as i64;
        let ahead = (new - now) as f64;
        if ahead > self.tau {
            // Also when the bucket is in debt from usage charged after the fact.
            Err((ahead - self.tau).ceil().max(1.0) as u64)
        } else {
            Ok(new)
        }
    }

    /// Charges (`delta` > 0) or gives back (`delta` < 0) units after the fact. A charge may put
    /// the bucket in debt (TAT beyond now + tau): later takes wait until it drains.
    pub fn adjust(&self, tat: i64, now: i64, delta: i64) -> i64 {
        let shift = (delta.unsigned_abs() as f64 * self.unit) as i64;
        if delta >= 0 {
            tat.max(now) + shift
        } else {
            (tat - shift).max(now)
        }
    }

    /// The standing of a bucket with this TAT.
    pub fn standing(&self, tat: i64, now: i64) -> Standing {
        let ahead = (tat - now).max(0) as f64;
        let remaining = ((self.tau - ahead) / self.unit).floor().max(0.0) as u64;
        Standing {
            limit: self.limit,
            remaining: remaining.min(self.limit),
            reset_us: ahead as u64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_admits_exactly_the_limit_then_refills_over_a_minute() {
        for limit in [1, 7, 10, 600, 1_000_003] {
            let g = Gcra::requests(limit);
            let (mut tat, now) = (0i64, 1_000_000i64);
            for i in 0..limit {
                tat = g
                    .take(tat, now, 1)
                    .unwrap_or_else(|_| panic!("{limit}: {i}"));
            }
            assert!(g.take(tat, now, 1).is_err(), "{limit}");
            assert_eq!(g.standing(tat, now).remaining, 0);
            // One unit later, exactly one more fits.
            let later = now + g.unit as i64;
            let tat = g.take(tat, later, 1).expect("refilled one");
            assert!(g.take(tat, later, 1).is_err());
        }
    }

    #[test]
    fn tokens_reserve_charge_and_debt() {
        let g = Gcra::tokens(1000);
        let now = 5_000_000;
        let tat = g.take(0, now, 100).unwrap();
        assert_eq!(g.standing(tat, now).remaining, 900);
        // Real usage 700 on a 100 reservation: 600 more.
        let tat = g.adjust(tat, now, 600);
        assert_eq!(g.standing(tat, now).remaining, 300);
        // A charge beyond the bucket is debt: nothing fits until it drains.
        let tat = g.adjust(tat, now, 900);
        assert_eq!(g.standing(tat, now).remaining, 0);
        let wait = g.take(tat, now, 1).unwrap_err();
        assert_eq!(wait, 36_060_000);
        // Giving back never goes below empty-bucket.
        assert_eq!(g.adjust(now - 5, now, -50), now);
        assert_eq!(g.standing(g.adjust(tat, now, -1600), now).remaining, 1000);
    }
}
