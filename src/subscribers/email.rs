//! `SubscriberEmail`: an address that has been parsed, normalised and bounded.

use std::fmt;

use sha2::{Digest, Sha256};

/// RFC 5321 §4.5.3.1.1: a local part holds at most 64 octets.
const MAX_LOCAL_OCTETS: usize = 64;
/// RFC 5321 §4.5.3.1.3 and its erratum: a path holds at most 256 octets,
/// of which the angle brackets take two, so an address is at most 254.
const MAX_ADDRESS_OCTETS: usize = 254;
const MAX_LABEL_OCTETS: usize = 63;

/// Why a string is not an address necmail will mail.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EmailError {
    #[error("the address is empty")]
    Empty,
    #[error("the address contains a space, a line break or another control character")]
    Whitespace,
    #[error("the address has no @ followed by a domain")]
    MissingDomain,
    #[error("the address has nothing before the @")]
    MissingLocalPart,
    #[error("the part before the @ is longer than 64 octets")]
    LocalPartTooLong,
    #[error("the address is longer than 254 octets")]
    TooLong,
    #[error("the part before the @ is not valid: {0}")]
    BadLocalPart(&'static str),
    #[error("domain literals such as [192.0.2.1] are not accepted")]
    DomainLiteral,
    #[error("the domain is not valid: {0}")]
    BadDomain(&'static str),
}

/// An email address as necmail stores it.
///
/// The domain is lower-cased and in A-label (punycode) form; the local part
/// is kept exactly as written, because RFC 5321 lets a server treat it as
/// case-sensitive. [`SubscriberEmail::key`] is the fully lower-cased form used
/// to recognise the same person however they typed it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SubscriberEmail(String);

impl SubscriberEmail {
    pub fn parse(input: &str) -> Result<Self, EmailError> {
        let s = input.trim();
        if s.is_empty() {
            return Err(EmailError::Empty);
        }
        if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(EmailError::Whitespace);
        }
        let (local, domain) = s.rsplit_once('@').ok_or(EmailError::MissingDomain)?;
        if local.is_empty() {
            return Err(EmailError::MissingLocalPart);
        }
        if domain.is_empty() {
            return Err(EmailError::MissingDomain);
        }
        if local.len() > MAX_LOCAL_OCTETS {
            return Err(EmailError::LocalPartTooLong);
        }
        check_local_part(local)?;
        let domain = parse_domain(domain)?;
        let address = format!("{local}@{domain}");
        if address.len() > MAX_ADDRESS_OCTETS {
            return Err(EmailError::TooLong);
        }
        Ok(Self(address))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The part before the @, as written.
    pub fn local_part(&self) -> &str {
        self.0.rsplit_once('@').map_or("", |(l, _)| l)
    }

    pub fn domain(&self) -> &str {
        self.0.rsplit_once('@').map_or("", |(_, d)| d)
    }

    /// The lower-cased address: the identity of a subscriber.
    pub fn key(&self) -> String {
        self.0.to_ascii_lowercase()
    }

    /// The hash kept in the suppression list. It outlives the address itself,
    /// so an objection is still honoured after erasure.
    pub fn suppression_hash(&self) -> String {
        let digest = Sha256::digest(self.key().as_bytes());
        crate::text::hex(&digest)
    }
}

impl fmt::Display for SubscriberEmail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl serde::Serialize for SubscriberEmail {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl AsRef<str> for SubscriberEmail {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// RFC 5322 `dot-atom`: atext runs separated by single dots. Quoted local
/// parts and non-ASCII (SMTPUTF8) local parts are refused: relays that
/// necmail sends through cannot be assumed to carry them.
fn check_local_part(local: &str) -> Result<(), EmailError> {
    if !local.is_ascii() {
        return Err(EmailError::BadLocalPart("it must be ASCII"));
    }
    if local.starts_with('.') || local.ends_with('.') || local.contains("..") {
        return Err(EmailError::BadLocalPart("dots cannot start, end or repeat"));
    }
    let atext = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~.".contains(c);
    if !local.chars().all(atext) {
        return Err(EmailError::BadLocalPart(
            "it holds a character that needs quoting",
        ));
    }
    Ok(())
}

fn parse_domain(domain: &str) -> Result<String, EmailError> {
    if domain.starts_with('[') {
        return Err(EmailError::DomainLiteral);
    }
    let domain = domain.strip_suffix('.').unwrap_or(domain);
    let ascii = idna::domain_to_ascii_strict(domain)
        .map_err(|_| EmailError::BadDomain("it is not a valid internationalised domain name"))?;
    if ascii.is_empty() {
        return Err(EmailError::BadDomain("it is empty"));
    }
    let labels: Vec<&str> = ascii.split('.').collect();
    if labels.len() < 2 {
        return Err(EmailError::BadDomain(
            "it needs at least one dot, as in example.org",
        ));
    }
    for label in &labels {
        if label.is_empty() {
            return Err(EmailError::BadDomain("it has an empty label"));
        }
        if label.len() > MAX_LABEL_OCTETS {
            return Err(EmailError::BadDomain("a label is longer than 63 octets"));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(EmailError::BadDomain(
                "a label starts or ends with a hyphen",
            ));
        }
        if !label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            return Err(EmailError::BadDomain(
                "it holds a character that is not a letter, digit or hyphen",
            ));
        }
    }
    if labels
        .last()
        .is_some_and(|tld| tld.chars().all(|c| c.is_ascii_digit()))
    {
        return Err(EmailError::BadDomain("its last label is all digits"));
    }
    Ok(ascii.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_plain_address_parses_unchanged() {
        let e = SubscriberEmail::parse("jo.bloggs@example.org").unwrap();
        assert_eq!(e.as_str(), "jo.bloggs@example.org");
    }

    #[test]
    fn surrounding_space_is_trimmed() {
        let e = SubscriberEmail::parse("  jo@example.org\t").unwrap();
        assert_eq!(e.as_str(), "jo@example.org");
    }

    #[test]
    fn the_domain_is_lower_cased_but_the_local_part_is_kept() {
        let e = SubscriberEmail::parse("Jo.Bloggs@Example.ORG").unwrap();
        assert_eq!(e.as_str(), "Jo.Bloggs@example.org");
        assert_eq!(e.key(), "jo.bloggs@example.org");
    }

    #[test]
    fn an_idn_domain_is_stored_as_punycode() {
        let e = SubscriberEmail::parse("anna@bücher.example").unwrap();
        assert_eq!(e.as_str(), "anna@xn--bcher-kva.example");
    }

    #[test]
    fn a_trailing_dot_on_the_domain_is_dropped() {
        assert_eq!(
            SubscriberEmail::parse("a@example.org.").unwrap().as_str(),
            "a@example.org"
        );
    }

    #[test]
    fn malformed_addresses_are_rejected_with_a_reason() {
        let cases = [
            ("", EmailError::Empty),
            ("   ", EmailError::Empty),
            ("jo", EmailError::MissingDomain),
            ("jo@", EmailError::MissingDomain),
            ("@example.org", EmailError::MissingLocalPart),
            ("jo bloggs@example.org", EmailError::Whitespace),
            (
                "jo@example.org\r\nBcc: x@evil.example",
                EmailError::Whitespace,
            ),
            ("jo@[192.0.2.1]", EmailError::DomainLiteral),
        ];
        for (input, expected) in cases {
            assert_eq!(
                SubscriberEmail::parse(input),
                Err(expected),
                "input {input:?}"
            );
        }
        for bad in [
            "jo@localhost",
            "jo@example..org",
            "jo@-example.org",
            "jo@example.123",
            "jo@exa_mple.org",
        ] {
            assert!(
                matches!(SubscriberEmail::parse(bad), Err(EmailError::BadDomain(_))),
                "input {bad:?}"
            );
        }
        for bad in [
            ".jo@example.org",
            "jo.@example.org",
            "j..o@example.org",
            "jö@example.org",
            "j\"o@example.org",
        ] {
            assert!(
                matches!(
                    SubscriberEmail::parse(bad),
                    Err(EmailError::BadLocalPart(_))
                ),
                "input {bad:?}"
            );
        }
    }

    #[test]
    fn a_local_part_over_64_octets_is_rejected() {
        let local = "a".repeat(65);
        assert_eq!(
            SubscriberEmail::parse(&format!("{local}@example.org")),
            Err(EmailError::LocalPartTooLong)
        );
        assert!(SubscriberEmail::parse(&format!("{}@example.org", "a".repeat(64))).is_ok());
    }

    #[test]
    fn an_address_over_254_octets_is_rejected() {
        let domain = format!(
            "{}.{}.{}.{}.org",
            "b".repeat(63),
            "c".repeat(63),
            "d".repeat(63),
            "e".repeat(50)
        );
        let address = format!("{}@{domain}", "a".repeat(64));
        assert!(address.len() > 254);
        assert_eq!(SubscriberEmail::parse(&address), Err(EmailError::TooLong));
    }

    #[test]
    fn the_suppression_hash_ignores_case() {
        let a = SubscriberEmail::parse("Jo@Example.org").unwrap();
        let b = SubscriberEmail::parse("jo@example.org").unwrap();
        assert_eq!(a.suppression_hash(), b.suppression_hash());
        // SHA-256 of "jo@example.org": the hashes already stored must still match.
        assert_eq!(
            a.suppression_hash(),
            "b6be3cb544f77c4e76ce1a92deed71a292e7a92f67c9b554b881605112283f95"
        );
    }

    fn local_part() -> impl Strategy<Value = String> {
        proptest::string::string_regex(
            "[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]{1,20}(\\.[A-Za-z0-9_+-]{1,10}){0,3}",
        )
        .unwrap()
    }

    fn domain() -> impl Strategy<Value = String> {
        // Single hyphens only: IDNA reserves "--" in the third and fourth places.
        proptest::string::string_regex(
            "([A-Za-z0-9]{1,8}(-[A-Za-z0-9]{1,8}){0,2}\\.){1,4}[A-Za-z]{2,10}",
        )
        .unwrap()
    }

    proptest! {
        #[test]
        fn any_well_formed_address_parses_and_round_trips(
            local in local_part(),
            domain in domain(),
        ) {
            let input = format!("{local}@{domain}");
            let parsed = SubscriberEmail::parse(&input).unwrap();
            prop_assert_eq!(parsed.as_str(), format!("{local}@{}", domain.to_ascii_lowercase()));
            prop_assert_eq!(SubscriberEmail::parse(parsed.as_str()).unwrap(), parsed);
        }

        #[test]
        fn parsing_never_panics_and_what_parses_is_bounded_and_clean(
            input in "\\PC{0,300}|[a-z@.\\r\\n \\[\\]-]{0,80}",
        ) {
            if let Ok(e) = SubscriberEmail::parse(&input) {
                let s = e.as_str();
                prop_assert!(s.len() <= 254);
                prop_assert!(s.rsplit_once('@').unwrap().0.len() <= 64);
                prop_assert!(!s.chars().any(|c| c.is_whitespace() || c.is_control()));
                prop_assert!(s.is_ascii());
                prop_assert_eq!(SubscriberEmail::parse(s).unwrap(), e.clone());
            }
        }

        #[test]
        fn line_breaks_anywhere_are_rejected(
            local in local_part(),
            domain in domain(),
            at in 0usize..40,
            brk in "\\r|\\n|\\r\\n",
        ) {
            let mut input = format!("{local}@{domain}");
            let at = at.min(input.len());
            input.insert_str(at, &brk);
            let trimmed_only = at == 0 || at == input.len() - brk.len();
            prop_assert!(SubscriberEmail::parse(&input).is_err() || trimmed_only);
        }
    }
}
