//! Errors the gateway itself answers with.
