//! Errors the gateway itself answers with, and their OpenAI-style wire form
//! (`{"error":{"message","type","code","param"}}`) and status code.
//!
//! An Anthropic-format client gets the same errors in Anthropic's shape
//! ([`GatewayError::to_client_json`]). Upstream errors are not here: when a provider answers
//! with an error and nothing is left to try, the client gets the provider's own status and body
//! (translated to the client's format when the provider speaks another).

use bytes::Bytes;

use crate::providers::{encode_error, ClientFormat, ErrorKind, ProviderError};

pub use crate::vocab::GatewayError;

/// Rendering in a provider's error shape (the rest of the type is in the vocabulary leaf).
impl GatewayError {
    /// The error in canonical form, to be written in any client's format.
    pub fn to_provider_error(&self) -> ProviderError {
        let mut e = ProviderError::new(ErrorKind::from_status(self.status()), self.to_string());
        e.status = self.status();
        e.code = Some(self.code().to_string());
        e
    }

    /// The JSON body in the client's format (OpenAI's shape above, or Anthropic's
    /// `{"type":"error","error":{"type","message"}}`).
    pub fn to_client_json(&self, client: ClientFormat) -> Bytes {
        match client {
            ClientFormat::OpenAi | ClientFormat::Responses => self.to_json(),
            ClientFormat::Anthropic | ClientFormat::Gemini => {
                encode_error(client, &self.to_provider_error()).1
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_is_openai_shaped_and_status_matches() {
        let e = GatewayError::Timeout {
            target: "config".into(),
            phase: "request",
            ms: 500,
        };
        assert_eq!(e.status(), 408);
        let v: serde_json::Value = serde_json::from_slice(&e.to_json()).unwrap();
        assert_eq!(v["error"]["type"], "timeout_error");
        assert_eq!(v["error"]["code"], "timeout");
        assert!(v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("timeout of 500ms"));
        let sse = e.to_sse_event();
        assert!(sse.starts_with(b"data: {") && sse.ends_with(b"\n\n"));
    }
}
