//! Writing a cached response to the client: a JSON body with its length, or an SSE stream
//! (`text/event-stream`, chunked) holding exactly the events the first client received — in its
//! own wire format, since entries are keyed by route and stream flag.

use bytes::Bytes;
use pingora::http::ResponseHeader;
use pingora::prelude::Session;

use super::store::Entry;

/// The content type of a cached stream: a Gemini client's JSON-array stream (the only stream
/// body starting with `[`; SSE starts with a field or a comment) is `application/json`, every
/// other `text/event-stream`. Array streams are keyed apart from SSE ones
/// ([`crate::providers::gemini::client::cache_path`]).
pub fn stream_content_type(body: &[u8]) -> &'static str {
    if body.first() == Some(&b'[') {
        "application/json"
    } else {
        "text/event-stream"
    }
}

/// Writes `entry` with `extra` headers; `Err` when the client is gone.
pub async fn write(
    session: &mut Session,
    entry: &Entry,
    extra: &[(&'static str, String)],
) -> pingora::Result<()> {
    let mut head = ResponseHeader::build(entry.status, Some(4 + extra.len()))?;
    if entry.stream {
        head.insert_header(http::header::CONTENT_TYPE, stream_content_type(&entry.body))?;
        head.insert_header(http::header::CACHE_CONTROL, "no-cache")?;
        // Chunked framing keeps the connection reusable (the HTTP/2 server strips it itself).
        head.insert_header(http::header::TRANSFER_ENCODING, "chunked")?;
    } else {
        head.insert_header(http::header::CONTENT_TYPE, "application/json")?;
        head.insert_header(http::header::CONTENT_LENGTH, entry.body.len().to_string())?;
    }
    for (name, value) in extra {
        head.insert_header(*name, value.as_str())?;
    }
    session.write_response_header(Box::new(head), false).await?;
    let body: Bytes = entry.body.clone();
    session.write_response_body(Some(body), true).await
}

#[cfg(test)]
mod tests {
    use super::stream_content_type;

    #[test]
    fn array_streams_replay_as_json() {
        assert_eq!(
            stream_content_type(b"[{\"candidates\":[]}]"),
            "application/json"
        );
        assert_eq!(
            stream_content_type(b"data: {}\r\n\r\n"),
            "text/event-stream"
        );
        assert_eq!(stream_content_type(b""), "text/event-stream");
    }
}
