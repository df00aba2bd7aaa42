//! Input and output guardrails (DESIGN.md §4, issue 10): checks on the request's message text
//! before any provider sees it, and on the assistant's answer before it reaches the client.
//!
//! - [`spec`]: how a guardrail is written; [`compile`]: validation (with YAML paths) into a
//!   [`Guardrails`] list, everything expensive (regexes, JSON schemas) built once. The other
//!   spellings accepted as written — Portkey's shorthand and hooks ([`item`], [`portkey`]) and
//!   the tutorial's `guardrails: {input, output}` ([`tutorial`]) — compile into the same
//!   [`Guard`]s; [`node`] gathers a config node's lists in every spelling.
//! - [`check`]: the checks (`contains`, `regex`, `word_count`, `json_schema`, `pii`);
//!   [`pii`]: e-mail / phone / Luhn-checked card detection and redaction.
//! - [`text`]: which text of a request or response is checked, and writing redactions back;
//!   [`stream`]: the assistant text of a stream, assembled as it is relayed.
//! - [`report`]: what the client sees — 446 bodies, the 246 status with its header and
//!   `hook_results`, the final stream event.
//!
//! A config without guardrails pays nothing: the lists are `Option<Arc<Guardrails>>` on the
//! compiled target settings, and every hook on the request path is an `if let Some`.

pub mod check;
pub mod compile;
pub mod item;
pub mod node;
pub mod pii;
pub mod portkey;
pub mod report;
pub mod spec;
pub mod stream;
pub mod text;
pub mod tutorial;

use std::sync::Arc;

pub use compile::compile;
pub use item::GuardrailItem;
pub use node::{compile_node, NodeLists};
pub use portkey::HookSpec;
pub use spec::GuardrailSpec;
pub use tutorial::TutorialGuardrails;

use crate::telemetry::metrics::GuardrailLabels;
use crate::telemetry::Metrics;
use check::Check;

/// Which list a guardrail belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// `input_guardrails`: the request's messages, before the provider.
    Input,
    /// `output_guardrails`: the assistant's answer, before the client.
    Output,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Input => "input",
            Stage::Output => "output",
        }
    }
}

/// What a failed check does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// 446 (Portkey's "hooks failed" status) instead of the answer.
    Deny,
    /// The answer passes with status 246 and the failed checks listed.
    Warn,
    /// `pii` only: replace what it found and let the text pass.
    Redact,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Deny => "deny",
            Action::Warn => "warn",
            Action::Redact => "redact",
        }
    }
}

/// One configured guardrail.
#[derive(Debug)]
pub struct Guard {
    /// `name`, else the check kind: the metric `check` label and the reported id.
    pub id: String,
    pub check: Check,
    pub action: Action,
    /// `on_fail: fallback` (output only): a failure moves on to the next target.
    pub fallback: bool,
    /// `action: retry` (output only): a failure calls the same target again first.
    pub retry: bool,
    /// What the client reads when this check blocks (the tutorial's `message`).
    pub message: Option<Arc<str>>,
}

/// One compiled `input_guardrails` or `output_guardrails` list (never empty).
#[derive(Debug)]
pub struct Guardrails {
    pub stage: Stage,
    pub guards: Vec<Guard>,
}

/// The verdict of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    Fail,
    /// `pii` with `action: redact` found something and replaced it.
    Redacted,
}

/// One check's result, for reports and metrics.
#[derive(Debug, Clone)]
pub struct CheckResult {
    pub id: String,
    pub kind: &'static str,
    pub verdict: Verdict,
    pub action: Action,
    pub fallback: bool,
    /// `action: retry`: a failure calls the same target again first.
    pub retry: bool,
    /// The configured message shown when this check blocks.
    pub message: Option<Arc<str>>,
    /// Why it failed (or what was redacted).
    pub explanation: Option<String>,
}

/// The results of one list on one request or response.
#[derive(Debug, Clone)]
pub struct Evaluation {
    pub stage: Stage,
    pub results: Vec<CheckResult>,
    /// `false` on a stream after its commit point: a failure could only be reported.
    pub enforced: bool,
}

impl Evaluation {
    /// The failed checks.
    pub fn failed(&self) -> impl Iterator<Item = &CheckResult> {
        self.results.iter().filter(|r| r.verdict == Verdict::Fail)
    }

