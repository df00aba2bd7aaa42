//! `input_guardrails:` / `output_guardrails:` of a config node: compiled by
//! `crate::guardrails::compile`, whose errors (with their YAML paths) join the file's.

use std::sync::Arc;

use super::compiler::*;
use crate::guardrails::{GuardrailSpec, Guardrails, Stage};

impl Compiler<'_> {
    /// Compiles a guardrail list (`crate::guardrails::compile`), collecting its errors.
    pub(super) fn guardrails(
        &mut self,
        path: &str,
        list: &[GuardrailSpec],
        stage: Stage,
    ) -> Option<Arc<Guardrails>> {
        match crate::guardrails::compile(stage, list, path) {
            Ok(g) => g,
            Err(errors) => {
                for (p, m) in errors {
                    self.error(p, m);
                }
                None
            }
        }
    }
}
