//! Portkey's conditional-routing queries (`$eq $ne $gt $gte $lt $lte $in $nin $regex $and $or`)
//! over `metadata.*` (the `x-portkey-metadata` header) and `params.*` (the request body).

use serde_json::{Map, Value};

use crate::config::Condition;

/// What a query can look at.
pub struct Facts<'a> {
    pub metadata: Option<&'a Map<String, Value>>,
    pub params: Option<&'a Map<String, Value>>,
}

impl Facts<'_> {
    fn lookup(&self, key: &str) -> Option<&Value> {
        if let Some(k) = key.strip_prefix("metadata.") {
            return self.metadata?.get(k);
        }
        if let Some(k) = key.strip_prefix("params.") {
            return self.params?.get(k);
        }
        None
    }
}

/// The child a conditional group routes `facts` to: the `then` of the first condition that
/// holds, else the group's default; `None` when neither (the request has no route). The router
/// and the cache key (which must know every leaf a request can reach) both decide with this.
pub fn choose(
    conditions: &[Condition],
    default: Option<usize>,
    facts: &Facts<'_>,
) -> Option<usize> {
    conditions
        .iter()
        .find(|c| matches(&c.query, facts))
        .map(|c| c.then)
        .or(default)
}

/// Whether `query` holds for `facts`. Every key of a query must hold (an implicit `$and`).
pub fn matches(query: &Value, facts: &Facts<'_>) -> bool {
    let Some(obj) = query.as_object() else {
        return false;
    };
    obj.iter().all(|(key, cond)| match key.as_str() {
        "$and" => cond
            .as_array()
            .is_some_and(|qs| qs.iter().all(|q| matches(q, facts))),
        "$or" => cond
            .as_array()
            .is_some_and(|qs| qs.iter().any(|q| matches(q, facts))),
        field => {
            let actual = facts.lookup(field);
            match cond.as_object() {
                Some(ops) if ops.keys().all(|k| k.starts_with('$')) => ops
                    .iter()
                    .all(|(op, operand)| operator(op, actual, operand)),
                _ => actual == Some(cond),
            }
        }
    })
}

fn number(v: &Value) -> Option<f64> {
    v.as_f64().or_else(|| v.as_str()?.parse().ok())
}

fn compare(actual: Option<&Value>, operand: &Value) -> Option<std::cmp::Ordering> {
    let actual = actual?;
    match (number(actual), number(operand)) {
        (Some(a), Some(b)) => a.partial_cmp(&b),
        _ => Some(actual.as_str()?.cmp(operand.as_str()?)),
    }
}

fn operator(op: &str, actual: Option<&Value>, operand: &Value) -> bool {
    use std::cmp::Ordering::*;
    match op {
        "$eq" => actual == Some(operand),
        "$ne" => actual != Some(operand),
        "$gt" => compare(actual, operand) == Some(Greater),
        "$gte" => matches!(compare(actual, operand), Some(Greater | Equal)),
        "$lt" => compare(actual, operand) == Some(Less),
        "$lte" => matches!(compare(actual, operand), Some(Less | Equal)),
        "$in" => operand
            .as_array()
            .is_some_and(|list| actual.is_some_and(|a| list.contains(a))),
        "$nin" => operand
            .as_array()
            .is_some_and(|list| !actual.is_some_and(|a| list.contains(a))),
        "$regex" => match (actual.and_then(Value::as_str), operand.as_str()) {
            // Validated at load; compiled here because conditional configs are rare and small.
            (Some(text), Some(pattern)) => regex::Regex::new(pattern)
                .map(|re| re.is_match(text))
                .unwrap_or(false),
            _ => false,
        },
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn operators_over_metadata_and_params() {
        let meta = json!({"plan": "paid", "tier": "gold", "age": 30});
        let params = json!({"model": "gpt-4o-mini", "temperature": 0.2});
        let facts = Facts {
            metadata: meta.as_object(),
            params: params.as_object(),
        };
        let t = |q: Value| matches(&q, &facts);
        assert!(t(json!({"metadata.plan": {"$eq": "paid"}})));
        assert!(t(json!({"metadata.plan": "paid"})));
        assert!(!t(json!({"metadata.plan": {"$ne": "paid"}})));
        assert!(t(json!({"metadata.age": {"$gt": 18, "$lte": 30}})));
        assert!(!t(json!({"metadata.age": {"$lt": 30}})));
        assert!(t(json!({"metadata.tier": {"$in": ["gold", "silver"]}})));
        assert!(t(json!({"metadata.missing": {"$nin": ["x"]}})));
        assert!(t(json!({"params.model": {"$regex": "^gpt-4o"}})));
        assert!(t(
            json!({"$or": [{"metadata.plan": "free"}, {"params.temperature": {"$lt": 0.5}}]})
        ));
        assert!(!t(
            json!({"$and": [{"metadata.plan": "paid"}, {"metadata.tier": "silver"}]})
        ));
        assert!(!t(json!({"metadata.plan": {"$like": "p"}})));
        let none = Facts {
            metadata: None,
            params: None,
        };
        assert!(!matches(&json!({"metadata.plan": "paid"}), &none));
    }
}
