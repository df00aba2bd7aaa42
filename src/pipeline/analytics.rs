//! The analytics API on the proxy port (`GET /v1/analytics/*`, where Portkey's clients call
//! it): the same answers as the admin port's (`crate::store::api`), when `store.proxy_api` is
//! on. With an admin token configured, the call must carry it (`Authorization: Bearer` or
//! `x-portkey-api-key`): the store holds every caller's metadata and, with `log_bodies`, their
//! prompts.

use bytes::Bytes;
use pingora::prelude::Session;

use super::context::Context;
use super::reject::Rejection;
use super::write::{write_json, Finished};
use super::Pipeline;
use crate::error::GatewayError;
use crate::store::api;

/// Whether the request is an analytics call.
pub fn is_analytics(session: &Session) -> bool {
    api::is_analytics(session.req_header().uri.path())
}

/// The token the call presents, if any.
fn presented(session: &Session) -> Option<&str> {
    let headers = &session.req_header().headers;
    let bearer = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        });
    bearer
        .or_else(|| headers.get("x-portkey-api-key")?.to_str().ok())
        .map(str::trim)
}

impl Pipeline {
    pub(super) async fn analytics(
        &self,
        session: &mut Session,
        ctx: &mut Context<'_>,
    ) -> Result<Finished, Rejection> {
        let store = self.store.as_deref();
        if store.is_some_and(|s| !s.proxy_api) {
            return Err(GatewayError::NotFound(
                "the analytics API is served on the admin port only here (store.proxy_api: false)"
                    .into(),
            )
            .into());
        }
        let admin = &ctx.snapshot.admin;
        if admin.token.is_some() && !presented(session).is_some_and(|t| admin.token_matches(t)) {
            return Err(GatewayError::Unauthorized(
                "the analytics API needs the admin token: send Authorization: Bearer <token> or x-portkey-api-key: <token>".into(),
            )
            .into());
        }
        let head = session.req_header();
        let answer = api::answer(store, head.uri.path(), head.uri.query()).await?;
        Ok(write_json(session, Bytes::from(answer.to_string()), &ctx.headers).await)
    }
}
