//! Why a request or response could not be translated ([`TranslateError`]); the JSON helpers and
//! every adapter return it.

use crate::vocab::Format;

/// Why a request or response could not be translated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TranslateError {
    /// The client's request is malformed: answer 400, do not try another target.
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// The request uses something the target's format cannot express: this target fails,
    /// another (of another format) may not.
    #[error("the request cannot be sent in the {target} format: {what}")]
    Unsupported { target: &'static str, what: String },
    /// The provider's response is not what its format documents.
    #[error("the {format} response is not valid: {reason}")]
    InvalidResponse {
        format: &'static str,
        reason: String,
    },
}

impl TranslateError {
    pub(crate) fn unsupported(target: Format, what: impl Into<String>) -> TranslateError {
        TranslateError::Unsupported {
            target: target.as_str(),
            what: what.into(),
        }
    }
}
