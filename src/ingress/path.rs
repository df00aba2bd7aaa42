//! The request path, made canonical before anything matches on it, and the table of the
//! routes the gateway serves.
//!
//! Policy (model allowlists, guardrails, token estimates, budgets) is decided by the route a
//! request takes, so every spelling of a route must land on the same route and be forwarded
//! in that one spelling: otherwise `/v1/chat/completion%73` or `/v1//chat/completions` is
//! matched as "some other route" and forwarded as written, past the policy. So:
//!
//! * **Rewritten** (the canonical form is matched and forwarded): percent-escapes of
//!   unreserved characters (`ALPHA / DIGIT / - . _ ~`, RFC 3986 §2.3) are decoded; dot-segments
//!   are removed (RFC 3986 §5.2.4); empty segments (`//`) are collapsed; a trailing `/` is
//!   dropped; the hex digits of a kept escape are upper-cased.
//! * **Kept escaped**: an escape of `: @ ! $ & ' ( ) * + , ; =`. These are legal inside a
//!   segment, cannot split or climb a path, and decoding them may change meaning (RFC 3986 §2.2);
//!   a model id such as `ft%3Agpt-4o` stays one segment.
//! * **Rejected (400)**: an escape of any other byte (`%2F`, `%5C`, `%00`, `%20`, `%25`,
//!   non-ASCII…), an invalid escape (`%`, `%G1`), a literal byte outside RFC 3986 `pchar`
//!   (backslash, space, control, non-ASCII…), a path that climbs above the root
//!   (`/../v1/…`), a path longer than [`MAX_PATH_BYTES`] or a query longer than
//!   [`MAX_QUERY_BYTES`]. The query string is otherwise kept as sent.
//!
//! After that, [`route_of`] is the one list of what is forwarded: anything else is a 404.

use std::borrow::Cow;

use http::Method;

pub use crate::vocab::error::{PathError, MAX_PATH_BYTES, MAX_QUERY_BYTES};
/// Longest client value (method, path) echoed into an error body, in characters.
pub const MAX_ECHO_CHARS: usize = 64;

/// RFC 3986 `unreserved`: an escape of one of these is decoded.
fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// The `pchar` characters other than unreserved: legal literally, kept escaped when escaped.
fn is_segment_delim(b: u8) -> bool {
    matches!(
        b,
        b':' | b'@' | b'!' | b'$' | b'&' | b'\'' | b'(' | b')' | b'*' | b'+' | b',' | b';' | b'='
    )
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Whether `path` is already canonical (the common case: no work, no allocation).
fn is_canonical(path: &str) -> bool {
    let bytes = path.as_bytes();
    if bytes.first() != Some(&b'/') || bytes.len() > MAX_PATH_BYTES {
        return false;
    }
    if path == "/" {
        return true;
    }
    let chars_ok = bytes
        .iter()
        .all(|&b| b == b'/' || is_unreserved(b) || is_segment_delim(b));
    chars_ok
        && path[1..]
            .split('/')
            .all(|seg| !seg.is_empty() && seg != "." && seg != "..")
}

/// Decodes unreserved escapes, upper-cases kept ones and checks every byte. The result may
/// still hold dot-segments and empty segments.
fn decode(path: &str) -> Result<String, PathError> {
    let bytes = path.as_bytes();
    let mut out = String::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' {
            let (Some(hi), Some(lo)) = (
                bytes.get(i + 1).copied().and_then(hex),
                bytes.get(i + 2).copied().and_then(hex),
            ) else {
                return Err(PathError::InvalidEscape { at: i });
            };
            let decoded = hi << 4 | lo;
            if is_unreserved(decoded) {
                out.push(char::from(decoded));
            } else if is_segment_delim(decoded) {
                out.push('%');
                out.push(char::from(b"0123456789ABCDEF"[usize::from(hi)]));
                out.push(char::from(b"0123456789ABCDEF"[usize::from(lo)]));
            } else {
                return Err(PathError::EscapedByte {
                    byte: decoded,
                    at: i,
                });
            }
            i += 3;
            continue;
        }
        if !(b == b'/' || is_unreserved(b) || is_segment_delim(b)) {
            return Err(PathError::BadCharacter { byte: b, at: i });
        }
        out.push(char::from(b));
        i += 1;
    }
    Ok(out)
}

