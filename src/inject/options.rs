//! The `switchyard.dev/*` annotations of a workload and its pod template, read into the
//! settings of one injection ([`Options`]) over the command's [`Defaults`]. Every value is
//! checked here, so the sidecar built from it is valid or the workload is refused with the
//! annotation's name.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ResourceRequirements;
use serde_json::{Map, Value};

use super::{Defaults, Mode};

/// The annotation prefix; every key below is `switchyard.dev/<name>`.
pub const PREFIX: &str = "switchyard.dev/";
pub const INJECT: &str = "switchyard.dev/inject";
const CONFIG: &str = "switchyard.dev/config";
const KEYS_SECRET: &str = "switchyard.dev/keys-secret";
const CA_SECRET: &str = "switchyard.dev/ca-secret";
const MODE: &str = "switchyard.dev/mode";
const IMAGE: &str = "switchyard.dev/image";
const RESOURCES: &str = "switchyard.dev/resources";
const ENV_TARGETS: &str = "switchyard.dev/env-targets";
const PROXY_PORT: &str = "switchyard.dev/proxy-port";
const ADMIN_PORT: &str = "switchyard.dev/admin-port";
const KNOWN: [&str; 10] = [
    INJECT,
    CONFIG,
    KEYS_SECRET,
    CA_SECRET,
    MODE,
    IMAGE,
    RESOURCES,
    ENV_TARGETS,
    PROXY_PORT,
    ADMIN_PORT,
];

/// The settings of one injection.
#[derive(Clone, Debug, PartialEq)]
pub struct Options {
    pub image: String,
    pub config_map: String,
    pub keys_secret: String,
    pub ca_secret: String,
    pub mode: Mode,
    pub proxy_port: u16,
    pub admin_port: u16,
    /// `None`: the sidecar's default resources.
    pub resources: Option<ResourceRequirements>,
    /// The app containers that get the environment; `None`: every container.
    pub env_targets: Option<Vec<String>>,
}

/// What the annotations ask for.
#[derive(Debug)]
pub enum Decision {
    Inject(Box<Options>),
    /// `switchyard.dev/inject: disabled`.
    OptOut,
}

/// The `switchyard.dev/*` annotations in effect: the workload's, overridden by the pod
/// template's (the webhook sees only the pod's).
/// `switchyard.dev/inject` may also be a label (the webhook's objectSelector selects on labels);
/// an annotation of the same level wins.
pub fn merged(workload: Option<&Value>, template: Option<&Value>) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for meta in [workload, template].into_iter().flatten() {
        if let Some(v) = meta
            .get("labels")
            .and_then(|l| l.get(INJECT))
            .and_then(Value::as_str)
        {
            out.insert(INJECT.to_owned(), v.to_owned());
        }
        if let Some(Value::Object(annotations)) = meta.get("annotations") {
            collect(annotations, &mut out);
        }
    }
    out
}

fn collect(annotations: &Map<String, Value>, out: &mut BTreeMap<String, String>) {
    for (key, value) in annotations {
        if let (true, Some(v)) = (key.starts_with(PREFIX), value.as_str()) {
            out.insert(key.clone(), v.to_owned());
        }
    }
}

/// Reads the annotations over `defaults`; an error names the annotation and what it expects.
pub fn decide(
    annotations: &BTreeMap<String, String>,
    defaults: &Defaults,
) -> Result<Decision, String> {
    if let Some(unknown) = annotations
        .keys()
        .find(|k| !KNOWN.contains(&k.as_str()) && *k != "switchyard.dev/sidecar")
    {
        return Err(format!(
            "unknown annotation {unknown} (known: {})",
            KNOWN.join(", ")
        ));
    }
    match annotations.get(INJECT).map(|v| v.trim()) {
        None | Some("enabled") => {}
        Some("disabled") => return Ok(Decision::OptOut),
        Some(other) => {
            return Err(format!(
                "{INJECT}: {other:?} is neither enabled nor disabled"
            ))
        }
    }
    let get = |key: &str| annotations.get(key).map(|v| v.trim());
    let name = |key: &str, default: &str| -> Result<String, String> {
        match get(key) {
            None => Ok(default.to_owned()),
            Some(v) if is_dns_subdomain(v) => Ok(v.to_owned()),
            Some(v) => Err(format!(
                "{key}: {v:?} is not a valid object name (lower-case DNS subdomain)"
            )),
        }
    };
    let options = Options {
        image: image(get(IMAGE), &defaults.image)?,
        config_map: name(CONFIG, &defaults.config_map)?,
        keys_secret: name(KEYS_SECRET, &defaults.keys_secret)?,
        ca_secret: name(CA_SECRET, &defaults.ca_secret)?,
        mode: match get(MODE) {
            None => defaults.mode,
            Some("base-url") => Mode::BaseUrl,
            Some("forward-proxy") => Mode::ForwardProxy,
            Some(v) => {
                return Err(format!(
                    "{MODE}: {v:?} is neither base-url nor forward-proxy"
                ))
            }
        },
        proxy_port: port(PROXY_PORT, get(PROXY_PORT), defaults.proxy_port)?,
        admin_port: port(ADMIN_PORT, get(ADMIN_PORT), defaults.admin_port)?,
        resources: get(RESOURCES).map(resources).transpose()?,
        env_targets: get(ENV_TARGETS).map(|v| {
            v.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        }),
    };
    if options.proxy_port == options.admin_port {
        return Err(format!(
            "{PROXY_PORT} and {ADMIN_PORT} are both {}: the proxy and the admin listener need a port each",
            options.proxy_port
        ));
    }
    Ok(Decision::Inject(Box::new(options)))
}

