//! Pingora services.
