//! One AdmissionReview in, one AdmissionReview out, no I/O: the decision the webhook server
//! wraps. Only a Pod CREATE is mutated; anything else is allowed as it is. Nothing here ever
//! refuses a pod: the webhook runs with `failurePolicy: Ignore`, and an injection problem or a
//! malformed review becomes a warning on an allowing response (HTTP 200), never an error status.
//!
//! The patch is the JSON Patch from the object exactly as received to the injected object: the
//! object is read as raw JSON (never through typed metadata), so fields this build does not
//! know are neither dropped nor rewritten by the patch.

use base64::Engine;
use serde_json::{json, Map, Value};

use crate::inject::{inject_pod, Defaults, Outcome};

/// The only AdmissionReview version served (the webhook's `admissionReviewVersions: ["v1"]`).
const API_VERSION: &str = "admission.k8s.io/v1";
const KIND: &str = "AdmissionReview";
/// Longest name piece put in a workload name: Kubernetes names are at most 253 characters, so
/// anything longer is not a real name and is cut.
const MAX_NAME: usize = 253;

/// What a review came to: the `result` label of `switchyard_injector_requests_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Injected,
    Updated,
    Unchanged,
    OptedOut,
    /// Not a Pod CREATE: allowed untouched.
    Skipped,
    /// `inject_pod` refused the pod: allowed untouched, with the reason as a warning.
    Refused,
    /// Not a readable AdmissionReview v1 (or too large, or too slow to arrive).
    Malformed,
}

impl Verdict {
    /// Every verdict, for pre-registering the metric's label values.
    pub const ALL: [Verdict; 7] = [
        Verdict::Injected,
        Verdict::Updated,
        Verdict::Unchanged,
        Verdict::OptedOut,
        Verdict::Skipped,
        Verdict::Refused,
        Verdict::Malformed,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Verdict::Injected => "injected",
            Verdict::Updated => "updated",
            Verdict::Unchanged => "unchanged",
            Verdict::OptedOut => "opted_out",
            Verdict::Skipped => "skipped",
            Verdict::Refused => "refused",
            Verdict::Malformed => "malformed",
        }
    }
}

impl From<Outcome> for Verdict {
    fn from(outcome: Outcome) -> Self {
        match outcome {
            Outcome::Injected => Verdict::Injected,
            Outcome::Updated => Verdict::Updated,
            Outcome::Unchanged => Verdict::Unchanged,
            Outcome::OptedOut => Verdict::OptedOut,
        }
    }
}

/// A reviewed request: the verdict, the AdmissionReview to answer with, and what to log.
#[derive(Debug)]
pub struct Reviewed {
    pub verdict: Verdict,
    /// The response AdmissionReview, serialized.
    pub body: Vec<u8>,
    /// `request.uid`, or empty when none could be read.
    pub uid: String,
    /// The pod's workload (`namespace/Kind/name`), when a pod was reviewed.
    pub workload: Option<String>,
    /// Why the review was malformed or the pod refused (it is also a response warning).
    pub problem: Option<String>,
}

/// The fields of an allowing response that vary.
#[derive(Default)]
struct Allow {
    uid: String,
    patch: Option<json_patch::Patch>,
    warnings: Vec<String>,
}

impl Allow {
    fn into_body(self) -> Vec<u8> {
        let mut response = Map::new();
        response.insert("uid".into(), Value::String(self.uid));
        response.insert("allowed".into(), Value::Bool(true));
        if let Some(patch) = self.patch {
            // A Go `[]byte`: base64 in JSON. A Patch always serializes (a list of plain ops).
            let bytes = serde_json::to_vec(&patch).unwrap_or_else(|_| b"[]".to_vec());
            let encoded = base64::engine::general_purpose::STANDARD.encode(bytes);
            response.insert("patchType".into(), Value::String("JSONPatch".into()));
            response.insert("patch".into(), Value::String(encoded));
        }
        if !self.warnings.is_empty() {
            response.insert("warnings".into(), json!(self.warnings));
        }
        let review = json!({
            "apiVersion": API_VERSION,
            "kind": KIND,
            "response": Value::Object(response),
        });
        serde_json::to_vec(&review).unwrap_or_default()
    }
}

/// The answer to a request that is not a readable AdmissionReview: allowed, with `problem` as a
/// warning, and `uid` echoed (empty when none could be read).
pub fn malformed(uid: &str, problem: &str) -> Reviewed {
    let warning = format!("switchyard injector: {problem}; the pod was not injected");
    Reviewed {
        verdict: Verdict::Malformed,
        body: Allow {
            uid: uid.to_string(),
            patch: None,
            warnings: vec![warning],
        }
        .into_body(),
        uid: uid.to_string(),
        workload: None,
        problem: Some(problem.to_string()),
    }
}

/// `request.uid`, when the body has one.
fn find_uid(review: &Value) -> String {
    review
        .pointer("/request/uid")
        .and_then(Value::as_str)
        .map(|uid| uid.chars().take(MAX_NAME).collect())
        .unwrap_or_default()
}

