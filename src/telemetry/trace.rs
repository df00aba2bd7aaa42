//! Trace context for one request: the caller's W3C `traceparent` and Portkey's
//! `x-portkey-trace-id` are honoured, ids are generated when absent, and each upstream attempt
//! gets its own span id to send on in `traceparent`.

use http::HeaderMap;

use super::record::TraceContext;

/// Longest `x-portkey-trace-id` / `x-switchyard-trace-id` taken from a caller.
const MAX_DISPLAY_ID: usize = 256;

/// A random non-zero id.
fn random_bytes<const N: usize>() -> [u8; N] {
    loop {
        let bytes: [u8; N] = rand::random();
        if bytes.iter().any(|b| *b != 0) {
            return bytes;
        }
    }
}

pub fn new_span_id() -> [u8; 8] {
    random_bytes()
}

fn parse_hex<const N: usize>(s: &str) -> Option<[u8; N]> {
    if s.len() != N * 2 {
        return None;
    }
    let mut out = [0u8; N];
    hex::decode_to_slice(s, &mut out).ok()?;
    if out.iter().all(|b| *b == 0) {
        return None;
    }
    Some(out)
}

/// `traceparent: 00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>` (W3C Trace Context).
fn parse_traceparent(value: &str) -> Option<([u8; 16], [u8; 8], bool)> {
    let mut parts = value.trim().split('-');
    let version = parts.next()?;
    if version.len() != 2 || version == "ff" || !version.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let trace_id = parse_hex::<16>(parts.next()?)?;
    let parent = parse_hex::<8>(parts.next()?)?;
    let flags = parts.next()?;
    if flags.len() != 2 {
        return None;
    }
    let flags = u8::from_str_radix(flags, 16).ok()?;
    // Version 00 has exactly four fields; later versions may append more.
    if version == "00" && parts.next().is_some() {
        return None;
    }
    Some((trace_id, parent, flags & 1 == 1))
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The trace context of a request, from its headers (or new).
pub fn from_headers(headers: &HeaderMap) -> TraceContext {
    let caller = header(headers, "traceparent").and_then(parse_traceparent);
    let display = crate::vocab::headers::TRACE_ID
        .iter()
        .find_map(|h| header(headers, h))
        .map(str::trim)
        .filter(|v| {
            !v.is_empty() && v.len() <= MAX_DISPLAY_ID && v.bytes().all(|b| b.is_ascii_graphic())
        });
    let (trace_id, parent_span_id, sampled) = match caller {
        Some((trace, parent, sampled)) => (trace, Some(parent), sampled),
        None => {
            // A 32-hex Portkey trace id is a W3C trace id too: keep the two joined.
            let from_display = display.and_then(parse_hex::<16>);
            (from_display.unwrap_or_else(random_bytes), None, true)
        }
    };
    TraceContext {
        trace_id,
        span_id: new_span_id(),
        parent_span_id,
        sampled,
        display_id: display.map_or_else(|| hex::encode(trace_id), str::to_string),
    }
}

/// The `traceparent` to send upstream for an attempt whose span is `span_id`.
pub fn traceparent(trace: &TraceContext, span_id: &[u8; 8]) -> String {
    format!(
        "00-{}-{}-{:02x}",
        hex::encode(trace.trace_id),
        hex::encode(span_id),
        u8::from(trace.sampled)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn a_callers_traceparent_is_continued() {
        let t = from_headers(&headers(&[(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        )]));
        assert_eq!(hex::encode(t.trace_id), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(
            t.parent_span_id.map(hex::encode).as_deref(),
            Some("00f067aa0ba902b7")
        );
        assert!(t.sampled);
        assert_eq!(t.display_id, "4bf92f3577b34da6a3ce929d0e0e4736");
        let attempt = new_span_id();
        let sent = traceparent(&t, &attempt);
        assert_eq!(
            sent,
            format!(
                "00-4bf92f3577b34da6a3ce929d0e0e4736-{}-01",
                hex::encode(attempt)
            )
        );
    }

    #[test]
    fn invalid_traceparents_start_a_new_trace() {
        for bad in [
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",
            "garbage",
        ] {
            let t = from_headers(&headers(&[("traceparent", bad)]));
            assert!(t.parent_span_id.is_none(), "{bad}");
            assert_ne!(hex::encode(t.trace_id), "4bf92f3577b34da6a3ce929d0e0e4736");
            assert_eq!(t.display_id, hex::encode(t.trace_id));
        }
    }

    #[test]
    fn a_portkey_trace_id_is_shown_and_joins_a_hex_trace() {
        let t = from_headers(&headers(&[("x-portkey-trace-id", "checkout-42")]));
        assert_eq!(t.display_id, "checkout-42");
        assert!(t.parent_span_id.is_none());
        let t = from_headers(&headers(&[(
            "x-portkey-trace-id",
            "4bf92f3577b34da6a3ce929d0e0e4736",
        )]));
        assert_eq!(hex::encode(t.trace_id), "4bf92f3577b34da6a3ce929d0e0e4736");
        let long = "x".repeat(300);
        let t = from_headers(&headers(&[("x-portkey-trace-id", &long)]));
        assert_eq!(t.display_id, hex::encode(t.trace_id));
    }

    #[test]
    fn unsampled_callers_stay_unsampled() {
        let t = from_headers(&headers(&[(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00",
        )]));
        assert!(!t.sampled);
        assert!(traceparent(&t, &[1; 8]).ends_with("-00"));
    }
}
