//! Signed tokens for the links in every email: unsubscribe, preferences,
//! confirmation, and the VERP bounce address.
//!
//! A token carries a few integers (ids, a timestamp), sealed so that it is
//! both unforgeable and opaque: nobody can read a subscriber id out of a
//! link, or tell two subscribers' links apart by their shape. The
//! construction is SIV (deterministic authenticated encryption, RFC 5297's
//! idea with HMAC-SHA256 as both PRF and MAC):
//!
//! ```text
//! tag   = HMAC(mac_key, 2 ‖ purpose ‖ varints)[..10]
//! token = base64url(tag ‖ varints ⊕ HMAC(enc_key, tag ‖ purpose))
//! ```
//!
//! Both keys are derived from `NECMAIL_SECRET`. Verification recomputes the
//! tag in constant time. A signer may also hold the previous secret
//! (`NECMAIL_SECRET_PREVIOUS`) so that links in mail already sent keep
//! working while the secret is rotated; new tokens always use the current
//! one.
//!
//! Tokens made before tokens were sealed (readable varints followed by the
//! MAC) still verify, so that unsubscribe links in old mail keep working as
//! RFC 8058 expects; nothing makes them any more.
//!
//! Tokens carry no expiry of their own; a purpose that expires puts its
//! issue time among the integers and the caller checks it.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

/// Bytes of MAC kept: 80 bits.
const MAC_BYTES: usize = 10;
/// The most integers a token carries; longer payloads are not ours.
const MAX_PAYLOAD: usize = 32;
/// The version byte mixed into every sealed token's MAC.
const SEALED: u8 = 2;

/// What a token is for; a token made for one purpose never verifies for another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// `[subscriber id, list id, other list ids…]`: the lists the message
    /// came through, the one its List-Id names first; never expires. (Links
    /// sent before messages named several lists are `[subscriber id, list id]`.)
    Unsubscribe,
    /// `[subscriber id, issued at (unix seconds)]`: expires after
    /// NECMAIL_PREFERENCES_LINK_DAYS. (Unsealed tokens are `[subscriber id]`.)
    Preferences,
    /// `[subscriber id, issued at (unix seconds)]`: confirms every
    /// subscription that sign-up left awaiting confirmation.
    Confirm,
    /// `[delivery id]`: the VERP return path.
    Delivery,
    /// `[issued at (unix seconds), scope]`: the CSRF token of a web form;
    /// the scope ties it to the page's own link token (0 for the subscribe form).
    Form,
    /// `[report id, issued at (unix seconds)]`: the links of a test message
    /// (`send-test`), which show the report whether or not it was sent;
    /// they expire after NECMAIL_PREFERENCES_LINK_DAYS.
    Preview,
}

impl Purpose {
    fn tag(self) -> u8 {
        match self {
            Purpose::Unsubscribe => b'u',
            Purpose::Preferences => b'p',
            Purpose::Confirm => b'c',
            Purpose::Delivery => b'd',
            Purpose::Form => b'f',
            Purpose::Preview => b'v',
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

/// The keys derived from one secret, each as an HMAC with its key already
/// absorbed: a token costs two SHA-256 blocks per MAC instead of four.
#[derive(Clone)]
struct Keys {
    /// Keyed with SHA-256 of the secret: the MAC of unsealed tokens.
    legacy: Hmac<Sha256>,
    mac: Hmac<Sha256>,
    enc: Hmac<Sha256>,
}

impl Keys {
    fn derive(secret: &str) -> Self {
        let legacy = keyed(&Sha256::digest(secret.as_bytes()));
        let sub = |label: &[u8]| keyed(&hmac(&legacy, &[label]));
        Keys {
            mac: sub(b"necmail token mac"),
            enc: sub(b"necmail token enc"),
            legacy,
        }
    }

    fn seal_tag(&self, purpose: Purpose, payload: &[u8]) -> [u8; MAC_BYTES] {
        let full = hmac(&self.mac, &[&[SEALED, purpose.tag()], payload]);
        full[..MAC_BYTES].try_into().expect("MAC_BYTES of 32")
    }

    /// XORs `bytes` with the keystream for `tag`: seals and unseals alike.
    fn keystream(&self, purpose: Purpose, tag: &[u8], bytes: &mut [u8]) {
        let stream = hmac(&self.enc, &[tag, &[purpose.tag()]]);
        for (b, k) in bytes.iter_mut().zip(stream.iter()) {
            *b ^= k;
        }
    }

    fn open(&self, purpose: Purpose, bytes: &[u8]) -> Option<Vec<u8>> {
        let (tag, sealed) = bytes.split_at(MAC_BYTES);
        let mut payload = sealed.to_vec();
        self.keystream(purpose, tag, &mut payload);
        let mut mac = self.mac.clone();
        mac.update(&[SEALED, purpose.tag()]);
        mac.update(&payload);
        mac.verify_truncated_left(tag).ok().map(|()| payload)
    }

    fn open_unsealed<'a>(&self, purpose: Purpose, bytes: &'a [u8]) -> Option<&'a [u8]> {
        let (payload, tag) = bytes.split_at(bytes.len() - MAC_BYTES);
        let mut mac = self.legacy.clone();
        mac.update(&[purpose.tag()]);
        mac.update(payload);
        mac.verify_truncated_left(tag).ok().map(|()| payload)
    }
}

/// An HMAC-SHA256 keyed with `key`, ready to clone for each message.
fn keyed(key: &[u8]) -> Hmac<Sha256> {
    Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length")
}

/// The MAC of `parts` under a keyed HMAC.
fn hmac(keyed: &Hmac<Sha256>, parts: &[&[u8]]) -> hmac::digest::Output<Hmac<Sha256>> {
    let mut mac = keyed.clone();
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes()
}

/// Signs tokens with the current secret and verifies them with the current
/// or the previous one.
#[derive(Clone)]
pub struct Signer {
    current: Keys,
    previous: Option<Keys>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Signer(..)")
    }
}

