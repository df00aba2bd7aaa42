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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guardrails::{Action, Verdict};
    use serde_json::json;

    /// A node's lists written as JSON (`input_guardrails`, `guardrails`, `before_request_hooks`
    /// and their output twins), compiled for `stage` at `configs.x`.
    fn compile(
        stage: Stage,
        node: serde_json::Value,
    ) -> Result<Option<Arc<Guardrails>>, Vec<String>> {
        #[derive(serde::Deserialize)]
        struct Node {
            input_guardrails: Option<Vec<GuardrailItem>>,
            output_guardrails: Option<Vec<GuardrailItem>>,
            guardrails: Option<crate::guardrails::TutorialGuardrails>,
            before_request_hooks: Option<Vec<HookSpec>>,
            after_request_hooks: Option<Vec<HookSpec>>,
        }
        let n: Node = serde_json::from_value(node).expect("node");
        let t = n.guardrails.as_ref();
        let lists = match stage {
            Stage::Input => NodeLists {
                items: n.input_guardrails.as_deref(),
                tutorial: t.and_then(|g| g.input.as_deref()),
                hooks: n.before_request_hooks.as_deref(),
            },
            Stage::Output => NodeLists {
                items: n.output_guardrails.as_deref(),
                tutorial: t.and_then(|g| g.output.as_deref()),
                hooks: n.after_request_hooks.as_deref(),
            },
        };
        compile_node(stage, lists, "configs.x")
            .map_err(|e| e.into_iter().map(|(p, m)| format!("{p}: {m}")).collect())
    }

    fn errors(stage: Stage, node: serde_json::Value) -> Vec<String> {
        compile(stage, node.clone())
            .err()
            .unwrap_or_else(|| panic!("accepted: {node}"))
    }

    fn verdicts(set: &Guardrails, text: &str) -> Vec<Verdict> {
        let (eval, _) = set.run(&mut [text.to_string()], true);
        eval.results.iter().map(|r| r.verdict).collect()
    }

    #[test]
    fn every_spelling_lands_in_one_list_in_order() {
        let set = compile(
            Stage::Output,
            json!({
                "output_guardrails": [
                    {"check": "word_count", "max": 100},
                    {"default.contains": {"words": ["OK"]}, "deny": true}
                ],
                "guardrails": {"output": [
                    {"type": "regex", "pattern": "ssn \\d+", "flags": ["IGNORECASE"], "message": "no"},
                    {"type": "word_count", "min": 3, "action": "retry"}
                ]},
                "after_request_hooks": [{"deny": true, "async": true,
                    "checks": [{"id": "default.characterCount", "parameters": {"maxCharacters": 4, "not": true}},
                               {"id": "default.jsonSchema", "parameters": {"schema": {}}, "is_enabled": false}]}]
            }),
        )
        .unwrap()
        .unwrap();
        let ids: Vec<&str> = set.guards.iter().map(|g| g.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "word_count",
                "default.contains",
                "regex",
                "word_count",
                "default.characterCount"
            ]
        );
        let g = &set.guards;
        assert_eq!((g[0].action, g[0].fallback), (Action::Warn, false));
        assert_eq!((g[1].action, g[1].fallback), (Action::Deny, true));
        assert_eq!(g[2].message.as_deref(), Some("no"));
        assert!(g[3].retry && g[3].action == Action::Deny);
        // async never blocks.
        assert_eq!(g[4].action, Action::Warn);
        use Verdict::{Fail, Pass};
        // "OK" is case-sensitive; IGNORECASE; the character range is inverted by `not`.
        assert_eq!(
            verdicts(&set, "fine SSN 12"),
            [Pass, Fail, Fail, Pass, Pass]
        );
        assert_eq!(verdicts(&set, "OK"), [Pass, Pass, Pass, Fail, Fail]);
    }

    #[test]
    fn portkey_semantics() {
        let run = |check: serde_json::Value, text: &str| {
            let set = compile(Stage::Input, json!({"input_guardrails": [check]}))
                .unwrap()
                .unwrap();
            verdicts(&set, text)[0]
        };
        use Verdict::{Fail, Pass};
        let rule = json!({"default.regexMatch": {"rule": "^ok"}});
        assert_eq!(run(rule.clone(), "ok then"), Pass);
        assert_eq!(run(rule, "not ok"), Fail);
        let not = json!({"default.regexMatch": {"rule": "^ok", "not": true}});
        assert_eq!(run(not, "ok then"), Fail);
        let words = json!({"default.wordCount": {"minWords": 2}});
        assert_eq!(run(words.clone(), "one"), Fail);
        assert_eq!(run(words, "one two"), Pass);
        let all = json!({"default.contains": {"words": ["a", "B"], "operator": "all"}});
        assert_eq!(run(all.clone(), "a B"), Pass);
        assert_eq!(run(all, "a b"), Fail);
        // The parameters' `id` names the check; is_enabled: false drops it.
        let set = compile(
            Stage::Input,
            json!({"input_guardrails": [
                {"x": {"id": "default.contains", "words": ["z"]}},
                {"default.wordCount": {"minWords": 1, "is_enabled": false}}
            ]}),
        )
        .unwrap()
        .unwrap();
        assert_eq!(set.guards.len(), 1);
        assert_eq!(set.guards[0].id, "default.contains");
        // Only disabled checks: no list at all.
        let none = compile(
            Stage::Input,
            json!({"before_request_hooks": [{"checks": [{"id": "default.contains", "is_enabled": false}]}]}),
        );
        assert!(none.unwrap().is_none());
    }

    #[test]
    fn every_error_names_its_path() {
        let input = [
            (json!({"input_guardrails": [{"default.sentenceCount": {}, "deny": true}]}),
             "configs.x.input_guardrails[0].default.sentenceCount: not supported: default.sentenceCount; Switchyard runs default.contains"),
            (json!({"input_guardrails": [{"pangea.textGuard": {}}]}),
             "configs.x.input_guardrails[0].pangea.textGuard: not supported: pangea.textGuard is a partner plugin"),
            (json!({"input_guardrails": [{"deny": true}]}),
             "configs.x.input_guardrails[0]: names no check"),
            (json!({"input_guardrails": [{"default.contains": ["a"]}]}),
             "configs.x.input_guardrails[0].default.contains: expected the check's parameters"),
            (json!({"input_guardrails": [{"default.contains": {"words": ["a"]}, "deny": "yes"}]}),
             "configs.x.input_guardrails[0].deny: must be true or false"),
            (json!({"input_guardrails": [{"default.contains": {"words": ["a"]}, "on_fail": "fallback"}]}),
             "configs.x.input_guardrails[0].on_fail: expected { feedback"),
            (json!({"input_guardrails": [{"default.contains": {"words": ["a"]}, "guardrail_version_id": "g1"}]}),
             "configs.x.input_guardrails[0].guardrail_version_id: not supported"),
            (json!({"input_guardrails": [{"default.contains": {"words": []}}]}),
             "configs.x.input_guardrails[0].default.contains.parameters.words: required"),
            (json!({"input_guardrails": [{"default.contains": {"words": ["a"], "operator": "some"}}]}),
             "configs.x.input_guardrails[0].default.contains.parameters.operator: expected any, all or none"),
            (json!({"input_guardrails": [{"default.contains": {"words": ["a"], "case": true}}]}),
             "configs.x.input_guardrails[0].default.contains.parameters.case: unknown parameter"),
            (json!({"input_guardrails": [{"default.regexMatch": {"rule": "("}}]}),
             "configs.x.input_guardrails[0].default.regexMatch.parameters.rule: invalid regex"),
            (json!({"input_guardrails": [{"default.regexMatch": {"not": true}}]}),
             "configs.x.input_guardrails[0].default.regexMatch.parameters.rule: required"),
            (json!({"input_guardrails": [{"default.regexMatch": {"rule": "a", "not": "yes"}}]}),
             "configs.x.input_guardrails[0].default.regexMatch.parameters.not: must be true or false"),
            (json!({"input_guardrails": [{"default.wordCount": {"minWords": 5, "maxWords": 2}}]}),
             "configs.x.input_guardrails[0].default.wordCount.parameters.minWords: 5 is greater than maxWords (2)"),
            (json!({"input_guardrails": [{"default.characterCount": {"minCharacters": -1}}]}),
             "configs.x.input_guardrails[0].default.characterCount.parameters.minCharacters: must be a whole number"),
            (json!({"input_guardrails": [{"default.jsonSchema": {"schema": {}}}]}),
             "configs.x.input_guardrails[0].default.jsonSchema: default.jsonSchema checks the answer"),
            (json!({"before_request_hooks": [{"type": "mutator", "checks": [{"id": "default.contains"}]}]}),
             "configs.x.before_request_hooks[0].type: not supported: mutator hooks"),
            (json!({"before_request_hooks": [{"checks": []}]}),
             "configs.x.before_request_hooks[0].checks: must list at least one check"),
            (json!({"before_request_hooks": [{"checks": [{"id": "default.contains", "parameters": {"words": ["a"], "colour": 1}}]}]}),
             "configs.x.before_request_hooks[0].checks[0].parameters.colour: unknown parameter"),
            (json!({"before_request_hooks": [{"checks": [{"id": "acme.scan"}]}]}),
             "configs.x.before_request_hooks[0].checks[0].id: not supported: acme.scan is a partner plugin"),
            (json!({"before_request_hooks": [{"checks": [{"id": "default.my check"}]}]}),
             "configs.x.before_request_hooks[0].checks[0].id: not supported: default.my check"),
            (json!({"guardrails": {"input": [{"type": "word_count", "min": 2, "action": "retry"}]}}),
             "configs.x.guardrails.input[0].action: retry applies to output checks only"),
            (json!({"guardrails": {"input": [{"type": "regex", "pattern": "a", "flags": ["IGNORECASE", "LOCALE"]}]}}),
             "configs.x.guardrails.input[0].flags[1]: unknown flag \"LOCALE\""),
            (json!({"guardrails": {"input": [{"type": "regex", "deny": ["ok", "("]}]}}),
             "configs.x.guardrails.input[0].deny[1]: invalid regex"),
            (json!({"guardrails": {"input": [{"type": "regex", "pattern": "a", "deny": ["b"]}]}}),
             "configs.x.guardrails.input[0].pattern: either pattern or deny, not both"),
            (json!({"guardrails": {"input": [{"type": "regex"}]}}),
             "configs.x.guardrails.input[0].pattern: type regex needs pattern or deny"),
            (json!({"guardrails": {"input": [{"type": "contains"}]}}),
             "configs.x.guardrails.input[0].deny: required for type contains"),
            (json!({"guardrails": {"input": [{"type": "contains", "deny": ["a", ""]}]}}),
             "configs.x.guardrails.input[0].deny[1]: must not be empty"),
            (json!({"guardrails": {"input": [{"type": "contains", "deny": ["a"], "min": 3}]}}),
             "configs.x.guardrails.input[0].min: does not apply to type contains"),
            (json!({"guardrails": {"input": [{"type": "contains", "deny": ["a"], "action": "redact"}]}}),
             "configs.x.guardrails.input[0].action: redact applies to type pii only"),
            (json!({"guardrails": {"input": [{"type": "contains", "deny": ["a"], "message": " "}]}}),
             "configs.x.guardrails.input[0].message: must not be empty"),
            (json!({"guardrails": {"input": [{"type": "json_schema", "schema": {}}]}}),
             "configs.x.guardrails.input[0].type: json_schema applies to output_guardrails only"),
            (json!({"guardrails": {"input": [{"type": "word_count"}]}}),
             "configs.x.guardrails.input[0].min: check word_count needs min, max or both"),
        ];
        for (node, want) in input {
            let got = errors(Stage::Input, node.clone());
            assert!(
                got.iter().any(|e| e.starts_with(want)),
                "{node}: {got:?} lacks {want}"
            );
        }
        let got = errors(
            Stage::Output,
            json!({"after_request_hooks": [{"checks": [{"id": "default.jsonSchema", "parameters": {"schema": {"type": 12}}}]}]}),
        );
        assert!(
            got[0].starts_with(
                "configs.x.after_request_hooks[0].checks[0].parameters.schema: invalid JSON schema"
            ),
            "{got:?}"
        );
    }

    #[test]
    fn malformed_spellings_are_serde_errors() {
        for bad in [
            json!({"type": "sentiment"}),
            json!({"type": "contains", "deny": ["a"], "action": "deny"}),
            json!({"type": "contains", "deny": ["a"], "colour": 1}),
        ] {
            assert!(
                serde_json::from_value::<crate::guardrails::tutorial::TutorialCheck>(bad).is_err()
            );
        }
        for bad in [
            json!({"checks": [{"id": "default.contains"}], "colour": 1}),
            json!({"checks": [{"id": "default.contains", "params": {}}]}),
            json!({"checks": [], "on_fail": {"feedback": {}, "fallback": true}}),
            json!({"deny": true}),
        ] {
            assert!(serde_json::from_value::<HookSpec>(bad).is_err());
        }
    }
}
