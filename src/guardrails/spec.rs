//! How a guardrail is written in the config file (DESIGN.md §4): one flat mapping per check,
//! `deny_unknown_fields`, validated and compiled by [`super::compile`].
//!
//! ```yaml
//! input_guardrails:
//!   - { check: contains, words: [password, ssn], operator: none, action: deny }
//!   - { check: pii, action: redact }
//! output_guardrails:
//!   - { check: json_schema, schema: { type: object, required: [answer] }, action: deny, on_fail: fallback }
//! ```

use serde::Deserialize;

/// One entry of `input_guardrails` / `output_guardrails`. Which fields apply depends on `check`;
/// a field that does not apply to the check is an error at load.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GuardrailSpec {
    pub check: CheckKind,
    /// The name the check reports under (metric `check` label, `hook_results`, the
    /// `x-switchyard-guardrails-failed` header); default: the check kind.
    pub name: Option<String>,
    /// `warn` (default), `deny`, or `redact` (`pii` only).
    pub action: Option<ActionSpec>,
    /// `fallback`: an output failure moves on to the next target (`output_guardrails` only).
    pub on_fail: Option<OnFailSpec>,
    /// `contains`: the words (substrings) looked for.
    pub words: Option<Vec<String>>,
    /// `contains`: `any` (default), `all` or `none` of the words must occur.
    pub operator: Option<OperatorSpec>,
    /// `contains`: compare case-sensitively (default false).
    pub case_sensitive: Option<bool>,
    /// `regex`: the pattern (Rust `regex` syntax). By default the check fails when it matches.
    pub pattern: Option<String>,
    /// `regex`: fail when the pattern does NOT match instead (an allow pattern).
    pub must_match: Option<bool>,
    /// `word_count` / `character_count`: inclusive bounds on the whitespace-separated words, or
    /// on the characters (UTF-16 units, as Portkey's `characterCount` counts them).
    pub min: Option<u64>,
    pub max: Option<u64>,
    /// `json_schema`: the JSON Schema the output must validate against.
    pub schema: Option<serde_json::Value>,
    /// `pii`: which entities to look for; default all.
    pub entities: Option<Vec<PiiEntity>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckKind {
    Contains,
    Regex,
    WordCount,
    CharacterCount,
    JsonSchema,
    Pii,
}

impl CheckKind {
    pub fn as_str(self) -> &'static str {
        match self {
            CheckKind::Contains => "contains",
            CheckKind::Regex => "regex",
            CheckKind::WordCount => "word_count",
            CheckKind::CharacterCount => "character_count",
            CheckKind::JsonSchema => "json_schema",
            CheckKind::Pii => "pii",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ActionSpec {
    Deny,
    Warn,
    Redact,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnFailSpec {
    Fallback,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OperatorSpec {
    Any,
    All,
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PiiEntity {
    Email,
    Phone,
    CreditCard,
}

impl PiiEntity {
    pub const ALL: [PiiEntity; 3] = [PiiEntity::Email, PiiEntity::Phone, PiiEntity::CreditCard];

    pub fn as_str(self) -> &'static str {
        match self {
            PiiEntity::Email => "email",
            PiiEntity::Phone => "phone",
            PiiEntity::CreditCard => "credit_card",
        }
    }
}
