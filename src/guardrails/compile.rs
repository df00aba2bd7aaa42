//! Validation and compilation of a guardrail list: [`GuardrailSpec`]s → [`Guardrails`]. Every
//! error names its YAML path (`configs.chat.input_guardrails[1].pattern: invalid regex: …`);
//! `switchyard check` and every reload go through here via `config::compile`.

use std::sync::Arc;

use super::check::Check;
use super::pii::PiiDetector;
use super::spec::{ActionSpec, CheckKind, GuardrailSpec, OnFailSpec, OperatorSpec, PiiEntity};
use super::{Action, Guard, Guardrails, Stage};

/// Longest `name`: it is a metric label value and goes into a response header.
const MAX_NAME_LEN: usize = 64;

/// A problem at a YAML path.
pub type PathError = (String, String);

/// Compiles the list at `path`. An empty list compiles to `None` (it switches an inherited
/// list off).
pub fn compile(
    stage: Stage,
    list: &[GuardrailSpec],
    path: &str,
) -> Result<Option<Arc<Guardrails>>, Vec<PathError>> {
    let mut errors = Vec::new();
    let mut guards = Vec::with_capacity(list.len());
    for (i, spec) in list.iter().enumerate() {
        if let Some(g) = guard(stage, spec, &format!("{path}[{i}]"), &mut errors) {
            guards.push(g);
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok((!guards.is_empty()).then(|| Arc::new(Guardrails { stage, guards })))
}

/// Where one entry's problems go: each is recorded at `<entry path>.<field>`.
pub(super) struct FieldErrors<'a> {
    pub(super) path: &'a str,
    pub(super) errors: &'a mut Vec<PathError>,
}

impl FieldErrors<'_> {
    pub(super) fn at(&mut self, field: &str, msg: impl Into<String>) {
        self.errors
            .push((format!("{}.{field}", self.path), msg.into()));
    }
}

/// One entry: its fields are checked in a fixed order (fields of other checks, `name`, `action`,
/// `on_fail`, then the check's own), so the errors come out in that order.
pub(super) fn guard(
    stage: Stage,
    spec: &GuardrailSpec,
    p: &str,
    errors: &mut Vec<PathError>,
) -> Option<Guard> {
    let mut err = FieldErrors { path: p, errors };
    foreign_fields(spec, &mut err);
    if let Some(name) = &spec.name {
        name_field(name, &mut err);
    }
    let action = action(spec, &mut err);
    let fallback = fallback(stage, spec, &mut err);
    let check = check(stage, spec, &mut err)?;
    Some(Guard {
        id: spec
            .name
            .clone()
            .unwrap_or_else(|| spec.check.as_str().to_string()),
        check,
        action,
        fallback,
        retry: false,
        message: None,
    })
}

/// Fields set that belong to other checks.
fn foreign_fields(spec: &GuardrailSpec, err: &mut FieldErrors) {
    let kind = spec.check;
    let fields: [(&str, bool, &[CheckKind]); 9] = [
        ("words", spec.words.is_some(), &[CheckKind::Contains]),
        ("operator", spec.operator.is_some(), &[CheckKind::Contains]),
        (
            "case_sensitive",
            spec.case_sensitive.is_some(),
            &[CheckKind::Contains],
        ),
        ("pattern", spec.pattern.is_some(), &[CheckKind::Regex]),
        ("must_match", spec.must_match.is_some(), &[CheckKind::Regex]),
        (
            "min",
            spec.min.is_some(),
            &[CheckKind::WordCount, CheckKind::CharacterCount],
        ),
        (
            "max",
            spec.max.is_some(),
            &[CheckKind::WordCount, CheckKind::CharacterCount],
        ),
        ("schema", spec.schema.is_some(), &[CheckKind::JsonSchema]),
        ("entities", spec.entities.is_some(), &[CheckKind::Pii]),
    ];
    for (field, set, applies) in fields {
        if set && !applies.contains(&kind) {
            err.at(field, format!("does not apply to check {}", kind.as_str()));
        }
    }
}

/// What a check's name or id may be.
pub(super) const NAME_RULE: &str = "must be 1-64 characters of A-Z a-z 0-9 _ - .";

/// A check's name or id: a metric label value and a response header value.
pub(super) fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

/// `name`: see [`valid_name`].
pub(super) fn name_field(name: &str, err: &mut FieldErrors) {
    if !valid_name(name) {
        err.at("name", NAME_RULE);
    }
}