impl Signer {
    pub fn new(secret: &str) -> Self {
        Signer {
            current: Keys::derive(secret),
            previous: None,
        }
    }

    /// A signer that also accepts tokens made with `previous`.
    pub fn with_previous(secret: &str, previous: Option<&str>) -> Self {
        Signer {
            current: Keys::derive(secret),
            previous: previous.map(Keys::derive),
        }
    }

    pub fn sign(&self, purpose: Purpose, values: &[u64]) -> String {
        let mut token = String::new();
        self.sign_into(purpose, values, &mut token);
        token
    }

    /// Appends the token [`Signer::sign`] makes to `out`, without an allocation
    /// when `out` has room: the campaign engine signs three per message.
    pub fn sign_into(&self, purpose: Purpose, values: &[u64], out: &mut String) {
        let mut bytes = [0u8; MAC_BYTES + MAX_PAYLOAD];
        let mut end = MAC_BYTES;
        for &v in values {
            let (varint, n) = varint(v);
            assert!(end + n <= bytes.len(), "a token carries a few integers");
            bytes[end..end + n].copy_from_slice(&varint[..n]);
            end += n;
        }
        let (tag, payload) = bytes[..end].split_at_mut(MAC_BYTES);
        tag.copy_from_slice(&self.current.seal_tag(purpose, payload));
        self.current.keystream(purpose, tag, payload);
        URL_SAFE_NO_PAD.encode_string(&bytes[..end], out);
    }

    /// Appends the token of an unsubscribe link for `subscriber_id` that
    /// leaves `lists`, the first always, the others while the token has
    /// room (a dozen or more: a subscriber on more of one campaign's lists
    /// leaves the rest from the preferences page); see [`Signer::unsubscribe`].
    /// No allocation when `out` has room.
    pub fn unsubscribe_into(
        &self,
        subscriber_id: u64,
        lists: impl IntoIterator<Item = u64>,
        out: &mut String,
    ) {
        let mut values = [0u64; MAX_PAYLOAD];
        values[0] = subscriber_id;
        let mut used = varint(subscriber_id).1;
        let mut n = 1;
        for list in lists {
            let size = varint(list).1;
            if used + size > MAX_PAYLOAD {
                break;
            }
            values[n] = list;
            used += size;
            n += 1;
        }
        self.sign_into(Purpose::Unsubscribe, &values[..n], out);
    }

    /// The subscriber and the lists (at least one) a valid unsubscribe
    /// token names, as [`Signer::unsubscribe_into`] makes them and as links
    /// sent before did.
    pub fn unsubscribe(&self, token: &str) -> Result<(i64, Vec<i64>), TokenError> {
        let values = self.verify(Purpose::Unsubscribe, token)?;
        let mut ids = values.into_iter().map(i64::try_from);
        let subscriber = ids.next().and_then(Result::ok);
        let lists: Result<Vec<i64>, _> = ids.collect();
        match (subscriber, lists) {
            (Some(subscriber), Ok(lists)) if !lists.is_empty() => Ok((subscriber, lists)),
            _ => Err(TokenError::Malformed),
        }
    }

