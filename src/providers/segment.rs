//! One URL path segment as the adapters put a model or deployment name into an upstream path:
//! anything outside the URL-safe set percent-encoded (shared by `openai`, for Azure deployments,
//! and `gemini`).

/// `s` percent-encoded outside `A-Z a-z 0-9 - . _ ~`.
pub(crate) fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
