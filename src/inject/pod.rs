//! Injection into one pod template (`{"metadata": …, "spec": …}`: a Pod, or a workload's
//! `spec.template`). An injection first removes whatever an earlier one added (any version),
//! then checks for conflicts, then adds [`sidecar`]'s objects: so injecting twice changes
//! nothing, a new version or setting updates the sidecar in place, and uninjecting restores
//! the template as it was before.

use serde_json::{Map, Value};

use super::options::{self, Decision, Options};
use super::sidecar::{self, json};
use super::{Defaults, Outcome, Report};

/// Injects into `template`; `workload_meta` is the owning workload's metadata (its
/// annotations count too). An error is the reason, without the workload's name.
pub fn inject(
    workload_meta: Option<&Value>,
    template: &mut Value,
    defaults: &Defaults,
) -> Result<Report, String> {
    let annotations = options::merged(workload_meta, template.get("metadata"));
    let options = match options::decide(&annotations, defaults)? {
        Decision::OptOut => {
            return Ok(Report {
                outcome: Outcome::OptedOut,
                warnings: Vec::new(),
            })
        }
        Decision::Inject(options) => options,
    };
    let before = template.clone();
    let was_injected = uninject(template);
    let spec = template
        .get_mut("spec")
        .and_then(Value::as_object_mut)
        .ok_or("the pod template has no spec")?;
    check_conflicts(spec, &options)?;
    let warnings = warnings(spec);
    add(spec, &options)?;
    set_label(template);
    let outcome = match (template == &before, was_injected) {
        (true, _) => Outcome::Unchanged,
        (false, true) => Outcome::Updated,
        (false, false) => Outcome::Injected,
    };
    if outcome == Outcome::Unchanged {
        // Byte-for-byte what came in (the removal and re-adding may have moved nothing, but
        // keep the caller's exact value regardless).
        *template = before;
    }
    Ok(Report { outcome, warnings })
}

/// Removes what an injection added; whether there was a sidecar.
pub fn uninject(template: &mut Value) -> bool {
    let mut removed = false;
    if let Some(spec) = template.get_mut("spec").and_then(Value::as_object_mut) {
        removed = retain(spec, "initContainers", |c| {
            name(c) != Some(sidecar::CONTAINER)
        });
        retain(spec, "volumes", |v| {
            !name(v).is_some_and(|n| sidecar::VOLUMES.contains(&n))
        });
        for list in ["initContainers", "containers"] {
            for container in spec
                .get_mut(list)
                .and_then(Value::as_array_mut)
                .into_iter()
                .flatten()
            {
                if let Some(container) = container.as_object_mut() {
                    retain(container, "env", |e| {
                        let value = e.get("value").and_then(Value::as_str);
                        !name(e).is_some_and(|n| sidecar::is_injected_env(n, value))
                    });
                    retain(container, "volumeMounts", |m| {
                        !name(m).is_some_and(|n| sidecar::VOLUMES.contains(&n))
                    });
                }
            }
        }
    }
    if let Some(object) = template.as_object_mut() {
        let metadata = object.get_mut("metadata").and_then(Value::as_object_mut);
        // The label map (and a template's metadata) go too if the label was all they held:
        // an injection created them.
        if let Some(metadata) = metadata {
            let labels = metadata.get_mut("labels").and_then(Value::as_object_mut);
            if labels.is_some_and(|l| l.remove(sidecar::LABEL).is_some() && l.is_empty()) {
                metadata.remove("labels");
                if metadata.is_empty() {
                    object.remove("metadata");
                }
            }
        }
    }
    removed
}

/// Keeps the items of the array `object[key]` that `keep` accepts; drops the key if that
/// empties it. Whether anything was removed.
fn retain(object: &mut Map<String, Value>, key: &str, keep: impl Fn(&Value) -> bool) -> bool {
    let Some(Value::Array(items)) = object.get_mut(key) else {
        return false;
    };
    let len = items.len();
    items.retain(|item| keep(item));
    let removed = items.len() != len;
    if removed && items.is_empty() {
        object.remove(key);
    }
    removed
}

fn name(item: &Value) -> Option<&str> {
    item.get("name").and_then(Value::as_str)
}

fn containers<'a>(spec: &'a Map<String, Value>, list: &str) -> impl Iterator<Item = &'a Value> {
    spec.get(list)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

