//! Signed tokens for the links in every email: unsubscribe, preferences,
//! confirmation, and the VERP bounce address.
//!
//! A token is a few integers (ids, a timestamp) and a truncated
//! HMAC-SHA256 over them and the token's purpose, keyed by `NECMAIL_SECRET`,
//! all in URL-safe base64: short, unforgeable, and checked in constant time.
//! Tokens carry no expiry of their own; a purpose that expires puts its
//! issue time among the integers and the caller checks it.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// Bytes of MAC kept: 80 bits.
const MAC_BYTES: usize = 10;

/// What a token is for; a token made for one purpose never verifies for another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// `[subscriber id, list id]`
    Unsubscribe,
    /// `[subscriber id]`
    Preferences,
    /// `[subscriber id, issued at (unix seconds)]`: confirms every
    /// subscription that sign-up left awaiting confirmation.
    Confirm,
    /// `[delivery id]`: the VERP return path.
    Delivery,
    /// `[issued at (unix seconds), scope]`: the CSRF token of a web form;
    /// the scope ties it to the page's own link token (0 for the subscribe form).
    Form,
}

impl Purpose {
    fn tag(self) -> u8 {
        match self {
            Purpose::Unsubscribe => b'u',
            Purpose::Preferences => b'p',
            Purpose::Confirm => b'c',
            Purpose::Delivery => b'd',
            Purpose::Form => b'f',
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the link is incomplete or damaged")]
    Malformed,
    #[error("the link is not one necmail made")]
    Forged,
}

/// Signs and verifies tokens with one secret.
#[derive(Clone)]
pub struct Signer {
    key: [u8; 32],
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Signer(..)")
    }
}

impl Signer {
    pub fn new(secret: &str) -> Self {
        Signer {
            key: Sha256::digest(secret.as_bytes()).into(),
        }
    }

    fn mac(&self, purpose: Purpose, payload: &[u8]) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(&[purpose.tag()]);
        mac.update(payload);
        mac
    }

    pub fn sign(&self, purpose: Purpose, values: &[u64]) -> String {
        let mut bytes = Vec::with_capacity(values.len() * 3 + MAC_BYTES);
        for &v in values {
            push_varint(&mut bytes, v);
        }
        let tag = self.mac(purpose, &bytes).finalize().into_bytes();
        bytes.extend_from_slice(&tag[..MAC_BYTES]);
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// The integers of a valid token for `purpose`.
    pub fn verify(&self, purpose: Purpose, token: &str) -> Result<Vec<u64>, TokenError> {
        let bytes = URL_SAFE_NO_PAD
            .decode(token.trim())
            .map_err(|_| TokenError::Malformed)?;
        if bytes.len() <= MAC_BYTES {
            return Err(TokenError::Malformed);
        }
        let (payload, tag) = bytes.split_at(bytes.len() - MAC_BYTES);
        self.mac(purpose, payload)
            .verify_truncated_left(tag)
            .map_err(|_| TokenError::Forged)?;
        read_varints(payload).ok_or(TokenError::Malformed)
    }
}

fn push_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn read_varints(mut bytes: &[u8]) -> Option<Vec<u64>> {
    let mut values = Vec::new();
    while !bytes.is_empty() {
        let mut v: u64 = 0;
        let mut shift = 0;
        loop {
            let (&b, rest) = bytes.split_first()?;
            bytes = rest;
            if shift > 63 {
                return None;
            }
            v |= u64::from(b & 0x7f) << shift;
            shift += 7;
            if b & 0x80 == 0 {
                break;
            }
        }
        values.push(v);
    }
    Some(values)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_round_trips_and_is_short() {
        let s = Signer::new("secret");
        let t = s.sign(Purpose::Unsubscribe, &[123_456, 7]);
        assert!(t.len() <= 24, "{t}");
        assert!(
            t.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        assert_eq!(s.verify(Purpose::Unsubscribe, &t).unwrap(), [123_456, 7]);
    }

    #[test]
    fn a_token_for_one_purpose_fails_for_another() {
        let s = Signer::new("secret");
        let t = s.sign(Purpose::Preferences, &[1]);
        assert_eq!(s.verify(Purpose::Unsubscribe, &t), Err(TokenError::Forged));
    }

    #[test]
    fn forged_truncated_and_foreign_tokens_are_refused() {
        let s = Signer::new("secret");
        let t = s.sign(Purpose::Unsubscribe, &[123_456_789, 1]);
        let mut forged = t.clone().into_bytes();
        forged[0] = if forged[0] == b'A' { b'B' } else { b'A' };
        assert_eq!(
            s.verify(Purpose::Unsubscribe, std::str::from_utf8(&forged).unwrap()),
            Err(TokenError::Forged)
        );
        assert_eq!(
            s.verify(Purpose::Unsubscribe, &t[..t.len() - 3]),
            Err(TokenError::Malformed)
        );
        assert_eq!(
            s.verify(Purpose::Unsubscribe, &t[..t.len() - 4]),
            Err(TokenError::Forged)
        );
        assert_eq!(
            s.verify(Purpose::Unsubscribe, "abc"),
            Err(TokenError::Malformed)
        );
        assert_eq!(
            s.verify(Purpose::Unsubscribe, "!!not base64!!"),
            Err(TokenError::Malformed)
        );
        assert_eq!(
            Signer::new("other").verify(Purpose::Unsubscribe, &t),
            Err(TokenError::Forged)
        );
    }
}
