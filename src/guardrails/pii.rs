//! PII detection for the `pii` check: e-mail addresses, phone numbers and credit-card numbers
//! (a 13–19 digit run, optionally grouped by single spaces or dashes, that passes the Luhn
//! check), and their redaction to `[REDACTED_EMAIL]`, `[REDACTED_PHONE]`,
//! `[REDACTED_CREDIT_CARD]`.
//!
//! Phone numbers are North-American style with separators (`555-123-4567`, `(555) 123-4567`,
//! `+1 555 123 4567`, `555.123.4567`) or E.164 (`+14155550123`); a bare run of digits is not a
//! phone number (it would flag every order id).

use std::ops::Range;

use regex::Regex;

use super::spec::PiiEntity;

const EMAIL: &str = r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}";
const PHONE: &str =
    r"(?:\+\d{1,3}[ .\-]?)?(?:\(\d{3}\)[ .\-]?|\b\d{3}[ .\-])\d{3}[ .\-]\d{4}\b|\+\d{8,15}\b";
const CARD: &str = r"\b\d(?:[ \-]?\d){12,18}\b";

/// The compiled detectors, built once with the config.
#[derive(Debug)]
pub struct PiiDetector {
    email: Option<Regex>,
    phone: Option<Regex>,
    card: Option<Regex>,
}

/// One PII occurrence: its byte range in the text and what it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub range: Range<usize>,
    pub entity: PiiEntity,
}

impl PiiDetector {
    /// Detectors for `entities` (all when empty).
    pub fn new(entities: &[PiiEntity]) -> Result<PiiDetector, regex::Error> {
        let wants = |e| entities.is_empty() || entities.contains(&e);
        let build = |e, pattern| -> Result<Option<Regex>, regex::Error> {
            if wants(e) {
                Regex::new(pattern).map(Some)
            } else {
                Ok(None)
            }
        };
        Ok(PiiDetector {
            email: build(PiiEntity::Email, EMAIL)?,
            phone: build(PiiEntity::Phone, PHONE)?,
            card: build(PiiEntity::CreditCard, CARD)?,
        })
    }

    /// Every occurrence in `text`, non-overlapping, ordered by position. E-mails are found
    /// first, then card numbers, then phone numbers outside both.
    pub fn find(&self, text: &str) -> Vec<Finding> {
        let mut out: Vec<Finding> = Vec::new();
        let overlaps = |out: &[Finding], r: &Range<usize>| {
            out.iter()
                .any(|f| f.range.start < r.end && r.start < f.range.end)
        };
        if let Some(re) = &self.email {
            for m in re.find_iter(text) {
                out.push(Finding {
                    range: m.range(),
                    entity: PiiEntity::Email,
                });
            }
        }
        if let Some(re) = &self.card {
            for m in re.find_iter(text) {
                if luhn_valid(m.as_str()) && !overlaps(&out, &m.range()) {
                    out.push(Finding {
                        range: m.range(),
                        entity: PiiEntity::CreditCard,
                    });
                }
            }
        }
        if let Some(re) = &self.phone {
            for m in re.find_iter(text) {
                if !overlaps(&out, &m.range()) {
                    out.push(Finding {
                        range: m.range(),
                        entity: PiiEntity::Phone,
                    });
                }
            }
        }
        out.sort_by_key(|f| f.range.start);
        out
    }

    /// `text` with every finding replaced by its placeholder; `None` when there is none.
    pub fn redact(&self, text: &str) -> Option<(String, Vec<Finding>)> {
        let found = self.find(text);
        if found.is_empty() {
            return None;
        }
        let mut out = String::with_capacity(text.len());
        let mut at = 0;
        for f in &found {
            out.push_str(&text[at..f.range.start]);
            out.push_str(placeholder(f.entity));
            at = f.range.end;
        }
        out.push_str(&text[at..]);
        Some((out, found))
    }
}

fn placeholder(entity: PiiEntity) -> &'static str {
    match entity {
        PiiEntity::Email => "[REDACTED_EMAIL]",
        PiiEntity::Phone => "[REDACTED_PHONE]",
        PiiEntity::CreditCard => "[REDACTED_CREDIT_CARD]",
    }
}

