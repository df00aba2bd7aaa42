//! What one attempt sends: the body for its target (the client's bytes, with
//! `override_params`, or translated into the provider's format), the formats its answer is
//! translated between, and the upstream request head.

use bytes::Bytes;
use pingora::http::RequestHeader;

use super::failure::{failure, translate_failure, Reply};
use super::request::ClientRequest;
pub use super::translation::Translation;
use crate::config::{Provider, ProviderKind, Target, TargetSettings};
use crate::error::GatewayError;
use crate::providers::{
    build_request, ChatCall, ClientFormat, EncodedRequest, Format, RequestHead, TranslateError,
};
use crate::router::{Failure, FailureKind};

/// The body of one attempt and how its answer is read.
pub struct Plan<'r> {
    pub body: Bytes,
    /// The request as encoded for the provider, when it was translated.
    pub encoded: Option<EncodedRequest>,
    /// `None`: not a chat route (forwarded as it is).
    pub translation: Option<Translation<'r>>,
}

impl<'r> Plan<'r> {
    /// The body for `provider` and how its answer is translated back.
    pub fn new(
        request: &'r ClientRequest,
        leaf: &Target,
        provider: &Provider,
    ) -> Result<Plan<'r>, Failure<Reply>> {
        let settings = &leaf.settings;
        let upstream = Format::upstream(provider.kind, request.format);
        let Some(client) = request.format else {
            // Routes that are not chat are forwarded as they are, to providers of their API:
            // Gemini's (`countTokens`, `embedContent`) to Gemini, the rest to OpenAI-format ones.
            let native = match crate::vocab::gemini_route(request.path()) {
                Some(_) => Format::Gemini,
                None => Format::OpenAi,
            };
            if upstream != native {
                return Err(translate_failure(
                    leaf,
                    TranslateError::Unsupported {
                        target: upstream.as_str(),
                        what: format!(
                            "{} is only served by {}-format providers",
                            request.path(),
                            native.as_str()
                        ),
                    },
                ));
            }
            let body = request
                .body_for(settings)
                .map_err(|e| failure(FailureKind::NoRoute, Reply::Gateway(e)))?;
            return Ok(Plan {
                body,
                encoded: None,
                translation: None,
            });
        };
        if as_sent(request, client, upstream, settings, provider.kind) {
            // Same format, nothing to change, no stream usage to ask for: the bytes as sent.
            let translation = Translation {
                client,
                upstream,
                ctx: None,
            };
            return Ok(Plan {
                body: request.body.clone(),
                encoded: None,
                translation: Some(translation),
            });
        }
        let (decoded, ctx) = request
            .decoded(client)
            .map_err(|e| translate_failure(leaf, e))?;
        let encoded = decoded
            .encode(provider.kind, &settings.override_params, None)
            .map_err(|e| translate_failure(leaf, e))?;
        Ok(Plan {
            body: encoded.body.clone(),
            encoded: Some(encoded),
            translation: Some(Translation {
                client,
                upstream,
                ctx: Some(ctx),
            }),
        })
    }

    /// The upstream request head for `provider`.
    pub fn head(
        &self,
        request: &ClientRequest,
        client_head: &RequestHeader,
        provider: &Provider,
        model: Option<&str>,
    ) -> Result<RequestHeader, Failure<Reply>> {
        let chat = match (&self.encoded, self.translation) {
            (Some(enc), _) => Some(enc.chat_call()),
            (None, Some(t)) => Some(ChatCall {
                model: model.unwrap_or(""),
                stream: false,
                format: t.upstream,
            }),
            (None, None) => None,
        };
        let head = RequestHead {
            method: &request.method,
            client_path_and_query: &request.path_and_query,
            chat,
            body_len: self.body.len(),
        };
        build_request(provider, client_head, &head).map_err(|e| {
            failure(
                FailureKind::NoRoute,
                Reply::Gateway(GatewayError::InvalidRequest(format!(
                    "cannot build the upstream request: {e}"
                ))),
            )
        })
    }
}

/// Whether the client's bytes go to the provider unchanged.
fn as_sent(
    request: &ClientRequest,
    client: ClientFormat,
    upstream: Format,
    settings: &TargetSettings,
    kind: ProviderKind,
) -> bool {
    client.format() == upstream
        && settings.override_params.is_empty()
        && !request.stream
        && kind != ProviderKind::AzureOpenAi
        // Thinking blocks we wrote without a signature are taken out (`DecodedRequest::encode`).
        && !(upstream == Format::Anthropic
            && crate::providers::request::has_unsigned_thinking(&request.body))
}
