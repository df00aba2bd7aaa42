//! Portkey's guardrail spellings, compiled into the same [`Guard`]s as Switchyard's own:
//!
//! - the shorthand in `input_guardrails` / `output_guardrails`:
//!   `[{"default.contains": {"operator": "none", "words": ["x"]}, "deny": true}]` — every key
//!   but the hook options (`deny`, `on_fail`, `on_success`, `async`, `id`, `type`,
//!   `sequential`, `guardrail_version_id`) is a check, an id without a `.` meaning `default.`;
//! - hooks: `before_request_hooks` / `after_request_hooks`: `[{"type": "guardrail", "id": "…",
//!   "deny": true, "async": false, "on_fail": {…}, "on_success": {…}, "checks": [{"id":
//!   "default.contains", "parameters": {…}, "is_enabled": true}]}]`.
//!
//! Semantics as in Portkey's `plugins/default/*.ts`: a check *passes* when its condition holds
//! (`regexMatch` passes when the rule matches; `contains` is case-sensitive); `deny: true` turns
//! a failure into a 446, `deny: false` (the default) into a warning (246); `async: true` never
//! blocks (reported as a warning). In an output list a denial moves a fallback group on to its
//! next target, as Portkey's 446 does. `on_fail` / `on_success` `feedback` is accepted and not
//! acted on (Portkey's hosted app records it).

use serde::Deserialize;
use serde_json::{Map, Value};

use super::check::Check;
use super::compile::{
    compile_regex, counted, json_schema, valid_name, FieldErrors, PathError, NAME_RULE,
};
use super::item::PortkeyItem;
use super::spec::{CheckKind, OperatorSpec};
use super::{Action, Guard, Stage};

/// The checks Switchyard runs, by Portkey id.
const SUPPORTED: &str = "default.contains, default.regexMatch, default.wordCount, \
                         default.characterCount, default.jsonSchema";

/// A hook of `before_request_hooks` / `after_request_hooks`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HookSpec {
    /// `guardrail` (default); `mutator` is not supported.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub id: Option<String>,
    pub deny: Option<bool>,
    #[serde(rename = "async")]
    pub is_async: Option<bool>,
    /// Accepted: the checks run one after the other anyway.
    pub sequential: Option<bool>,
    pub on_fail: Option<HookFeedback>,
    pub on_success: Option<HookFeedback>,
    /// A guardrail stored in Portkey's hosted app: not supported.
    pub guardrail_version_id: Option<Value>,
    pub checks: Vec<HookCheck>,
}

/// `on_fail` / `on_success`: Portkey records `feedback` in its hosted app; accepted, not acted on.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HookFeedback {
    pub feedback: Option<Value>,
}

/// One check of a hook.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HookCheck {
    pub id: String,
    #[serde(default)]
    pub parameters: Map<String, Value>,
    pub is_enabled: Option<bool>,
}

/// What a hook's options make of its failed checks.
#[derive(Clone, Copy)]
struct HookOptions {
    deny: bool,
    is_async: bool,
}

impl HookOptions {
    fn action(self) -> Action {
        if self.deny && !self.is_async {
            Action::Deny
        } else {
            Action::Warn
        }
    }
}

/// The long form: one hook's checks.
pub(super) fn hook(
    stage: Stage,
    spec: &HookSpec,
    path: &str,
    errors: &mut Vec<PathError>,
) -> Vec<Guard> {
    let mut err = FieldErrors { path, errors };
    hook_kind(spec.kind.as_deref(), &mut err);
    if spec.guardrail_version_id.is_some() {
        err.at("guardrail_version_id", VERSION_ID);
    }
    if spec.checks.is_empty() {
        err.at("checks", "must list at least one check");
    }
    let opts = HookOptions {
        deny: spec.deny.unwrap_or(false),
        is_async: spec.is_async.unwrap_or(false),
    };
    let mut guards = Vec::new();
    for (i, c) in spec.checks.iter().enumerate() {
        let check_path = format!("{path}.checks[{i}]");
        if c.is_enabled == Some(false) {
            continue;
        }
        let mut err = FieldErrors {
            path: &check_path,
            errors,
        };
        if let Some(g) = check(stage, opts, &c.id, "id", &c.parameters, &mut err) {
            guards.push(g);
        }
    }
    guards
}

const VERSION_ID: &str = "not supported: guardrail_version_id names a guardrail kept in \
                          Portkey's hosted app; write its checks here instead";

