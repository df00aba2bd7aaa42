//! The tutorial's guardrail spelling (`../shared/seed-portkey.txt`), on a config or a target:
//!
//! ```yaml
//! guardrails:
//!   input:
//!     - { type: contains, deny: [password, SSN], action: block, message: "Request blocked." }
//!     - { type: regex, pattern: '\b(password|secret)\b', flags: [IGNORECASE], action: block }
//!   output:
//!     - { type: regex, deny: ['\b\d{3}-\d{2}-\d{4}\b'], action: block, message: "…" }
//!     - { type: word_count, min: 10, action: retry }
//! ```
//!
//! Compiled into the same [`Guard`]s as the other spellings: `contains` + `deny` fails when a
//! listed word occurs (any case); `regex` fails when `pattern` or any `deny` pattern matches;
//! `action` is `block` (default: a 446 whose message is `message`), `warn` (246), `retry`
//! (output only: the same target is asked again, then as `block`) or `redact` (`pii` only). In
//! an output list a blocking check moves a fallback group on to its next target.

use std::sync::Arc;

use serde::Deserialize;

use super::check::Check;
use super::compile::{
    compile_regex, counted, json_schema, name_field, pii, FieldErrors, PathError,
};
use super::spec::{CheckKind, OperatorSpec, PiiEntity};
use super::{Action, Guard, Stage};

/// `guardrails:` on a config or target node.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TutorialGuardrails {
    pub input: Option<Vec<TutorialCheck>>,
    pub output: Option<Vec<TutorialCheck>>,
}

/// One check of `guardrails.input` / `guardrails.output`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TutorialCheck {
    #[serde(rename = "type")]
    pub kind: CheckKind,
    pub name: Option<String>,
    /// `contains`: words; `regex`: patterns. The check fails when any occurs.
    pub deny: Option<Vec<String>>,
    /// `regex`: one pattern; the check fails when it matches.
    pub pattern: Option<String>,
    /// `regex`: Python's flag names: IGNORECASE (I), MULTILINE (M), DOTALL (S), VERBOSE (X),
    /// UNICODE (U, always on).
    pub flags: Option<Vec<String>>,
    pub min: Option<u64>,
    pub max: Option<u64>,
    pub schema: Option<serde_json::Value>,
    pub entities: Option<Vec<PiiEntity>>,
    pub action: Option<TutorialAction>,
    /// The error message the client reads when this check blocks.
    pub message: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TutorialAction {
    Block,
    Warn,
    Retry,
    Redact,
}

/// The list at `path` (`configs.x.guardrails.input`).
pub(super) fn compile(
    stage: Stage,
    list: &[TutorialCheck],
    path: &str,
    errors: &mut Vec<PathError>,
) -> Vec<Guard> {
    list.iter()
        .enumerate()
        .filter_map(|(i, spec)| guard(stage, spec, &format!("{path}[{i}]"), errors))
        .collect()
}

fn guard(
    stage: Stage,
    spec: &TutorialCheck,
    path: &str,
    errors: &mut Vec<PathError>,
) -> Option<Guard> {
    let mut err = FieldErrors { path, errors };
    foreign_fields(spec, &mut err);
    if let Some(name) = &spec.name {
        name_field(name, &mut err);
    }
    let action = match spec.action.unwrap_or(TutorialAction::Block) {
        TutorialAction::Block | TutorialAction::Retry => Action::Deny,
        TutorialAction::Warn => Action::Warn,
        TutorialAction::Redact if spec.kind == CheckKind::Pii => Action::Redact,
        TutorialAction::Redact => {
            err.at("action", "redact applies to type pii only");
            Action::Warn
        }
    };
    let retry = spec.action == Some(TutorialAction::Retry);
    if retry && stage == Stage::Input {
        err.at(
            "action",
            "retry applies to output checks only (it asks the target for another answer)",
        );
    }
    if spec.message.as_ref().is_some_and(|m| m.trim().is_empty()) {
        err.at("message", "must not be empty");
    }
    let check = check(stage, spec, &mut err)?;
    Some(Guard {
        id: spec
            .name
            .clone()
            .unwrap_or_else(|| spec.kind.as_str().to_string()),
        check,
        action,
        // As Portkey's 446: a fallback group moves on to its next target.
        fallback: stage == Stage::Output && action == Action::Deny,
        retry,
        message: spec.message.as_deref().map(Arc::from),
    })
}