    /// A failed check denies.
    pub fn denied(&self) -> bool {
        self.enforced && self.failed().any(|r| r.action == Action::Deny)
    }

    /// A failed check asks for the next target (`on_fail: fallback`).
    pub fn falls_back(&self) -> bool {
        self.enforced && self.failed().any(|r| r.fallback)
    }

    /// A failed check asks for another answer from the same target (`action: retry`).
    pub fn retries(&self) -> bool {
        self.enforced && self.failed().any(|r| r.retry)
    }

    /// Whether the answer must not be delivered as it is (deny, or fallback).
    pub fn blocks(&self) -> bool {
        self.denied() || self.falls_back()
    }

    pub fn any_failed(&self) -> bool {
        self.failed().next().is_some()
    }

    /// Counts `switchyard_guardrail_verdicts_total{config,check,verdict}`: `pass`, `redact`, or
    /// for a failure what was done about it — `deny`, `fallback`, `warn` (also a deny that could
    /// not be enforced on a stream after its commit point).
    pub fn record(&self, metrics: &Metrics, config: &str) {
        for r in &self.results {
            let verdict = match r.verdict {
                Verdict::Pass => "pass",
                Verdict::Redacted => "redact",
                Verdict::Fail if !self.enforced => "warn",
                Verdict::Fail if r.fallback => "fallback",
                Verdict::Fail => match r.action {
                    Action::Deny => "deny",
                    Action::Warn | Action::Redact => "warn",
                },
            };
            metrics
                .guardrail_verdicts_total
                .with(&GuardrailLabels {
                    config,
                    check: &r.id,
                    verdict,
                })
                .inc();
        }
    }
}

impl Guardrails {
    /// Runs every check, in order, over `texts` (the pieces of text of one request or response;
    /// the non-redacting checks see them joined with `\n`). A redacting `pii` check rewrites the
    /// pieces in place, and the checks after it see the redacted text; when not `enforced` (a
    /// stream after its commit) it only reports what it finds. Returns the results and whether
    /// anything was redacted.
    pub fn run(&self, texts: &mut [String], enforced: bool) -> (Evaluation, bool) {
        let mut joined: Option<String> = None;
        let mut redacted_any = false;
        let mut results = Vec::with_capacity(self.guards.len());
        for g in &self.guards {
            let (verdict, explanation) = match (&g.check, g.action) {
                // Redaction needs the text still in our hands (not a stream past its commit).
                (Check::Pii { detector }, Action::Redact) if enforced => {
                    let mut found = Vec::new();
                    for t in texts.iter_mut() {
                        if let Some((clean, f)) = detector.redact(t) {
                            *t = clean;
                            found.extend(f.into_iter().map(|f| f.entity.as_str()));
                        }
                    }
                    if found.is_empty() {
                        (Verdict::Pass, None)
                    } else {
                        redacted_any = true;
                        joined = None;
                        found.sort_unstable();
                        found.dedup();
                        (
                            Verdict::Redacted,
                            Some(format!("redacted {}", found.join(", "))),
                        )
                    }
                }
                (check, _) => {
                    let text = joined.get_or_insert_with(|| texts.join("\n"));
                    match check.run(text) {
                        Ok(()) => (Verdict::Pass, None),
                        Err(why) => (Verdict::Fail, Some(why)),
                    }
                }
            };
            results.push(CheckResult {
                id: g.id.clone(),
                kind: g.check.kind().as_str(),
                verdict,
                action: g.action,
                fallback: g.fallback,
                retry: g.retry,
                message: g.message.clone(),
                explanation,
            });
        }
        (
            Evaluation {
                stage: self.stage,
                results,
                enforced,
            },
            redacted_any,
        )
    }
}

/// Whether two optional lists are the same compiled list (a target that inherits its parent's).
pub fn same(a: Option<&Arc<Guardrails>>, b: Option<&Arc<Guardrails>>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => Arc::ptr_eq(a, b),
        (None, None) => true,
        _ => false,
    }
}

/// The config's input list as the proxy applied it before routing.
#[derive(Debug)]
pub struct Screened {
    /// The list applied; a target that inherits it is not checked again.
    pub applied: Arc<Guardrails>,
    pub eval: Evaluation,
}

