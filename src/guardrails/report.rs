//! What the client learns about guardrail results, in Portkey's shapes where Portkey has them:
//!
//! - deny → **446** with an error body (`type: hooks_failed`, in the client's format) that names
//!   the failed checks, plus `hook_results`;
//! - warn → the answer with status **246** (only a 200 becomes 246; a provider error keeps its
//!   status) and, for a JSON body, `hook_results` added to it;
//! - either way the header `x-switchyard-guardrails-failed: input:contains,output:no_pii`
//!   (`<list>:<check id>`, comma-separated).
//!
//! `hook_results` is `{ "before_request_hooks": [...], "after_request_hooks": [...] }`, each entry
//! one list: `{ id, verdict, deny, enforced, checks: [{ id, check, verdict, action, redacted,
//! explanation }] }`.

use bytes::Bytes;
use serde_json::{json, Value};

use super::{Action, Evaluation, Stage, Verdict};
use crate::providers::ClientFormat;

/// Portkey's status for a request or response stopped by a guardrail.
pub const DENIED_STATUS: u16 = 446;
/// Portkey's status for an answer delivered although a guardrail failed.
pub const WARNED_STATUS: u16 = 246;
/// Lists the failed checks.
pub const FAILED_HEADER: &str = crate::vocab::headers::GUARDRAILS_FAILED;

fn hook(eval: &Evaluation) -> Value {
    let checks: Vec<Value> = eval
        .results
        .iter()
        .map(|r| {
            let mut check = json!({
                "id": r.id,
                "check": r.kind,
                "verdict": r.verdict != Verdict::Fail,
                "action": r.action.as_str(),
                "redacted": r.verdict == Verdict::Redacted,
                "explanation": r.explanation,
            });
            if let (Some(m), Some(obj)) = (&r.message, check.as_object_mut()) {
                obj.insert("message".into(), Value::from(m.as_ref()));
            }
            check
        })
        .collect();
    json!({
        "id": format!("{}_guardrails", eval.stage.as_str()),
        "type": "guardrail",
        "verdict": !eval.any_failed(),
        "deny": eval.failed().any(|r| r.action == Action::Deny),
        "enforced": eval.enforced,
        "checks": checks,
    })
}

/// The `hook_results` object.
pub fn hook_results(input: &[&Evaluation], output: Option<&Evaluation>) -> Value {
    json!({
        "before_request_hooks": input.iter().map(|e| hook(e)).collect::<Vec<_>>(),
        "after_request_hooks": output.map(hook).into_iter().collect::<Vec<_>>(),
    })
}

/// `input:contains,output:json_schema` for the failed checks, `None` when none failed.
pub fn failed_header<'a>(evals: impl IntoIterator<Item = &'a Evaluation>) -> Option<String> {
    let mut out = String::new();
    for e in evals {
        for r in e.failed() {
            if !out.is_empty() {
                out.push(',');
            }
            out.push_str(e.stage.as_str());
            out.push(':');
            out.push_str(&r.id);
        }
    }
    (!out.is_empty()).then_some(out)
}

/// `body` (a JSON object) with `hook_results` added; `None` if it is not a JSON object.
pub fn with_hook_results(body: &[u8], results: Value) -> Option<Bytes> {
    let mut v: Value = serde_json::from_slice(body).ok()?;
    v.as_object_mut()?.insert("hook_results".into(), results);
    serde_json::to_vec(&v).ok().map(Bytes::from)
}

/// A request or response stopped by a guardrail: what the client gets instead.
#[derive(Debug, Clone)]
pub struct Denial {
    /// The request's input results (config and target level).
    pub input: Vec<Evaluation>,
    /// The output results, when the answer was stopped.
    pub output: Option<Evaluation>,
}

impl Denial {
    /// The stage that stopped it.
    fn stage(&self) -> Stage {
        match &self.output {
            Some(o) if o.blocks() => Stage::Output,
            _ => Stage::Input,
        }
    }

