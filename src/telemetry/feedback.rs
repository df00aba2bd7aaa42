//! The body of `POST /v1/feedback`, in Portkey's shape: a score a caller gives a past request,
//! named by its trace id.
//!
//! ```json
//! {"trace_id": "checkout-42", "value": 5, "weight": 0.8, "metadata": {"user": "u-1"}}
//! ```
//!
//! `trace_id` (1 to 256 printable ASCII characters, as in the `x-portkey-trace-id` header) and
//! `value` (an integer from -10 to 10) are required; `weight` (0 to 1) defaults to 1;
//! `metadata` is an optional object of at most 4 KiB once serialized. Other fields are ignored,
//! as Portkey ignores them. `PUT /v1/feedback/{id}` ([`FeedbackUpdate`]) takes the same
//! fields but `trace_id`: the trace a piece of feedback rates never changes.
//!
//! This module validates, and remembers which trace each issued feedback id rates
//! ([`FeedbackBook`], bounded); where feedback goes is the caller's business.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use serde::Serialize;
use serde_json::{Map, Value};

/// Longest accepted `trace_id`, in characters.
pub const MAX_TRACE_ID_CHARS: usize = 256;
/// Largest accepted `metadata`, serialized as compact JSON.
pub const MAX_METADATA_BYTES: usize = 4096;
/// Bounds of `value`.
pub const MIN_VALUE: i64 = -10;
pub const MAX_VALUE: i64 = 10;
/// Most pieces of feedback in one bulk body (a JSON array).
pub const MAX_BULK: usize = 100;
/// Feedback ids remembered for `PUT /v1/feedback/{id}` (the newest; an older id, or one from
/// before a restart, is unknown). At most about 3 MB with 256-character trace ids.
pub const MAX_KEPT_IDS: usize = 10_000;

/// One piece of feedback, validated.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Feedback {
    pub trace_id: String,
    /// From -10 (worst) to 10 (best).
    pub value: i8,
    /// From 0 to 1; 1 when not sent.
    pub weight: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Map<String, Value>>,
}

/// Why a feedback body was refused; `field` is the JSON field (or `body`) it is about, and the
/// message reads `field: what is wrong`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FeedbackError {
    pub field: &'static str,
    pub message: String,
}

fn error(field: &'static str, message: impl Into<String>) -> FeedbackError {
    FeedbackError {
        field,
        message: message.into(),
    }
}

impl Feedback {
    /// Parses and validates a request body holding one piece of feedback.
    pub fn parse(body: &[u8]) -> Result<Feedback, FeedbackError> {
        let json: Value = serde_json::from_slice(body)
            .map_err(|e| error("body", format!("not valid JSON: {e}")))?;
        Feedback::from_value(json)
    }

    /// Parses and validates a request body: one object, or (Portkey's bulk form) an array of
    /// 1 to [`MAX_BULK`] of them; a bad item is named by its index (`body: [2] value: …`).
    pub fn parse_many(body: &[u8]) -> Result<Vec<Feedback>, FeedbackError> {
        let json: Value = serde_json::from_slice(body)
            .map_err(|e| error("body", format!("not valid JSON: {e}")))?;
        let Value::Array(items) = json else {
            return Ok(vec![Feedback::from_value(json)?]);
        };
        if items.is_empty() || items.len() > MAX_BULK {
            return Err(error(
                "body",
                format!("a list of 1 to {MAX_BULK} feedback objects"),
            ));
        }
        items
            .into_iter()
            .enumerate()
            .map(|(i, item)| {
                Feedback::from_value(item).map_err(|e| error("body", format!("[{i}] {e}")))
            })
            .collect()
    }

    fn from_value(json: Value) -> Result<Feedback, FeedbackError> {
        let Value::Object(mut fields) = json else {
            return Err(error("body", "not a JSON object"));
        };
        Ok(Feedback {
            trace_id: trace_id(fields.get("trace_id"))?,
            value: value(fields.get("value"))?,
            weight: weight(fields.get("weight"))?,
            metadata: metadata(fields.remove("metadata"))?,
        })
    }
}

/// The body of `PUT /v1/feedback/{id}`, validated: what replaces the feedback's value, weight
/// (1 when not sent) and metadata (none when not sent), as Portkey's update does.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FeedbackUpdate {
    pub value: i8,
    pub weight: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Map<String, Value>>,
}

