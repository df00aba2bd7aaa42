//! What a state engine (local or shared) is asked and answers: a request's charge against one
//! key, where the key stands, and why it refused.

use std::sync::Arc;

use super::gcra::Standing;
use crate::config::VirtualKey;
use crate::vocab::LimitKind;

/// What one request reserves against one virtual key.
#[derive(Debug, Clone)]
pub struct Charge {
    pub key: Arc<VirtualKey>,
    /// Tokens reserved (the estimate, at most the key's `tpm`).
    pub tokens: u64,
    /// Pico-USD reserved (the estimate's price; 0 when the model has no price).
    pub pico: u64,
    pub day_cap: Option<u64>,
    pub month_cap: Option<u64>,
}

/// Where one key stands after an admission or a settlement (for headers and gauges).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KeyReport {
    pub requests: Option<Standing>,
    pub tokens: Option<Standing>,
    pub inflight: u64,
    pub day_spent_pico: u64,
    pub month_spent_pico: u64,
}

/// A limit that refused a request: which charge, which limit, how long until it would fit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    pub key_index: usize,
    pub limit: LimitKind,
    pub retry_after_us: u64,
}

/// Why an engine did not admit.
#[derive(Debug)]
pub enum AdmitError {
    /// A limit refused; the refused key's standing when the engine knows it.
    Refused(Refusal, Option<KeyReport>),
    /// The shared state could not be asked; `deny` is `on_state_error: deny`.
    StateDown { deny: bool },
}

impl From<Refusal> for AdmitError {
    fn from(r: Refusal) -> Self {
        AdmitError::Refused(r, None)
    }
}