/// The canonical form of a request path (without its query): borrowed when it already is.
pub fn canonicalize(path: &str) -> Result<Cow<'_, str>, PathError> {
    if is_canonical(path) {
        return Ok(Cow::Borrowed(path));
    }
    if !path.starts_with('/') {
        return Err(PathError::NotAbsolute);
    }
    if path.len() > MAX_PATH_BYTES {
        return Err(PathError::PathTooLong);
    }
    let decoded = decode(path)?;
    // RFC 3986 §5.2.4 on segments: `.` and empty segments vanish, `..` removes the previous
    // one. Climbing above the root is refused rather than clamped: no client of an API
    // gateway sends it by accident.
    let mut segments: Vec<&str> = Vec::with_capacity(8);
    for seg in decoded.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                if segments.pop().is_none() {
                    return Err(PathError::AboveRoot);
                }
            }
            _ => segments.push(seg),
        }
    }
    let mut out = String::with_capacity(decoded.len());
    for seg in &segments {
        out.push('/');
        out.push_str(seg);
    }
    if out.is_empty() {
        out.push('/');
    }
    Ok(Cow::Owned(out))
}

/// The canonical request target of a request: `Ok(None)` when it is already canonical,
/// `Ok(Some(uri))` with the rewritten origin-form target (query as sent), or why it is refused.
pub fn canonical_uri(head: &pingora::http::RequestHeader) -> Result<Option<http::Uri>, PathError> {
    if !head.raw_path_is_utf8() {
        return Err(PathError::NotUtf8);
    }
    let query = head.uri.query();
    if query.is_some_and(|q| q.len() > MAX_QUERY_BYTES) {
        return Err(PathError::QueryTooLong);
    }
    let path = head.uri.path();
    let mut target = match canonicalize(path)? {
        Cow::Borrowed(_) => return Ok(None),
        // A path with a kept escape is not recognised by the fast check but may be canonical.
        Cow::Owned(p) if p == path => return Ok(None),
        Cow::Owned(p) => p,
    };
    if let Some(q) = query {
        target.push('?');
        target.push_str(q);
    }
    // Only characters the `Uri` parser accepted (or upper-cased escapes) are left.
    http::Uri::try_from(target)
        .map(Some)
        .map_err(|_| PathError::Unparseable)
}

/// What a route's body is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteBody {
    /// A JSON object, whose `model` the allowlist, guardrails and limits see.
    Json,
    /// Nothing to inspect (a `GET`).
    None,
}

/// One route the gateway serves.
#[derive(Debug)]
pub struct Route {
    pub method: Method,
    /// The canonical path; a `*` segment matches any one segment (an id), a `*:suffix` segment
    /// any one segment ending in `:suffix` after a non-empty id (Gemini's `{model}:method`).
    pub pattern: &'static str,
    pub body: RouteBody,
    /// `gen_ai.operation.name` (ours for routes GenAI has no name for).
    pub operation: &'static str,
}

const fn route(
    method: Method,
    pattern: &'static str,
    body: RouteBody,
    operation: &'static str,
) -> Route {
    Route {
        method,
        pattern,
        body,
        operation,
    }
}

