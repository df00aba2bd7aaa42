//! An attempt on a target with input guardrails of its own: they run on the request (as the
//! config's left it); a denial is a 446 failure the fallback may move on from (as in Portkey),
//! a redaction sends this target the redacted text.

use super::failure::{failure, Reply};
use super::hold::Prepared;
use super::runner::AttemptRunner;
use crate::config::Target;
use crate::guardrails::report::{Denial, DENIED_STATUS};
use crate::guardrails::{self, Evaluation, Guardrails};
use crate::router::{Failure, FailureKind};
use crate::telemetry::AttemptRecord;

impl AttemptRunner<'_> {
    pub(super) async fn prepare_screened(
        &self,
        leaf: &Target,
        set: &Guardrails,
        record: Box<AttemptRecord>,
    ) -> Result<Box<Prepared>, Failure<Reply>> {
        let Some(mut json) = self.request.json.clone() else {
            return self.prepare(leaf, record).await;
        };
        let (eval, body) = guardrails::text::screen_request(set, self.request.format, &mut json);
        eval.record(self.metrics, self.config);
        let mut input: Vec<Evaluation> =
            self.screened.map(|s| s.eval.clone()).into_iter().collect();
        if eval.denied() {
            input.push(eval);
            let denial = Denial {
                input,
                output: None,
            };
            return Err(failure(
                FailureKind::Status(DENIED_STATUS),
                Reply::Guardrail(Box::new(denial)),
            ));
        }
        let redacted = body.map(|b| self.request.with_body(b, json));
        let result = match &redacted {
            Some(request) => {
                let runner = AttemptRunner { request, ..*self };
                runner.prepare(leaf, record).await
            }
            None => self.prepare(leaf, record).await,
        };
        let failed = eval.any_failed();
        match result {
            Ok(mut p) if failed => {
                p.guard.get_or_insert_default().input = Some(eval);
                Ok(p)
            }
            Err(mut f) => {
                if let Reply::Guardrail(d) = &mut f.detail {
                    d.input.push(eval);
                }
                Err(f)
            }
            other => other,
        }
    }
}