    /// The token of a preferences link for `subscriber_id`, issued now.
    pub fn preferences(&self, subscriber_id: i64) -> String {
        let mut token = String::new();
        self.preferences_into(subscriber_id, &mut token);
        token
    }

    /// Appends the token [`Signer::preferences`] makes to `out`.
    pub fn preferences_into(&self, subscriber_id: i64, out: &mut String) {
        let now = chrono::Utc::now().timestamp();
        self.sign_into(
            Purpose::Preferences,
            &[
                u64::try_from(subscriber_id).unwrap_or_default(),
                u64::try_from(now).unwrap_or_default(),
            ],
            out,
        );
    }

    /// The integers of a valid token for `purpose`.
    pub fn verify(&self, purpose: Purpose, token: &str) -> Result<Vec<u64>, TokenError> {
        let token = token.trim();
        if token.len() > (MAC_BYTES + MAX_PAYLOAD) * 4 / 3 + 1 {
            return Err(TokenError::Malformed);
        }
        let bytes = URL_SAFE_NO_PAD
            .decode(token)
            .map_err(|_| TokenError::Malformed)?;
        if bytes.len() < MAC_BYTES {
            return Err(TokenError::Malformed);
        }
        for keys in std::iter::once(&self.current).chain(&self.previous) {
            if let Some(payload) = keys.open(purpose, &bytes) {
                return read_varints(&payload).ok_or(TokenError::Malformed);
            }
            if let Some(payload) = keys.open_unsealed(purpose, &bytes) {
                return read_varints(payload).ok_or(TokenError::Malformed);
            }
        }
        Err(TokenError::Forged)
    }
}

#[cfg(test)]
fn push_varint(out: &mut Vec<u8>, v: u64) {
    let (bytes, n) = varint(v);
    out.extend_from_slice(&bytes[..n]);
}