/// `type`: only `guardrail`.
fn hook_kind(kind: Option<&str>, err: &mut FieldErrors) {
    match kind {
        None | Some("guardrail") => {}
        Some("mutator") => err.at(
            "type",
            "not supported: mutator hooks (only type guardrail is run)",
        ),
        Some(other) => err.at(
            "type",
            format!("unknown hook type {other:?}: expected guardrail"),
        ),
    }
}

/// The shorthand: one entry of `input_guardrails` / `output_guardrails`.
pub(super) fn shorthand(
    stage: Stage,
    item: &PortkeyItem,
    path: &str,
    errors: &mut Vec<PathError>,
) -> Vec<Guard> {
    let mut opts = HookOptions {
        deny: false,
        is_async: false,
    };
    let mut checks = Vec::new();
    let mut err = FieldErrors { path, errors };
    for (key, value) in &item.entries {
        match key.as_str() {
            "deny" | "async" | "sequential" => match value.as_bool() {
                Some(b) if key == "deny" => opts.deny = b,
                Some(b) if key == "async" => opts.is_async = b,
                Some(_) => {}
                None => err.at(key, "must be true or false"),
            },
            "on_fail" | "on_success" => {
                if let Err(e) = serde_json::from_value::<HookFeedback>(value.clone()) {
                    err.at(key, format!("expected {{ feedback: {{ … }} }}: {e}"));
                }
            }
            "id" if value.is_string() => {}
            "id" => err.at(key, "must be a string"),
            "type" => hook_kind(value.as_str().or(Some("")), &mut err),
            "guardrail_version_id" => err.at(key, VERSION_ID),
            _ => checks.push((key, value)),
        }
    }
    if checks.is_empty() {
        err.errors.push((
            path.to_string(),
            "names no check: expected a key such as \"default.contains\"".into(),
        ));
    }
    let mut guards = Vec::new();
    for (key, value) in checks {
        let Some(params) = value.as_object() else {
            err.at(key, "expected the check's parameters, a mapping");
            continue;
        };
        if params.get("is_enabled") == Some(&Value::Bool(false)) {
            continue;
        }
        // Portkey: the parameters' `id` names the check when present.
        let id = params.get("id").and_then(Value::as_str).unwrap_or(key);
        let check_path = format!("{path}.{key}");
        let mut err = FieldErrors {
            path: &check_path,
            errors: &mut *err.errors,
        };
        if let Some(g) = check(stage, opts, id, "", params, &mut err) {
            guards.push(g);
        }
    }
    guards
}

/// One check: plugin id (`id_field` is where it is written, "" for the shorthand's key) and
/// parameters.
fn check(
    stage: Stage,
    opts: HookOptions,
    id: &str,
    id_field: &str,
    params: &Map<String, Value>,
    err: &mut FieldErrors,
) -> Option<Guard> {
    let id = if id.contains('.') {
        id.to_string()
    } else {
        format!("default.{id}")
    };
    let at_id = |err: &mut FieldErrors, msg: String| match id_field {
        "" => err.errors.push((err.path.to_string(), msg)),
        f => err.at(f, msg),
    };
    let Some(function) = id.strip_prefix("default.") else {
        at_id(
            err,
            format!("not supported: {id} is a partner plugin (a call to another service); Switchyard runs {SUPPORTED}"),
        );
        return None;
    };
    let check = match function {
        "contains" => contains(params, err),
        "regexMatch" => regex_match(params, err),
        "wordCount" => range(CheckKind::WordCount, ["minWords", "maxWords"], params, err),
        "characterCount" => range(
            CheckKind::CharacterCount,
            ["minCharacters", "maxCharacters"],
            params,
            err,
        ),
        "jsonSchema" if stage == Stage::Input => {
            at_id(
                err,
                "default.jsonSchema checks the answer: output_guardrails or after_request_hooks only"
                    .into(),
            );
            None
        }
        "jsonSchema" => json_check(params, err),
        _ => {
            at_id(
                err,
                format!("not supported: {id}; Switchyard runs {SUPPORTED}"),
            );
            None
        }
    };
    if !valid_name(&id) {
        at_id(err, format!("{id:?}: {NAME_RULE}"));
        return None;
    }
    let action = opts.action();
    Some(Guard {
        id,
        check: check?,
        action,
        // Portkey: a 446 is a non-2xx like any other, so a fallback group moves on.
        fallback: stage == Stage::Output && action == Action::Deny,
        retry: false,
        message: None,
    })
}