/// Every route forwarded (or answered: `/v1/feedback`, the analytics API `/v1/analytics/*`). Deliberately left out: files,
/// batches and fine-tuning (they act on the whole provider account behind the real key, and
/// a batch's models are inside an uploaded file no allowlist sees), multipart audio and image
/// edits (their `model` is a form field the policy does not parse), stored responses by id.
/// Gemini's routes name their model in the path (`ClientRequest` reads it there); Azure
/// OpenAI's (`/openai/deployments/{deployment}/…`, `/openai/v1/…`) are rewritten to these
/// before they are matched ([`azure_rewrite`]).
pub static ROUTES: [Route; 22] = [
    route(
        Method::POST,
        "/v1/chat/completions",
        RouteBody::Json,
        "chat",
    ),
    route(Method::POST, "/v1/messages", RouteBody::Json, "chat"),
    route(
        Method::POST,
        "/v1/messages/count_tokens",
        RouteBody::Json,
        "other",
    ),
    route(
        Method::POST,
        "/v1/completions",
        RouteBody::Json,
        "text_completion",
    ),
    route(
        Method::POST,
        "/v1/embeddings",
        RouteBody::Json,
        "embeddings",
    ),
    route(
        Method::POST,
        "/v1/responses",
        RouteBody::Json,
        "generate_content",
    ),
    route(Method::POST, "/v1/moderations", RouteBody::Json, "other"),
    route(Method::GET, "/v1/models", RouteBody::None, "other"),
    route(Method::GET, "/v1/models/*", RouteBody::None, "other"),
    route(Method::POST, "/v1/feedback", RouteBody::Json, "feedback"),
    route(Method::PUT, "/v1/feedback/*", RouteBody::Json, "feedback"),
    route(
        Method::GET,
        "/v1/analytics/requests",
        RouteBody::None,
        "analytics",
    ),
    route(
        Method::GET,
        "/v1/analytics/requests/*",
        RouteBody::None,
        "analytics",
    ),
    route(
        Method::GET,
        "/v1/analytics/summary",
        RouteBody::None,
        "analytics",
    ),
    route(
        Method::POST,
        "/v1beta/models/*:generateContent",
        RouteBody::Json,
        "generate_content",
    ),
    route(
        Method::POST,
        "/v1beta/models/*:streamGenerateContent",
        RouteBody::Json,
        "generate_content",
    ),
    route(
        Method::POST,
        "/v1beta/models/*:countTokens",
        RouteBody::Json,
        "other",
    ),
    route(
        Method::POST,
        "/v1beta/models/*:embedContent",
        RouteBody::Json,
        "embeddings",
    ),
    route(
        Method::POST,
        "/v1/models/*:generateContent",
        RouteBody::Json,
        "generate_content",
    ),
    route(
        Method::POST,
        "/v1/models/*:streamGenerateContent",
        RouteBody::Json,
        "generate_content",
    ),
    route(
        Method::POST,
        "/v1/models/*:countTokens",
        RouteBody::Json,
        "other",
    ),
    route(
        Method::POST,
        "/v1/models/*:embedContent",
        RouteBody::Json,
        "embeddings",
    ),
];

/// An Azure OpenAI client path, as the `AzureOpenAI` SDK writes it, rewritten to the route the
/// gateway serves: `(new path and query, deployment)`. `/openai/deployments/{d}/chat/completions`
/// (also `completions`, `embeddings`, `responses`) and `/openai/v1/{rest}`; `/openai/responses`.
/// The `api-version` query parameter is the client's API version, not the provider's: dropped
/// (the provider's own `api_version` is used upstream). `None`: not an Azure path.
pub fn azure_rewrite(path: &str, query: Option<&str>) -> Option<(String, Option<String>)> {
    let rest = path.strip_prefix("/openai/")?;
    let (route, deployment) = if let Some(rest) = rest.strip_prefix("deployments/") {
        let (deployment, op) = rest.split_once('/')?;
        if deployment.is_empty()
            || !matches!(
                op,
                "chat/completions" | "completions" | "embeddings" | "responses"
            )
        {
            return None;
        }
        (format!("/v1/{op}"), Some(deployment.to_string()))
    } else if let Some(v1) = rest.strip_prefix("v1/") {
        (format!("/v1/{v1}"), None)
    } else if rest == "responses" {
        ("/v1/responses".to_string(), None)
    } else {
        return None;
    };
    let kept: Vec<&str> = query
        .into_iter()
        .flat_map(|q| q.split('&'))
        .filter(|pair| !pair.is_empty() && !pair.starts_with("api-version="))
        .collect();
    let target = match kept.is_empty() {
        true => route,
        false => format!("{route}?{}", kept.join("&")),
    };
    Some((target, deployment))
}

fn matches(pattern: &str, path: &str) -> bool {
    // Bytes, not `str::split`: several routes are tried per request, and a char searcher per
    // segment cost more than the rest of the routing.
    if pattern == path {
        return true;
    }
    let mut want = pattern.as_bytes().split(|b| *b == b'/');
    let mut have = path.as_bytes().split(|b| *b == b'/');
    loop {
        match (want.next(), have.next()) {
            (None, None) => return true,
            (Some(b"*"), Some(seg)) if !seg.is_empty() => {}
            (Some(w), Some(h)) if w.first() == Some(&b'*') && w.len() > 1 => {
                let suffix = &w[1..];
                if !(h.len() > suffix.len() && h.ends_with(suffix)) {
                    return false;
                }
            }
            (Some(w), Some(h)) if w == h => {}
            _ => return false,
        }
    }
}

