//! Panic-free helpers for the loosely typed JSON of the wire formats: lenient readers for
//! provider output, strict typed readers (errors naming the field path) for client requests,
//! and the SSE writer.

use serde_json::{Map, Value};

use super::translate_error::TranslateError;

pub(crate) fn str_at<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

/// A non-negative integer, also when written as a whole float (`100.0`).
pub(crate) fn as_u64(v: &Value) -> Option<u64> {
    v.as_u64().or_else(|| {
        v.as_f64()
            .filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f <= u64::MAX as f64)
            .map(|f| f as u64)
    })
}

pub(crate) fn u64_at(v: &Value, key: &str) -> Option<u64> {
    v.get(key).and_then(as_u64)
}

pub(crate) fn array_at<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v.get(key)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

fn invalid(path: &str, expected: &str) -> TranslateError {
    TranslateError::InvalidRequest(format!("{path}: expected {expected}"))
}

/// `null` or absent → `None`; another type → an error naming `path`.
pub(crate) fn opt_str(v: &Value, path: &str) -> Result<Option<String>, TranslateError> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s.clone())),
        _ => Err(invalid(path, "a string")),
    }
}

pub(crate) fn opt_f64(v: &Value, path: &str) -> Result<Option<f64>, TranslateError> {
    match v {
        Value::Null => Ok(None),
        Value::Number(n) => n
            .as_f64()
            .map(Some)
            .ok_or_else(|| invalid(path, "a number")),
        _ => Err(invalid(path, "a number")),
    }
}

pub(crate) fn opt_u64(v: &Value, path: &str) -> Result<Option<u64>, TranslateError> {
    match v {
        Value::Null => Ok(None),
        other => as_u64(other)
            .map(Some)
            .ok_or_else(|| invalid(path, "a non-negative integer")),
    }
}

pub(crate) fn opt_i64(v: &Value, path: &str) -> Result<Option<i64>, TranslateError> {
    match v {
        Value::Null => Ok(None),
        Value::Number(n) => n
            .as_i64()
            .or_else(|| {
                n.as_f64()
                    .filter(|f| f.fract() == 0.0 && f.abs() <= i64::MAX as f64)
                    .map(|f| f as i64)
            })
            .map(Some)
            .ok_or_else(|| invalid(path, "an integer")),
        _ => Err(invalid(path, "an integer")),
    }
}

pub(crate) fn opt_bool(v: &Value, path: &str) -> Result<Option<bool>, TranslateError> {
    match v {
        Value::Null => Ok(None),
        Value::Bool(b) => Ok(Some(*b)),
        _ => Err(invalid(path, "a boolean")),
    }
}

pub(crate) fn req_str<'a>(v: &'a Value, key: &str, path: &str) -> Result<&'a str, TranslateError> {
    v.get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| invalid(&format!("{path}.{key}"), "a string"))
}

pub(crate) fn req_array<'a>(v: &'a Value, path: &str) -> Result<&'a [Value], TranslateError> {
    v.as_array()
        .map(Vec::as_slice)
        .ok_or_else(|| invalid(path, "an array"))
}

pub(crate) fn req_object<'a>(
    v: &'a Value,
    path: &str,
) -> Result<&'a Map<String, Value>, TranslateError> {
    v.as_object().ok_or_else(|| invalid(path, "an object"))
}

/// `stop`: a string or an array of strings.
pub(crate) fn string_list(v: &Value, path: &str) -> Result<Vec<String>, TranslateError> {
    match v {
        Value::Null => Ok(Vec::new()),
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                item.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| invalid(&format!("{path}[{i}]"), "a string"))
            })
            .collect(),
        _ => Err(invalid(path, "a string or an array of strings")),
    }
}

/// Parses tool-call argument text into the object Anthropic and Gemini want: `{}` when it is
/// empty or not a JSON object (a truncated call, say).
pub(crate) fn arguments_object(arguments: &str) -> Value {
    match serde_json::from_str::<Value>(arguments) {
        Ok(v @ Value::Object(_)) => v,
        _ => Value::Object(Map::new()),
    }
}

/// Serializes `v` (never fails for a `Value`: map keys are strings).
pub(crate) fn to_vec(v: &Value) -> Vec<u8> {
    serde_json::to_vec(v).unwrap_or_default()
}

/// Writes one SSE event: an optional `event:` line, one `data:` line (serialized JSON never
/// holds a raw newline), and the blank line.
pub(crate) fn write_sse(out: &mut Vec<u8>, event: Option<&str>, data: &Value) {
    if let Some(name) = event {
        out.extend_from_slice(b"event: ");
        out.extend_from_slice(name.as_bytes());
        out.push(b'\n');
    }
    out.extend_from_slice(b"data: ");
    // Writing into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, data);
    out.extend_from_slice(b"\n\n");
}

/// An SSE comment line: ignored by every client, keeps idle connections alive.
pub(crate) fn write_keep_alive(out: &mut Vec<u8>) {
    out.extend_from_slice(b": keep-alive\n\n");
}

/// Sets `obj[key] = value` unless `value` is `None`.
pub(crate) fn put<T: Into<Value>>(obj: &mut Map<String, Value>, key: &str, value: Option<T>) {
    if let Some(v) = value {
        obj.insert(key.to_string(), v.into());
    }
}

/// A JSON number from an `f64` (non-finite values, which JSON cannot hold, become `null`).
pub(crate) fn num(f: f64) -> Value {
    serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)
}