impl FeedbackUpdate {
    /// Parses and validates an update body (one JSON object; `trace_id`, if sent, is ignored).
    pub fn parse(body: &[u8]) -> Result<FeedbackUpdate, FeedbackError> {
        let json: Value = serde_json::from_slice(body)
            .map_err(|e| error("body", format!("not valid JSON: {e}")))?;
        let Value::Object(mut fields) = json else {
            return Err(error("body", "not a JSON object"));
        };
        Ok(FeedbackUpdate {
            value: value(fields.get("value"))?,
            weight: weight(fields.get("weight"))?,
            metadata: metadata(fields.remove("metadata"))?,
        })
    }
}

/// What the book keeps of one issued feedback id.
#[derive(Debug, Clone, PartialEq)]
pub struct Kept {
    pub trace_id: String,
    /// The value it holds now (after the last update).
    pub value: i8,
    pub weight: f64,
    /// Updates applied so far.
    pub updates: u32,
}

/// The newest [`MAX_KEPT_IDS`] feedback ids and the trace each rates: what lets
/// `PUT /v1/feedback/{id}` tell a known id (updated, logged under the same trace) from an
/// unknown one (404). Insertion order evicts; an update does not refresh an id's age.
pub struct FeedbackBook {
    capacity: usize,
    inner: Mutex<(HashMap<String, Kept>, VecDeque<String>)>,
}

impl Default for FeedbackBook {
    fn default() -> Self {
        FeedbackBook::with_capacity(MAX_KEPT_IDS)
    }
}

impl FeedbackBook {
    pub fn with_capacity(capacity: usize) -> FeedbackBook {
        FeedbackBook {
            capacity: capacity.max(1),
            inner: Mutex::new((HashMap::new(), VecDeque::new())),
        }
    }

    /// Remembers a new piece of feedback under `id`.
    pub fn insert(&self, id: &str, feedback: &Feedback) {
        let Ok(mut inner) = self.inner.lock() else {
            return;
        };
        let (map, order) = &mut *inner;
        while order.len() >= self.capacity {
            if let Some(old) = order.pop_front() {
                map.remove(&old);
            }
        }
        let kept = Kept {
            trace_id: feedback.trace_id.clone(),
            value: feedback.value,
            weight: feedback.weight,
            updates: 0,
        };
        if map.insert(id.to_string(), kept).is_none() {
            order.push_back(id.to_string());
        }
    }

    /// Applies `update` to the feedback `id`; returns what it held before (with its trace), or
    /// `None` for an unknown id.
    pub fn update(&self, id: &str, update: &FeedbackUpdate) -> Option<Kept> {
        let mut inner = self.inner.lock().ok()?;
        let kept = inner.0.get_mut(id)?;
        let before = kept.clone();
        kept.value = update.value;
        kept.weight = update.weight;
        kept.updates = kept.updates.saturating_add(1);
        Some(before)
    }

