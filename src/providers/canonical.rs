//! The canonical chat model every wire format translates through: one request, one response and
//! one stream-event vocabulary. Each adapter decodes its format into these types and encodes them
//! back out; nothing here knows any wire format's spelling.
//!
//! Conventions (so every adapter agrees):
//! - `Usage::input_tokens` counts the whole prompt, cached tokens included, and
//!   `output_tokens` the whole completion, reasoning included (OpenAI's meaning). Anthropic's
//!   `input_tokens` excludes cache reads/writes; its adapter converts both ways.
//! - Tool-call `arguments` are JSON text, as the model produced it (possibly partial or invalid).
//! - System and developer instructions are messages with those roles, wherever they appear.

use serde_json::{Map, Value};

pub use crate::vocab::{ClientFormat, Format};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    System,
    /// OpenAI's `developer` (instructions for reasoning models); a system prompt elsewhere.
    Developer,
    User,
    Assistant,
    /// A tool result.
    Tool,
}

/// Where an image comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageSource {
    /// An `http(s)`/`gs` URL the provider fetches.
    Url(String),
    /// Inline bytes, base64-encoded (an OpenAI `data:` URL, an Anthropic `base64` source,
    /// Gemini `inline_data`).
    Base64 { media_type: String, data: String },
}

impl ImageSource {
    /// Parses an OpenAI `image_url.url`: a `data:<type>;base64,<data>` URL becomes `Base64`.
    pub fn from_url(url: &str) -> ImageSource {
        if let Some(rest) = url.strip_prefix("data:") {
            if let Some((meta, data)) = rest.split_once(',') {
                if let Some(media_type) = meta.strip_suffix(";base64") {
                    return ImageSource::Base64 {
                        media_type: media_type.to_string(),
                        data: data.to_string(),
                    };
                }
            }
        }
        ImageSource::Url(url.to_string())
    }

    /// The OpenAI spelling: the URL, or a `data:` URL for inline bytes.
    pub fn to_url(&self) -> String {
        match self {
            ImageSource::Url(u) => u.clone(),
            ImageSource::Base64 { media_type, data } => {
                format!("data:{media_type};base64,{data}")
            }
        }
    }
}

/// One part of a message's content.
#[derive(Debug, Clone, PartialEq)]
pub enum ContentPart {
    Text(String),
    Image {
        source: ImageSource,
        /// OpenAI's `detail` (`low`/`high`/`auto`); other formats have none.
        detail: Option<String>,
    },
    /// Model reasoning replayed in history (Anthropic `thinking` blocks, Responses reasoning
    /// items, Gemini `thought` parts). The signature is the source provider's; encoders for
    /// another format send what that format can carry (see docs/client-formats.md).
    Thinking {
        text: String,
        signature: Option<String>,
    },
    /// Reasoning the provider keeps encrypted (Anthropic `redacted_thinking`, a Responses
    /// reasoning item's `encrypted_content`): only its source format can send it back.
    RedactedThinking {
        data: String,
    },
    /// A part this model does not represent (audio, files, documents, server-tool blocks…):
    /// its `type` and original JSON. Only the request's source format can encode it; any other
    /// target refuses the request with [`super::TranslateError::Unsupported`].
    Other {
        kind: String,
        raw: Value,
    },
}

/// A call the model made (or, in history, had made).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    /// JSON text of the arguments.
    pub arguments: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub role: Role,
    pub content: Vec<ContentPart>,
    /// OpenAI's participant `name`.
    pub name: Option<String>,
    /// Assistant messages: the calls the model made.
    pub tool_calls: Vec<ToolCall>,
    /// Tool messages: which call this answers.
    pub tool_call_id: Option<String>,
    /// Tool messages: the tool failed (Anthropic `is_error`).
    pub is_error: bool,
}

impl Message {
    pub fn new(role: Role, content: Vec<ContentPart>) -> Message {
        Message {
            role,
            content,
            name: None,
            tool_calls: Vec::new(),
            tool_call_id: None,
            is_error: false,
        }
    }

