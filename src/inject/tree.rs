//! A document as read, with its mapping keys in their original order: what lets `switchyard
//! inject` write a manifest back with the user's key order. The transformation itself works on
//! `serde_json::Value` (whose maps are sorted); [`Tree::reorder`] puts the result back in the
//! order the input had, new keys last.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};
use serde_json::{Map, Number, Value};

/// A YAML or JSON node; mappings keep their keys in document order.
#[derive(Clone, Debug, PartialEq)]
pub enum Tree {
    Null,
    Bool(bool),
    Number(Number),
    String(String),
    Seq(Vec<Tree>),
    Map(Vec<(String, Tree)>),
}

impl Tree {
    /// The same data as a JSON value (key order lost).
    pub fn to_value(&self) -> Value {
        match self {
            Tree::Null => Value::Null,
            Tree::Bool(b) => Value::Bool(*b),
            Tree::Number(n) => Value::Number(n.clone()),
            Tree::String(s) => Value::String(s.clone()),
            Tree::Seq(items) => Value::Array(items.iter().map(Tree::to_value).collect()),
            Tree::Map(entries) => {
                let map: Map<String, Value> = entries
                    .iter()
                    .map(|(k, v)| (k.clone(), v.to_value()))
                    .collect();
                Value::Object(map)
            }
        }
    }

    /// `value` as a tree whose mappings list their keys in the order `self` (the original)
    /// had them; keys `self` lacks follow in `value`'s order. Sequence items are matched to
    /// the original's by their `name` field where they have one, else by position.
    pub fn reorder(&self, value: &Value) -> Tree {
        match value {
            Value::Null => Tree::Null,
            Value::Bool(b) => Tree::Bool(*b),
            Value::Number(n) => Tree::Number(n.clone()),
            Value::String(s) => Tree::String(s.clone()),
            Value::Array(items) => {
                let old = match self {
                    Tree::Seq(old) => old.as_slice(),
                    _ => &[],
                };
                let tree = items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| {
                        match_item(old, item, i)
                            .unwrap_or(&Tree::Null)
                            .reorder(item)
                    })
                    .collect();
                Tree::Seq(tree)
            }
            Value::Object(map) => {
                let old = match self {
                    Tree::Map(old) => old.as_slice(),
                    _ => &[],
                };
                let mut out = Vec::with_capacity(map.len());
                for (key, old_value) in old {
                    if let Some(v) = map.get(key) {
                        out.push((key.clone(), old_value.reorder(v)));
                    }
                }
                // New keys in the value's (sorted) order, but a new object's `name` first,
                // where a reader looks for it.
                let new_keys = map
                    .iter()
                    .filter(|(key, _)| !old.iter().any(|(k, _)| k == *key));
                let (names, rest): (Vec<_>, Vec<_>) =
                    new_keys.partition(|(key, _)| old.is_empty() && *key == "name");
                for (key, v) in names.into_iter().chain(rest) {
                    out.push((key.clone(), Tree::Null.reorder(v)));
                }
                Tree::Map(out)
            }
        }
    }
}

/// The original sequence item that `item` (at `index` in the new sequence) corresponds to.
fn match_item<'a>(old: &'a [Tree], item: &Value, index: usize) -> Option<&'a Tree> {
    match item.get("name").and_then(Value::as_str) {
        Some(name) => old.iter().find(|t| t.name() == Some(name)),
        None => old.get(index),
    }
}

impl Tree {
    fn name(&self) -> Option<&str> {
        match self {
            Tree::Map(entries) => entries
                .iter()
                .find(|(k, _)| k == "name")
                .and_then(|(_, v)| match v {
                    Tree::String(s) => Some(s.as_str()),
                    _ => None,
                }),
            _ => None,
        }
    }
}