fn image(value: Option<&str>, default: &str) -> Result<String, String> {
    match value {
        None => Ok(default.to_owned()),
        Some(v) if !v.is_empty() && !v.chars().any(|c| c.is_whitespace() || c.is_control()) => {
            Ok(v.to_owned())
        }
        Some(v) => Err(format!("{IMAGE}: {v:?} is not an image reference")),
    }
}

fn port(key: &str, value: Option<&str>, default: u16) -> Result<u16, String> {
    match value {
        None => Ok(default),
        Some(v) => match v.parse::<u16>() {
            Ok(p) if p > 0 => Ok(p),
            _ => Err(format!("{key}: {v:?} is not a port (1-65535)")),
        },
    }
}

/// `switchyard.dev/resources`: a ResourceRequirements object in JSON, e.g.
/// `{"requests": {"cpu": "250m", "memory": "128Mi"}, "limits": {"memory": "384Mi"}}`.
fn resources(text: &str) -> Result<ResourceRequirements, String> {
    let bad = |why: String| format!("{RESOURCES}: {why}");
    let value: Value = serde_json::from_str(text).map_err(|e| bad(format!("not JSON ({e})")))?;
    let parsed: ResourceRequirements = serde_json::from_value(value.clone())
        .map_err(|e| bad(format!("not a ResourceRequirements ({e})")))?;
    // Fields the type does not know are dropped by its deserializer: refuse them instead.
    if serde_json::to_value(&parsed).ok().as_ref() != Some(&value) {
        return Err(bad(
            "only \"requests\" and \"limits\" maps of quantities are accepted".into(),
        ));
    }
    for (name, quantity) in parsed.requests.iter().chain(parsed.limits.iter()).flatten() {
        if !is_quantity(&quantity.0) {
            return Err(bad(format!(
                "{name}: {:?} is not a quantity (e.g. 250m, 128Mi, 1)",
                quantity.0
            )));
        }
    }
    Ok(parsed)
}

/// A Kubernetes quantity: a decimal number and an optional binary or decimal suffix.
fn is_quantity(s: &str) -> bool {
    let digits_end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (number, suffix) = s.split_at(digits_end);
    let number_ok = !number.is_empty() && number.matches('.').count() <= 1 && number != ".";
    let suffixes = [
        "", "m", "k", "M", "G", "T", "P", "E", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei",
    ];
    number_ok && suffixes.contains(&suffix)
}

/// RFC 1123 DNS subdomain: what ConfigMap and Secret names must be.
fn is_dns_subdomain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn annotations(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn refused(pairs: &[(&str, &str)]) -> String {
        match decide(&annotations(pairs), &Defaults::default()) {
            Err(e) => e,
            Ok(d) => format!("accepted: {d:?}"),
        }
    }

    #[test]
    fn every_bad_value_is_refused_with_the_annotation_name() {
        assert!(refused(&[(MODE, "sidecar")]).starts_with(MODE));
        assert!(refused(&[(PROXY_PORT, "0")]).starts_with(PROXY_PORT));
        assert!(refused(&[(ADMIN_PORT, "70000")]).starts_with(ADMIN_PORT));
        assert!(refused(&[(ADMIN_PORT, "8080")]).contains("both 8080"));
        assert!(refused(&[(CONFIG, "My_Config")]).starts_with(CONFIG));
        assert!(refused(&[(IMAGE, "a b")]).starts_with(IMAGE));
        assert!(refused(&[(INJECT, "yes")]).starts_with(INJECT));
        assert!(refused(&[("switchyard.dev/imgae", "x")])
            .contains("unknown annotation switchyard.dev/imgae"));
        assert!(refused(&[(RESOURCES, "{\"requests\": {\"cpu\": \"lots\"}}")]).contains("cpu"));
        assert!(refused(&[(RESOURCES, "{\"request\": {\"cpu\": \"1\"}}")]).contains("only"));
        assert!(refused(&[(RESOURCES, "cpu=1")]).contains("not JSON"));
    }

    #[test]
    fn quantities() {
        for ok in ["1", "250m", "0.5", "128Mi", "1Gi", "2k"] {
            assert!(is_quantity(ok), "{ok}");
        }
        for bad in ["", "m", "1.2.3", "1mi", "-1", "1 Gi", "."] {
            assert!(!is_quantity(bad), "{bad}");
        }
    }
}