    fn message(&self) -> String {
        let stage = self.stage();
        let evals: Vec<&Evaluation> = match stage {
            Stage::Input => self.input.iter().collect(),
            Stage::Output => self.output.iter().collect(),
        };
        // A check's own `message` (the tutorial's spelling) is what the client reads.
        let mut configured: Vec<&str> = Vec::new();
        for r in evals.iter().flat_map(|e| e.failed()) {
            if let Some(m) = r.message.as_deref().filter(|_| r.action == Action::Deny) {
                if !configured.contains(&m) {
                    configured.push(m);
                }
            }
        }
        if !configured.is_empty() {
            return configured.join(" ");
        }
        let mut failed = Vec::new();
        for e in evals {
            for r in e.failed() {
                match &r.explanation {
                    Some(why) => failed.push(format!("{} ({why})", r.id)),
                    None => failed.push(r.id.clone()),
                }
            }
        }
        format!(
            "The {} guardrails failed: {}. See `hook_results` for every check.",
            stage.as_str(),
            failed.join("; ")
        )
    }

    /// The 446 body in the client's format.
    pub fn body(&self, client: ClientFormat) -> Bytes {
        let input: Vec<&Evaluation> = self.input.iter().collect();
        let results = hook_results(&input, self.output.as_ref());
        let message = self.message();
        let v = match client {
            ClientFormat::OpenAi | ClientFormat::Responses => json!({
                "error": {
                    "message": message,
                    "type": "hooks_failed",
                    "param": null,
                    "code": format!("{}_guardrails_failed", self.stage().as_str()),
                },
                "hook_results": results,
            }),
            ClientFormat::Anthropic => json!({
                "type": "error",
                "error": {"type": "hooks_failed", "message": message},
                "hook_results": results,
            }),
            ClientFormat::Gemini => json!({
                "error": {"code": 446, "message": message, "status": "FAILED_PRECONDITION"},
                "hook_results": results,
            }),
        };
        Bytes::from(v.to_string())
    }

    /// The header naming the failed checks.
    pub fn header(&self) -> Option<String> {
        failed_header(self.input.iter().chain(self.output.iter()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guardrails::CheckResult;

    fn eval(stage: Stage, failed: bool, action: Action) -> Evaluation {
        Evaluation {
            stage,
            enforced: true,
            results: vec![CheckResult {
                id: "contains".into(),
                kind: "contains",
                verdict: if failed { Verdict::Fail } else { Verdict::Pass },
                action,
                fallback: false,
                retry: false,
                message: None,
                explanation: failed.then(|| "the word \"x\" occurs".to_string()),
            }],
        }
    }

    #[test]
    fn denial_bodies_name_the_checks() {
        let d = Denial {
            input: vec![eval(Stage::Input, true, Action::Deny)],
            output: None,
        };
        let v: Value = serde_json::from_slice(&d.body(ClientFormat::OpenAi)).unwrap();
        assert_eq!(v["error"]["type"], "hooks_failed");
        assert_eq!(v["error"]["code"], "input_guardrails_failed");
        assert!(v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("contains (the word \"x\" occurs)"));
        assert_eq!(
            v["hook_results"]["before_request_hooks"][0]["verdict"],
            false
        );
        assert_eq!(d.header().as_deref(), Some("input:contains"));
        let a: Value = serde_json::from_slice(&d.body(ClientFormat::Anthropic)).unwrap();
        assert_eq!(a["type"], "error");
        assert_eq!(a["error"]["type"], "hooks_failed");
    }

    #[test]
    fn header_lists_every_failure() {
        let i = eval(Stage::Input, true, Action::Warn);
        let o = eval(Stage::Output, true, Action::Warn);
        let p = eval(Stage::Output, false, Action::Warn);
        assert_eq!(
            failed_header([&i, &o, &p]).as_deref(),
            Some("input:contains,output:contains")
        );
        assert_eq!(failed_header([&p]), None);
    }

    #[test]
    fn hook_results_are_added_to_objects_only() {
        assert!(with_hook_results(b"[1]", json!({})).is_none());
        let b = with_hook_results(br#"{"id":"x"}"#, json!({"a":1})).unwrap();
        let v: Value = serde_json::from_slice(&b).unwrap();
        assert_eq!(v, json!({"id": "x", "hook_results": {"a": 1}}));
    }
}