/// `v` as a LEB128 varint: the bytes, and how many of them it takes.
fn varint(mut v: u64) -> ([u8; 10], usize) {
    let mut bytes = [0u8; 10];
    let mut n = 0;
    while v >= 0x80 {
        bytes[n] = (v as u8) | 0x80;
        v >>= 7;
        n += 1;
    }
    bytes[n] = v as u8;
    (bytes, n + 1)
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

    /// A token as necmail made them before tokens were sealed.
    fn unsealed(secret: &str, purpose: Purpose, values: &[u64]) -> String {
        let mut bytes = Vec::new();
        for &v in values {
            push_varint(&mut bytes, v);
        }
        let tag = hmac(
            &keyed(&Sha256::digest(secret.as_bytes())),
            &[&[purpose.tag()], &bytes],
        );
        bytes.extend_from_slice(&tag[..MAC_BYTES]);
        URL_SAFE_NO_PAD.encode(bytes)
    }

    #[test]
    fn a_token_does_not_show_the_ids_it_carries() {
        let s = Signer::new("secret");
        let mut plain = Vec::new();
        for v in [123_456, 7] {
            push_varint(&mut plain, v);
        }
        let token = URL_SAFE_NO_PAD
            .decode(s.sign(Purpose::Unsubscribe, &[123_456, 7]))
            .unwrap();
        assert!(
            !token.windows(plain.len()).any(|w| w == plain),
            "the ids are sealed: {token:?}"
        );
        let first = URL_SAFE_NO_PAD
            .decode(s.sign(Purpose::Unsubscribe, &[1, 1]))
            .unwrap();
        let second = URL_SAFE_NO_PAD
            .decode(s.sign(Purpose::Unsubscribe, &[2, 1]))
            .unwrap();
        let same = first.iter().zip(&second).filter(|(a, b)| a == b).count();
        assert!(
            same <= 2,
            "neighbouring ids give unrelated tokens: {first:?} {second:?}"
        );
    }

    #[test]
    fn links_in_mail_sent_before_tokens_were_sealed_still_work() {
        let old = unsealed("secret", Purpose::Unsubscribe, &[123_456, 7]);
        let s = Signer::new("secret");
        assert_eq!(s.verify(Purpose::Unsubscribe, &old).unwrap(), [123_456, 7]);
        assert_eq!(
            s.verify(Purpose::Preferences, &old),
            Err(TokenError::Forged)
        );
        assert_eq!(
            Signer::new("another secret").verify(Purpose::Unsubscribe, &old),
            Err(TokenError::Forged)
        );
    }

    /// Tokens in mail already sent must keep verifying: these were worked out
    /// apart from necmail, with Python's `hmac` and `hashlib`.
    #[test]
    fn tokens_are_the_same_bytes_as_ever() {
        let s = Signer::new("secret");
        assert_eq!(
            s.sign(Purpose::Unsubscribe, &[123_456, 7]),
            "0jVO5H6_eiWxJ84sc4M"
        );
        assert_eq!(
            unsealed("secret", Purpose::Unsubscribe, &[123_456, 7]),
            "wMQHB5qDVu5pwYcu0_0"
        );
        for token in ["0jVO5H6_eiWxJ84sc4M", "wMQHB5qDVu5pwYcu0_0"] {
            assert_eq!(s.verify(Purpose::Unsubscribe, token).unwrap(), [123_456, 7]);
        }
    }

    #[test]
    fn a_rotated_secret_still_accepts_links_signed_with_the_previous_one() {
        let before = Signer::new("the old secret");
        let token = before.sign(Purpose::Unsubscribe, &[42, 3]);
        let unsealed_token = unsealed("the old secret", Purpose::Unsubscribe, &[42, 3]);
        let after = Signer::with_previous("the new secret", Some("the old secret"));
        assert_eq!(after.verify(Purpose::Unsubscribe, &token).unwrap(), [42, 3]);
        assert_eq!(
            after.verify(Purpose::Unsubscribe, &unsealed_token).unwrap(),
            [42, 3]
        );
        let fresh = after.sign(Purpose::Unsubscribe, &[42, 3]);
        assert_eq!(
            Signer::new("the new secret")
                .verify(Purpose::Unsubscribe, &fresh)
                .unwrap(),
            [42, 3],
            "new links use the new secret"
        );
        assert_eq!(
            Signer::new("the new secret").verify(Purpose::Unsubscribe, &token),
            Err(TokenError::Forged),
            "without NECMAIL_SECRET_PREVIOUS the old links stop"
        );
    }

    #[test]
    fn an_unsubscribe_token_names_every_list_it_has_room_for_and_old_ones_still_work() {
        let s = Signer::new("secret");
        let mut one = String::new();
        s.unsubscribe_into(123_456, [7], &mut one);
        assert_eq!(
            one, "0jVO5H6_eiWxJ84sc4M",
            "a one-list link is as it always was"
        );
        assert_eq!(s.unsubscribe(&one), Ok((123_456, vec![7])));
        let old = unsealed("secret", Purpose::Unsubscribe, &[123_456, 7]);
        assert_eq!(s.unsubscribe(&old), Ok((123_456, vec![7])));
        let mut two = String::new();
        s.unsubscribe_into(123_456, [7, 3], &mut two);
        assert_eq!(s.unsubscribe(&two), Ok((123_456, vec![7, 3])));
        let many: Vec<u64> = (1..=100).map(|i| i * 1000).collect();
        let mut token = String::new();
        s.unsubscribe_into(u64::MAX >> 1, many, &mut token);
        let (_, lists) = s.unsubscribe(&token).unwrap();
        let first: Vec<i64> = (1..=11).map(|i| i * 1000).collect();
        assert_eq!(
            lists, first,
            "as many as fit in the token's 32 bytes, in order"
        );
        for bad in [
            s.sign(Purpose::Unsubscribe, &[5]),
            s.sign(Purpose::Unsubscribe, &[]),
        ] {
            assert_eq!(s.unsubscribe(&bad), Err(TokenError::Malformed));
        }
    }

    #[test]
    fn a_token_with_no_values_round_trips() {
        let s = Signer::new("secret");
        let t = s.sign(Purpose::Form, &[]);
        assert_eq!(s.verify(Purpose::Form, &t), Ok(vec![]));
    }

    #[test]
    fn an_overlong_token_is_refused_before_any_work() {
        let s = Signer::new("secret");
        assert_eq!(
            s.verify(Purpose::Unsubscribe, &"A".repeat(10_000)),
            Err(TokenError::Malformed)
        );
    }
}