    pub fn text(role: Role, text: impl Into<String>) -> Message {
        Message::new(role, vec![ContentPart::Text(text.into())])
    }

    /// The text parts joined (images and other parts skipped).
    pub fn joined_text(&self) -> String {
        joined_text(&self.content)
    }
}

/// The text parts of `content` joined with nothing between them (the formats split text
/// arbitrarily across parts; joining is what a reader sees).
pub fn joined_text(content: &[ContentPart]) -> String {
    let mut out = String::new();
    for part in content {
        if let ContentPart::Text(t) = part {
            out.push_str(t);
        }
    }
    out
}

/// The text of the [`ContentPart::Thinking`] parts of `content` joined (redacted reasoning
/// has no text to show).
pub fn joined_thinking(content: &[ContentPart]) -> String {
    let mut out = String::new();
    for part in content {
        if let ContentPart::Thinking { text, .. } = part {
            out.push_str(text);
        }
    }
    out
}

/// A function the model may call.
#[derive(Debug, Clone, PartialEq)]
pub struct Tool {
    pub name: String,
    pub description: Option<String>,
    /// JSON Schema of the arguments object.
    pub parameters: Option<Value>,
    /// OpenAI strict mode.
    pub strict: Option<bool>,
    /// A provider-defined tool that is not a plain function (Anthropic `web_search_…`, OpenAI
    /// non-`function` types): its original JSON, encodable only in its source format.
    pub builtin: Option<Value>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolChoice {
    Auto,
    None,
    /// Must call some tool (OpenAI `required`, Anthropic `any`, Gemini `ANY`).
    Required,
    /// Must call this one.
    Function(String),
}

#[derive(Debug, Clone, PartialEq)]
pub enum ResponseFormat {
    Text,
    /// Any JSON object (OpenAI JSON mode).
    JsonObject,
    JsonSchema {
        name: String,
        description: Option<String>,
        schema: Option<Value>,
        strict: Option<bool>,
    },
}

/// What the client asked of the model's reasoning ("thinking"), in no format's spelling:
/// Anthropic `thinking: {type: enabled, budget_tokens}`, OpenAI `reasoning_effort` and the
/// Responses API's `reasoning: {effort, summary}`, Gemini `thinkingConfig`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Reasoning {
    /// `minimal`, `low`, `medium`, `high` (OpenAI's effort levels).
    pub effort: Option<String>,
    /// A token budget for reasoning (Anthropic `budget_tokens`, Gemini `thinkingBudget`).
    pub budget_tokens: Option<u64>,
    /// Whether the reasoning text (or a summary of it) is returned: Anthropic returns thinking
    /// blocks when enabled, Gemini `includeThoughts`, Responses `summary`.
    pub include_thoughts: Option<bool>,
    /// The Responses API's `summary` (`auto`, `concise`, `detailed`).
    pub summary: Option<String>,
    /// Reasoning explicitly off (Anthropic `thinking: {type: disabled}`, Gemini budget 0).
    pub disabled: bool,
}

/// Which OpenAI field carried the output limit (re-encoded the same way for OpenAI targets).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MaxTokensField {
    #[default]
    MaxTokens,
    MaxCompletionTokens,
}

/// A chat request in no particular format.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ChatRequest {
    pub model: String,
    pub messages: Vec<Message>,
    pub tools: Vec<Tool>,
    pub tool_choice: Option<ToolChoice>,
    /// `Some(false)`: at most one tool call per turn (Anthropic `disable_parallel_tool_use`).
    pub parallel_tool_calls: Option<bool>,
    pub response_format: Option<ResponseFormat>,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub top_k: Option<u64>,
    pub stop: Vec<String>,
    pub max_tokens: Option<u64>,
    pub max_tokens_field: MaxTokensField,
    /// Number of choices (OpenAI `n`, Gemini `candidateCount`).
    pub n: Option<u64>,
    pub seed: Option<i64>,
    pub presence_penalty: Option<f64>,
    pub frequency_penalty: Option<f64>,
    pub stream: bool,
    /// The client asked for a usage chunk at the end of an OpenAI stream
    /// (`stream_options.include_usage`). Anthropic streams always carry usage.
    pub include_usage: bool,
    /// End-user id (OpenAI `user`, Anthropic `metadata.user_id`).
    pub user: Option<String>,
    /// Reasoning / thinking settings, when the client gave any.
    pub reasoning: Option<Reasoning>,
    /// Top-level fields the decoder did not know, in the source format's spelling; only an
    /// encoder of that same format writes them back.
    pub extra: Map<String, Value>,
    /// The format this request was decoded from (`None` when built by hand): `extra`,
    /// [`ContentPart::Other`] and [`Tool::builtin`] are in its spelling.
    pub source: Option<Format>,
}

