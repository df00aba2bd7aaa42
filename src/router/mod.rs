//! Router: runs a config's strategy tree ([`strategy`]) with retries ([`retry`]), circuit
//! breakers ([`breaker`]) and conditional queries ([`condition`]).

pub mod breaker;
pub mod condition;
pub mod retry;
pub mod strategy;

pub use breaker::Breakers;
pub use strategy::{Attempts, Failure, FailureKind, Router, Won};
