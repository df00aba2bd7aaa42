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
    /// The target the last failed attempt ran on, for the headers of a request every target
    /// failed.
    failed_on: Mutex<Option<Tried>>,
}

/// A target an attempt ran on, as the response headers name it.
#[derive(Debug, Clone)]
pub struct Tried {
    /// Its option-index path (`config.targets[1]`).
    pub path: String,
    /// Its provider kind (`openai`, …).
    pub provider: &'static str,
    /// Its metric label (name or path).
    pub label: String,
}

impl Journal {
    pub fn new(trace: TraceContext) -> Journal {
        Journal {
            trace,
            start: SystemTime::now(),
            attempts: Mutex::new(Vec::new()),
            failed_on: Mutex::new(None),
        }
    }

    /// Notes the target an attempt failed on (never held across an await).
    pub fn failed_on(&self, tried: Tried) {
        if let Ok(mut last) = self.failed_on.lock() {
            *last = Some(tried);
        }
    }

    /// The target the last failed attempt ran on.
    pub fn last_failed(&self) -> Option<Tried> {
        self.failed_on.lock().ok().and_then(|last| last.clone())
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
