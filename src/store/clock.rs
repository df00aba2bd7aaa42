//! Time as the store keeps it: microseconds since the Unix epoch.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Microseconds since the Unix epoch.
pub fn unix_us(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH).map(micros).unwrap_or(0)
}

pub fn now_us() -> i64 {
    unix_us(SystemTime::now())
}

pub fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}
