//! Router: turns a request's route into the ordered targets to attempt, and decides after each
//! failed attempt whether the next one runs ([`strategy`]).

pub mod strategy;

pub use strategy::{attempt_order, falls_back_on_status};