/// Why `review` is not an AdmissionReview v1 with a request, or `None` when it is one.
fn envelope_problem(review: &Value) -> Option<String> {
    let Some(map) = review.as_object() else {
        return Some("the body is not a JSON object".into());
    };
    let field = |name: &str| map.get(name).and_then(Value::as_str).unwrap_or("");
    if field("kind") != KIND || field("apiVersion") != API_VERSION {
        return Some(format!(
            "expected kind {KIND} apiVersion {API_VERSION}, got kind {:?} apiVersion {:?}",
            truncate(field("kind")),
            truncate(field("apiVersion"))
        ));
    }
    let request = match map.get("request") {
        Some(Value::Object(request)) => request,
        _ => return Some("the AdmissionReview has no request".into()),
    };
    match request.get("uid").and_then(Value::as_str) {
        Some(uid) if !uid.is_empty() => None,
        _ => Some("the AdmissionReview request has no uid".into()),
    }
}

fn truncate(s: &str) -> String {
    s.chars().take(64).collect()
}

/// Whether the request is a CREATE of a Pod itself (not of a subresource such as
/// `pods/binding` or `pods/eviction`).
fn is_pod_create(request: &Value) -> bool {
    let str_at = |pointer: &str| request.pointer(pointer).and_then(Value::as_str);
    let kind_is_pod = str_at("/kind/group") == Some("")
        && str_at("/kind/version") == Some("v1")
        && str_at("/kind/kind") == Some("Pod");
    let no_subresource = str_at("/subResource").unwrap_or("").is_empty();
    kind_is_pod && no_subresource && str_at("/operation") == Some("CREATE")
}

/// The pod's workload for messages: `namespace/Kind/name` of its controller (an owner reference
/// with `controller: true`, else the first owner), else `namespace/Pod/<name or generateName>`.
pub fn workload(request: &Value, pod: &Value) -> String {
    let cut = |s: &str| s.chars().take(MAX_NAME).collect::<String>();
    let owners = pod
        .pointer("/metadata/ownerReferences")
        .and_then(Value::as_array);
    let owner = owners.and_then(|owners| {
        let named = |o: &&Value| o.get("kind").and_then(Value::as_str).is_some();
        (owners.iter().filter(named))
            .find(|o| o.get("controller").and_then(Value::as_bool) == Some(true))
            .or_else(|| owners.iter().find(named))
    });
    let str_of = |v: &Value, key: &str| v.get(key).and_then(Value::as_str).map(cut);
    let kind_name = match owner {
        Some(o) => format!(
            "{}/{}",
            str_of(o, "kind").unwrap_or_default(),
            str_of(o, "name").unwrap_or_default()
        ),
        None => {
            let meta = pod.get("metadata").unwrap_or(&Value::Null);
            let name = str_of(meta, "name").filter(|n| !n.is_empty());
            format!(
                "Pod/{}",
                name.or_else(|| str_of(meta, "generateName"))
                    .unwrap_or_default()
            )
        }
    };
    let namespace = str_of(request, "namespace")
        .or_else(|| {
            pod.pointer("/metadata/namespace")
                .and_then(Value::as_str)
                .map(cut)
        })
        .filter(|ns| !ns.is_empty());
    match namespace {
        Some(ns) => format!("{ns}/{kind_name}"),
        None => kind_name,
    }
}

