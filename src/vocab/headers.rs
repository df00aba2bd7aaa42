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

/// The placeholder the `portkey-ai` Python SDK sends as `Authorization: Bearer OPENAI_API_KEY`
/// (its vendored OpenAI client needs an API key; the real ones travel in `x-portkey-*` headers).
/// It is a public constant, never a mistyped virtual key nor a provider key: no credential.
pub const PORTKEY_PLACEHOLDER: &str = "OPENAI_API_KEY";

/// The credential a caller presented and the header that carried it: the token of
/// `Authorization: Bearer <token>` (or a bare `Authorization` value), else `x-api-key`,
/// `api-key` or `x-goog-api-key` (the Anthropic, Azure and Gemini SDKs' headers). It may be a
/// virtual key's name, or (passthrough) the provider key to send upstream.
pub fn caller_credential(headers: &http::HeaderMap) -> Option<(&'static str, &str)> {
    let value = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty())
    };
    if let Some(auth) = value("authorization") {
        let token = match auth.get(..7) {
            Some(scheme) if scheme.eq_ignore_ascii_case("bearer ") => &auth[7..],
            _ if auth.eq_ignore_ascii_case("bearer") => "",
            _ => auth,
        };
        let token = token.trim();
        return (!token.is_empty()).then_some(("Authorization", token));
    }
    ["x-api-key", "api-key", "x-goog-api-key"]
        .into_iter()
        .find_map(|carrier| value(carrier).map(|v| (carrier, v)))
}
