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
    /// The OpenAI Responses API (`/v1/responses`): what an `openai` provider is asked when the
    /// client speaks it.
    Responses,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::OpenAi => "openai",
            Format::Anthropic => "anthropic",
            Format::Gemini => "gemini",
            Format::Responses => "openai-responses",
        }
    }
}

/// A format clients may speak to the gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClientFormat {
    /// `POST /v1/chat/completions` (also Azure OpenAI's deployment routes, rewritten to it).
    OpenAi,
    /// `POST /v1/messages`.
    Anthropic,
    /// `POST /v1/responses`.
    Responses,
    /// `POST /{version}/models/{model}:generateContent` and `:streamGenerateContent`.
    Gemini,
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
            "/v1/responses" | "/responses" => Some(ClientFormat::Responses),
            _ => gemini_route(path)
                .filter(|r| r.method.is_chat())
                .map(|_| ClientFormat::Gemini),
        }
    }

    /// The format the gateway's own errors are written in for a request to `path`: the chat
    /// format of its route, Gemini's for any Gemini route, else OpenAI's.
    pub fn for_errors(path: &str) -> ClientFormat {
        let path = path.split_once('?').map_or(path, |(p, _)| p);
        match ClientFormat::from_path(path) {
            Some(format) => format,
            None if path.starts_with("/v1/messages") => ClientFormat::Anthropic,
            None if gemini_route(path).is_some() => ClientFormat::Gemini,
            None => ClientFormat::OpenAi,
        }
    }

    pub fn format(self) -> Format {
        match self {
            ClientFormat::OpenAi => Format::OpenAi,
            ClientFormat::Anthropic => Format::Anthropic,
            ClientFormat::Responses => Format::Responses,
            ClientFormat::Gemini => Format::Gemini,
        }
    }

    pub fn as_str(self) -> &'static str {
        self.format().as_str()
    }
}

/// The method of a Gemini route (`…/models/{model}:{method}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GeminiMethod {
    GenerateContent,
    StreamGenerateContent,
    CountTokens,
    EmbedContent,
}

impl GeminiMethod {
    /// Whether it is a chat call (translated through the canonical model).
    pub fn is_chat(self) -> bool {
        matches!(
            self,
            GeminiMethod::GenerateContent | GeminiMethod::StreamGenerateContent
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            GeminiMethod::GenerateContent => "generateContent",
            GeminiMethod::StreamGenerateContent => "streamGenerateContent",
            GeminiMethod::CountTokens => "countTokens",
            GeminiMethod::EmbedContent => "embedContent",
        }
    }
}

/// The API versions of the Gemini routes served.
pub const GEMINI_VERSIONS: [&str; 2] = ["v1beta", "v1"];

/// A Gemini client route, parsed from a canonical path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GeminiRoute<'a> {
    /// `v1beta` or `v1`.
    pub version: &'a str,
    /// The model id of the path (`gemini-2.0-flash`), as written (kept escapes and all).
    pub model: &'a str,
    pub method: GeminiMethod,
}

/// `/{version}/models/{model}:{method}` (query ignored), else `None`.
pub fn gemini_route(path: &str) -> Option<GeminiRoute<'_>> {
    let path = path.split_once('?').map_or(path, |(p, _)| p);
    let rest = path.strip_prefix('/')?;
    let (version, rest) = rest.split_once('/')?;
    if !GEMINI_VERSIONS.contains(&version) {
        return None;
    }
    let call = rest.strip_prefix("models/")?;
    if call.contains('/') {
        return None;
    }
    let (model, method) = call.rsplit_once(':')?;
    let method = match method {
        "generateContent" => GeminiMethod::GenerateContent,
        "streamGenerateContent" => GeminiMethod::StreamGenerateContent,
        "countTokens" => GeminiMethod::CountTokens,
        "embedContent" => GeminiMethod::EmbedContent,
        _ => return None,
    };
    (!model.is_empty()).then_some(GeminiRoute {
        version,
        model,
        method,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_formats_by_path() {
        assert_eq!(
            ClientFormat::from_path("/v1/responses?x=1"),
            Some(ClientFormat::Responses)
        );
        assert_eq!(
            ClientFormat::from_path(
                "/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse"
            ),
            Some(ClientFormat::Gemini)
        );
        assert_eq!(
            ClientFormat::from_path("/v1beta/models/g:countTokens"),
            None
        );
        assert_eq!(
            ClientFormat::for_errors("/v1beta/models/g:countTokens"),
            ClientFormat::Gemini
        );
        assert_eq!(
            ClientFormat::from_path("/v2/models/g:generateContent"),
            None
        );
        assert_eq!(
            ClientFormat::from_path("/v1beta/models/:generateContent"),
            None
        );
        assert_eq!(
            ClientFormat::from_path("/v1beta/models/a/b:generateContent"),
            None
        );
        let r = gemini_route("/v1/models/gemini-pro:embedContent")
            .map(|r| (r.version, r.model, r.method));
        assert_eq!(r, Some(("v1", "gemini-pro", GeminiMethod::EmbedContent)));
    }
}
