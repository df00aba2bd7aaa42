//! Header names the gateway reads or writes that more than one module knows. Each Switchyard
//! header has a Portkey-compatible twin (`x-portkey-…`); the gateway reads either and writes both.

/// The virtual key a request is made with (either spelling; Switchyard's first).
pub const VIRTUAL_KEY: [&str; 2] = ["x-switchyard-virtual-key", "x-portkey-virtual-key"];
/// The config a request names (either spelling; Switchyard's first).
pub const CONFIG: [&str; 2] = ["x-switchyard-config", "x-portkey-config"];
/// The trace id a client sends or the gateway answers with (Switchyard's first).
pub const TRACE_ID: [&str; 2] = ["x-switchyard-trace-id", "x-portkey-trace-id"];
/// Set on an answer whose guardrails failed.
pub const GUARDRAILS_FAILED: &str = "x-switchyard-guardrails-failed";
/// Prefixes of the gateway's own request headers: never forwarded upstream.
pub const OWN_PREFIXES: [&str; 2] = ["x-switchyard-", "x-portkey-"];
