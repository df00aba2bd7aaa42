//! The one definition of what Switchyard adds to a pod: the hardened native sidecar (an init
//! container with `restartPolicy: Always`, Kubernetes ≥ 1.29), its volumes, and the app
//! containers' environment. `switchyard inject`, the admission webhook and the example in
//! `k8s/base` (checked by a test against `switchyard inject`'s output) all come from here.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Capabilities, ConfigMapVolumeSource, Container, ContainerPort, EmptyDirVolumeSource, EnvVar,
    HTTPGetAction, KeyToPath, Probe, ResourceRequirements, SeccompProfile, SecretVolumeSource,
    SecurityContext, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::Value;

use super::options::Options;
use super::Mode;

/// The sidecar's container name (an init container).
pub const CONTAINER: &str = "switchyard";
/// The name of the sidecar's admin port (probes, `/metrics`; the PodMonitor scrapes it).
pub const ADMIN_PORT_NAME: &str = "switchyard";
/// The pod label that marks an injected pod (the PodMonitor and NetworkPolicy select on it).
pub const LABEL: &str = "switchyard.dev/sidecar";

const CONFIG_VOLUME: &str = "switchyard-config";
const KEYS_VOLUME: &str = "switchyard-keys";
const TMP_VOLUME: &str = "switchyard-tmp";
const STORE_VOLUME: &str = "switchyard-store";
const CA_VOLUME: &str = "switchyard-ca";
const CA_CERT_VOLUME: &str = "switchyard-ca-cert";
/// Every volume an injection may add: an uninjection removes these (and their mounts).
pub const VOLUMES: [&str; 6] = [
    CONFIG_VOLUME,
    KEYS_VOLUME,
    TMP_VOLUME,
    STORE_VOLUME,
    CA_VOLUME,
    CA_CERT_VOLUME,
];

const CONFIG_DIR: &str = "/etc/switchyard";
/// Where the app finds the CA (forward-proxy mode): the certificate and the bundle, never the key.
const APP_CA_DIR: &str = "/etc/switchyard-ca";
/// What the app reaches without the proxy (forward-proxy mode refuses hosts it does not know).
const NO_PROXY: &str = "localhost,127.0.0.1,.svc,.cluster.local";
/// The user the image runs as (distroless `nonroot`).
const USER: i64 = 65532;

/// The sidecar container for `options`. `keys_mode` is the Secret files' mode (see [`volumes`]).
pub fn container(options: &Options) -> Container {
    let mut mounts = vec![
        mount(CONFIG_VOLUME, CONFIG_DIR, true),
        mount(KEYS_VOLUME, "/var/run/secrets/switchyard", true),
        mount(TMP_VOLUME, "/tmp", false),
        // The request store (store.path in the config): SQLite, lost with the pod.
        mount(STORE_VOLUME, "/var/lib/switchyard", false),
    ];
    if options.mode == Mode::ForwardProxy {
        mounts.push(mount(CA_VOLUME, "/var/run/secrets/switchyard-ca", true));
    }
    Container {
        name: CONTAINER.into(),
        image: Some(options.image.clone()),
        image_pull_policy: Some("IfNotPresent".into()),
        // A native sidecar: started before the app containers, stopped after them.
        restart_policy: Some("Always".into()),
        // The listeners come from here, not the ConfigMap, so the probes and the app's
        // environment always agree with them.
        args: Some(vec![
            "run".into(),
            "--config".into(),
            format!("{CONFIG_DIR}/switchyard.yaml"),
            "--listen".into(),
            format!("127.0.0.1:{}", options.proxy_port),
            "--admin-listen".into(),
            format!("0.0.0.0:{}", options.admin_port),
        ]),
        env: Some(vec![env("RUST_LOG", "info")]),
        ports: Some(vec![ContainerPort {
            name: Some(ADMIN_PORT_NAME.into()),
            container_port: i32::from(options.admin_port),
            protocol: Some("TCP".into()),
            ..Default::default()
        }]),
        // The app starts once this passes, so it never sees "connection refused".
        startup_probe: Some(probe("/readyz", 1, 30, 1)),
        // 503 while draining; never depends on the providers.
        readiness_probe: Some(probe("/readyz", 5, 2, 1)),
        // The process answers; a failure restarts only the sidecar.
        liveness_probe: Some(probe("/healthz", 10, 3, 2)),
        resources: Some(resources(options.resources.as_ref())),
        security_context: Some(security_context()),
        volume_mounts: Some(mounts),
        ..Default::default()
    }
}