/// Why generation stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FinishReason {
    /// Natural end or a stop sequence.
    Stop,
    /// The output limit.
    Length,
    /// The model called tools.
    ToolCalls,
    /// Safety, recitation, refusal.
    ContentFilter,
    /// Anything else, as the provider spelled it (encoded as a plain stop).
    Other(String),
}

/// Token counts (see the module doc for what each includes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Usage {
    /// The whole prompt, cached tokens included.
    pub input_tokens: u64,
    /// The whole completion, reasoning included.
    pub output_tokens: u64,
    /// Prompt tokens read from a cache (part of `input_tokens`).
    pub cached_tokens: u64,
    /// Prompt tokens written to a cache (Anthropic; part of `input_tokens`).
    pub cache_creation_tokens: u64,
    /// Completion tokens spent on reasoning (part of `output_tokens`).
    pub reasoning_tokens: u64,
}

impl Usage {
    pub fn total_tokens(&self) -> u64 {
        self.input_tokens.saturating_add(self.output_tokens)
    }

    pub fn is_empty(&self) -> bool {
        *self == Usage::default()
    }
}

/// One choice of a response.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Choice {
    pub index: u32,
    /// The answer text (`None` when the model only called tools).
    pub text: Option<String>,
    /// OpenAI's refusal text.
    pub refusal: Option<String>,
    pub tool_calls: Vec<ToolCall>,
    pub finish_reason: Option<FinishReason>,
    /// The model's reasoning, before the answer: [`ContentPart::Thinking`] and
    /// [`ContentPart::RedactedThinking`] parts, in order.
    pub thinking: Vec<ContentPart>,
}

/// A whole (non-streaming) response.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ChatResponse {
    pub id: String,
    /// The model that actually answered, as the provider reported it.
    pub model: String,
    /// Unix seconds, when the provider said.
    pub created: Option<u64>,
    pub choices: Vec<Choice>,
    pub usage: Option<Usage>,
}

/// One step of a streamed response. `choice` is the choice index (0 unless `n` > 1);
/// `index` on tool events numbers the calls within a choice from 0.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamEvent {
    /// The response began (`id`/`model` when the provider says).
    Start {
        id: Option<String>,
        model: Option<String>,
    },
    Text {
        choice: u32,
        text: String,
    },
    /// Reasoning text (an Anthropic `thinking_delta`, a Responses reasoning summary delta, a
    /// Gemini `thought` part). Each run of these is one thinking block, ended by its signature,
    /// by other content or by the finish.
    Thinking {
        choice: u32,
        text: String,
    },
    /// The signature of the thinking block in progress (Anthropic `signature_delta`).
    ThinkingSignature {
        choice: u32,
        signature: String,
    },
    /// A whole encrypted reasoning block (Anthropic `redacted_thinking`).
    RedactedThinking {
        choice: u32,
        data: String,
    },
    ToolCallStart {
        choice: u32,
        index: u32,
        id: String,
        name: String,
    },
    ToolCallArgs {
        choice: u32,
        index: u32,
        arguments: String,
    },
    Finish {
        choice: u32,
        reason: FinishReason,
    },
    /// The usage so far (a snapshot that replaces any earlier one).
    Usage(Usage),
    /// An error reported inside the stream; nothing follows it.
    Error(super::ProviderError),
    /// A keep-alive (Anthropic `ping`, SSE comments).
    KeepAlive,
    /// The provider's explicit end of stream.
    Done,
}
