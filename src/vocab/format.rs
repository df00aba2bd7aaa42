//! The wire formats: what a provider speaks upstream, and what a client speaks to the gateway.

/// A wire format: what a provider speaks upstream, or what a client speaks to us.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// OpenAI Chat Completions (`openai`, `azure-openai`, `openai-compatible`).
    OpenAi,
    /// Anthropic Messages.
    Anthropic,
    /// Google Gemini `generateContent`.
    Gemini,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::OpenAi => "openai",
            Format::Anthropic => "anthropic",
            Format::Gemini => "gemini",
        }
    }
}

/// A format clients may speak to the gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClientFormat {
    /// `POST /v1/chat/completions`.
    OpenAi,
    /// `POST /v1/messages`.
    Anthropic,
}

impl ClientFormat {
    /// The client format of a chat route, from the request path (query ignored); `None` for any
    /// other route (embeddings, models, count_tokens, …), which is forwarded untranslated.
    pub fn from_path(path_and_query: &str) -> Option<ClientFormat> {
        let path = path_and_query
            .split_once('?')
            .map_or(path_and_query, |(p, _)| p);
        let path = path.strip_suffix('/').unwrap_or(path);
        match path {
            "/v1/chat/completions" | "/chat/completions" => Some(ClientFormat::OpenAi),
            "/v1/messages" | "/messages" => Some(ClientFormat::Anthropic),
            _ => None,
        }
    }

    pub fn format(self) -> Format {
        match self {
            ClientFormat::OpenAi => Format::OpenAi,
            ClientFormat::Anthropic => Format::Anthropic,
        }
    }

    pub fn as_str(self) -> &'static str {
        self.format().as_str()
    }
}