/// The volumes the sidecar (and, in forward-proxy mode, the app) mounts. `keys_mode`: 0440
/// when the pod has an `fsGroup` (the files' group, which every container of the pod is in),
/// else 0444, since without it the files belong to root and 0440 would hide them from the
/// sidecar's user. Only the sidecar mounts the keys either way.
pub fn volumes(options: &Options, keys_mode: i32) -> Vec<Volume> {
    let secret = |name: &str, mode: i32, items: Option<Vec<KeyToPath>>| SecretVolumeSource {
        secret_name: Some(name.into()),
        default_mode: Some(mode),
        items,
        ..Default::default()
    };
    let mut volumes = vec![
        Volume {
            name: CONFIG_VOLUME.into(),
            config_map: Some(ConfigMapVolumeSource {
                name: options.config_map.clone(),
                ..Default::default()
            }),
            ..Default::default()
        },
        Volume {
            name: KEYS_VOLUME.into(),
            secret: Some(secret(&options.keys_secret, keys_mode, None)),
            ..Default::default()
        },
        Volume {
            name: TMP_VOLUME.into(),
            empty_dir: Some(EmptyDirVolumeSource {
                medium: Some("Memory".into()),
                size_limit: Some(Quantity("16Mi".into())),
            }),
            ..Default::default()
        },
        // On the node's disk, not in memory; past sizeLimit kubelet evicts the pod, so the
        // gateway's store.max_bytes (768 MiB in the example config) stays below it.
        Volume {
            name: STORE_VOLUME.into(),
            empty_dir: Some(EmptyDirVolumeSource {
                medium: None,
                size_limit: Some(Quantity("1Gi".into())),
            }),
            ..Default::default()
        },
    ];
    if options.mode == Mode::ForwardProxy {
        // The sidecar gets the whole Secret (it signs with ca.key) ...
        volumes.push(Volume {
            name: CA_VOLUME.into(),
            secret: Some(secret(&options.ca_secret, keys_mode, None)),
            ..Default::default()
        });
        // ... the app only the certificate and the bundle, never the key.
        let items = ["ca.pem", "bundle.pem"].map(|f| KeyToPath {
            key: f.into(),
            path: f.into(),
            mode: None,
        });
        volumes.push(Volume {
            name: CA_CERT_VOLUME.into(),
            secret: Some(secret(&options.ca_secret, 0o444, Some(items.to_vec()))),
            ..Default::default()
        });
    }
    volumes
}

/// The environment an app container gets: where its SDKs find the sidecar.
pub fn app_env(options: &Options) -> Vec<EnvVar> {
    let proxy = format!("http://127.0.0.1:{}", options.proxy_port);
    match options.mode {
        Mode::BaseUrl => vec![
            env("OPENAI_BASE_URL", &format!("{proxy}/v1")),
            env("ANTHROPIC_BASE_URL", &proxy),
        ],
        Mode::ForwardProxy => vec![
            env("HTTPS_PROXY", &proxy),
            env("NO_PROXY", NO_PROXY),
            // Python (ssl, httpx, openai, anthropic) and requests: these REPLACE the default
            // store, so they point at the bundle (public roots + the Switchyard CA).
            env("SSL_CERT_FILE", &format!("{APP_CA_DIR}/bundle.pem")),
            env("REQUESTS_CA_BUNDLE", &format!("{APP_CA_DIR}/bundle.pem")),
            // Node.js ADDS this to its built-in roots: the CA alone.
            env("NODE_EXTRA_CA_CERTS", &format!("{APP_CA_DIR}/ca.pem")),
        ],
    }
}

