//! UTC budget periods: which day and month a spend counts toward, and when each rolls over.
//! Spend caps (`usd_per_day`, `usd_per_month`) reset at 00:00 UTC and on the first of the month.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The budget periods that contain one instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Periods {
    /// Days since 1970-01-01 (UTC).
    pub day: i64,
    /// `year * 12 + (month - 1)`.
    pub month: i64,
    /// Until the next 00:00 UTC.
    pub day_ends_in: Duration,
    /// Until 00:00 UTC on the first of the next month.
    pub month_ends_in: Duration,
}

impl Periods {
    pub fn at(now: SystemTime) -> Periods {
        let secs = now
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        let day = secs.div_euclid(86_400);
        let (y, m, _) = civil_from_days(day);
        let next_month_start = if m == 12 {
            days_from_civil(y + 1, 1, 1)
        } else {
            days_from_civil(y, m + 1, 1)
        };
        Periods {
            day,
            month: y * 12 + i64::from(m) - 1,
            day_ends_in: Duration::from_secs(((day + 1) * 86_400 - secs) as u64),
            month_ends_in: Duration::from_secs((next_month_start * 86_400 - secs) as u64),
        }
    }

    pub fn now() -> Periods {
        Periods::at(SystemTime::now())
    }

    /// `YYYYMMDD`, for Redis key names.
    pub fn day_label(&self) -> String {
        let (y, m, d) = civil_from_days(self.day);
        format!("{y:04}{m:02}{d:02}")
    }

    /// `YYYYMM`, for Redis key names.
    pub fn month_label(&self) -> String {
        let y = self.month.div_euclid(12);
        let m = self.month.rem_euclid(12) + 1;
        format!("{y:04}{m:02}")
    }
}

/// Year, month (1-12) and day (1-31) of a day count since 1970-01-01 (H. Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Days since 1970-01-01 of a civil date.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> Periods {
        Periods::at(UNIX_EPOCH + Duration::from_secs(secs))
    }

    #[test]
    fn calendar_round_trips() {
        for days in [
            -800_000, -1, 0, 59, 365, 10_956, 11_016, 19_782, 20_000, 2_932_896,
        ] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days, "{y}-{m}-{d}");
        }
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
    }

    #[test]
    fn periods_and_rollovers() {
        // 2024-02-29 23:59:30 UTC: leap day, 30 s to the next day and to March.
        let p = at(1_709_251_170);
        assert_eq!(p.day_label(), "20240229");
        assert_eq!(p.month_label(), "202402");
        assert_eq!(p.day_ends_in, Duration::from_secs(30));
        assert_eq!(p.month_ends_in, Duration::from_secs(30));
        // 2025-12-15 12:00:00 UTC: December rolls into the next year.
        let p = at(1_765_800_000);
        assert_eq!(p.day_label(), "20251215");
        assert_eq!(p.month_label(), "202512");
        assert_eq!(p.day_ends_in, Duration::from_secs(12 * 3600));
        assert_eq!(
            p.month_ends_in,
            Duration::from_secs(16 * 86_400 + 12 * 3600)
        );
        assert_ne!(at(1_709_251_170).day, at(1_709_251_230).day);
    }
}
