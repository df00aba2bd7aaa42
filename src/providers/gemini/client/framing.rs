//! How a Gemini client's stream is framed, from its query.

/// How a Gemini client's stream is framed: `alt=sse` asks for server-sent events, anything
/// else gets one JSON array whose elements arrive as they are produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Framing {
    #[default]
    Sse,
    JsonArray,
}

impl Framing {
    /// The framing a request's query asks for.
    pub fn of_query(query: Option<&str>) -> Framing {
        let sse = query.is_some_and(|q| {
            q.split('&')
                .any(|pair| pair.eq_ignore_ascii_case("alt=sse"))
        });
        if sse {
            Framing::Sse
        } else {
            Framing::JsonArray
        }
    }

    /// The content type of the client's stream.
    pub fn content_type(self) -> &'static str {
        match self {
            Framing::Sse => "text/event-stream",
            Framing::JsonArray => "application/json",
        }
    }
}

/// The path a response cache keys a request by: a Gemini stream framed as a JSON array gets
/// its own (`…:streamGenerateContent#array`), so an `alt=sse` client is never replayed an
/// array and the other way round. Every other path is its own key.
pub fn cache_path<'a>(path: &'a str, query: Option<&str>) -> std::borrow::Cow<'a, str> {
    if path.ends_with(":streamGenerateContent") && Framing::of_query(query) == Framing::JsonArray {
        std::borrow::Cow::Owned(format!("{path}#array"))
    } else {
        std::borrow::Cow::Borrowed(path)
    }
}
