//! Incremental server-sent-events framing.
