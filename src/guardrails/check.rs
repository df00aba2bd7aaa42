//! The checks themselves: each takes the text under test and says whether it passes, with a
//! short explanation when it does not. Everything expensive (regexes, JSON schemas, PII
//! detectors, lower-cased word lists) is built once when the config is compiled.

use std::fmt;

use regex::Regex;

use super::pii::PiiDetector;
use super::spec::{CheckKind, OperatorSpec};

/// A compiled check.
pub enum Check {
    /// Substrings; `words` are lower-cased already unless `case_sensitive`.
    Contains {
        words: Vec<String>,
        operator: OperatorSpec,
        case_sensitive: bool,
    },
    /// Fails when `regex` matches (or, with `must_match`, when it does not).
    Regex { regex: Regex, must_match: bool },
    /// Inclusive bounds on whitespace-separated words.
    WordCount { min: u64, max: Option<u64> },
    /// Inclusive bounds on the length in UTF-16 units (JavaScript's `length`, Portkey's count).
    CharacterCount { min: u64, max: Option<u64> },
    /// The text (or the body of a ```json fenced block in it) parses as JSON and validates.
    JsonSchema {
        validator: Box<jsonschema::Validator>,
    },
    /// No e-mail, phone or card number (of the configured entities) occurs.
    Pii { detector: PiiDetector },
    /// Portkey's `not: true`: passes when the inner check fails, and fails when it passes.
    Not(Box<Check>),
}

impl fmt::Debug for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.kind().as_str())
    }
}

/// The result of one check on one text.
pub type Outcome = Result<(), String>;

impl Check {
    pub fn kind(&self) -> CheckKind {
        match self {
            Check::Contains { .. } => CheckKind::Contains,
            Check::Regex { .. } => CheckKind::Regex,
            Check::WordCount { .. } => CheckKind::WordCount,
            Check::CharacterCount { .. } => CheckKind::CharacterCount,
            Check::JsonSchema { .. } => CheckKind::JsonSchema,
            Check::Pii { .. } => CheckKind::Pii,
            Check::Not(inner) => inner.kind(),
        }
    }

    /// Runs the check on `text`: `Ok` passes, `Err` says why not.
    pub fn run(&self, text: &str) -> Outcome {
        match self {
            Check::Contains {
                words,
                operator,
                case_sensitive,
            } => {
                let lowered;
                let hay = if *case_sensitive {
                    text
                } else {
                    lowered = text.to_lowercase();
                    &lowered
                };
                let mut found = words.iter().filter(|w| hay.contains(w.as_str()));
                match operator {
                    OperatorSpec::Any => match found.next() {
                        Some(_) => Ok(()),
                        None => Err("none of the words occurs".into()),
                    },
                    OperatorSpec::All => match words.iter().find(|w| !hay.contains(w.as_str())) {
                        None => Ok(()),
                        Some(w) => Err(format!("the word {w:?} does not occur")),
                    },
                    OperatorSpec::None => match found.next() {
                        None => Ok(()),
                        Some(w) => Err(format!("the word {w:?} occurs")),
                    },
                }
            }
            Check::Regex { regex, must_match } => match (regex.is_match(text), must_match) {
                (true, false) => Err("the pattern matches".into()),
                (false, true) => Err("the pattern does not match".into()),
                _ => Ok(()),
            },
            Check::WordCount { min, max } => {
                bounds(text.split_whitespace().count() as u64, *min, *max, "words")
            }
            Check::CharacterCount { min, max } => {
                bounds(text.encode_utf16().count() as u64, *min, *max, "characters")
            }
            Check::Not(inner) => match inner.run(text) {
                Ok(()) => Err(format!(
                    "the {} check passes and `not` inverts it",
                    inner.kind().as_str()
                )),
                Err(_) => Ok(()),
            },
            Check::JsonSchema { validator } => {
                let value =
                    parse_json_text(text).ok_or_else(|| "the text is not JSON".to_string())?;
                match validator.validate(&value) {
                    Ok(()) => Ok(()),
                    Err(e) => {
                        let mut why = e.to_string();
                        if why.len() > 200 {
                            let mut cut = 200;
                            while !why.is_char_boundary(cut) {
                                cut -= 1;
                            }
                            why.truncate(cut);
                        }
                        Err(format!("does not match the schema: {why}"))
                    }
                }
            }
            Check::Pii { detector } => {
                let found = detector.find(text);
                if found.is_empty() {
                    return Ok(());
                }
                let mut kinds: Vec<&str> = found.iter().map(|f| f.entity.as_str()).collect();
                kinds.sort_unstable();
                kinds.dedup();
                Err(format!("found {}", kinds.join(", ")))
            }
        }
    }
}

