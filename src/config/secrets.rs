//! Secret resolution: `${ENV}` interpolation in string values and `*_file` reads. Errors name
//! the variable or file, never a value.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::error::ConfigError;

/// Replaces every `${NAME}` in the string values of `tree` with the environment variable's value;
/// `${NAME:-default}` takes `default` when the variable is unset or empty (as the shell does).
pub fn interpolate_env(tree: &mut Value, path: &str, errors: &mut Vec<ConfigError>) {
    match tree {
        Value::String(s) if s.contains("${") => match interpolate(s) {
            Ok(v) => *s = v,
            Err(message) => errors.push(ConfigError {
                path: path.to_string(),
                message,
            }),
        },
        Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                interpolate_env(item, &format!("{path}[{i}]"), errors);
            }
        }
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                let child = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                interpolate_env(v, &child, errors);
            }
        }
        _ => {}
    }
}

fn interpolate(text: &str) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| "unterminated ${...} reference".to_string())?;
        let (name, default) = match after[..end].split_once(":-") {
            Some((name, default)) => (name, Some(default)),
            None => (&after[..end], None),
        };
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!("invalid environment variable name {name:?}"));
        }
        match (std::env::var(name), default) {
            (Ok(v), Some(d)) if v.is_empty() => out.push_str(d),
            (Ok(v), _) => out.push_str(&v),
            (Err(_), Some(d)) => out.push_str(d),
            (Err(_), None) => return Err(format!("environment variable {name} is not set")),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Resolves `file` against the config's directory.
pub fn resolve_path(file: &str, base_dir: Option<&Path>) -> PathBuf {
    let p = Path::new(file);
    match base_dir {
        Some(dir) if p.is_relative() => dir.join(p),
        _ => p.to_path_buf(),
    }
}

/// Reads a secret file (trailing whitespace trimmed). The bytes feed the config hash.
pub fn read_secret_file(path: &Path) -> Result<(String, Vec<u8>), String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| format!("{} is not UTF-8", path.display()))?
        .trim_end()
        .to_string();
    if text.is_empty() {
        return Err(format!("{} is empty", path.display()));
    }
    Ok((text, bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_references_are_replaced_and_unset_ones_are_errors_with_paths() {
        std::env::set_var("SWITCHYARD_TEST_SECRET_A", "s3cret");
        let mut tree = serde_json::json!({"p": {"api_key": "${SWITCHYARD_TEST_SECRET_A}", "url": "http://${SWITCHYARD_TEST_UNSET_B}/v1"}, "l": ["${SWITCHYARD_TEST_SECRET_A}x"]});
        let mut errors = vec![];
        interpolate_env(&mut tree, "", &mut errors);
        assert_eq!(tree["p"]["api_key"], "s3cret");
        assert_eq!(tree["l"][0], "s3cretx");
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].path, "p.url");
        assert!(errors[0].message.contains("SWITCHYARD_TEST_UNSET_B"));
        assert!(interpolate("${").is_err());
        assert!(interpolate("${a-b}").is_err());
    }

    #[test]
    fn a_default_stands_in_for_an_unset_or_empty_variable() {
        std::env::set_var("SWITCHYARD_TEST_DEFAULT_SET", "10.0.0.1:81");
        std::env::set_var("SWITCHYARD_TEST_DEFAULT_EMPTY", "");
        assert_eq!(
            interpolate("http://${SWITCHYARD_TEST_DEFAULT_UNSET:-127.0.0.1:9901}/v1").unwrap(),
            "http://127.0.0.1:9901/v1"
        );
        assert_eq!(
            interpolate("${SWITCHYARD_TEST_DEFAULT_SET:-127.0.0.1:9901}").unwrap(),
            "10.0.0.1:81"
        );
        assert_eq!(
            interpolate("${SWITCHYARD_TEST_DEFAULT_EMPTY:-off}").unwrap(),
            "off"
        );
        assert_eq!(
            interpolate("${SWITCHYARD_TEST_DEFAULT_UNSET:-}").unwrap(),
            ""
        );
        assert!(interpolate("${:-x}").is_err());
        assert!(interpolate("${A B:-x}").is_err());
    }
}
