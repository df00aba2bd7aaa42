//! The formats one chat attempt translates between.

use crate::providers::{ClientFormat, Format, TranslateContext};

/// The formats one chat attempt translates between, and the request's context when it was
/// decoded (a same-format, non-streaming request with nothing to change is not).
#[derive(Clone, Copy)]
pub struct Translation<'a> {
    pub client: ClientFormat,
    pub upstream: Format,
    pub ctx: Option<&'a TranslateContext>,
}

impl Translation<'_> {
    pub fn crosses(&self) -> bool {
        self.client.format() != self.upstream
    }
}
