//! One validating pass over a JSON request body (issue 17, items 6 and 10), used on every JSON
//! route whether or not the config reads the body:
//!
//! - the body must be UTF-8 — checked once over the whole body, so a stray byte anywhere (in a
//!   string or between tokens) is refused, and the parser after it need not check strings again;
//! - nesting may be at most [`MAX_DEPTH`] arrays/objects deep;
//! - no object may repeat a key, compared after unescaping (`"a"` and `"\u0061"` are the same
//!   key). serde_json keeps the last of two equal keys while a provider may read the first, so
//!   guardrails and the allowlist would check one value and the provider act on another.
//!
//! [`peek`] (configs that do not read the body) builds nothing: it walks the document with a
//! [`DeserializeSeed`] over serde_json's streaming deserializer, remembering only the keys of
//! the objects it is inside (borrowed from the body unless escaped), and picks the top-level
//! `model` and `stream` in the same pass. [`parse`] (configs that read the body) builds the
//! [`Map`] in that same single pass instead of a second `serde_json::from_slice`.
//!
//! Why our own depth bound: serde_json's recursion limit (128) applies only when it builds
//! values (`deserialize_any`); the derived struct the fast path used before skipped unknown
//! fields with `ignore_value`, which is iterative and unbounded, so a 100 000-deep body was
//! forwarded. We walk every value with `deserialize_any`, so both bounds apply and ours (64)
//! trips first with a precise message.

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use crate::error::GatewayError;

/// Deepest nesting accepted (the top-level object is depth 1). Real requests stay far below:
/// a chat body with a tool whose JSON schema nests ten object levels is about 25 deep
/// (`tools[].function.parameters.properties.<name>` is 5, each schema level adds 2), OpenAI's
/// structured outputs allow 10 levels, and serde_json itself stops at 128.
pub const MAX_DEPTH: usize = 64;
/// Path segments shown in an error (the outermost ones), and characters per key shown.
const MAX_PATH_SEGMENTS: usize = 8;
const MAX_KEY_CHARS: usize = 64;
/// Objects with more keys than this check duplicates with a hash set instead of a scan.
const LINEAR_KEYS: usize = 32;

/// Why a body was refused (a 400 either way).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BodyError {
    #[error("request body is not valid UTF-8 (at byte {at})")]
    Utf8 { at: usize },
    #[error("expected a JSON object")]
    NotAnObject,
    #[error("duplicate key `{path}` in the request body")]
    DuplicateKey { path: String },
    #[error("request body nests deeper than {MAX_DEPTH} levels (at `{path}`)")]
    TooDeep { path: String },
    #[error("{field}: expected {expected}")]
    WrongType {
        field: &'static str,
        expected: &'static str,
    },
    /// serde_json's own message (with line and column).
    #[error("{0}")]
    Syntax(String),
}

impl From<BodyError> for GatewayError {
    fn from(e: BodyError) -> GatewayError {
        match e {
            BodyError::Utf8 { .. } | BodyError::NotAnObject | BodyError::Syntax(_) => {
                GatewayError::InvalidJson(e.to_string())
            }
            BodyError::DuplicateKey { .. }
            | BodyError::TooDeep { .. }
            | BodyError::WrongType { .. } => GatewayError::InvalidRequest(e.to_string()),
        }
    }
}

/// What the fast path needs from a body it does not otherwise read.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Peek<'a> {
    pub model: Option<Cow<'a, str>>,
    pub stream: Option<bool>,
}

/// Validates `body` and returns its top-level `model` and `stream`, building nothing.
pub fn peek(body: &[u8]) -> Result<Peek<'_>, BodyError> {
    let mut state = State::default();
    run::<false>(body, &mut state)?;
    Ok(Peek {
        model: state.model,
        stream: state.stream,
    })
}

/// Validates `body` and parses it into a JSON object, in one pass.
pub fn parse(body: &[u8]) -> Result<Map<String, Value>, BodyError> {
    let mut state = State::default();
    match run::<true>(body, &mut state)? {
        Some(Value::Object(map)) => Ok(map),
        _ => Err(BodyError::NotAnObject),
    }
}

fn run<'de, const BUILD: bool>(
    body: &'de [u8],
    state: &mut State<'de>,
) -> Result<Option<Value>, BodyError> {
    let text = std::str::from_utf8(body).map_err(|e| BodyError::Utf8 {
        at: e.valid_up_to(),
    })?;
    // Checked here rather than by the walk so an array or a string is refused before any work.
    if text.trim_start().as_bytes().first() != Some(&b'{') {
        return Err(BodyError::NotAnObject);
    }
    let mut de = serde_json::Deserializer::from_str(text);
    let walked = Walk::<BUILD> {
        state: &mut *state,
        depth: 0,
        pick: Pick::None,
    }
    .deserialize(&mut de)
    .and_then(|v| de.end().map(|()| v));
    walked.map_err(|e| match state.violation.take() {
        Some(v) => v.into_error(),
        None => BodyError::Syntax(e.to_string()),
    })
}