/// Reviews one request body (an AdmissionReview v1, as JSON) with the injection `defaults`.
pub fn review(body: &[u8], defaults: &Defaults) -> Reviewed {
    let review: Value = match serde_json::from_slice(body) {
        Ok(review) => review,
        Err(e) => return malformed("", &format!("the body is not JSON ({e})")),
    };
    let uid = find_uid(&review);
    if let Some(problem) = envelope_problem(&review) {
        return malformed(&uid, &problem);
    }
    let request = review.get("request").unwrap_or(&Value::Null);
    if !is_pod_create(request) {
        return Reviewed {
            verdict: Verdict::Skipped,
            body: Allow {
                uid: uid.clone(),
                ..Allow::default()
            }
            .into_body(),
            uid,
            workload: None,
            problem: None,
        };
    }
    let original = match request.get("object") {
        Some(pod @ Value::Object(_)) => pod,
        _ => return malformed(&uid, "the Pod CREATE request has no object"),
    };
    let workload = workload(request, original);
    let mut injected = original.clone();
    let (verdict, allow, problem) = match inject_pod(&mut injected, defaults, &workload) {
        Ok(report) => {
            let patch = json_patch::diff(original, &injected);
            let allow = Allow {
                uid: uid.clone(),
                patch: (!patch.0.is_empty()).then_some(patch),
                warnings: report.warnings,
            };
            (Verdict::from(report.outcome), allow, None)
        }
        Err(e) => {
            let message = e.to_string();
            let allow = Allow {
                uid: uid.clone(),
                patch: None,
                warnings: vec![format!("switchyard: not injected: {message}")],
            };
            (Verdict::Refused, allow, Some(message))
        }
    };
    Reviewed {
        verdict,
        body: allow.into_body(),
        uid,
        workload: Some(workload),
        problem,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(reviewed: &Reviewed) -> Value {
        let v: Value = serde_json::from_slice(&reviewed.body).unwrap();
        assert_eq!(v["apiVersion"], API_VERSION);
        assert_eq!(v["kind"], KIND);
        assert_eq!(v["response"]["allowed"], true);
        v["response"].clone()
    }

    fn pod_review(operation: &str, object: Value) -> Value {
        json!({
            "apiVersion": API_VERSION, "kind": KIND,
            "request": {
                "uid": "u-1", "kind": {"group": "", "version": "v1", "kind": "Pod"},
                "resource": {"group": "", "version": "v1", "resource": "pods"},
                "namespace": "shop", "operation": operation, "object": object,
            }
        })
    }

    #[test]
    fn malformed_reviews_are_allowed_with_a_warning() {
        let d = Defaults::default();
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (b"not json".to_vec(), ""),
            (b"[1,2]".to_vec(), ""),
            (
                br#"{"apiVersion":"admission.k8s.io/v1beta1","kind":"AdmissionReview","request":{"uid":"x"}}"#
                    .to_vec(),
                "x",
            ),
            (br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}"#.to_vec(), ""),
            (
                br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":7}}"#
                    .to_vec(),
                "",
            ),
            (serde_json::to_vec(&pod_review("CREATE", json!("a string"))).unwrap(), "u-1"),
            (serde_json::to_vec(&pod_review("CREATE", Value::Null)).unwrap(), "u-1"),
        ];
        for (body, uid) in cases {
            let reviewed = review(&body, &d);
            assert_eq!(reviewed.verdict, Verdict::Malformed, "{body:?}");
            let r = response(&reviewed);
            assert_eq!(r["uid"], uid);
            assert!(r.get("patch").is_none());
            assert_eq!(r["warnings"].as_array().unwrap().len(), 1);
        }
    }

    #[test]
    fn only_a_pod_create_is_reviewed() {
        let d = Defaults::default();
        let pod = json!({"metadata": {"name": "p"}, "spec": {"containers": []}});
        let update = review(
            &serde_json::to_vec(&pod_review("UPDATE", pod.clone())).unwrap(),
            &d,
        );
        assert_eq!(update.verdict, Verdict::Skipped);
        assert_eq!(response(&update)["uid"], "u-1");
        let mut binding = pod_review("CREATE", pod.clone());
        binding["request"]["subResource"] = json!("binding");
        let binding = review(&serde_json::to_vec(&binding).unwrap(), &d);
        assert_eq!(binding.verdict, Verdict::Skipped);
        let mut deployment = pod_review("CREATE", pod);
        deployment["request"]["kind"] =
            json!({"group": "apps", "version": "v1", "kind": "Deployment"});
        let deployment = review(&serde_json::to_vec(&deployment).unwrap(), &d);
        assert_eq!(deployment.verdict, Verdict::Skipped);
        assert!(response(&deployment).get("patch").is_none());
    }

    #[test]
    fn workload_names_the_controller_else_the_pod() {
        let request = json!({"namespace": "shop"});
        let owned = json!({"metadata": {"generateName": "web-7d9f-", "ownerReferences": [
            {"kind": "Node", "name": "n1"},
            {"kind": "ReplicaSet", "name": "web-7d9f", "controller": true},
        ]}});
        assert_eq!(workload(&request, &owned), "shop/ReplicaSet/web-7d9f");
        let generated = json!({"metadata": {"generateName": "web-", "name": ""}});
        assert_eq!(workload(&request, &generated), "shop/Pod/web-");
        let named = json!({"metadata": {"name": "debug", "namespace": "ops"}});
        assert_eq!(workload(&json!({}), &named), "ops/Pod/debug");
        assert_eq!(workload(&json!({}), &json!({})), "Pod/");
        let long = "x".repeat(10_000);
        let huge = json!({"metadata": {"name": long}});
        assert_eq!(workload(&json!({}), &huge).len(), "Pod/".len() + MAX_NAME);
    }

    #[test]
    fn the_patch_is_the_diff_from_the_object_as_received() {
        // Whatever the injection does, applying the patch to the received object gives the
        // injected object: the diff is taken against the raw JSON.
        let pod = json!({
            "metadata": {"generateName": "web-", "unknownField": {"kept": true}},
            "spec": {"containers": [{"name": "web", "image": "web:1"}]},
        });
        let reviewed = review(
            &serde_json::to_vec(&pod_review("CREATE", pod.clone())).unwrap(),
            &Defaults::default(),
        );
        let r = response(&reviewed);
        let mut expected = pod.clone();
        let report = inject_pod(&mut expected, &Defaults::default(), "shop/Pod/web-").unwrap();
        assert_eq!(reviewed.verdict, Verdict::from(report.outcome));
        let mut patched = pod;
        if let Some(encoded) = r["patch"].as_str() {
            assert_eq!(r["patchType"], "JSONPatch");
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .unwrap();
            let patch: json_patch::Patch = serde_json::from_slice(&bytes).unwrap();
            json_patch::patch(&mut patched, &patch).unwrap();
        }
        assert_eq!(patched, expected);
    }
}