/// Parameters every check may carry besides its own: Portkey's `is_enabled`, `failOnError` (a
/// check here never errors at run time), `id`.
const COMMON: [&str; 3] = ["is_enabled", "failOnError", "id"];

/// An error for every parameter that is neither the check's own nor common.
fn unknown_params(params: &Map<String, Value>, own: &[&str], err: &mut FieldErrors) {
    for key in params.keys() {
        if !own.contains(&key.as_str()) && !COMMON.contains(&key.as_str()) {
            err.at(
                &format!("parameters.{key}"),
                format!("unknown parameter (expected {})", own.join(", ")),
            );
        }
    }
}

/// `not` (default false).
fn not_param(params: &Map<String, Value>, err: &mut FieldErrors) -> bool {
    match params.get("not") {
        None => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            err.at("parameters.not", "must be true or false");
            false
        }
    }
}

/// `default.contains`: `words` (required), `operator` `any` (default) | `all` | `none`;
/// case-sensitive substrings, as Portkey compares them.
fn contains(params: &Map<String, Value>, err: &mut FieldErrors) -> Option<Check> {
    unknown_params(params, &["words", "operator"], err);
    let operator = match params.get("operator").map(|v| v.as_str()) {
        None | Some(Some("any")) => OperatorSpec::Any,
        Some(Some("all")) => OperatorSpec::All,
        Some(Some("none")) => OperatorSpec::None,
        Some(_) => {
            err.at("parameters.operator", "expected any, all or none");
            OperatorSpec::Any
        }
    };
    let words: Option<Vec<String>> = params.get("words").and_then(|w| {
        w.as_array()?
            .iter()
            .map(|s| s.as_str().filter(|s| !s.is_empty()).map(str::to_string))
            .collect()
    });
    match words {
        Some(words) if !words.is_empty() => Some(Check::Contains {
            words,
            operator,
            case_sensitive: true,
        }),
        _ => {
            err.at(
                "parameters.words",
                "required: a non-empty list of non-empty strings",
            );
            None
        }
    }
}

/// `default.regexMatch`: `rule` (required), `not`. Passes when the rule matches (with `not`:
/// when it does not), so it fails — and a `deny` hook blocks — on the other side.
fn regex_match(params: &Map<String, Value>, err: &mut FieldErrors) -> Option<Check> {
    unknown_params(params, &["rule", "not"], err);
    let not = not_param(params, err);
    let Some(rule) = params.get("rule").and_then(Value::as_str) else {
        err.at("parameters.rule", "required: the regular expression");
        return None;
    };
    let regex = compile_regex(rule, "parameters.rule", err)?;
    Some(Check::Regex {
        regex,
        must_match: !not,
    })
}

/// `default.wordCount` / `default.characterCount`: the bounds (Portkey's defaults 0 and
/// 99 999 / 9 999 999 where one is missing), `not`. Passes inside the range.
fn range(
    kind: CheckKind,
    [min_key, max_key]: [&str; 2],
    params: &Map<String, Value>,
    err: &mut FieldErrors,
) -> Option<Check> {
    unknown_params(params, &[min_key, max_key, "not"], err);
    let not = not_param(params, err);
    let default_max = match kind {
        CheckKind::CharacterCount => 9_999_999,
        _ => 99_999,
    };
    let mut bound = |key: &str, default: u64| match params.get(key) {
        None => Some(default),
        Some(v) => v.as_u64().or_else(|| {
            err.at(&format!("parameters.{key}"), "must be a whole number ≥ 0");
            None
        }),
    };
    let (min, max) = (bound(min_key, 0)?, bound(max_key, default_max)?);
    if min > max {
        err.at(
            &format!("parameters.{min_key}"),
            format!("{min} is greater than {max_key} ({max})"),
        );
        return None;
    }
    let check = counted(kind, Some(min), Some(max), err)?;
    Some(if not {
        Check::Not(Box::new(check))
    } else {
        check
    })
}

/// `default.jsonSchema` (output only): `schema` (required), `not`.
fn json_check(params: &Map<String, Value>, err: &mut FieldErrors) -> Option<Check> {
    unknown_params(params, &["schema", "not"], err);
    let not = not_param(params, err);
    let schema = params.get("schema");
    let path = format!("{}.parameters", err.path);
    let mut nested = FieldErrors {
        path: &path,
        errors: &mut *err.errors,
    };
    let check = json_schema(Stage::Output, schema, "schema", &mut nested)?;
    Some(if not {
        Check::Not(Box::new(check))
    } else {
        check
    })
}