/// The route a canonical path and method take; `None`: not served (404).
pub fn route_of(method: &Method, path: &str) -> Option<&'static Route> {
    ROUTES
        .iter()
        .find(|r| r.method == *method && matches(r.pattern, path))
}

/// Whether the request's body must be a JSON object whose `model` policy sees.
pub fn is_json_route(method: &Method, path: &str) -> bool {
    route_of(method, path).is_some_and(|r| r.body == RouteBody::Json)
}

/// The GenAI operation name of a canonical path, whatever the method.
pub fn operation_of(path: &str) -> &'static str {
    ROUTES
        .iter()
        .find(|r| matches(r.pattern, path))
        .map_or("other", |r| r.operation)
}

/// A client value cut to [`MAX_ECHO_CHARS`] characters (with `…`) for an error message.
pub fn bounded(value: &str) -> String {
    match value.char_indices().nth(MAX_ECHO_CHARS) {
        None => value.to_string(),
        Some((end, _)) => format!("{}…", &value[..end]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gemini_routes_match_model_and_method() {
        let post = Method::POST;
        for p in [
            "/v1beta/models/gemini-2.0-flash:generateContent",
            "/v1beta/models/gemini-2.0-flash:streamGenerateContent",
            "/v1/models/gemini-pro:countTokens",
            "/v1beta/models/text-embedding-004:embedContent",
        ] {
            assert!(route_of(&post, p).is_some(), "{p}");
        }
        for p in [
            "/v1beta/models/:generateContent",
            "/v1beta/models/g:generateContentX",
            "/v1beta/models/g:deleteEverything",
            "/v1beta/models/a/b:generateContent",
            "/v1beta/models/g%3AgenerateContent",
            "/v2/models/g:generateContent",
        ] {
            assert!(route_of(&post, p).is_none(), "{p}");
        }
        assert_eq!(
            operation_of("/v1beta/models/g:streamGenerateContent"),
            "generate_content"
        );
    }

    #[test]
    fn azure_paths_are_rewritten_and_lose_api_version() {
        let r = |p: &str, q: Option<&str>| azure_rewrite(p, q);
        assert_eq!(
            r(
                "/openai/deployments/gpt4o-prod/chat/completions",
                Some("api-version=2024-10-21")
            ),
            Some(("/v1/chat/completions".into(), Some("gpt4o-prod".into())))
        );
        assert_eq!(
            r(
                "/openai/deployments/emb/embeddings",
                Some("a=1&api-version=x")
            ),
            Some(("/v1/embeddings?a=1".into(), Some("emb".into())))
        );
        assert_eq!(
            r("/openai/v1/chat/completions", None),
            Some(("/v1/chat/completions".into(), None))
        );
        assert_eq!(r("/openai/deployments/x/files", None), None);
        assert_eq!(r("/openai/deployments//chat/completions", None), None);
        assert_eq!(r("/v1/chat/completions", None), None);
    }

    fn canon(p: &str) -> Result<String, PathError> {
        canonicalize(p).map(Cow::into_owned)
    }

    #[test]
    fn canonical_paths_are_borrowed() {
        for p in ["/", "/v1/chat/completions", "/v1/models/ft:gpt-4o:org::x1"] {
            assert!(matches!(canonicalize(p), Ok(Cow::Borrowed(_))), "{p}");
        }
    }

    #[test]
    fn spellings_of_a_route_are_rewritten_to_it() {
        for p in [
            "/v1/chat/completions/",
            "/v1//chat/completions",
            "//v1/chat/completions",
            "/v1/./chat/completions",
            "/v1/chat/completion%73",
            "/v1/chat/completion%73/",
            "/%76%31/chat/completions",
            "/v1/x/../chat/completions",
            "/v1/x/%2e%2e/chat/completions",
            "/v1/x/.%2E/chat/completions",
            "/v1/%2e/chat/completions",
            "/v1/chat/./completions/.",
        ] {
            assert_eq!(canon(p).as_deref(), Ok("/v1/chat/completions"), "{p}");
        }
        assert_eq!(canon("/v1/models/%6D").as_deref(), Ok("/v1/models/m"));
        assert_eq!(canon("/v1/models/%6d").as_deref(), Ok("/v1/models/m"));
        assert_eq!(canon("/v1/..").as_deref(), Ok("/"));
        assert_eq!(
            canon("/v1/../_mock/requests").as_deref(),
            Ok("/_mock/requests")
        );
    }

    #[test]
    fn kept_escapes_are_upper_cased() {
        assert_eq!(
            canon("/v1/models/ft%3agpt").as_deref(),
            Ok("/v1/models/ft%3Agpt")
        );
    }

    #[test]
    fn dangerous_forms_are_refused() {
        for (p, want) in [
            (
                "/v1/chat%2Fcompletions",
                PathError::EscapedByte { byte: 0x2F, at: 8 },
            ),
            (
                "/v1/chat%2fcompletions",
                PathError::EscapedByte { byte: 0x2F, at: 8 },
            ),
            (
                "/v1/chat%5Ccompletions",
                PathError::EscapedByte { byte: 0x5C, at: 8 },
            ),
            ("/v1/chat%00", PathError::EscapedByte { byte: 0, at: 8 }),
            ("/v1/%C3%A9", PathError::EscapedByte { byte: 0xC3, at: 4 }),
            ("/v1/%252e", PathError::EscapedByte { byte: b'%', at: 4 }),
            (
                "/v1/chat\\completions",
                PathError::BadCharacter { byte: b'\\', at: 8 },
            ),
            ("/v1/%", PathError::InvalidEscape { at: 4 }),
            ("/v1/%4", PathError::InvalidEscape { at: 4 }),
            ("/v1/%G1", PathError::InvalidEscape { at: 4 }),
            ("/../v1/chat/completions", PathError::AboveRoot),
            ("/v1/../../x", PathError::AboveRoot),
            ("/%2e%2e/v1", PathError::AboveRoot),
            ("v1/chat", PathError::NotAbsolute),
            ("*", PathError::NotAbsolute),
        ] {
            assert_eq!(canon(p), Err(want), "{p}");
        }
        let long = format!("/v1/{}", "a/".repeat(MAX_PATH_BYTES));
        assert_eq!(canon(&long), Err(PathError::PathTooLong));
    }

    #[test]
    fn canonical_output_is_a_fixed_point() {
        for p in ["/v1//a/./b/../c/", "/v1/%61%3a", "/a/b/c/../../.."] {
            let once = canon(p).unwrap();
            assert_eq!(canon(&once).as_deref(), Ok(once.as_str()), "{p}");
        }
    }

    #[test]
    fn the_route_table_matches_canonical_paths_only() {
        assert_eq!(
            route_of(&Method::POST, "/v1/chat/completions").map(|r| r.operation),
            Some("chat")
        );
        assert!(route_of(&Method::GET, "/v1/chat/completions").is_none());
        assert!(route_of(&Method::GET, "/v1/models/gpt-4o").is_some());
        assert!(route_of(&Method::GET, "/v1/models/a/b").is_none());
        assert!(route_of(&Method::GET, "/v1/files").is_none());
        assert!(route_of(&Method::POST, "/v1/chat/completions/").is_none());
        assert!(is_json_route(&Method::POST, "/v1/messages/count_tokens"));
        assert!(!is_json_route(&Method::GET, "/v1/models"));
        assert_eq!(operation_of("/v1/embeddings"), "embeddings");
        assert_eq!(operation_of("/v1/nope"), "other");
    }

    #[test]
    fn echoed_values_are_bounded() {
        assert_eq!(bounded("GET"), "GET");
        let long = "x".repeat(10_000);
        let b = bounded(&long);
        assert_eq!(b.chars().count(), MAX_ECHO_CHARS + 1);
        assert!(b.ends_with('…'));
        assert_eq!(bounded(&"é".repeat(70)).chars().count(), MAX_ECHO_CHARS + 1);
    }
}