/// What one attempt's guardrails found, carried to the commit: its target's own input results
/// (when the target has a list of its own), the output results of a whole body, and the output
/// guard of a stream.
#[derive(Default)]
pub struct AttemptChecks {
    pub input: Option<Evaluation>,
    pub output: Option<Evaluation>,
    pub stream: Option<stream::StreamGuard>,
}

/// What the commit of an answer adds: whether it becomes a 246, the failed-checks header, and
/// the `hook_results` for a whole body.
pub struct CommitReport {
    pub warned: bool,
    pub header: Option<String>,
    /// Every input result (for a stream's final event too).
    pub input: Vec<Evaluation>,
    pub output: Option<Evaluation>,
}

impl CommitReport {
    /// `None` when no guardrail ran for this answer.
    pub fn new(
        screened: Option<&Screened>,
        checks: Option<&AttemptChecks>,
    ) -> Option<CommitReport> {
        if screened.is_none() && checks.is_none_or(|c| c.input.is_none() && c.output.is_none()) {
            return None;
        }
        let mut input: Vec<Evaluation> = screened.map(|s| s.eval.clone()).into_iter().collect();
        input.extend(checks.and_then(|c| c.input.clone()));
        let output = checks.and_then(|c| c.output.clone());
        let header = report::failed_header(input.iter().chain(output.iter()));
        Some(CommitReport {
            warned: header.is_some(),
            header,
            input,
            output,
        })
    }

    /// The `hook_results` object.
    pub fn hook_results(&self) -> serde_json::Value {
        let input: Vec<&Evaluation> = self.input.iter().collect();
        report::hook_results(&input, self.output.as_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::ClientFormat;
    use proptest::prelude::*;

    fn every_check(stage: Stage) -> Arc<Guardrails> {
        let mut list = serde_json::json!([
            {"check": "contains", "words": ["secret", "ünïcode"], "operator": "none", "action": "deny"},
            {"check": "contains", "words": ["a", "b"], "operator": "all", "case_sensitive": true},
            {"check": "regex", "pattern": "\\d{3}-\\d{2}", "action": "deny"},
            {"check": "word_count", "min": 1, "max": 5},
            {"check": "pii", "action": "redact"},
            {"check": "pii", "name": "pii_after", "action": "deny"}
        ]);
        if stage == Stage::Output {
            if let Some(l) = list.as_array_mut() {
                l.push(serde_json::json!({"check": "json_schema", "schema": {"type": "object"}, "on_fail": "fallback"}));
            }
        }
        let specs: Vec<GuardrailSpec> = serde_json::from_value(list).unwrap();
        compile(stage, &specs, "x").unwrap().unwrap()
    }

    #[test]
    fn later_checks_see_redacted_text() {
        let set = every_check(Stage::Input);
        let mut texts = vec!["mail a@b.io".to_string()];
        let (eval, redacted) = set.run(&mut texts, true);
        assert!(redacted);
        assert_eq!(texts[0], "mail [REDACTED_EMAIL]");
        let after = eval.results.iter().find(|r| r.id == "pii_after").unwrap();
        assert_eq!(after.verdict, Verdict::Pass);
        let pii = eval.results.iter().find(|r| r.id == "pii").unwrap();
        assert_eq!(pii.verdict, Verdict::Redacted);
        // Not enforced (a stream past its commit): found and reported, nothing rewritten.
        let mut texts = vec!["mail a@b.io".to_string()];
        let (eval, redacted) = set.run(&mut texts, false);
        assert!(!redacted && !eval.denied());
        assert_eq!(texts[0], "mail a@b.io");
        assert!(eval.failed().any(|r| r.id == "pii"));
    }

    #[test]
    fn screen_request_rewrites_only_after_a_redaction() {
        let set = every_check(Stage::Input);
        let mut json = serde_json::json!({"messages": [{"role": "user", "content": "hi a@b.io"}]})
            .as_object()
            .cloned()
            .unwrap();
        let (eval, body) = text::screen_request(&set, Some(ClientFormat::OpenAi), &mut json);
        let body: serde_json::Value = serde_json::from_slice(&body.unwrap()).unwrap();
        assert_eq!(body["messages"][0]["content"], "hi [REDACTED_EMAIL]");
        assert!(!eval.denied());
        let mut clean = serde_json::json!({"messages": [{"role": "user", "content": "hi"}]})
            .as_object()
            .cloned()
            .unwrap();
        assert!(
            text::screen_request(&set, Some(ClientFormat::OpenAi), &mut clean)
                .1
                .is_none()
        );
    }

    fn json_value() -> impl Strategy<Value = serde_json::Value> {
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::from),
            any::<i64>().prop_map(serde_json::Value::from),
            "\\PC{0,40}".prop_map(serde_json::Value::from),
        ];
        leaf.prop_recursive(4, 40, 5, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..5).prop_map(serde_json::Value::from),
                proptest::collection::btree_map(
                    prop_oneof![
                        Just("messages".to_string()),
                        Just("content".to_string()),
                        Just("text".to_string()),
                        Just("type".to_string()),
                        Just("system".to_string()),
                        Just("choices".to_string()),
                        Just("message".to_string()),
                        Just("prompt".to_string()),
                        "[a-z]{1,4}",
                    ],
                    inner,
                    0..5
                )
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn no_input_panics(v in json_value(), text in "\\PC{0,300}", bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let input = every_check(Stage::Input);
            let output = every_check(Stage::Output);
            for format in [Some(ClientFormat::OpenAi), Some(ClientFormat::Anthropic), None] {
                if let serde_json::Value::Object(mut map) = v.clone() {
                    let _ = text::screen_request(&input, format, &mut map);
                }
                let body = serde_json::to_vec(&v).unwrap();
                let _ = text::screen_response(&output, format, &body);
                let _ = text::screen_response(&output, format, &bytes);
                let mut guard = stream::StreamGuard::new(output.clone(), format);
                let _ = guard.relay(&bytes);
                let _ = guard.relay(text.as_bytes());
                let _ = guard.finish(&[]);
            }
            let mut texts = vec![text.clone(), String::new()];
            let (eval, _) = input.run(&mut texts, true);
            let _ = report::failed_header([&eval]);
        }
    }
}