/// `action` (default warn); redact is for pii only (elsewhere an error, and warn).
fn action(spec: &GuardrailSpec, err: &mut FieldErrors) -> Action {
    match spec.action {
        None | Some(ActionSpec::Warn) => Action::Warn,
        Some(ActionSpec::Deny) => Action::Deny,
        Some(ActionSpec::Redact) if spec.check == CheckKind::Pii => Action::Redact,
        Some(ActionSpec::Redact) => {
            err.at("action", "redact applies to check pii only");
            Action::Warn
        }
    }
}

/// `on_fail: fallback`, which output lists only may set.
fn fallback(stage: Stage, spec: &GuardrailSpec, err: &mut FieldErrors) -> bool {
    let fallback = spec.on_fail == Some(OnFailSpec::Fallback);
    if fallback && stage == Stage::Input {
        err.at(
            "on_fail",
            "applies to output_guardrails only (a denied input already moves on to the next target)",
        );
    }
    fallback
}

/// The check itself, from the fields of its kind; `None` when they are missing or invalid.
fn check(stage: Stage, spec: &GuardrailSpec, err: &mut FieldErrors) -> Option<Check> {
    match spec.check {
        CheckKind::Contains => contains(spec, err),
        CheckKind::Regex => regex(spec, err),
        CheckKind::WordCount | CheckKind::CharacterCount => {
            counted(spec.check, spec.min, spec.max, err)
        }
        CheckKind::JsonSchema => json_schema(stage, spec.schema.as_ref(), "check", err),
        CheckKind::Pii => pii(spec.entities.as_deref(), err),
    }
}

/// `check: contains`: `words` (required, non-empty, no empty word; lowercased unless
/// `case_sensitive`), `operator` (default any).
fn contains(spec: &GuardrailSpec, err: &mut FieldErrors) -> Option<Check> {
    let case_sensitive = spec.case_sensitive.unwrap_or(false);
    match &spec.words {
        None => {
            err.at("words", "required for check contains");
            None
        }
        Some(w) if w.is_empty() => {
            err.at("words", "must list at least one word");
            None
        }
        Some(w) => {
            if let Some(i) = w.iter().position(|w| w.is_empty()) {
                err.at(&format!("words[{i}]"), "must not be empty");
            }
            Some(Check::Contains {
                words: w
                    .iter()
                    .map(|w| {
                        if case_sensitive {
                            w.clone()
                        } else {
                            w.to_lowercase()
                        }
                    })
                    .collect(),
                operator: spec.operator.unwrap_or(OperatorSpec::Any),
                case_sensitive,
            })
        }
    }
}

/// `check: regex`: `pattern` (required, must compile), `must_match` (default false).
fn regex(spec: &GuardrailSpec, err: &mut FieldErrors) -> Option<Check> {
    let Some(pattern) = &spec.pattern else {
        err.at("pattern", "required for check regex");
        return None;
    };
    let regex = compile_regex(pattern, "pattern", err)?;
    Some(Check::Regex {
        regex,
        must_match: spec.must_match.unwrap_or(false),
    })
}

/// A pattern in Rust `regex` syntax, or an error at `field`.
pub(super) fn compile_regex(
    pattern: &str,
    field: &str,
    err: &mut FieldErrors,
) -> Option<regex::Regex> {
    match regex::Regex::new(pattern) {
        Ok(regex) => Some(regex),
        Err(e) => {
            err.at(field, format!("invalid regex: {e}"));
            None
        }
    }
}

/// `word_count` / `character_count`: `min`, `max` or both, `min` ≤ `max`.
pub(super) fn counted(
    kind: CheckKind,
    min: Option<u64>,
    max: Option<u64>,
    err: &mut FieldErrors,
) -> Option<Check> {
    let (min, max) = match (min, max) {
        (None, None) => {
            err.at(
                "min",
                format!("check {} needs min, max or both", kind.as_str()),
            );
            return None;
        }
        (Some(min), Some(max)) if min > max => {
            err.at("min", format!("{min} is greater than max ({max})"));
            return None;
        }
        (min, max) => (min.unwrap_or(0), max),
    };
    Some(match kind {
        CheckKind::CharacterCount => Check::CharacterCount { min, max },
        _ => Check::WordCount { min, max },
    })
}

/// `check: json_schema` (output lists only): `schema` (required, must compile).
pub(super) fn json_schema(
    stage: Stage,
    schema: Option<&serde_json::Value>,
    kind_field: &str,
    err: &mut FieldErrors,
) -> Option<Check> {
    if stage == Stage::Input {
        err.at(
            kind_field,
            "json_schema applies to output_guardrails only (or guardrails.output, after_request_hooks)",
        );
    }
    let Some(schema) = schema else {
        err.at("schema", "required for check json_schema");
        return None;
    };
    match jsonschema::validator_for(schema) {
        Ok(v) => Some(Check::JsonSchema {
            validator: Box::new(v),
        }),
        Err(e) => {
            err.at("schema", format!("invalid JSON schema: {e}"));
            None
        }
    }
}