/// `n` units within `min..=max`, else why not.
fn bounds(n: u64, min: u64, max: Option<u64>, unit: &str) -> Outcome {
    if n < min {
        Err(format!("{n} {unit}, fewer than {min}"))
    } else if let Some(max) = max.filter(|m| n > *m) {
        Err(format!("{n} {unit}, more than {max}"))
    } else {
        Ok(())
    }
}

/// The JSON in `text`: the whole text, or else the first ```json (or bare ```) fenced block.
fn parse_json_text(text: &str) -> Option<serde_json::Value> {
    let trimmed = text.trim();
    if let Ok(v) = serde_json::from_str(trimmed) {
        return Some(v);
    }
    let start = trimmed.find("```")?;
    let rest = &trimmed[start + 3..];
    let rest = rest.strip_prefix("json").unwrap_or(rest);
    let end = rest.find("```")?;
    serde_json::from_str(rest[..end].trim()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contains(words: &[&str], operator: OperatorSpec, case_sensitive: bool) -> Check {
        Check::Contains {
            words: words
                .iter()
                .map(|w| {
                    if case_sensitive {
                        w.to_string()
                    } else {
                        w.to_lowercase()
                    }
                })
                .collect(),
            operator,
            case_sensitive,
        }
    }

    #[test]
    fn contains_operators() {
        let any = contains(&["foo", "bar"], OperatorSpec::Any, false);
        assert!(any.run("a FOO b").is_ok());
        assert!(any.run("nothing").is_err());
        let all = contains(&["foo", "bar"], OperatorSpec::All, false);
        assert!(all.run("foo and Bar").is_ok());
        assert_eq!(
            all.run("foo only").unwrap_err(),
            "the word \"bar\" does not occur"
        );
        let none = contains(&["password"], OperatorSpec::None, false);
        assert!(none.run("hello").is_ok());
        assert!(none.run("my PASSWORD is").is_err());
        let sensitive = contains(&["Secret"], OperatorSpec::None, true);
        assert!(sensitive.run("a secret").is_ok());
        assert!(sensitive.run("a Secret").is_err());
    }

    #[test]
    fn regex_fails_on_match_unless_must_match() {
        let deny = Check::Regex {
            regex: Regex::new(r"\b\d{3}-\d{2}-\d{4}\b").unwrap(),
            must_match: false,
        };
        assert!(deny.run("ssn 123-45-6789").is_err());
        assert!(deny.run("no number").is_ok());
        let allow = Check::Regex {
            regex: Regex::new(r"^OK").unwrap(),
            must_match: true,
        };
        assert!(allow.run("OK fine").is_ok());
        assert!(allow.run("not ok").is_err());
    }

    #[test]
    fn word_count_bounds_are_inclusive() {
        let c = Check::WordCount {
            min: 2,
            max: Some(3),
        };
        assert!(c.run("one").is_err());
        assert!(c.run("one two").is_ok());
        assert!(c.run(" one  two\tthree ").is_ok());
        assert!(c.run("one two three four").is_err());
    }

    #[test]
    fn character_count_counts_utf16_units_and_not_inverts() {
        let c = Check::CharacterCount {
            min: 2,
            max: Some(4),
        };
        assert!(c.run("a").is_err());
        assert!(c.run("abcd").is_ok());
        // One astral character is two UTF-16 units, as JavaScript counts it.
        assert!(c.run("\u{1F600}").is_ok());
        assert!(c.run("abcde").is_err());
        let not = Check::Not(Box::new(c));
        assert!(not.run("abc").is_err());
        assert!(not.run("a").is_ok());
        assert_eq!(not.kind(), CheckKind::CharacterCount);
    }

    #[test]
    fn json_schema_parses_and_validates() {
        let schema = serde_json::json!({"type": "object", "required": ["answer"]});
        let c = Check::JsonSchema {
            validator: Box::new(jsonschema::validator_for(&schema).unwrap()),
        };
        assert!(c.run(r#"{"answer": 42}"#).is_ok());
        assert!(c.run("```json\n{\"answer\": 1}\n```").is_ok());
        assert!(c.run(r#"{"other": 1}"#).unwrap_err().contains("schema"));
        assert_eq!(c.run("not json").unwrap_err(), "the text is not JSON");
    }
}