    /// Ids held.
    pub fn len(&self) -> usize {
        self.inner.lock().map(|i| i.0.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn trace_id(v: Option<&Value>) -> Result<String, FeedbackError> {
    const FIELD: &str = "trace_id";
    let id = match v {
        None | Some(Value::Null) => return Err(error(FIELD, "required")),
        Some(Value::String(s)) => s,
        Some(_) => return Err(error(FIELD, "must be a string")),
    };
    if id.is_empty() {
        return Err(error(FIELD, "must not be empty"));
    }
    if id.len() > MAX_TRACE_ID_CHARS {
        return Err(error(
            FIELD,
            format!("must be at most {MAX_TRACE_ID_CHARS} characters"),
        ));
    }
    if !id.bytes().all(|b| (0x20..=0x7e).contains(&b)) {
        return Err(error(
            FIELD,
            "must be printable ASCII (no control characters)",
        ));
    }
    Ok(id.clone())
}

fn value(v: Option<&Value>) -> Result<i8, FeedbackError> {
    const FIELD: &str = "value";
    let n = match v {
        None | Some(Value::Null) => return Err(error(FIELD, "required")),
        Some(n) => n.as_i64(),
    };
    n.filter(|n| (MIN_VALUE..=MAX_VALUE).contains(n))
        .and_then(|n| i8::try_from(n).ok())
        .ok_or_else(|| {
            error(
                FIELD,
                format!("must be an integer between {MIN_VALUE} and {MAX_VALUE}"),
            )
        })
}

fn weight(v: Option<&Value>) -> Result<f64, FeedbackError> {
    match v {
        None | Some(Value::Null) => Ok(1.0),
        Some(n) => n
            .as_f64()
            .filter(|w| (0.0..=1.0).contains(w))
            .ok_or_else(|| error("weight", "must be a number between 0 and 1")),
    }
}

fn metadata(v: Option<Value>) -> Result<Option<Map<String, Value>>, FeedbackError> {
    const FIELD: &str = "metadata";
    let map = match v {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Object(map)) => map,
        Some(_) => return Err(error(FIELD, "must be a JSON object")),
    };
    let size = serde_json::to_vec(&map)
        .map(|b| b.len())
        .unwrap_or(usize::MAX);
    if size > MAX_METADATA_BYTES {
        return Err(error(
            FIELD,
            format!("must be at most {MAX_METADATA_BYTES} bytes as JSON, got {size}"),
        ));
    }
    Ok(Some(map))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(body: &str) -> String {
        Feedback::parse(body.as_bytes()).unwrap_err().to_string()
    }

    #[test]
    fn a_full_body_parses_and_unknown_fields_are_ignored() {
        let f = Feedback::parse(
            br#"{"trace_id": "checkout-42", "value": -3, "weight": 0.25, "metadata": {"user": "u-1"}, "extra": [1]}"#,
        )
        .unwrap();
        assert_eq!(f.trace_id, "checkout-42");
        assert_eq!(f.value, -3);
        assert_eq!(f.weight, 0.25);
        assert_eq!(f.metadata.unwrap()["user"], "u-1");
    }

    #[test]
    fn weight_defaults_to_one_and_metadata_is_optional() {
        let f = Feedback::parse(br#"{"trace_id": "t", "value": 10}"#).unwrap();
        assert_eq!((f.value, f.weight, f.metadata), (10, 1.0, None));
        let f = Feedback::parse(br#"{"trace_id":"t","value":-10,"weight":null,"metadata":null}"#)
            .unwrap();
        assert_eq!((f.value, f.weight, f.metadata), (-10, 1.0, None));
        let f = Feedback::parse(br#"{"trace_id":"t","value":0,"weight":0}"#).unwrap();
        assert_eq!(f.weight, 0.0);
        assert_eq!(
            serde_json::to_value(&f).unwrap(),
            serde_json::json!({"trace_id": "t", "value": 0, "weight": 0.0})
        );
    }

    #[test]
    fn the_body_must_be_a_json_object() {
        assert!(err("").starts_with("body: not valid JSON"));
        assert!(err("{\"trace_id\":").starts_with("body: not valid JSON"));
        assert!(err(&"[".repeat(10_000)).starts_with("body: not valid JSON"));
        for body in ["[]", "\"x\"", "1", "null"] {
            assert_eq!(err(body), "body: not a JSON object", "{body}");
        }
        assert!(Feedback::parse(&[0xff, 0xfe]).is_err());
    }

    #[test]
    fn trace_id_is_a_required_bounded_printable_string() {
        assert_eq!(err(r#"{"value": 1}"#), "trace_id: required");
        assert_eq!(
            err(r#"{"trace_id": null, "value": 1}"#),
            "trace_id: required"
        );
        assert_eq!(
            err(r#"{"trace_id": 7, "value": 1}"#),
            "trace_id: must be a string"
        );
        assert_eq!(
            err(r#"{"trace_id": "", "value": 1}"#),
            "trace_id: must not be empty"
        );
        let long = "a".repeat(MAX_TRACE_ID_CHARS + 1);
        assert_eq!(
            err(&format!(r#"{{"trace_id": "{long}", "value": 1}}"#)),
            "trace_id: must be at most 256 characters"
        );
        let max = "a".repeat(MAX_TRACE_ID_CHARS);
        assert!(
            Feedback::parse(format!(r#"{{"trace_id": "{max}", "value": 1}}"#).as_bytes()).is_ok()
        );
        for bad in [r"a\nb", r"a\u0000", "caf\u{e9}", r"\u007f"] {
            assert!(
                err(&format!(r#"{{"trace_id": "{bad}", "value": 1}}"#))
                    .starts_with("trace_id: must be printable ASCII"),
                "{bad}"
            );
        }
        assert!(Feedback::parse(br#"{"trace_id": "a b~!", "value": 1}"#).is_ok());
    }

    #[test]
    fn value_is_a_required_integer_in_range() {
        let msg = "value: must be an integer between -10 and 10";
        assert_eq!(err(r#"{"trace_id": "t"}"#), "value: required");
        assert_eq!(
            err(r#"{"trace_id": "t", "value": null}"#),
            "value: required"
        );
        for bad in [
            "11",
            "-11",
            "1.5",
            "5.0",
            "\"5\"",
            "true",
            "1e300",
            "18446744073709551615",
            "[]",
        ] {
            assert_eq!(
                err(&format!(r#"{{"trace_id": "t", "value": {bad}}}"#)),
                msg,
                "{bad}"
            );
        }
    }

    #[test]
    fn weight_is_a_number_between_zero_and_one() {
        for bad in ["1.01", "-0.1", "\"1\"", "true", "{}"] {
            assert_eq!(
                err(&format!(
                    r#"{{"trace_id": "t", "value": 1, "weight": {bad}}}"#
                )),
                "weight: must be a number between 0 and 1",
                "{bad}"
            );
        }
        assert!(Feedback::parse(br#"{"trace_id": "t", "value": 1, "weight": 1}"#).is_ok());
    }

    #[test]
    fn an_update_takes_value_weight_and_metadata_but_never_a_trace() {
        let u = FeedbackUpdate::parse(
            br#"{"value": -2, "weight": 0.5, "metadata": {"k": 1}, "trace_id": "other"}"#,
        )
        .unwrap();
        assert_eq!((u.value, u.weight), (-2, 0.5));
        assert_eq!(u.metadata.unwrap()["k"], 1);
        let u = FeedbackUpdate::parse(br#"{"value": 3}"#).unwrap();
        assert_eq!((u.value, u.weight, u.metadata), (3, 1.0, None));
        let err = |b: &str| FeedbackUpdate::parse(b.as_bytes()).unwrap_err().to_string();
        assert_eq!(err("{}"), "value: required");
        assert_eq!(
            err(r#"{"value": 11}"#),
            "value: must be an integer between -10 and 10"
        );
        assert_eq!(
            err(r#"{"value": 1, "weight": 2}"#),
            "weight: must be a number between 0 and 1"
        );
        assert_eq!(
            err(r#"{"value": 1, "metadata": []}"#),
            "metadata: must be a JSON object"
        );
        assert_eq!(err(r#"[{"value": 1}]"#), "body: not a JSON object");
        assert!(err("{").starts_with("body: not valid JSON"));
    }

    #[test]
    fn the_book_keeps_the_newest_ids_and_their_traces() {
        let book = FeedbackBook::with_capacity(2);
        let f = |t: &str| {
            Feedback::parse(format!(r#"{{"trace_id":"{t}","value":1}}"#).as_bytes()).unwrap()
        };
        book.insert("a", &f("ta"));
        book.insert("b", &f("tb"));
        let up = FeedbackUpdate::parse(br#"{"value": -5, "weight": 0.2}"#).unwrap();
        let before = book.update("a", &up).unwrap();
        assert_eq!(
            (before.trace_id.as_str(), before.value, before.updates),
            ("ta", 1, 0)
        );
        let again = book.update("a", &up).unwrap();
        assert_eq!((again.value, again.weight, again.updates), (-5, 0.2, 1));
        book.insert("c", &f("tc"));
        assert_eq!(book.len(), 2);
        assert!(
            book.update("a", &up).is_none(),
            "the oldest id is forgotten"
        );
        assert_eq!(book.update("c", &up).unwrap().trace_id, "tc");
        assert!(book.update("nope", &up).is_none());
    }

    #[test]
    fn metadata_is_a_small_object() {
        for bad in ["[]", "\"x\"", "3"] {
            assert_eq!(
                err(&format!(
                    r#"{{"trace_id": "t", "value": 1, "metadata": {bad}}}"#
                )),
                "metadata: must be a JSON object",
                "{bad}"
            );
        }
        // {"k":"…"} is 8 bytes of framing.
        let fits = "x".repeat(MAX_METADATA_BYTES - 8);
        let body = format!(r#"{{"trace_id": "t", "value": 1, "metadata": {{"k": "{fits}"}}}}"#);
        assert!(Feedback::parse(body.as_bytes()).is_ok());
        let body = format!(r#"{{"trace_id": "t", "value": 1, "metadata": {{"k": "{fits}x"}}}}"#);
        assert!(err(&body).starts_with("metadata: must be at most 4096 bytes as JSON"));
    }
}
