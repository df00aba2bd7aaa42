//! One entry of `input_guardrails` / `output_guardrails`, in either spelling, told apart as it
//! is read: Switchyard's flat mapping (it has `check` or another of [`GuardrailSpec`]'s fields)
//! or Portkey's shorthand (`{"default.contains": {...}, "deny": true}`: every key is a check or
//! one of the hook options `deny`, `on_fail`, `on_success`, `async`, …), which
//! [`super::portkey`] compiles. A flat entry keeps serde's errors at their field's path
//! (`input_guardrails[0].check: unknown variant …`), as when the list held only flat entries.

use std::fmt;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::Value;

use super::spec::GuardrailSpec;

/// One entry of an `input_guardrails` / `output_guardrails` list.
#[derive(Debug, Clone)]
pub enum GuardrailItem {
    /// `{ check: contains, words: [...], action: deny }`
    Flat(GuardrailSpec),
    /// `{ "default.contains": { "operator": "none", "words": [...] }, "deny": true }`
    Portkey(PortkeyItem),
}

/// Portkey's shorthand entry, its keys in the order written.
#[derive(Debug, Clone)]
pub struct PortkeyItem {
    pub entries: Vec<(String, Value)>,
}

/// The flat spelling's fields (`GuardrailSpec`).
const FLAT_FIELDS: &[&str] = &[
    "check",
    "name",
    "action",
    "on_fail",
    "words",
    "operator",
    "case_sensitive",
    "pattern",
    "must_match",
    "min",
    "max",
    "schema",
    "entities",
];

impl<'de> Deserialize<'de> for GuardrailItem {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(ItemVisitor)
    }
}

struct ItemVisitor;

/// A flat entry as read so far: `check` may still be missing.
#[derive(Default)]
struct Partial {
    check: Option<super::spec::CheckKind>,
    spec: Option<GuardrailSpec>,
}

impl<'de> Visitor<'de> for ItemVisitor {
    type Value = GuardrailItem;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "a guardrail: { check: …, … }, or Portkey's { \"default.<check>\": { … }, \"deny\": … }",
        )
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<GuardrailItem, A::Error> {
        let mut flat = Partial::default();
        let mut other: Vec<(String, Value)> = Vec::new();
        // `on_fail` is in both spellings (`fallback` here, an object in Portkey's).
        let mut any_flat = false;
        while let Some(key) = map.next_key::<String>()? {
            if key != "on_fail" && FLAT_FIELDS.contains(&key.as_str()) {
                any_flat = true;
                read_flat_field(&key, &mut map, &mut flat)?;
            } else {
                let value = map.next_value::<Value>()?;
                other.push((key, value));
            }
        }
        if !any_flat {
            return Ok(GuardrailItem::Portkey(PortkeyItem { entries: other }));
        }
        let Some(check) = flat.check else {
            return Err(de::Error::missing_field("check"));
        };
        let mut spec = flat.spec.unwrap_or_else(empty_spec);
        spec.check = check;
        for (key, value) in other {
            if key != "on_fail" {
                return Err(de::Error::unknown_field(&key, FLAT_FIELDS));
            }
            let on_fail = serde_json::from_value(value)
                .map_err(|e| de::Error::custom(format!("on_fail: {e}")))?;
            spec.on_fail = Some(on_fail);
        }
        Ok(GuardrailItem::Flat(spec))
    }
}

/// Reads the value of flat field `key` with its own type, so its errors name the field.
fn read_flat_field<'de, A: MapAccess<'de>>(
    key: &str,
    map: &mut A,
    flat: &mut Partial,
) -> Result<(), A::Error> {
    if key == "check" {
        flat.check = Some(map.next_value()?);
        return Ok(());
    }
    let spec = flat.spec.get_or_insert_with(empty_spec);
    match key {
        "name" => spec.name = Some(map.next_value()?),
        "action" => spec.action = Some(map.next_value()?),
        "words" => spec.words = Some(map.next_value()?),
        "operator" => spec.operator = Some(map.next_value()?),
        "case_sensitive" => spec.case_sensitive = Some(map.next_value()?),
        "pattern" => spec.pattern = Some(map.next_value()?),
        "must_match" => spec.must_match = Some(map.next_value()?),
        "min" => spec.min = Some(map.next_value()?),
        "max" => spec.max = Some(map.next_value()?),
        "schema" => spec.schema = Some(map.next_value()?),
        "entities" => spec.entities = Some(map.next_value()?),
        _ => return Err(de::Error::unknown_field(key, FLAT_FIELDS)),
    }
    Ok(())
}

/// A flat spec with nothing set (its `check` is filled in last).
fn empty_spec() -> GuardrailSpec {
    GuardrailSpec {
        check: super::spec::CheckKind::Contains,
        name: None,
        action: None,
        on_fail: None,
        words: None,
        operator: None,
        case_sensitive: None,
        pattern: None,
        must_match: None,
        min: None,
        max: None,
        schema: None,
        entities: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(v: Value) -> Result<GuardrailItem, String> {
        serde_path_to_error::deserialize::<_, GuardrailItem>(v).map_err(|e| {
            let path = e.path().to_string();
            format!("{path}: {}", e.into_inner())
        })
    }

    #[test]
    fn the_two_spellings_are_told_apart() {
        let flat = item(serde_json::json!({"check": "pii", "on_fail": "fallback"})).unwrap();
        assert!(matches!(flat, GuardrailItem::Flat(s) if s.on_fail.is_some()));
        let pk =
            item(serde_json::json!({"default.contains": {"words": ["x"]}, "deny": true})).unwrap();
        let GuardrailItem::Portkey(p) = pk else {
            panic!("not portkey")
        };
        assert_eq!(p.entries.len(), 2);
        assert_eq!(p.entries[0].0, "default.contains");
    }

    #[test]
    fn flat_errors_keep_their_field_path() {
        let e = item(serde_json::json!({"check": "sentiment"})).unwrap_err();
        assert!(e.starts_with("check: unknown variant `sentiment`"), "{e}");
        let e = item(serde_json::json!({"check": "word_count", "min": "ten"})).unwrap_err();
        assert!(e.starts_with("min: invalid type"), "{e}");
        let e = item(serde_json::json!({"check": "pii", "colour": "red"})).unwrap_err();
        assert!(e.contains("unknown field `colour`"), "{e}");
        let e = item(serde_json::json!({"words": ["a"]})).unwrap_err();
        assert!(e.contains("missing field `check`"), "{e}");
        let e = item(serde_json::json!({"check": "pii", "on_fail": "later"})).unwrap_err();
        assert!(e.contains("on_fail: unknown variant"), "{e}");
    }
}