/// A rule of ours the walk stopped on; the path is filled in as the walk unwinds.
struct Violation {
    kind: Kind,
    /// Innermost first.
    path: Vec<Segment>,
}

enum Kind {
    Duplicate,
    TooDeep,
    WrongType(&'static str, &'static str),
}

enum Segment {
    Key(String),
    Index(usize),
}

impl Violation {
    fn into_error(self) -> BodyError {
        let path = render_path(&self.path);
        match self.kind {
            Kind::Duplicate => BodyError::DuplicateKey { path },
            Kind::TooDeep => BodyError::TooDeep { path },
            Kind::WrongType(field, expected) => BodyError::WrongType { field, expected },
        }
    }
}

/// `messages[0].content`, the outermost [`MAX_PATH_SEGMENTS`] segments, keys cut short.
fn render_path(innermost_first: &[Segment]) -> String {
    let mut out = String::new();
    for (i, seg) in innermost_first.iter().rev().enumerate() {
        if i == MAX_PATH_SEGMENTS {
            out.push('…');
            break;
        }
        match seg {
            Segment::Index(n) => out.push_str(&format!("[{n}]")),
            Segment::Key(k) => {
                if i > 0 {
                    out.push('.');
                }
                out.push_str(k);
            }
        }
    }
    out
}

fn key_segment(key: &str) -> Segment {
    Segment::Key(key.chars().take(MAX_KEY_CHARS).collect())
}

#[derive(Default)]
struct State<'de> {
    /// The keys of every object being walked, outermost first: each object's keys are
    /// contiguous, and truncated away when it ends (one buffer for the whole body).
    keys: Vec<Cow<'de, str>>,
    violation: Option<Violation>,
    model: Option<Cow<'de, str>>,
    stream: Option<bool>,
}

impl State<'_> {
    fn fail<E: de::Error>(&mut self, kind: Kind, at: Option<Segment>) -> E {
        self.violation = Some(Violation {
            kind,
            path: at.into_iter().collect(),
        });
        E::custom("request body refused")
    }

    /// Adds the segment the walk is leaving to the path of a violation below it.
    fn unwind<E>(&mut self, e: E, at: impl FnOnce() -> Segment) -> E {
        if let Some(v) = &mut self.violation {
            v.path.push(at());
        }
        e
    }
}

/// Which top-level field a value is (the fast path reads those two).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Pick {
    None,
    Model,
    Stream,
}

/// Walks one value at `depth` (its container's depth); with `BUILD` it returns the value.
struct Walk<'s, 'de, const BUILD: bool> {
    state: &'s mut State<'de>,
    depth: usize,
    pick: Pick,
}

