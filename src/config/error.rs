//! Config errors: each problem found in a file, with the YAML path it is about, as `check`
//! prints them and a refused reload shows them.

use std::fmt;

use super::snapshot::key_label;

/// One problem in a config file, with the YAML path it is about
/// (`configs.chat.targets[1].virtual_key`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub path: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// Every problem found in one file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl ConfigErrors {
    /// How a refused reload is shown on `/config`, on the console and in the log: like
    /// `Display`, with virtual-key names (bearer credentials) in paths
    /// (`virtual_keys.<name>.…`) and in "unknown virtual key" messages replaced by their labels
    /// (see [`key_label`]; names kept with `as_names`). `check` prints the names: its reader
    /// has the file.
    pub fn shown(&self, as_names: bool) -> String {
        const QUOTED: &str = "unknown virtual key \"";
        let mut out = String::new();
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                out.push('\n');
            }
            let path = match e.path.strip_prefix("virtual_keys.") {
                Some(rest) => {
                    let (name, tail) = rest.split_at(rest.find('.').unwrap_or(rest.len()));
                    format!("virtual_keys.{}{tail}", key_label(name, as_names))
                }
                None => e.path.clone(),
            };
            let message = match e.message.strip_prefix(QUOTED) {
                Some(rest) => {
                    let name = rest.split('"').next().unwrap_or("");
                    format!("unknown virtual key {}", key_label(name, as_names))
                }
                None => e.message.clone(),
            };
            let shown = ConfigError { path, message };
            out.push_str(&shown.to_string());
        }
        out
    }
}
