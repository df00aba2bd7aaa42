//! `switchyard inject`'s manifests: a YAML stream (one or more documents) or JSON (one or more
//! values), as `kubectl get -o yaml|json` and `kubectl kustomize` print them. Every workload in
//! them, `List` items included, is injected (or uninjected); every other document, and every
//! workload left as it was, is written back byte for byte. A changed document is written in
//! the input's format with its keys in their original order; YAML comments inside a changed
//! document are lost (the comment lines above it are kept).

use serde_json::Value;

use super::tree::Tree;
use super::{pod, Defaults, InjectError, Outcome};

/// The largest manifest read (`kubectl get` of a whole namespace is far below it).
pub const MAX_INPUT_BYTES: usize = 64 << 20;

/// What to do to each workload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Inject,
    Uninject,
}

/// A rewritten manifest and what happened.
#[derive(Debug, Default)]
pub struct Rewritten {
    pub output: String,
    /// One line per workload: `Deployment/checkout: injected`.
    pub summary: Vec<String>,
    pub warnings: Vec<String>,
}

/// Rewrites `input`; every refused workload and unreadable document is an error (and nothing
/// is written, so a pipe into `kubectl apply` applies nothing half-done).
pub fn rewrite(
    input: &str,
    action: Action,
    defaults: &Defaults,
) -> Result<Rewritten, Vec<InjectError>> {
    let mut run = Run {
        action,
        defaults,
        out: Rewritten::default(),
        errors: Vec::new(),
    };
    let trimmed = input.trim_start();
    if trimmed.starts_with('{') || trimmed.starts_with('[') {
        run.json(input);
    } else {
        run.yaml(input);
    }
    if run.errors.is_empty() {
        Ok(run.out)
    } else {
        Err(run.errors)
    }
}

struct Run<'a> {
    action: Action,
    defaults: &'a Defaults,
    out: Rewritten,
    errors: Vec<InjectError>,
}

impl Run<'_> {
    fn json(&mut self, input: &str) {
        let mut stream = serde_json::Deserializer::from_str(input).into_iter::<Tree>();
        let mut start = 0;
        let mut index = 0;
        loop {
            let next = stream.next();
            let end = stream.byte_offset();
            match next {
                None => break,
                Some(Err(e)) => {
                    self.errors.push(unreadable(index, &e.to_string()));
                    return;
                }
                Some(Ok(tree)) => match self.document(&tree) {
                    Some(changed) => {
                        let text = serde_json::to_string_pretty(&changed).unwrap_or_default();
                        self.out
                            .output
                            .push_str(&input[start..end].replace(input[start..end].trim(), &text));
                    }
                    None => self.out.output.push_str(&input[start..end]),
                },
            }
            start = end;
            index += 1;
        }
        self.out.output.push_str(&input[start..]);
    }

    fn yaml(&mut self, input: &str) {
        let options = serde_saphyr::options! {
            // Kubernetes reads YAML 1.1: `0440` is octal (a Secret's defaultMode).
            legacy_octal_numbers: true,
        };
        let mut line = 1;
        for (index, chunk) in documents(input).into_iter().enumerate() {
            let first_line = line;
            line += chunk.matches('\n').count();
            if !has_content(chunk) {
                self.out.output.push_str(chunk);
                continue;
            }
            let tree = match serde_saphyr::from_str_with_options::<Tree>(chunk, options.clone()) {
                Ok(tree) => tree,
                Err(e) => {
                    let why = format!("{e} (lines count from the document's first, line {first_line} of the input)");
                    self.errors.push(unreadable(index, &why));
                    continue;
                }
            };
            match self.document(&tree) {
                None => self.out.output.push_str(chunk),
                Some(changed) => match serde_saphyr::to_string(&changed) {
                    Ok(text) => {
                        self.out.output.push_str(&preamble(chunk));
                        self.out.output.push_str(&text);
                        if !text.ends_with('\n') {
                            self.out.output.push('\n');
                        }
                    }
                    Err(e) => self.errors.push(unreadable(index, &e.to_string())),
                },
            }
        }
    }

    /// The document rewritten, or `None` when it stays as it was.
    fn document(&mut self, tree: &Tree) -> Option<Tree> {
        let mut value = tree.to_value();
        self.object(&mut value).then(|| tree.reorder(&value))
    }

    /// Rewrites one object (recursing into a List's items); whether it changed.
    fn object(&mut self, object: &mut Value) -> bool {
        let kind = object
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        if kind.ends_with("List") {
            let mut changed = false;
            for item in object
                .get_mut("items")
                .and_then(Value::as_array_mut)
                .into_iter()
                .flatten()
            {
                changed |= self.object(item);
            }
            return changed;
        }
        let Some(path) = template_path(object) else {
            return false;
        };
        let workload = workload_name(object);
        let workload_meta = object.get("metadata").cloned();
        let Some(template) = object.pointer_mut(path) else {
            self.errors.push(InjectError::Refused {
                workload,
                message: format!("no pod template at {path}"),
            });
            return false;
        };
        match self.action {
            Action::Uninject => {
                let before = template.clone();
                let removed = pod::uninject(template);
                let changed = *template != before;
                self.out.summary.push(format!(
                    "{workload}: {}",
                    if removed {
                        "uninjected"
                    } else {
                        "not injected"
                    }
                ));
                changed
            }
            Action::Inject => match pod::inject(workload_meta.as_ref(), template, self.defaults) {
                Ok(report) => {
                    self.out
                        .summary
                        .push(format!("{workload}: {}", report.outcome.as_str()));
                    self.out.warnings.extend(
                        report
                            .warnings
                            .into_iter()
                            .map(|w| format!("{workload}: {w}")),
                    );
                    !matches!(report.outcome, Outcome::Unchanged | Outcome::OptedOut)
                }
                Err(message) => {
                    self.errors.push(InjectError::Refused { workload, message });
                    false
                }
            },
        }
    }
}

