//! The record of one request as it happens: its trace context and each attempt's
//! [`AttemptRecord`], collected from the router's attempts (which may run concurrently when
//! hedging) and assembled into the [`RequestRecord`] the access log and trace export get.

use std::sync::Mutex;
use std::time::SystemTime;

use crate::telemetry::{AttemptRecord, TraceContext};

pub struct Journal {
    pub trace: TraceContext,
    pub start: SystemTime,
    attempts: Mutex<Vec<AttemptRecord>>,
}

impl Journal {
    pub fn new(trace: TraceContext) -> Journal {
        Journal {
            trace,
            start: SystemTime::now(),
            attempts: Mutex::new(Vec::new()),
        }
    }

    /// Adds a finished attempt (never held across an await).
    pub fn push(&self, attempt: AttemptRecord) {
        if let Ok(mut a) = self.attempts.lock() {
            a.push(attempt);
        }
    }

    /// Every attempt, in the order they started.
    pub fn take_attempts(&self) -> Vec<AttemptRecord> {
        let mut all = self
            .attempts
            .lock()
            .map(|mut a| std::mem::take(&mut *a))
            .unwrap_or_default();
        all.sort_by_key(|a| a.start);
        all
    }
}
