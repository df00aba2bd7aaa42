//! Sidecar injection: adds the Switchyard native sidecar (and the app containers' base-URL or
//! proxy environment) to Kubernetes workloads. `switchyard inject` rewrites manifests with it;
//! `switchyard injector` (the admission webhook, `webhook/`) applies the same transformation to
//! pods as the API server creates them. The sidecar itself is defined once, in `sidecar.rs`.

mod manifest;
mod options;
mod pod;
mod sidecar;
mod tree;

pub use manifest::{rewrite, template_path, workload_name, Action, Rewritten, MAX_INPUT_BYTES};
pub use sidecar::{CONTAINER, LABEL};

use serde_json::Value;

pub mod webhook;

/// How the app reaches the sidecar.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// `OPENAI_BASE_URL` / `ANTHROPIC_BASE_URL` point at the sidecar.
    BaseUrl,
    /// `HTTPS_PROXY` points at the sidecar; the app trusts the Switchyard CA.
    ForwardProxy,
}

/// What an injection uses where the workload's `switchyard.dev/*` annotations say nothing: the
/// command-line flags of `switchyard inject` and `switchyard injector`.
#[derive(Clone, Debug)]
pub struct Defaults {
    /// The sidecar image (`switchyard.dev/image`).
    pub image: String,
    /// The gateway config's ConfigMap (`switchyard.dev/config`).
    pub config_map: String,
    /// The provider keys' Secret (`switchyard.dev/keys-secret`).
    pub keys_secret: String,
    /// The forward-proxy CA's Secret (`switchyard.dev/ca-secret`).
    pub ca_secret: String,
    /// `switchyard.dev/mode`.
    pub mode: Mode,
    /// The proxy port on 127.0.0.1 (`switchyard.dev/proxy-port`).
    pub proxy_port: u16,
    /// The admin port: probes and `/metrics` (`switchyard.dev/admin-port`).
    pub admin_port: u16,
}

impl Default for Defaults {
    fn default() -> Self {
        Self {
            image: format!("switchyard:{}", env!("CARGO_PKG_VERSION")),
            config_map: "switchyard-config".into(),
            keys_secret: "switchyard-provider-keys".into(),
            ca_secret: "switchyard-ca".into(),
            mode: Mode::BaseUrl,
            proxy_port: 8080,
            admin_port: 9090,
        }
    }
}

/// What an injection did to one pod (template).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The sidecar was added.
    Injected,
    /// The sidecar was there and is now what this version injects (image, settings).
    Updated,
    /// Already exactly what this version injects: nothing changed.
    Unchanged,
    /// `switchyard.dev/inject: disabled`: left alone.
    OptedOut,
}

impl Outcome {
    /// The word for it in summaries and metrics: `injected`, `updated`, `unchanged`, `opted_out`.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Injected => "injected",
            Outcome::Updated => "updated",
            Outcome::Unchanged => "unchanged",
            Outcome::OptedOut => "opted_out",
        }
    }
}

/// The result of injecting into one pod: the outcome and anything worth a warning.
#[derive(Clone, Debug)]
pub struct Report {
    pub outcome: Outcome,
    pub warnings: Vec<String>,
}

/// Why a pod cannot be injected; each message names the workload (`Deployment/checkout`).
#[derive(Debug, thiserror::Error)]
pub enum InjectError {
    #[error("{workload}: {message}")]
    Refused { workload: String, message: String },
}

/// Injects the sidecar into a Pod object (`{"metadata": …, "spec": …}`, as the API server sends
/// it), in place: the admission webhook's transformation. `workload` names it in errors and
/// warnings (`Pod/checkout-7d9f…`).
///
/// A pod that already has the sidecar is left as it is (`Unchanged`): its workload was injected
/// by `switchyard inject`, whose manifest stays the truth (its annotations may live on the
/// workload, which the webhook does not see; and a pod differing from its template would
/// confuse every rollout). Such a workload is updated by injecting its manifest again.
pub fn inject_pod(
    pod: &mut Value,
    defaults: &Defaults,
    workload: &str,
) -> Result<Report, InjectError> {
    if is_injected(pod) {
        return Ok(Report {
            outcome: Outcome::Unchanged,
            warnings: Vec::new(),
        });
    }
    pod::inject(None, pod, defaults).map_err(|message| InjectError::Refused {
        workload: workload.to_owned(),
        message,
    })
}

/// Whether a pod (or pod template) already has the sidecar.
pub fn is_injected(pod: &Value) -> bool {
    pod.pointer("/spec/initContainers")
        .and_then(Value::as_array)
        .is_some_and(|c| {
            c.iter()
                .any(|c| c.get("name").and_then(Value::as_str) == Some(CONTAINER))
        })
}