fn unreadable(index: usize, why: &str) -> InjectError {
    InjectError::Refused {
        workload: format!("document {}", index + 1),
        message: format!("not readable: {why}"),
    }
}

/// The JSON pointer to the pod template of a workload this injects into (`""`: the object is
/// a Pod); `None` for every other object, which passes through untouched.
pub fn template_path(object: &Value) -> Option<&'static str> {
    let api_version = object.get("apiVersion").and_then(Value::as_str)?;
    let group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
    let kind = object.get("kind").and_then(Value::as_str)?;
    match (group, kind) {
        ("", "Pod") => Some(""),
        ("", "ReplicationController")
        | ("apps", "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet")
        | ("batch", "Job") => Some("/spec/template"),
        ("batch", "CronJob") => Some("/spec/jobTemplate/spec/template"),
        _ => None,
    }
}

/// `Deployment/checkout`, with its namespace when the object has one.
pub fn workload_name(object: &Value) -> String {
    let kind = object
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or("object");
    let meta = object.get("metadata");
    let name = meta
        .and_then(|m| m.get("name").or_else(|| m.get("generateName")))
        .and_then(Value::as_str)
        .unwrap_or("(unnamed)");
    match meta
        .and_then(|m| m.get("namespace"))
        .and_then(Value::as_str)
    {
        Some(ns) => format!("{kind}/{name} (namespace {ns})"),
        None => format!("{kind}/{name}"),
    }
}

/// The documents of a YAML stream, each with its `---` line: a line that starts with `---`
/// followed by nothing or a blank begins a document (YAML forbids such a line inside one).
fn documents(input: &str) -> Vec<&str> {
    let mut starts = vec![0];
    let mut offset = 0;
    for line in input.split_inclusive('\n') {
        let rest = line.strip_prefix("---");
        if offset > 0
            && rest.is_some_and(|r| r.is_empty() || r.starts_with([' ', '\t', '\r', '\n']))
        {
            starts.push(offset);
        }
        offset += line.len();
    }
    starts.push(input.len());
    starts.windows(2).map(|w| &input[w[0]..w[1]]).collect()
}

/// Whether a chunk holds a document (not only blank lines, comments and markers).
fn has_content(chunk: &str) -> bool {
    chunk.lines().any(|line| {
        let line = line.trim();
        let line = line.strip_prefix("---").unwrap_or(line).trim();
        !(line.is_empty() || line.starts_with('#') || line == "...")
    })
}

/// The `---` line and the comment lines above a document's content, kept when the document
/// itself is rewritten.
fn preamble(chunk: &str) -> String {
    let mut out = String::new();
    for line in chunk.split_inclusive('\n') {
        let trimmed = line.trim();
        if let Some(rest) = line.strip_prefix("---").map(str::trim) {
            if rest.is_empty() || rest.starts_with('#') {
                out.push_str(line);
                continue;
            }
            // `--- {…}`: the document starts on the marker line; it is rewritten below it.
            out.push_str("---\n");
            break;
        }
        if trimmed.is_empty() || trimmed.starts_with('#') {
            out.push_str(line);
        } else {
            break;
        }
    }
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_split_at_marker_lines_only() {
        let input = "a: 1\n---\nb: |\n  ---x\n--- # two\nc: 3\n---\n";
        assert_eq!(
            documents(input),
            vec![
                "a: 1\n",
                "---\nb: |\n  ---x\n",
                "--- # two\nc: 3\n",
                "---\n"
            ]
        );
        assert!(!has_content("---\n# only a comment\n...\n"));
        assert!(has_content("--- # c\nkind: Pod\n"));
        assert_eq!(
            preamble("# top\n---\n# about\nkind: Pod\n# inner\n"),
            "# top\n---\n# about\n"
        );
        assert_eq!(preamble("--- # two\nkind: Pod\n"), "--- # two\n");
        assert_eq!(preamble("--- {kind: Pod}\n"), "---\n");
    }
}