/// Fields set that belong to other types.
fn foreign_fields(spec: &TutorialCheck, err: &mut FieldErrors) {
    use CheckKind::*;
    let fields: [(&str, bool, &[CheckKind]); 7] = [
        ("deny", spec.deny.is_some(), &[Contains, Regex]),
        ("pattern", spec.pattern.is_some(), &[Regex]),
        ("flags", spec.flags.is_some(), &[Regex]),
        ("min", spec.min.is_some(), &[WordCount, CharacterCount]),
        ("max", spec.max.is_some(), &[WordCount, CharacterCount]),
        ("schema", spec.schema.is_some(), &[JsonSchema]),
        ("entities", spec.entities.is_some(), &[Pii]),
    ];
    for (field, set, applies) in fields {
        if set && !applies.contains(&spec.kind) {
            err.at(
                field,
                format!("does not apply to type {}", spec.kind.as_str()),
            );
        }
    }
}

fn check(stage: Stage, spec: &TutorialCheck, err: &mut FieldErrors) -> Option<Check> {
    match spec.kind {
        CheckKind::Contains => contains(spec, err),
        CheckKind::Regex => regex(spec, err),
        CheckKind::WordCount | CheckKind::CharacterCount => {
            counted(spec.kind, spec.min, spec.max, err)
        }
        CheckKind::JsonSchema => json_schema(stage, spec.schema.as_ref(), "type", err),
        CheckKind::Pii => pii(spec.entities.as_deref(), err),
    }
}

/// `type: contains`: `deny` words, compared in any case.
fn contains(spec: &TutorialCheck, err: &mut FieldErrors) -> Option<Check> {
    let words = match &spec.deny {
        None => {
            err.at("deny", "required for type contains: the words that block");
            return None;
        }
        Some(w) if w.is_empty() => {
            err.at("deny", "must list at least one word");
            return None;
        }
        Some(w) => w,
    };
    if let Some(i) = words.iter().position(|w| w.is_empty()) {
        err.at(&format!("deny[{i}]"), "must not be empty");
    }
    Some(Check::Contains {
        words: words.iter().map(|w| w.to_lowercase()).collect(),
        operator: OperatorSpec::None,
        case_sensitive: false,
    })
}

/// `type: regex`: `pattern` or `deny` (patterns), with `flags`; fails when one matches.
fn regex(spec: &TutorialCheck, err: &mut FieldErrors) -> Option<Check> {
    let prefix = flags(spec.flags.as_deref().unwrap_or_default(), err);
    let patterns: Vec<(String, &str)> = match (&spec.pattern, &spec.deny) {
        (Some(_), Some(_)) => {
            err.at("pattern", "either pattern or deny, not both");
            return None;
        }
        (None, None) => {
            err.at(
                "pattern",
                "type regex needs pattern or deny (a list of patterns)",
            );
            return None;
        }
        (Some(p), None) => vec![("pattern".into(), p.as_str())],
        (None, Some(list)) if list.is_empty() => {
            err.at("deny", "must list at least one pattern");
            return None;
        }
        (None, Some(list)) => list
            .iter()
            .enumerate()
            .map(|(i, p)| (format!("deny[{i}]"), p.as_str()))
            .collect(),
    };
    let mut ok = true;
    for (field, p) in &patterns {
        ok &= compile_regex(&format!("{prefix}{p}"), field, err).is_some();
    }
    if !ok {
        return None;
    }
    let joined: Vec<String> = patterns.iter().map(|(_, p)| format!("(?:{p})")).collect();
    let regex = compile_regex(&format!("{prefix}{}", joined.join("|")), "deny", err)?;
    Some(Check::Regex {
        regex,
        must_match: false,
    })
}

/// Python's `re` flags as an inline group (`(?im)`), or "" for none.
fn flags(flags: &[String], err: &mut FieldErrors) -> String {
    let mut letters = String::new();
    for (i, f) in flags.iter().enumerate() {
        let letter = match f.to_ascii_uppercase().trim_start_matches("RE.") {
            "IGNORECASE" | "I" => 'i',
            "MULTILINE" | "M" => 'm',
            "DOTALL" | "S" => 's',
            "VERBOSE" | "X" => 'x',
            "UNICODE" | "U" => continue,
            _ => {
                err.at(
                    &format!("flags[{i}]"),
                    format!("unknown flag {f:?}: expected IGNORECASE, MULTILINE, DOTALL, VERBOSE or UNICODE"),
                );
                continue;
            }
        };
        if !letters.contains(letter) {
            letters.push(letter);
        }
    }
    if letters.is_empty() {
        String::new()
    } else {
        format!("(?{letters})")
    }
}