impl<'de, const BUILD: bool> DeserializeSeed<'de> for Walk<'_, 'de, BUILD> {
    type Value = Option<Value>;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Option<Value>, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de, const BUILD: bool> Walk<'_, 'de, BUILD> {
    /// A scalar of the wrong type for a picked field.
    fn scalar<E: de::Error>(self, v: impl FnOnce() -> Value) -> Result<Option<Value>, E> {
        match self.pick {
            Pick::None => Ok(BUILD.then(v)),
            Pick::Model => Err(self.state.fail(Kind::WrongType("model", "a string"), None)),
            Pick::Stream => Err(self
                .state
                .fail(Kind::WrongType("stream", "a boolean"), None)),
        }
    }

    /// Enters a container: its depth, or a violation past [`MAX_DEPTH`].
    fn enter<E: de::Error>(&mut self) -> Result<usize, E> {
        if self.pick != Pick::None {
            return Err(self.scalar_mismatch());
        }
        let depth = self.depth + 1;
        if depth > MAX_DEPTH {
            return Err(self.state.fail(Kind::TooDeep, None));
        }
        Ok(depth)
    }

    fn scalar_mismatch<E: de::Error>(&mut self) -> E {
        let kind = match self.pick {
            Pick::Stream => Kind::WrongType("stream", "a boolean"),
            _ => Kind::WrongType("model", "a string"),
        };
        self.state.fail(kind, None)
    }

    /// Whether `key` repeats one of this object's keys (`keys[start..]`, or `set` once the
    /// object is large).
    // A `&Cow`, not a `&str`: cloning it keeps a borrowed key borrowed.
    #[allow(clippy::ptr_arg)]
    fn repeats(
        &mut self,
        key: &Cow<'de, str>,
        start: usize,
        set: &mut Option<HashSet<Cow<'de, str>>>,
    ) -> bool {
        if let Some(set) = set {
            return !set.insert(key.clone());
        }
        let keys = &mut self.state.keys;
        if keys[start..].contains(key) {
            return true;
        }
        keys.push(key.clone());
        if keys.len() - start > LINEAR_KEYS {
            *set = Some(keys.drain(start..).collect());
        }
        false
    }
}

impl<'de, const BUILD: bool> Visitor<'de> for Walk<'_, 'de, BUILD> {
    type Value = Option<Value>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Option<Value>, E> {
        // `null` is fine for a picked field: absent.
        Ok(BUILD.then_some(Value::Null))
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Option<Value>, E> {
        if self.pick == Pick::Stream {
            self.state.stream = Some(v);
            return Ok(BUILD.then_some(Value::Bool(v)));
        }
        self.scalar(|| Value::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Option<Value>, E> {
        self.scalar(|| Value::from(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Option<Value>, E> {
        self.scalar(|| Value::from(v))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Option<Value>, E> {
        self.scalar(|| serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Option<Value>, E> {
        if self.pick == Pick::Model {
            self.state.model = Some(Cow::Borrowed(v));
            return Ok(BUILD.then(|| Value::String(v.to_owned())));
        }
        self.scalar(|| Value::String(v.to_owned()))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Option<Value>, E> {
        if self.pick == Pick::Model {
            self.state.model = Some(Cow::Owned(v.to_owned()));
            return Ok(BUILD.then(|| Value::String(v.to_owned())));
        }
        self.scalar(|| Value::String(v.to_owned()))
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<Option<Value>, A::Error> {
        let depth = self.enter()?;
        let mut items = Vec::new();
        let mut index = 0usize;
        loop {
            let child = Walk::<BUILD> {
                state: &mut *self.state,
                depth,
                pick: Pick::None,
            };
            let item = seq
                .next_element_seed(child)
                .map_err(|e| self.state.unwind(e, || Segment::Index(index)))?;
            match item {
                None => break,
                Some(v) => items.extend(v),
            }
            index += 1;
        }
        Ok(BUILD.then_some(Value::Array(items)))
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<Option<Value>, A::Error> {
        let depth = self.enter()?;
        let start = self.state.keys.len();
        let mut set = None;
        let mut obj = Map::new();
        while let Some(key) = map.next_key_seed(KeySeed)? {
            let dup = if BUILD {
                obj.contains_key(key.as_ref())
            } else {
                self.repeats(&key, start, &mut set)
            };
            if dup {
                return Err(self.state.fail(Kind::Duplicate, Some(key_segment(&key))));
            }
            // Only the fast path picks (the full path reads the built object, as before).
            let pick = match (BUILD, depth, key.as_ref()) {
                (false, 1, "model") => Pick::Model,
                (false, 1, "stream") => Pick::Stream,
                _ => Pick::None,
            };
            let child = Walk::<BUILD> {
                state: &mut *self.state,
                depth,
                pick,
            };
            let value = map
                .next_value_seed(child)
                .map_err(|e| self.state.unwind(e, || key_segment(&key)))?;
            if let Some(v) = value {
                obj.insert(key.into_owned(), v);
            }
        }
        self.state.keys.truncate(start);
        Ok(BUILD.then_some(Value::Object(obj)))
    }
}

/// An object key, borrowed from the body unless it holds escapes.
struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Cow<'de, str>;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Cow<'de, str>, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Cow<'de, str>, E> {
        Ok(Cow::Borrowed(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Cow<'de, str>, E> {
        Ok(Cow::Owned(v.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested(depth: usize) -> String {
        format!(
            "{{\"a\":{}1{}}}",
            "[".repeat(depth - 1),
            "]".repeat(depth - 1)
        )
    }

    #[test]
    fn picks_model_and_stream_and_builds_the_same_object() {
        let body = br#"{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"hi"}],"n":1.5}"#;
        let p = peek(body).unwrap();
        assert_eq!(p.model.as_deref(), Some("gpt-4o"));
        assert!(matches!(p.model, Some(Cow::Borrowed(_))), "no copy");
        assert_eq!(p.stream, Some(true));
        let map = parse(body).unwrap();
        let expected: Value = serde_json::from_slice(body).unwrap();
        assert_eq!(Value::Object(map), expected);
        let p = peek(br#"{"model":"g\u0070t","stream":null,"x":{"model":5}}"#).unwrap();
        assert_eq!(p.model.as_deref(), Some("gpt"));
        assert_eq!(p.stream, None);
    }

    #[test]
    fn duplicate_keys_are_refused_with_their_path_also_when_escaped() {
        for body in [
            r#"{"messages":[{"role":"user","content":"a","content":"b"}]}"#,
            r#"{"messages":[{"role":"user","content":"a","\u0063ontent":"b"}]}"#,
            r#"{"messages":[{"role":"user","\u0063ontent":"a","content":"b"}]}"#,
        ] {
            let want = BodyError::DuplicateKey {
                path: "messages[0].content".into(),
            };
            assert_eq!(peek(body.as_bytes()).unwrap_err(), want, "{body}");
            assert_eq!(parse(body.as_bytes()).unwrap_err(), want, "{body}");
        }
        let top = br#"{"model":"a","model":"b"}"#;
        let want = BodyError::DuplicateKey {
            path: "model".into(),
        };
        assert_eq!(peek(top).unwrap_err(), want);
        assert_eq!(parse(top).unwrap_err(), want);
        // The same key in different objects, and keys of a closed object, are fine.
        let ok = br#"{"a":{"k":1},"b":{"k":{"k":2}},"k":3}"#;
        assert!(peek(ok).is_ok() && parse(ok).is_ok());
    }

    #[test]
    fn large_objects_switch_to_a_set() {
        let mut keys: Vec<String> = (0..200).map(|i| format!("\"k{i}\":{i}")).collect();
        let body = format!("{{\"o\":{{{}}},\"k0\":1}}", keys.join(","));
        assert!(peek(body.as_bytes()).is_ok());
        keys.push("\"k7\":0".into());
        let body = format!("{{\"o\":{{{}}}}}", keys.join(","));
        let want = BodyError::DuplicateKey {
            path: "o.k7".into(),
        };
        assert_eq!(peek(body.as_bytes()).unwrap_err(), want);
        assert_eq!(parse(body.as_bytes()).unwrap_err(), want);
    }

    #[test]
    fn depth_is_bounded_on_both_paths() {
        assert!(peek(nested(MAX_DEPTH).as_bytes()).is_ok());
        assert!(parse(nested(MAX_DEPTH).as_bytes()).is_ok());
        for depth in [MAX_DEPTH + 1, 100_000] {
            let body = nested(depth);
            for err in [
                peek(body.as_bytes()).unwrap_err(),
                parse(body.as_bytes()).unwrap_err(),
            ] {
                let BodyError::TooDeep { path } = err else {
                    panic!("{err:?}")
                };
                assert!(path.starts_with("a[0][0]") && path.ends_with('…'), "{path}");
                assert!(path.len() < 64, "bounded: {path}");
            }
        }
    }

    #[test]
    fn invalid_utf8_anywhere_is_refused() {
        for body in [
            &b"{\"model\":\"gpt\xff\"}"[..],
            b"{\"a\":\"ok\"}\xc3",
            b"{\"a\xe2\x82\":1}",
            b"{\"a\":1 \xfe}",
        ] {
            assert!(
                matches!(peek(body), Err(BodyError::Utf8 { .. })),
                "{body:?}"
            );
            assert!(
                matches!(parse(body), Err(BodyError::Utf8 { .. })),
                "{body:?}"
            );
        }
        // A lone surrogate escape is not a character either.
        let lone = br#"{"a":"\ud800"}"#;
        assert!(matches!(peek(lone), Err(BodyError::Syntax(_))));
        assert!(matches!(parse(lone), Err(BodyError::Syntax(_))));
    }

    #[test]
    fn shape_errors() {
        for body in [&b"[1]"[..], b"\"s\"", b"", b"  "] {
            assert_eq!(peek(body).unwrap_err(), BodyError::NotAnObject);
            assert_eq!(parse(body).unwrap_err(), BodyError::NotAnObject);
        }
        assert!(matches!(peek(b"{\"a\":1} x"), Err(BodyError::Syntax(_))));
        assert!(matches!(parse(b"{\"a\":}"), Err(BodyError::Syntax(_))));
        assert!(matches!(
            peek(br#"{"model":7}"#),
            Err(BodyError::WrongType { field: "model", .. })
        ));
        assert!(matches!(
            peek(br#"{"stream":"yes"}"#),
            Err(BodyError::WrongType {
                field: "stream",
                ..
            })
        ));
        assert!(matches!(
            peek(br#"{"model":{"a":1}}"#),
            Err(BodyError::WrongType { field: "model", .. })
        ));
    }
}