/// `cargo test --release --lib guardrails::cost -- --ignored --nocapture`: what screening one
/// typical request and one answer costs (printed, not asserted: timing goals go to benches).
#[cfg(test)]
mod cost {
    use super::*;
    use crate::providers::ClientFormat;
    use std::time::Instant;

    #[test]
    #[ignore]
    fn screening_cost_per_request() {
        let text = std::fs::read_to_string("conf/examples/guardrails.yaml").unwrap();
        let snapshot = crate::config::load_str(&text, None).unwrap();
        let input = snapshot.configs["screened"]
            .root
            .settings
            .input_guardrails
            .clone()
            .unwrap();
        let output = snapshot.configs["audited"]
            .root
            .settings
            .output_guardrails
            .clone()
            .unwrap();
        let request = serde_json::json!({"model": "gpt-4o-mini", "messages": [
            {"role": "system", "content": "You are a helpful assistant for an online shop. Answer briefly."},
            {"role": "user", "content": "Where is my order 12345? It was due last Tuesday and I paid with my usual card."},
            {"role": "assistant", "content": "Let me check the status of order 12345 for you."},
            {"role": "user", "content": "Thanks, please hurry, I need it for the weekend."}
        ]});
        let answer = serde_json::json!({"id": "x", "object": "chat.completion", "choices": [{"index": 0,
            "message": {"role": "assistant", "content": "Your order 12345 left the warehouse yesterday and should arrive on Friday before noon."},
            "finish_reason": "stop"}]});
        let answer = serde_json::to_vec(&answer).unwrap();
        let n = 20_000u32;
        let started = Instant::now();
        for _ in 0..n {
            let mut map = request.as_object().cloned().unwrap();
            let (eval, _) = text::screen_request(&input, Some(ClientFormat::OpenAi), &mut map);
            assert!(!eval.any_failed());
        }
        let per_input = started.elapsed() / n;
        let started = Instant::now();
        for _ in 0..n {
            let (eval, _) = text::screen_response(&output, Some(ClientFormat::OpenAi), &answer);
            assert!(!eval.denied());
        }
        let per_output = started.elapsed() / n;
        println!("input list of 4 checks on a 4-message request: {per_input:?} per request (clone of the parsed body included)");
        println!("output list of 2 checks on a chat completion: {per_output:?} per answer (JSON parse included)");
    }
}