/// The volume mounts an app container gets (forward-proxy mode: the CA certificate).
pub fn app_mounts(options: &Options) -> Vec<VolumeMount> {
    match options.mode {
        Mode::BaseUrl => Vec::new(),
        Mode::ForwardProxy => vec![mount(CA_CERT_VOLUME, APP_CA_DIR, true)],
    }
}

/// Whether an app container's variable was set by an injection (any version, any port): its
/// name is one the sidecar sets and its value has the shape an injection writes. Those are
/// removed on uninjection and replaced on reinjection; any other value is the app's own.
pub fn is_injected_env(name: &str, value: Option<&str>) -> bool {
    let Some(value) = value else { return false };
    let loopback_port = |rest: &str| !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_digit());
    let proxy = value.strip_prefix("http://127.0.0.1:");
    match name {
        "OPENAI_BASE_URL" => proxy
            .and_then(|r| r.strip_suffix("/v1"))
            .is_some_and(loopback_port),
        "ANTHROPIC_BASE_URL" | "HTTPS_PROXY" => proxy.is_some_and(loopback_port),
        "NO_PROXY" => value == NO_PROXY,
        "SSL_CERT_FILE" | "REQUESTS_CA_BUNDLE" | "NODE_EXTRA_CA_CERTS" => {
            value.starts_with(APP_CA_DIR)
        }
        _ => false,
    }
}

/// The sidecar's resources: the defaults, with `custom`'s entries replacing them one by one.
/// Sized from docs/performance.md: ~95 µs of CPU per request (100m ≈ 1 000 requests/s
/// sustained), 16 MiB idle, ~90 MiB with 1 000 open streams. No CPU limit: CFS throttling
/// would add latency to every call. ephemeral-storage: the request store's emptyDir.
fn resources(custom: Option<&ResourceRequirements>) -> ResourceRequirements {
    let quantities = |pairs: &[(&str, &str)]| -> BTreeMap<String, Quantity> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).into(), Quantity((*v).into())))
            .collect()
    };
    let mut requests = quantities(&[
        ("cpu", "100m"),
        ("memory", "64Mi"),
        ("ephemeral-storage", "1Gi"),
    ]);
    let mut limits = quantities(&[("memory", "256Mi")]);
    if let Some(custom) = custom {
        requests.extend(custom.requests.clone().unwrap_or_default());
        limits.extend(custom.limits.clone().unwrap_or_default());
    }
    ResourceRequirements {
        requests: Some(requests),
        limits: Some(limits),
        ..Default::default()
    }
}

fn security_context() -> SecurityContext {
    SecurityContext {
        allow_privilege_escalation: Some(false),
        privileged: Some(false),
        // The store's emptyDir and /tmp are the writable paths.
        read_only_root_filesystem: Some(true),
        run_as_non_root: Some(true),
        run_as_user: Some(USER),
        run_as_group: Some(USER),
        capabilities: Some(Capabilities {
            drop: Some(vec!["ALL".into()]),
            add: None,
        }),
        seccomp_profile: Some(SeccompProfile {
            type_: "RuntimeDefault".into(),
            localhost_profile: None,
        }),
        ..Default::default()
    }
}

fn probe(path: &str, period: i32, failures: i32, timeout: i32) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.into()),
            port: IntOrString::String(ADMIN_PORT_NAME.into()),
            ..Default::default()
        }),
        period_seconds: Some(period),
        failure_threshold: Some(failures),
        timeout_seconds: Some(timeout),
        ..Default::default()
    }
}

fn mount(name: &str, path: &str, read_only: bool) -> VolumeMount {
    // Whole directories, never subPath: subPath mounts are never updated (hot reload).
    VolumeMount {
        name: name.into(),
        mount_path: path.into(),
        read_only: read_only.then_some(true),
        ..Default::default()
    }
}

fn env(name: &str, value: &str) -> EnvVar {
    EnvVar {
        name: name.into(),
        value: Some(value.into()),
        value_from: None,
    }
}

/// A typed object as JSON; these types always serialize.
pub fn json<T: serde::Serialize>(object: &T) -> Value {
    serde_json::to_value(object).unwrap_or(Value::Null)
}
