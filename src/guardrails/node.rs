//! A config or target node's guardrails for one stage, in every spelling it may use, compiled
//! into one [`Guardrails`] list (one evaluator whatever the spelling), in this order:
//!
//! 1. `input_guardrails` / `output_guardrails`: Switchyard's flat entries and Portkey's
//!    shorthand ([`super::item`]);
//! 2. the tutorial's `guardrails: { input, output }` ([`super::tutorial`]);
//! 3. Portkey's `before_request_hooks` / `after_request_hooks` ([`super::portkey`]).
//!
//! A node that sets any of them has its own list (an empty one switches the inherited list
//! off); one that sets none inherits its parent's.

use std::sync::Arc;

use super::compile::{self, PathError};
use super::item::GuardrailItem;
use super::portkey::{self, HookSpec};
use super::tutorial::{self, TutorialCheck};
use super::{Guardrails, Stage};

/// One stage's lists of a node, as written.
#[derive(Default, Clone, Copy)]
pub struct NodeLists<'a> {
    pub items: Option<&'a [GuardrailItem]>,
    pub tutorial: Option<&'a [TutorialCheck]>,
    pub hooks: Option<&'a [HookSpec]>,
}

impl NodeLists<'_> {
    /// Whether the node sets a list of its own for this stage.
    pub fn is_set(&self) -> bool {
        self.items.is_some() || self.tutorial.is_some() || self.hooks.is_some()
    }
}

/// The YAML keys of one stage's lists.
fn keys(stage: Stage) -> [&'static str; 3] {
    match stage {
        Stage::Input => [
            "input_guardrails",
            "guardrails.input",
            "before_request_hooks",
        ],
        Stage::Output => [
            "output_guardrails",
            "guardrails.output",
            "after_request_hooks",
        ],
    }
}

/// Compiles the lists of the node at `node_path`; `None` when they hold no check.
pub fn compile_node(
    stage: Stage,
    lists: NodeLists<'_>,
    node_path: &str,
) -> Result<Option<Arc<Guardrails>>, Vec<PathError>> {
    let [items_key, tutorial_key, hooks_key] = keys(stage);
    let mut errors = Vec::new();
    let mut guards = Vec::new();
    for (i, item) in lists.items.unwrap_or_default().iter().enumerate() {
        let path = format!("{node_path}.{items_key}[{i}]");
        match item {
            GuardrailItem::Flat(spec) => {
                guards.extend(compile::guard(stage, spec, &path, &mut errors));
            }
            GuardrailItem::Portkey(p) => {
                guards.extend(portkey::shorthand(stage, p, &path, &mut errors));
            }
        }
    }
    if let Some(list) = lists.tutorial {
        let path = format!("{node_path}.{tutorial_key}");
        guards.extend(tutorial::compile(stage, list, &path, &mut errors));
    }
    for (i, hook) in lists.hooks.unwrap_or_default().iter().enumerate() {
        let path = format!("{node_path}.{hooks_key}[{i}]");
        guards.extend(portkey::hook(stage, hook, &path, &mut errors));
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok((!guards.is_empty()).then(|| Arc::new(Guardrails { stage, guards })))
}
