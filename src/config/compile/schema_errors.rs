//! Schema errors, all of them, in words a user reads: when the file does not deserialize, each
//! top-level section — and each entry of `providers`, `virtual_keys` and `configs` — is
//! deserialized on its own, so one type error does not hide the others; and serde's messages
//! say "a whole number ≥ 0", not `u64`.

use serde_json::{Map, Value};

use super::scrub;
use crate::config::error::ConfigError;
use crate::config::schema::FileConfig;

/// Sections whose entries are checked one by one.
const ENTRY_SECTIONS: [&str; 3] = ["providers", "virtual_keys", "configs"];

/// Every schema error of `tree` (a mapping that does not deserialize as a whole).
pub fn collect(tree: &Value) -> Vec<ConfigError> {
    let Some(top) = tree.as_object() else {
        return vec![];
    };
    let mut errors = Vec::new();
    for (key, value) in top {
        match value.as_object() {
            Some(entries) if ENTRY_SECTIONS.contains(&key.as_str()) => {
                for (name, entry) in entries {
                    let mut one = Map::new();
                    one.insert(name.clone(), entry.clone());
                    errors.extend(probe(key, Value::Object(one)));
                }
            }
            _ => errors.extend(probe(key, value.clone())),
        }
    }
    errors
}

/// The error of a file holding only `key: value`, if any.
fn probe(key: &str, value: Value) -> Option<ConfigError> {
    let mut one = Map::new();
    one.insert(key.to_string(), value);
    let e = serde_path_to_error::deserialize::<_, FileConfig>(Value::Object(one)).err()?;
    let path = e.path().to_string();
    Some(ConfigError {
        path: if path == "." { String::new() } else { path },
        message: readable(&scrub(&e.into_inner().to_string())),
    })
}

/// serde's type vocabulary in a user's words.
pub fn readable(message: &str) -> String {
    const WORDS: [(&str, &str); 19] = [
        ("expected usize", "expected a whole number ≥ 0"),
        ("expected u64", "expected a whole number ≥ 0"),
        ("expected u32", "expected a whole number ≥ 0"),
        (
            "expected u16",
            "expected a whole number ≥ 0 (at most 65535)",
        ),
        ("expected u8", "expected a whole number from 0 to 255"),
        ("expected i64", "expected a whole number"),
        ("expected i32", "expected a whole number"),
        ("expected f64", "expected a number"),
        ("expected f32", "expected a number"),
        ("invalid type: integer", "found the number"),
        ("invalid type: floating point", "found the number"),
        ("invalid type: string", "found text"),
        ("invalid type: boolean", "found"),
        ("invalid type: map", "found a mapping"),
        ("invalid type: sequence", "found a list"),
        ("invalid type: unit value", "found nothing (null)"),
        ("invalid value: integer", "found the number"),
        ("invalid value: floating point", "found the number"),
        ("expected a sequence", "expected a list"),
    ];
    let mut out = message.to_string();
    for (from, to) in WORDS {
        out = out.replace(from, to);
    }
    out
}
