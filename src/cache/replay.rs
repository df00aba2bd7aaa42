//! Writing a cached response to the client: a JSON body with its length, or an SSE stream
//! (`text/event-stream`, chunked) holding exactly the events the first client received — in its
//! own wire format, since entries are keyed by route and stream flag.

use bytes::Bytes;
use pingora::http::ResponseHeader;
use pingora::prelude::Session;

use super::store::Entry;

/// Writes `entry` with `extra` headers; `Err` when the client is gone.
pub async fn write(
    session: &mut Session,
    entry: &Entry,
    extra: &[(&'static str, String)],
) -> pingora::Result<()> {
    let mut head = ResponseHeader::build(entry.status, Some(4 + extra.len()))?;
    if entry.stream {
        head.insert_header(http::header::CONTENT_TYPE, "text/event-stream")?;
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
