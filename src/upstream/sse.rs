//! Incremental (push) server-sent-events framing, per the WHATWG event-stream rules: lines end
//! in `\n`, `\r\n` or `\r` (a `\r\n` may be split across reads), an empty line ends an event,
//! `:` lines are comments, `data:` lines join with `\n`, one leading space after the colon is
//! dropped, unknown fields are ignored, and a leading UTF-8 BOM is skipped.
//!
//! The gateway pushes upstream reads in as they come and pops complete events; each event keeps
//! its exact raw bytes so it can be forwarded unchanged. Memory is bounded: a single pending
//! event larger than the limit is an error, not a growing buffer.

use bytes::{Buf, Bytes, BytesMut};

/// One complete event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` field, if any.
    pub event: Option<String>,
    /// The `data:` lines joined with `\n`.
    pub data: String,
    pub id: Option<String>,
    /// The exact bytes of this event, terminating blank line included.
    pub raw: Bytes,
}

impl SseEvent {
    pub fn is_done(&self) -> bool {
        self.data == "[DONE]"
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SseError {
    #[error("an SSE event exceeds {limit} bytes")]
    EventTooLarge { limit: usize },
}

/// The push parser.
pub struct SseParser {
    buf: BytesMut,
    /// Bytes of `buf` already scanned for line ends (never rescanned).
    scanned: usize,
    /// Where the current (unfinished) line starts in `buf`.
    line_start: usize,
    /// The last byte scanned was a `\r`: a `\n` right after it belongs to the same line end.
    after_cr: bool,
    /// Whether the BOM check at the very start is still pending.
    at_stream_start: bool,
    max_event_bytes: usize,
    event: Option<String>,
    data: Option<String>,
    id: Option<String>,
}

impl SseParser {
    pub fn new(max_event_bytes: usize) -> Self {
        SseParser {
            buf: BytesMut::new(),
            scanned: 0,
            line_start: 0,
            after_cr: false,
            at_stream_start: true,
            max_event_bytes,
            event: None,
            data: None,
            id: None,
        }
    }

    /// Appends upstream bytes. Fails if the pending event grows past the limit.
    pub fn push(&mut self, chunk: &[u8]) -> Result<(), SseError> {
        self.buf.extend_from_slice(chunk);
        if self.at_stream_start && self.buf.len() >= 3 {
            if self.buf.starts_with(b"\xEF\xBB\xBF") {
                self.buf.advance(3);
            }
            self.at_stream_start = false;
        }
        if self.buf.len() > self.max_event_bytes && self.peek_event_end().is_none() {
            return Err(SseError::EventTooLarge {
                limit: self.max_event_bytes,
            });
        }
        Ok(())
    }

    /// Bytes held that do not yet form a complete event.
    pub fn pending_bytes(&self) -> usize {
        self.buf.len()
    }

    /// Whether a complete event is buffered (without consuming anything).
    fn peek_event_end(&self) -> Option<usize> {
        let mut i = 0;
        let mut line_empty = true;
        let mut prev_cr = false;
        while i < self.buf.len() {
            let b = self.buf[i];
            if b == b'\n' && prev_cr {
                prev_cr = false;
                i += 1;
                continue;
            }
            if b == b'\n' || b == b'\r' {
                if line_empty {
                    return Some(i);
                }
                line_empty = true;
                prev_cr = b == b'\r';
            } else {
                line_empty = false;
                prev_cr = false;
            }
            i += 1;
        }
        None
    }

    /// Pops the next complete event, if one is buffered.
    pub fn next_event(&mut self) -> Option<SseEvent> {
        if self.at_stream_start && self.buf.len() < 3 && b"\xEF\xBB\xBF".starts_with(&self.buf) {
            // Could still be the start of a BOM: wait for more bytes.
            return None;
        }
        self.at_stream_start = false;
        loop {
            // Skip the `\n` of a `\r\n` split across reads.
            if self.after_cr && self.scanned < self.buf.len() {
                if self.buf[self.scanned] == b'\n' && self.scanned == self.line_start {
                    self.scanned += 1;
                    self.line_start += 1;
                }
                self.after_cr = false;
            }
            let rest = &self.buf[self.scanned..];
            let pos = memchr::memchr2(b'\n', b'\r', rest)?;
            let end = self.scanned + pos;
            let mut next = end + 1;
            if self.buf[end] == b'\r' {
                if next < self.buf.len() {
                    if self.buf[next] == b'\n' {
                        next += 1;
                    }
                } else if end == self.line_start {
                    // A blank line ending in `\r` at the end of what we have: its `\n` may be
                    // in the next read, and it belongs to this event. Wait for it.
                    self.scanned = end;
                    return None;
                } else {
                    // The `\n` may come in the next read.
                    self.after_cr = true;
                }
            }
            let line_start = self.line_start;
            self.scanned = next;
            self.line_start = next;
            if end == line_start {
                // A blank line: dispatch. An event with no fields at all is still yielded
                // (its raw bytes, comments or stray blank lines, are forwarded as they were).
                let raw = self.buf.split_to(next).freeze();
                self.scanned = 0;
                self.line_start = 0;
                return Some(SseEvent {
                    event: self.event.take(),
                    data: self.data.take().unwrap_or_default(),
                    id: self.id.take(),
                    raw,
                });
            }
            let line = String::from_utf8_lossy(&self.buf[line_start..end]).into_owned();
            self.field(&line);
        }
    }

    fn field(&mut self, line: &str) {
        if line.starts_with(':') {
            return;
        }
        let (name, value) = match line.split_once(':') {
            Some((n, v)) => (n, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        match name {
            "data" => match &mut self.data {
                Some(d) => {
                    d.push('\n');
                    d.push_str(value);
                }
                None => self.data = Some(value.to_string()),
            },
            "event" => self.event = Some(value.to_string()),
            "id" if !value.contains('\0') => self.id = Some(value.to_string()),
            _ => {}
        }
    }

    /// At the end of the stream: the unterminated rest as a last event, if it holds anything.
    pub fn finish(&mut self) -> Option<SseEvent> {
        if self.buf.is_empty() {
            return None;
        }
        if self.line_start < self.buf.len() {
            let line = String::from_utf8_lossy(&self.buf[self.line_start..]).into_owned();
            let line = line.trim_end_matches(['\r', '\n']).to_string();
            self.field(&line);
        }
        let raw = self.buf.split().freeze();
        self.scanned = 0;
        self.line_start = 0;
        self.after_cr = false;
        Some(SseEvent {
            event: self.event.take(),
            data: self.data.take().unwrap_or_default(),
            id: self.id.take(),
            raw,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(chunks: &[&[u8]]) -> Vec<SseEvent> {
        let mut p = SseParser::new(1 << 20);
        let mut out = vec![];
        for c in chunks {
            p.push(c).unwrap();
            while let Some(e) = p.next_event() {
                out.push(e);
            }
        }
        out.extend(p.finish());
        out
    }

    #[test]
    fn data_lines_fields_and_comments() {
        let e = events(&[
            b": keep-alive\n\nevent: message_start\ndata: {\"a\":1}\nid: 7\n\ndata:x\ndata: y\n\n",
        ]);
        assert_eq!(e.len(), 3);
        assert_eq!(e[0].data, "");
        assert_eq!(e[0].raw, Bytes::from_static(b": keep-alive\n\n"));
        assert_eq!(e[1].event.as_deref(), Some("message_start"));
        assert_eq!(e[1].data, "{\"a\":1}");
        assert_eq!(e[1].id.as_deref(), Some("7"));
        assert_eq!(e[2].data, "x\ny");
    }

    #[test]
    fn every_line_ending_and_splits_across_reads() {
        let e = events(&[b"data: a\r\n\r\ndata: b\r\rdata: c\n", b"\n"]);
        assert_eq!(
            e.iter().map(|e| e.data.as_str()).collect::<Vec<_>>(),
            ["a", "b", "c"]
        );
        let split = events(&[b"data: a\r", b"\n", b"\r", b"\ndata: [DONE]\n\n"]);
        assert_eq!(split.len(), 2);
        assert_eq!(split[0].data, "a");
        assert!(split[1].is_done());
    }

    #[test]
    fn a_bom_is_skipped_and_a_trailing_event_is_finished() {
        let e = events(&[b"\xEF\xBB", b"\xBFdata: x\n\ndata: tail"]);
        assert_eq!(e.len(), 2);
        assert_eq!(e[0].data, "x");
        assert_eq!(e[1].data, "tail");
    }

    #[test]
    fn an_oversized_event_is_an_error() {
        let mut p = SseParser::new(16);
        assert!(p.push(b"data: 0123456789").is_ok());
        assert_eq!(
            p.push(b"abcdef"),
            Err(SseError::EventTooLarge { limit: 16 })
        );
    }
}
