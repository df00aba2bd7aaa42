//! A config node's guardrails — `input_guardrails` / `output_guardrails` (our flat spelling or
//! Portkey's shorthand), the tutorial's `guardrails: {input, output}`, Portkey's
//! `before_request_hooks` / `after_request_hooks` — compiled by `crate::guardrails` into one
//! list per stage, whose errors (with their YAML paths) join the file's.

use std::sync::Arc;

use super::compiler::*;
use crate::config::schema::NodeSpec;
use crate::config::snapshot::TargetSettings;
use crate::guardrails::{Guardrails, NodeLists, Stage};

impl Compiler<'_> {
    /// The node's input and output lists: its own where it sets any, else its parent's.
    pub(super) fn node_guardrails(
        &mut self,
        spec: &NodeSpec,
        path: &str,
        parent: &TargetSettings,
    ) -> (Option<Arc<Guardrails>>, Option<Arc<Guardrails>>) {
        let tutorial = spec.guardrails.as_ref();
        let input = NodeLists {
            items: spec.input_guardrails.as_deref(),
            tutorial: tutorial.and_then(|g| g.input.as_deref()),
            hooks: spec.before_request_hooks.as_deref(),
        };
        let output = NodeLists {
            items: spec.output_guardrails.as_deref(),
            tutorial: tutorial.and_then(|g| g.output.as_deref()),
            hooks: spec.after_request_hooks.as_deref(),
        };
        let mut stage =
            |lists: NodeLists<'_>, stage: Stage, inherited: &Option<Arc<Guardrails>>| {
                if lists.is_set() {
                    let result = crate::guardrails::compile_node(stage, lists, path);
                    self.collect(result)
                } else {
                    inherited.clone()
                }
            };
        (
            stage(input, Stage::Input, &parent.input_guardrails),
            stage(output, Stage::Output, &parent.output_guardrails),
        )
    }

    fn collect(
        &mut self,
        result: Result<Option<Arc<Guardrails>>, Vec<(String, String)>>,
    ) -> Option<Arc<Guardrails>> {
        match result {
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