/// What makes the pod impossible to inject: the same pod network namespace with a port or a
/// name of ours taken, the node's network, or an app variable we would overwrite.
fn check_conflicts(spec: &Map<String, Value>, options: &Options) -> Result<(), String> {
    if spec.get("hostNetwork").and_then(Value::as_bool) == Some(true) {
        return Err(
            "hostNetwork pods share the node's ports; the sidecar would listen on the node".into(),
        );
    }
    for list in ["initContainers", "containers", "ephemeralContainers"] {
        for container in containers(spec, list) {
            let who = name(container).unwrap_or("?");
            if who == sidecar::CONTAINER {
                return Err(format!(
                    "a container in {list} is already named {who:?}, the sidecar's name"
                ));
            }
            for port in container
                .get("ports")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let number = port.get("containerPort").and_then(Value::as_u64);
                for (ours, what, annotation) in [
                    (options.proxy_port, "proxy", "proxy-port"),
                    (options.admin_port, "admin", "admin-port"),
                ] {
                    if number == Some(u64::from(ours)) {
                        return Err(format!(
                            "container {who:?} already uses port {ours}, the Switchyard {what} port; \
                             set switchyard.dev/{annotation} to a free port"
                        ));
                    }
                }
                if name(port) == Some(sidecar::ADMIN_PORT_NAME) {
                    return Err(format!(
                        "container {who:?} already has a port named {:?}",
                        sidecar::ADMIN_PORT_NAME
                    ));
                }
            }
        }
    }
    for container in env_targets(spec, options)? {
        let who = name(container).unwrap_or("?");
        for var in container
            .get("env")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(var) =
                name(var).filter(|n| sidecar::app_env(options).iter().any(|e| e.name == *n))
            {
                return Err(format!(
                    "container {who:?} already sets {var}; remove it, or leave the container out with \
                     switchyard.dev/env-targets"
                ));
            }
        }
    }
    Ok(())
}

/// The app containers that get the environment: every one, or those the annotation names
/// (each must exist).
fn env_targets<'a>(
    spec: &'a Map<String, Value>,
    options: &Options,
) -> Result<Vec<&'a Value>, String> {
    let all: Vec<&Value> = containers(spec, "containers").collect();
    let Some(names) = &options.env_targets else {
        return Ok(all);
    };
    names
        .iter()
        .map(|n| {
            all.iter().copied().find(|c| name(c) == Some(n.as_str())).ok_or_else(|| {
                format!("switchyard.dev/env-targets names {n:?}, which is not one of the pod's containers")
            })
        })
        .collect()
}

fn warnings(spec: &Map<String, Value>) -> Vec<String> {
    let grace = spec
        .get("terminationGracePeriodSeconds")
        .and_then(Value::as_i64);
    match grace {
        Some(g) if g >= 60 => Vec::new(),
        _ => vec![format!(
            "terminationGracePeriodSeconds is {}: the app's drain and then the sidecar's \
             (shutdown_grace, 25 s in the example config) share it; 60 or more is recommended",
            grace.map_or("the default 30".to_string(), |g| g.to_string())
        )],
    }
}

/// Adds the sidecar (first init container, so later init containers can use it too), its
/// volumes, and the app containers' environment.
fn add(spec: &mut Map<String, Value>, options: &Options) -> Result<(), String> {
    let has_fs_group = spec
        .get("securityContext")
        .and_then(|s| s.get("fsGroup"))
        .is_some();
    let keys_mode = if has_fs_group { 0o440 } else { 0o444 };
    let targets: Vec<String> = env_targets(spec, options)?
        .iter()
        .filter_map(|c| name(c).map(str::to_owned))
        .collect();
    array(spec, "initContainers")?.insert(0, json(&sidecar::container(options)));
    array(spec, "volumes")?.extend(sidecar::volumes(options, keys_mode).iter().map(json));
    let env: Vec<Value> = sidecar::app_env(options).iter().map(json).collect();
    let mounts: Vec<Value> = sidecar::app_mounts(options).iter().map(json).collect();
    for container in spec
        .get_mut("containers")
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
    {
        if !name(container).is_some_and(|n| targets.iter().any(|t| t == n)) {
            continue;
        }
        let Some(container) = container.as_object_mut() else {
            continue;
        };
        array(container, "env")?.extend(env.iter().cloned());
        if !mounts.is_empty() {
            array(container, "volumeMounts")?.extend(mounts.iter().cloned());
        }
    }
    Ok(())
}

/// `object[key]` as an array, created if absent.
fn array<'a>(object: &'a mut Map<String, Value>, key: &str) -> Result<&'a mut Vec<Value>, String> {
    let slot = object
        .entry(key)
        .or_insert_with(|| Value::Array(Vec::new()));
    if slot.is_null() {
        *slot = Value::Array(Vec::new());
    }
    match slot {
        Value::Array(items) => Ok(items),
        _ => Err(format!("{key} is not a list")),
    }
}

fn set_label(template: &mut Value) {
    let Some(object) = template.as_object_mut() else {
        return;
    };
    let metadata = object
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    if let Some(metadata) = metadata.as_object_mut() {
        let labels = metadata
            .entry("labels")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Some(labels) = labels.as_object_mut() {
            labels.insert(sidecar::LABEL.into(), Value::String("true".into()));
        }
    }
}