/// `check: pii`: `entities` (default all; an empty list is an error).
pub(super) fn pii(entities: Option<&[PiiEntity]>, err: &mut FieldErrors) -> Option<Check> {
    if entities.is_some_and(<[PiiEntity]>::is_empty) {
        err.at(
            "entities",
            "must list at least one of email, phone, credit_card",
        );
    }
    match PiiDetector::new(entities.unwrap_or_default()) {
        Ok(detector) => Some(Check::Pii { detector }),
        Err(e) => {
            err.at("check", format!("cannot build the PII detector: {e}"));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn specs(yaml_json: serde_json::Value) -> Vec<GuardrailSpec> {
        serde_json::from_value(yaml_json).unwrap()
    }

    fn errors(stage: Stage, v: serde_json::Value) -> Vec<String> {
        match compile(stage, &specs(v), "configs.c.input_guardrails") {
            Ok(_) => vec![],
            Err(e) => e.into_iter().map(|(p, m)| format!("{p}: {m}")).collect(),
        }
    }

    #[test]
    fn valid_lists_compile() {
        let list = specs(serde_json::json!([
            {"check": "contains", "words": ["a"], "operator": "none", "action": "deny"},
            {"check": "regex", "pattern": "\\d+", "name": "digits"},
            {"check": "word_count", "max": 10},
            {"check": "pii", "action": "redact", "entities": ["email"]},
            {"check": "json_schema", "schema": {"type": "object"}, "on_fail": "fallback"}
        ]));
        let g = compile(Stage::Output, &list, "x").unwrap().unwrap();
        assert_eq!(g.guards.len(), 5);
        assert_eq!(g.guards[1].id, "digits");
        assert_eq!(g.guards[0].action, Action::Deny);
        assert_eq!(g.guards[2].action, Action::Warn);
        assert!(g.guards[4].fallback);
        assert!(compile(Stage::Input, &[], "x").unwrap().is_none());
    }

    #[test]
    fn malformed_entries_name_their_path() {
        let cases = [
            (
                serde_json::json!([{"check": "regex", "pattern": "("}]),
                "configs.c.input_guardrails[0].pattern: invalid regex",
            ),
            (
                serde_json::json!([{"check": "contains", "words": []}]),
                "configs.c.input_guardrails[0].words: must list at least one word",
            ),
            (
                serde_json::json!([{"check": "contains"}]),
                "configs.c.input_guardrails[0].words: required",
            ),
            (
                serde_json::json!([{"check": "word_count", "min": 5, "max": 2}]),
                "configs.c.input_guardrails[0].min: 5 is greater than max (2)",
            ),
            (
                serde_json::json!([{"check": "word_count"}]),
                "configs.c.input_guardrails[0].min: check word_count needs",
            ),
            (
                serde_json::json!([{"check": "regex", "pattern": "a", "words": ["x"]}]),
                "configs.c.input_guardrails[0].words: does not apply to check regex",
            ),
            (
                serde_json::json!([{"check": "regex", "pattern": "a", "action": "redact"}]),
                "configs.c.input_guardrails[0].action: redact applies to check pii only",
            ),
            (
                serde_json::json!([{"check": "pii", "on_fail": "fallback"}]),
                "configs.c.input_guardrails[0].on_fail: applies to output_guardrails only",
            ),
            (
                serde_json::json!([{"check": "pii", "name": "has space"}]),
                "configs.c.input_guardrails[0].name: must be",
            ),
        ];
        for (v, want) in cases {
            let got = errors(Stage::Input, v.clone());
            assert!(
                got.iter().any(|e| e.starts_with(want)),
                "{v}: {got:?} lacks {want}"
            );
        }
        let got = errors(
            Stage::Output,
            serde_json::json!([{"check": "json_schema", "schema": {"type": 12}}]),
        );
        assert!(
            got[0].starts_with("configs.c.input_guardrails[0].schema: invalid JSON schema"),
            "{got:?}"
        );
        let got = errors(
            Stage::Input,
            serde_json::json!([{"check": "json_schema", "schema": {"type": "object"}}]),
        );
        assert!(got[0].contains("output_guardrails only"), "{got:?}");
    }

    #[test]
    fn unknown_kinds_and_fields_are_serde_errors() {
        for bad in [
            serde_json::json!({"check": "sentiment"}),
            serde_json::json!({"check": "pii", "colour": "red"}),
            serde_json::json!({"check": "contains", "words": ["a"], "operator": "some"}),
        ] {
            assert!(serde_json::from_value::<GuardrailSpec>(bad).is_err());
        }
    }
}