/// The Luhn checksum over the digits of `candidate` (separators ignored), for 13–19 digits.
pub fn luhn_valid(candidate: &str) -> bool {
    let mut sum = 0u32;
    let mut count = 0usize;
    for (i, d) in candidate
        .bytes()
        .rev()
        .filter(u8::is_ascii_digit)
        .map(|b| u32::from(b - b'0'))
        .enumerate()
    {
        count += 1;
        sum += if i % 2 == 1 {
            let doubled = d * 2;
            if doubled > 9 {
                doubled - 9
            } else {
                doubled
            }
        } else {
            d
        };
    }
    (13..=19).contains(&count) && sum.is_multiple_of(10)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn all() -> PiiDetector {
        PiiDetector::new(&[]).unwrap()
    }

    fn kinds(text: &str) -> Vec<PiiEntity> {
        all().find(text).into_iter().map(|f| f.entity).collect()
    }

    #[test]
    fn finds_each_entity() {
        assert_eq!(
            kinds("mail me at jane.doe+x@example.co.uk"),
            [PiiEntity::Email]
        );
        assert_eq!(kinds("call 555-123-4567 now"), [PiiEntity::Phone]);
        assert_eq!(kinds("call (555) 123-4567"), [PiiEntity::Phone]);
        assert_eq!(kinds("call +1 555 123 4567"), [PiiEntity::Phone]);
        assert_eq!(kinds("call +14155550123"), [PiiEntity::Phone]);
        assert_eq!(
            kinds("card 4111 1111 1111 1111 ok"),
            [PiiEntity::CreditCard]
        );
        assert_eq!(kinds("card 4111-1111-1111-1111"), [PiiEntity::CreditCard]);
        assert_eq!(kinds("card 378282246310005"), [PiiEntity::CreditCard]);
        assert!(kinds("nothing here, order 12345, year 2026").is_empty());
        // A 16-digit run failing Luhn is no card, and no phone either.
        assert!(kinds("id 4111111111111112").is_empty());
    }

    #[test]
    fn redacts_in_place() {
        let (text, found) = all()
            .redact("me: a@b.io, 4111 1111 1111 1111, 555-123-4567.")
            .unwrap();
        assert_eq!(
            text,
            "me: [REDACTED_EMAIL], [REDACTED_CREDIT_CARD], [REDACTED_PHONE]."
        );
        assert_eq!(found.len(), 3);
        assert!(all().redact("clean text").is_none());
    }

    #[test]
    fn entities_narrow_the_search() {
        let only_email = PiiDetector::new(&[PiiEntity::Email]).unwrap();
        assert!(only_email.find("555-123-4567").is_empty());
        assert_eq!(only_email.find("x@y.org").len(), 1);
    }

    #[test]
    fn luhn_known_values() {
        assert!(luhn_valid("4111111111111111"));
        assert!(luhn_valid("5500 0000 0000 0004"));
        assert!(!luhn_valid("4111111111111112"));
        assert!(!luhn_valid("0")); // too short
    }

    /// The check digit that makes `body` Luhn-valid.
    fn check_digit(body: &[u8]) -> u8 {
        let mut sum = 0u32;
        for (i, d) in body.iter().rev().enumerate() {
            let d = u32::from(*d);
            sum += if i % 2 == 0 {
                let x = d * 2;
                if x > 9 {
                    x - 9
                } else {
                    x
                }
            } else {
                d
            };
        }
        ((10 - sum % 10) % 10) as u8
    }

    proptest! {
        #[test]
        fn valid_card_numbers_are_caught(body in proptest::collection::vec(0u8..10, 15)) {
            let mut digits = body.clone();
            digits.push(check_digit(&body));
            let number: String = digits.iter().map(|d| char::from(b'0' + d)).collect();
            let text = format!("pay with {number} please");
            prop_assert!(luhn_valid(&number));
            prop_assert_eq!(kinds(&text), vec![PiiEntity::CreditCard]);
        }

        #[test]
        fn invalid_16_digit_strings_are_not_cards(body in proptest::collection::vec(0u8..10, 15), off in 1u8..10) {
            let mut digits = body.clone();
            digits.push((check_digit(&body) + off) % 10);
            let number: String = digits.iter().map(|d| char::from(b'0' + d)).collect();
            prop_assert!(!luhn_valid(&number));
            let text = format!("ref {number} end");
            prop_assert!(kinds(&text).is_empty());
        }

        #[test]
        fn never_panics(text in "\\PC{0,200}") {
            let d = all();
            let found = d.find(&text);
            if let Some((out, again)) = d.redact(&text) {
                prop_assert_eq!(found.len(), again.len());
                prop_assert!(out.contains("[REDACTED_"));
            }
        }
    }
}