impl Serialize for Tree {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Tree::Null => serializer.serialize_unit(),
            Tree::Bool(b) => serializer.serialize_bool(*b),
            Tree::Number(n) => n.serialize(serializer),
            Tree::String(s) => serializer.serialize_str(s),
            Tree::Seq(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Tree::Map(entries) => {
                let mut map = serializer.serialize_map(Some(entries.len()))?;
                for (k, v) in entries {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
        }
    }
}

struct TreeVisitor;

impl<'de> Visitor<'de> for TreeVisitor {
    type Value = Tree;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a YAML or JSON value")
    }
    fn visit_unit<E>(self) -> Result<Tree, E> {
        Ok(Tree::Null)
    }
    fn visit_none<E>(self) -> Result<Tree, E> {
        Ok(Tree::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Tree, D::Error> {
        Tree::deserialize(d)
    }
    fn visit_bool<E>(self, b: bool) -> Result<Tree, E> {
        Ok(Tree::Bool(b))
    }
    fn visit_i64<E>(self, n: i64) -> Result<Tree, E> {
        Ok(Tree::Number(n.into()))
    }
    fn visit_u64<E>(self, n: u64) -> Result<Tree, E> {
        Ok(Tree::Number(n.into()))
    }
    fn visit_f64<E: de::Error>(self, n: f64) -> Result<Tree, E> {
        // Integral floats stay floats (`1.0`): the API server reads either, and a round trip
        // must not change the text of a number it does not need to.
        Number::from_f64(n)
            .map(Tree::Number)
            .ok_or_else(|| E::custom(format!("{n} is not a number JSON can hold")))
    }
    fn visit_str<E>(self, s: &str) -> Result<Tree, E> {
        Ok(Tree::String(s.to_owned()))
    }
    fn visit_string<E>(self, s: String) -> Result<Tree, E> {
        Ok(Tree::String(s))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Tree, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Tree::Seq(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Tree, A::Error> {
        let mut entries: Vec<(String, Tree)> = Vec::new();
        while let Some(key) = map.next_key::<KeyString>()? {
            let value = map.next_value()?;
            if entries.iter().any(|(k, _)| *k == key.0) {
                return Err(de::Error::custom(format!("duplicate key {:?}", key.0)));
            }
            entries.push((key.0, value));
        }
        Ok(Tree::Map(entries))
    }
}

impl<'de> Deserialize<'de> for Tree {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Tree, D::Error> {
        d.deserialize_any(TreeVisitor)
    }
}

/// A mapping key: Kubernetes objects only have string keys, but YAML may spell one as a
/// number or a boolean (`80: x`, `on: y`), which JSON (and the API server) turns into a string.
struct KeyString(String);

impl<'de> Deserialize<'de> for KeyString {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Tree::deserialize(d)? {
            Tree::String(s) => Ok(KeyString(s)),
            Tree::Number(n) => Ok(KeyString(n.to_string())),
            Tree::Bool(b) => Ok(KeyString(b.to_string())),
            Tree::Null => Ok(KeyString("null".into())),
            _ => Err(de::Error::custom(
                "a mapping key that is a mapping or a sequence",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reorder_keeps_the_original_key_order_and_puts_new_keys_last() {
        let original: Tree = serde_json::from_str(
            r#"{"b": 1, "a": {"z": 1, "y": 2}, "c": [{"name": "x", "q": 1, "p": 2}]}"#,
        )
        .unwrap_or(Tree::Null);
        let value = json!({"a": {"y": 3, "z": 1, "new": 0}, "b": 1, "c": [{"name": "new"}, {"p": 2, "q": 1, "name": "x"}], "d": true});
        let out = serde_json::to_string(&original.reorder(&value)).unwrap_or_default();
        assert_eq!(
            out,
            r#"{"b":1,"a":{"z":1,"y":3,"new":0},"c":[{"name":"new"},{"name":"x","q":1,"p":2}],"d":true}"#
        );
    }

    #[test]
    fn duplicate_keys_are_refused() {
        let err = serde_json::from_str::<Tree>(r#"{"a": 1, "a": 2}"#)
            .err()
            .map(|e| e.to_string());
        assert!(err.unwrap_or_default().contains("duplicate key"));
    }
}
