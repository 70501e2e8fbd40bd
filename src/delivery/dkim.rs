//! DKIM signing of raw messages (RFC 6376), with RSA-SHA256 or Ed25519-SHA256
//! (RFC 8463) keys and relaxed/relaxed canonicalization.
//!
//! lettre's signer works on its own `Message` type and signs only a few
//! headers; necmail builds each message's bytes itself and must sign
//! `List-Unsubscribe` and `List-Unsubscribe-Post` (RFC 8058), so it signs the
//! raw bytes here. [`DkimSigner::sign`] returns the `DKIM-Signature` header to
//! put in front of the message.
//!
//! The signed headers are those of [`SIGNED_HEADERS`]. `MIME-Version` and
//! `Content-Type` are among them because `Content-Type` carries the
//! multipart boundary: left unsigned, it could be rewritten to show the
//! signed body as something else. Each is listed in `h=` once more than the
//! message has it (over-signing, RFC 6376 §8.15): the extra entry signs its
//! absence, so that the same field added in transit — a second Subject or
//! List-Unsubscribe, or a Reply-To or Cc the message never had — breaks the
//! signature.

use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

use aws_lc_rs::error::Unspecified;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{KeyPair, RSA_PKCS1_SHA256, RsaKeyPair};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use ed25519_dalek::Signer;
use ed25519_dalek::pkcs8::spki::der::asn1::UintRef;
use ed25519_dalek::pkcs8::spki::der::{Decode, Header, SliceReader, Tag};
use ed25519_dalek::pkcs8::{PrivateKeyInfo, SecretDocument};
use sha2::{Digest, Sha256};

use crate::config::DkimSettings;

/// The signed headers, lowercase, in `h=` order; `from` comes first. Each
/// is listed once more than the message has it, so one it lacks is listed
/// once: signed as absent.
pub const SIGNED_HEADERS: [&str; 17] = [
    "from",
    "reply-to",
    "to",
    "cc",
    "subject",
    "date",
    "message-id",
    "list-id",
    "list-unsubscribe",
    "list-unsubscribe-post",
    "list-archive",
    "list-subscribe",
    "list-help",
    "list-post",
    "feedback-id",
    "mime-version",
    "content-type",
];

/// RSA key sizes necmail signs with. DKIM verifiers must accept 1024 to
/// 4096 bits, and signers should use at least 2048 (RFC 8301 §3.2).
const RSA_BITS: std::ops::RangeInclusive<usize> = 2048..=4096;

/// The smallest RSA public exponent taken: what openssl makes, and the
/// floor NIST SP 800-56B sets. AWS-LC itself would take 3.
const RSA_MIN_EXPONENT: u64 = 65_537;

/// The DER of the object identifier rsaEncryption, 1.2.840.113549.1.1.1
/// (RFC 8017 Appendix C).
const RSA_ENCRYPTION: [u8; 9] = [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];

/// Longest folded line of the header, without its CRLF (RFC 5322 §2.1.1).
const LINE: usize = 78;

/// Room for one folded `DKIM-Signature` header: an RSA-4096 one, with
/// every signed header over-signed, is about 1.3 KB.
pub const SIGNATURE_ROOM: usize = 2048;

/// The longest string in a TXT record (RFC 1035 §3.3).
const TXT_STRING: usize = 255;

/// A key file larger than this is not a key.
const MAX_KEY_FILE: u64 = 64 * 1024;

/// Why a key could not be loaded or a message not signed.
#[derive(Debug, thiserror::Error)]
pub enum DkimError {
    #[error("cannot read the DKIM key file {path}: {source}")]
    Unreadable {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "the DKIM key file {path} is not an RSA or Ed25519 private key in PEM (PKCS#1 or PKCS#8): {reason}"
    )]
    NotAKey { path: PathBuf, reason: String },
    #[error(
        "the DKIM key file {path} holds a {bits}-bit RSA key, but necmail signs only with keys of 2048 to 4096 bits"
    )]
    RsaKeySize { path: PathBuf, bits: usize },
    #[error("the DKIM selector {0:?} is not a valid DNS name")]
    InvalidSelector(String),
    #[error("the DKIM domain {0:?} is not a valid DNS name")]
    InvalidDomain(String),
    #[error(
        "the DKIM key files {first} and {second} both hold {algorithm} keys: a second key must be \
         of the other algorithm, one RSA and one Ed25519 (RFC 8463)"
    )]
    SameAlgorithm {
        first: PathBuf,
        second: PathBuf,
        algorithm: &'static str,
    },
    #[error("the message has no From header, which DKIM must sign")]
    NoFrom,
    #[error("signing a message with the RSA key of the DKIM key file {path} failed")]
    RsaSigning { path: PathBuf },
}

/// A signing key. RSA signs through AWS-LC, which uses AVX-512 IFMA where
/// the CPU has it, as OpenSSL does (ring has no such path): the README's
/// "What DKIM costs".
enum Key {
    Rsa(Box<RsaKeyPair>),
    Ed25519(Box<ed25519_dalek::SigningKey>),
}

/// Signs messages for one domain and selector with one private key.
pub struct DkimSigner {
    key: Key,
    key_file: PathBuf,
    domain: String,
    selector: String,
}

/// Every delivery worker signs with the one signer, so it must be shareable
/// between threads: a compile-time check.
const _: () = {
    const fn shared<T: Send + Sync>() {}
    shared::<DkimSigner>();
};

impl fmt::Debug for DkimSigner {
    /// Leaves the private key out.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DkimSigner")
            .field("algorithm", &self.algorithm())
            .field("domain", &self.domain)
            .field("selector", &self.selector)
            .finish_non_exhaustive()
    }
}

impl DkimSigner {
    /// Reads the private key the settings name: RSA in PKCS#1 or PKCS#8 PEM,
    /// or Ed25519 in PKCS#8 PEM.
    pub fn load(settings: &DkimSettings) -> Result<DkimSigner, DkimError> {
        let selector = dns_name(&settings.selector)
            .ok_or_else(|| DkimError::InvalidSelector(settings.selector.clone()))?;
        let domain = dns_name(&settings.domain)
            .ok_or_else(|| DkimError::InvalidDomain(settings.domain.clone()))?;
        let key = read_key(&settings.key_file)?;
        Ok(DkimSigner {
            key,
            key_file: settings.key_file.clone(),
            domain,
            selector,
        })
    }

    /// `rsa-sha256` or `ed25519-sha256`.
    pub fn algorithm(&self) -> &'static str {
        match self.key {
            Key::Rsa(_) => "rsa-sha256",
            Key::Ed25519(_) => "ed25519-sha256",
        }
    }

    /// Where the public key is published: `SELECTOR._domainkey.DOMAIN`.
    pub fn dns_name(&self) -> String {
        format!("{}._domainkey.{}", self.selector, self.domain)
    }

    /// The TXT record to publish at [`DkimSigner::dns_name`]. An RSA record
    /// is longer than 255 characters, so DNS tools split it into strings.
    pub fn dns_record(&self) -> String {
        let (k, p) = match &self.key {
            Key::Rsa(key) => ("rsa", BASE64.encode(rsa_spki(key.public_key().as_ref()))),
            Key::Ed25519(key) => ("ed25519", BASE64.encode(key.verifying_key().as_bytes())),
        };
        format!("v=DKIM1; k={k}; p={p}")
    }

    /// The TXT record as a zone-file entry, its text split into strings of
    /// at most 255 bytes (the most one DNS character-string holds, RFC
    /// 1035 §3.3): `NAME. IN TXT ( "…" "…" )`, one string per line.
    pub fn zone_entry(&self) -> String {
        let record = self.dns_record();
        let strings: Vec<String> = record
            .as_bytes()
            .chunks(TXT_STRING)
            .map(|chunk| format!("\"{}\"", String::from_utf8_lossy(chunk)))
            .collect();
        format!("{}. IN TXT ( {} )", self.dns_name(), strings.join("\n\t"))
    }

    /// The `DKIM-Signature` header, folded and ending in CRLF, to put in
    /// front of `message` (CRLF line ends), signed now. (Mail is signed by
    /// [`sign_with`], through the transport.)
    #[cfg(test)]
    pub fn sign(&self, message: &[u8]) -> Result<String, DkimError> {
        use std::time::{SystemTime, UNIX_EPOCH};
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        self.sign_at(message, now)
    }

    /// [`DkimSigner::sign`] with the signing time (`t=`) given in seconds
    /// since the Unix epoch.
    #[cfg(test)]
    pub fn sign_at(&self, message: &[u8], unix_time: u64) -> Result<String, DkimError> {
        let mut header = String::with_capacity(SIGNATURE_ROOM);
        sign_with(std::slice::from_ref(self), message, unix_time, &mut header)?;
        Ok(header)
    }

    /// Appends this key's `DKIM-Signature` header of a message whose fields
    /// and body hash are given.
    fn sign_fields(
        &self,
        fields: &[Field<'_>],
        body_hash: &str,
        unix_time: u64,
        out: &mut String,
    ) -> Result<(), DkimError> {
        let counts = SIGNED_HEADERS.map(|name| fields.iter().filter(|f| f.is(name)).count());
        let mut header = Folded::new(out);
        header.atom("DKIM-Signature:");
        header.tag("v=1;");
        header.tag(&format!("a={};", self.algorithm()));
        header.tag("c=relaxed/relaxed;");
        header.tag(&format!("d={};", self.domain));
        header.tag(&format!("s={};", self.selector));
        header.tag(&format!("t={unix_time};"));
        header.tag("h=");
        let mut first = true;
        for (name, count) in SIGNED_HEADERS.iter().zip(counts) {
            for _ in 0..=count {
                if !first {
                    header.atom(":");
                }
                header.atom_or_fold(name);
                first = false;
            }
        }
        header.atom(";");
        header.tag(&format!("bh={body_hash};"));
        header.tag("b=");

        // The canonical headers are kept rather than hashed as they come,
        // since AWS-LC hashes what it signs itself.
        let mut signed = Vec::with_capacity(2048);
        for (name, count) in SIGNED_HEADERS.iter().zip(counts) {
            // The bottom instance first (RFC 6376 §5.4.2); the extra entry
            // has no instance left and adds nothing.
            for field in fields.iter().rev().filter(|f| f.is(name)).take(count) {
                canonical_header(field.raw, &mut signed);
                signed.put(b"\r\n");
            }
        }
        // The signature's own header, with `b=` still empty and no CRLF.
        canonical_header(header.written().as_bytes(), &mut signed);

        let signature = match &self.key {
            Key::Rsa(key) => {
                let mut signature = vec![0; key.public_modulus_len()];
                key.sign(
                    &RSA_PKCS1_SHA256,
                    &SystemRandom::new(),
                    &signed,
                    &mut signature,
                )
                .map_err(|Unspecified| DkimError::RsaSigning {
                    path: self.key_file.clone(),
                })?;
                signature
            }
            // RFC 8463 §3: Ed25519 signs the SHA-256 hash of the headers.
            Key::Ed25519(key) => key.sign(&Sha256::digest(&signed)).to_bytes().to_vec(),
        };
        header.base64(&BASE64.encode(signature));
        header.end();
        Ok(())
    }
}

/// Appends to `out` the `DKIM-Signature` header of each signer, folded and
/// ending in CRLF, to put in front of `message` (CRLF line ends), with the
/// signing time (`t=`) given in seconds since the Unix epoch. The message is
/// parsed and its body hashed once for all of them.
pub fn sign_with(
    signers: &[DkimSigner],
    message: &[u8],
    unix_time: u64,
    out: &mut String,
) -> Result<(), DkimError> {
    let (fields, body) = split_message(message);
    if !fields.iter().any(|f| f.is("from")) {
        return Err(DkimError::NoFrom);
    }
    let mut body_hash = Sha256::new();
    canonical_body(body, &mut body_hash);
    let body_hash = BASE64.encode(body_hash.finalize());
    for signer in signers {
        signer.sign_fields(&fields, &body_hash, unix_time, out)?;
    }
    Ok(())
}

/// The signers of the configured keys, in order: none, one, or an RSA and
/// an Ed25519 key together. Two keys of one algorithm are refused.
pub fn load_all(settings: &[DkimSettings]) -> Result<Vec<DkimSigner>, DkimError> {
    let signers = settings
        .iter()
        .map(DkimSigner::load)
        .collect::<Result<Vec<_>, _>>()?;
    if let [first, second] = &signers[..]
        && first.algorithm() == second.algorithm()
    {
        return Err(DkimError::SameAlgorithm {
            first: first.key_file.clone(),
            second: second.key_file.clone(),
            algorithm: first.algorithm(),
        });
    }
    Ok(signers)
}

/// True when every key is Ed25519, which Gmail, Microsoft and Yahoo do not
/// yet verify: their DKIM check then fails.
pub fn ed25519_only(signers: &[DkimSigner]) -> bool {
    !signers.is_empty() && signers.iter().all(|s| matches!(s.key, Key::Ed25519(_)))
}

/// The name in A-labels when it is a valid DNS name of letters, digits,
/// hyphens and underscores.
fn dns_name(name: &str) -> Option<String> {
    let ascii = idna::domain_to_ascii(name).ok()?;
    let valid = !ascii.is_empty()
        && ascii.len() <= 253
        && ascii.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
    valid.then_some(ascii)
}

fn read_key(path: &Path) -> Result<Key, DkimError> {
    let unreadable = |source| DkimError::Unreadable {
        path: path.to_owned(),
        source,
    };
    let not_a_key = |reason: &str| DkimError::NotAKey {
        path: path.to_owned(),
        reason: reason.to_owned(),
    };
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|file| file.take(MAX_KEY_FILE + 1).read_to_end(&mut bytes))
        .map_err(unreadable)?;
    if bytes.len() as u64 > MAX_KEY_FILE {
        return Err(not_a_key("it is larger than 64 KiB"));
    }
    let pem = std::str::from_utf8(&bytes).map_err(|_| not_a_key("it is not text"))?;

    let invalid = |e: &dyn std::fmt::Display| not_a_key(&e.to_string());
    if pem.contains("-----BEGIN RSA PRIVATE KEY-----") {
        let (label, der) = SecretDocument::from_pem(pem).map_err(|e| invalid(&e))?;
        if label != "RSA PRIVATE KEY" {
            return Err(not_a_key(&format!("its PEM label is {label:?}")));
        }
        return rsa_key(path, der.as_bytes());
    }
    if pem.contains("-----BEGIN PRIVATE KEY-----") {
        let (_, der) = SecretDocument::from_pem(pem).map_err(|e| invalid(&e))?;
        let info = PrivateKeyInfo::try_from(der.as_bytes()).map_err(|e| invalid(&e))?;
        let algorithm = info.algorithm.oid;
        if algorithm.as_bytes() == RSA_ENCRYPTION {
            return rsa_key(path, info.private_key);
        }
        if algorithm == ed25519_dalek::pkcs8::ALGORITHM_OID {
            let key = ed25519_dalek::SigningKey::try_from(info).map_err(|e| invalid(&e))?;
            return Ok(Key::Ed25519(Box::new(key)));
        }
        return Err(not_a_key(&format!(
            "it holds a key of another kind (algorithm {algorithm})"
        )));
    }
    if pem.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----") {
        return Err(not_a_key("it is encrypted; decrypt it with `openssl pkey`"));
    }
    Err(not_a_key(
        "it has no BEGIN RSA PRIVATE KEY or BEGIN PRIVATE KEY line",
    ))
}

/// The key of a PKCS#1 `RSAPrivateKey` (RFC 8017 Appendix A.1.2) in DER.
fn rsa_key(path: &Path, der: &[u8]) -> Result<Key, DkimError> {
    let not_a_key = |reason: &str| DkimError::NotAKey {
        path: path.to_owned(),
        reason: reason.to_owned(),
    };
    let (bits, exponent) =
        rsa_public_numbers(der).ok_or_else(|| not_a_key("its RSA key is malformed"))?;
    if !RSA_BITS.contains(&bits) {
        return Err(DkimError::RsaKeySize {
            path: path.to_owned(),
            bits,
        });
    }
    if exponent.is_some_and(|e| e < RSA_MIN_EXPONENT) {
        return Err(not_a_key(
            "its RSA public exponent is below 65537 (what openssl uses)",
        ));
    }
    // AWS-LC checks the rest: the primes, the private exponent, the CRT
    // values, and that they belong together.
    RsaKeyPair::from_der(der)
        .map(|key| Key::Rsa(Box::new(key)))
        .map_err(|e| not_a_key(&format!("it is not a valid RSA private key ({e})")))
}

/// How many bits long the modulus of a PKCS#1 `RSAPrivateKey` in DER is,
/// and its public exponent when that fits in 64 bits.
fn rsa_public_numbers(der: &[u8]) -> Option<(usize, Option<u64>)> {
    let mut reader = SliceReader::new(der).ok()?;
    if Header::decode(&mut reader).ok()?.tag != Tag::Sequence {
        return None;
    }
    let _version = u8::decode(&mut reader).ok()?;
    let modulus = UintRef::decode(&mut reader).ok()?;
    let bytes = modulus.as_bytes();
    let top = bytes.first()?;
    let bits = bytes.len() * 8 - top.leading_zeros() as usize;
    let exponent = UintRef::decode(&mut reader).ok()?.as_bytes();
    let exponent = (exponent.len() <= 8).then(|| {
        exponent
            .iter()
            .fold(0u64, |value, &byte| value << 8 | u64::from(byte))
    });
    Some((bits, exponent))
}

/// The SubjectPublicKeyInfo (RFC 5280 §4.1, RFC 3279 §2.3.1) in DER of an
/// RSA public key given as a PKCS#1 `RSAPublicKey` in DER: what
/// `openssl rsa -pubout` writes, and what DKIM publishes.
fn rsa_spki(public_key: &[u8]) -> Vec<u8> {
    const SEQUENCE: u8 = 0x30;
    const BIT_STRING: u8 = 0x03;
    const OBJECT_IDENTIFIER: u8 = 0x06;
    const NULL: [u8; 2] = [0x05, 0x00];
    let algorithm = der_tlv(
        SEQUENCE,
        &[&der_tlv(OBJECT_IDENTIFIER, &[&RSA_ENCRYPTION]), &NULL],
    );
    // The first byte of a bit string counts the unused bits at its end.
    let key = der_tlv(BIT_STRING, &[&[0], public_key]);
    der_tlv(SEQUENCE, &[&algorithm, &key])
}

/// A DER tag, length and value, the value given in parts.
fn der_tlv(tag: u8, value: &[&[u8]]) -> Vec<u8> {
    let len = value.iter().map(|part| part.len()).sum();
    let mut out = Vec::with_capacity(1 + 9 + len);
    out.push(tag);
    der_length(len, &mut out);
    for part in value {
        out.extend_from_slice(part);
    }
    out
}

/// The DER encoding of a length (X.690 §8.1.3, §10.1): one byte under 128,
/// else 0x80 plus the count of the big-endian bytes that follow, with no
/// leading zeros.
fn der_length(len: usize, out: &mut Vec<u8>) {
    match u8::try_from(len) {
        Ok(short) if short < 0x80 => out.push(short),
        _ => {
            let bytes = len.to_be_bytes();
            let zeros = bytes.iter().take_while(|&&b| b == 0).count();
            let long = &bytes[zeros..];
            out.push(0x80 | long.len() as u8);
            out.extend_from_slice(long);
        }
    }
}

/// Where canonicalized bytes go: a hash, or a buffer.
trait Sink {
    fn put(&mut self, bytes: &[u8]);
}

impl Sink for Sha256 {
    fn put(&mut self, bytes: &[u8]) {
        self.update(bytes);
    }
}

impl Sink for Vec<u8> {
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

/// One header field: `raw` runs from its name to the end of its last line,
/// without that line's CRLF.
struct Field<'a> {
    name: &'a [u8],
    raw: &'a [u8],
}

impl Field<'_> {
    fn is(&self, lowercase: &str) -> bool {
        self.name.eq_ignore_ascii_case(lowercase.as_bytes())
    }
}

fn is_wsp(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// The header fields and the body. Lines end in CRLF; a bare LF is read as
/// a line end too.
fn split_message(message: &[u8]) -> (Vec<Field<'_>>, &[u8]) {
    let mut fields: Vec<Field<'_>> = Vec::with_capacity(24);
    let mut field_start = 0;
    let mut start = 0;
    while start < message.len() {
        let (end, next) = match memchr::memchr(b'\n', &message[start..]) {
            Some(p) if p > 0 && message[start + p - 1] == b'\r' => (start + p - 1, start + p + 1),
            Some(p) => (start + p, start + p + 1),
            None => (message.len(), message.len()),
        };
        let line = &message[start..end];
        if line.is_empty() {
            return (fields, &message[next..]);
        }
        if is_wsp(line[0]) {
            if let Some(field) = fields.last_mut() {
                field.raw = &message[field_start..end];
            }
        } else {
            // A line without a colon is no field DKIM can sign.
            let name = line
                .iter()
                .position(|&b| b == b':')
                .map_or(&b""[..], |colon| line[..colon].trim_ascii_end());
            fields.push(Field { name, raw: line });
            field_start = start;
        }
        start = next;
    }
    (fields, &[])
}

/// Relaxed header canonicalization (RFC 6376 §3.4.2) of one field, without
/// the CRLF that ends it.
fn canonical_header(raw: &[u8], out: &mut impl Sink) {
    let Some(colon) = raw.iter().position(|&b| b == b':') else {
        return;
    };
    let mut name = [0u8; 64];
    for chunk in raw[..colon].trim_ascii_end().chunks(name.len()) {
        let lower = &mut name[..chunk.len()];
        lower.copy_from_slice(chunk);
        lower.make_ascii_lowercase();
        out.put(lower);
    }
    out.put(b":");
    let value = &raw[colon + 1..];
    let mut from = None;
    let mut space = false;
    let mut i = 0;
    while i < value.len() {
        let b = value[i];
        if is_wsp(b) || b == b'\r' || b == b'\n' {
            if let Some(start) = from.take() {
                out.put(&value[start..i]);
                space = true;
            }
        } else if from.is_none() {
            if space {
                out.put(b" ");
                space = false;
            }
            from = Some(i);
        }
        i += 1;
    }
    if let Some(start) = from {
        out.put(&value[start..]);
    }
}

/// Relaxed body canonicalization (RFC 6376 §3.4.4) in one pass, putting the
/// longest unchanged runs of the body into `out` as they are.
fn canonical_body(body: &[u8], out: &mut impl Sink) {
    // body[..done] is in `out` or was dropped.
    let mut done = 0;
    // The empty lines seen since the last line with text, which are dropped
    // at the end of the body: where they start, how many, and whether all
    // were bare CRLFs that can stay in the unchanged run.
    let mut blanks: Option<(usize, usize, bool)> = None;
    let mut spacing = Spacing::new(body);
    let mut start = 0;
    while start < body.len() {
        let newline = memchr::memchr(b'\n', &body[start..]).map(|p| start + p);
        let (content_end, next) = match newline {
            Some(p) if p > start && body[p - 1] == b'\r' => (p - 1, p + 1),
            Some(p) => (p, p + 1),
            None => (body.len(), body.len()),
        };
        let crlf = newline.is_some() && next == content_end + 2;
        let mut end = content_end;
        while end > start && is_wsp(body[end - 1]) {
            end -= 1;
        }
        if end == start {
            let clean = crlf && content_end == start;
            match &mut blanks {
                Some((_, count, all_clean)) => {
                    *count += 1;
                    *all_clean &= clean;
                }
                None => blanks = Some((start, 1, clean)),
            }
            start = next;
            continue;
        }
        // Empty lines that were all bare CRLFs stay in the unchanged run.
        if let Some((at, count, false)) = blanks.take() {
            out.put(&body[done..at]);
            for _ in 0..count {
                out.put(b"\r\n");
            }
            done = start;
        }
        let mut i = spacing.next(start).min(end);
        // A tab may end a run of white space that began before it.
        while i > start && is_wsp(body[i - 1]) {
            i -= 1;
        }
        while i < end {
            if is_wsp(body[i]) {
                let mut j = i + 1;
                while j < end && is_wsp(body[j]) {
                    j += 1;
                }
                if j != i + 1 || body[i] != b' ' {
                    out.put(&body[done..i]);
                    out.put(b" ");
                    done = j;
                }
                i = j;
            } else {
                i += 1;
            }
        }
        if !(crlf && end == content_end) {
            out.put(&body[done..end]);
            out.put(b"\r\n");
            done = next;
        }
        start = next;
    }
    let stop = blanks.map_or(body.len(), |(at, _, _)| at);
    out.put(&body[done..stop]);
}

/// Where the next tab or two spaces in a row are, at or after a place in the
/// body: the only things inside a line that relaxed canonicalization
/// changes. Found with vectorized searches, so that lines without them are
/// not looked at byte by byte.
struct Spacing<'a> {
    body: &'a [u8],
    tab: usize,
    pair: usize,
}

impl<'a> Spacing<'a> {
    fn new(body: &'a [u8]) -> Spacing<'a> {
        Spacing {
            body,
            tab: Self::tab_from(body, 0),
            pair: Self::pair_from(body, 0),
        }
    }

    fn tab_from(body: &[u8], from: usize) -> usize {
        memchr::memchr(b'\t', &body[from..]).map_or(body.len(), |p| from + p)
    }

    fn pair_from(body: &[u8], from: usize) -> usize {
        memchr::memmem::find(&body[from..], b"  ").map_or(body.len(), |p| from + p)
    }

    /// The first tab or double space at or after `from`, or the body's end.
    fn next(&mut self, from: usize) -> usize {
        if self.tab < from {
            self.tab = Self::tab_from(self.body, from);
        }
        if self.pair < from {
            self.pair = Self::pair_from(self.body, from);
        }
        self.tab.min(self.pair)
    }
}

/// A header being folded into lines of at most [`LINE`] characters, at
/// the end of a buffer that may already hold others.
struct Folded<'a> {
    text: &'a mut String,
    start: usize,
    line: usize,
}

impl<'a> Folded<'a> {
    fn new(text: &'a mut String) -> Folded<'a> {
        let start = text.len();
        Folded {
            text,
            start,
            line: 0,
        }
    }

    /// This header so far.
    fn written(&self) -> &str {
        &self.text[self.start..]
    }

    fn end(self) {
        self.text.push_str("\r\n");
    }

    /// Text that may not be broken, right after what is there.
    fn atom(&mut self, s: &str) {
        self.text.push_str(s);
        self.line += s.len();
    }

    fn fold(&mut self) {
        self.text.push_str("\r\n ");
        self.line = 1;
    }

    /// A new tag: after a space, or on a new line when it does not fit.
    fn tag(&mut self, s: &str) {
        if self.line + 1 + s.len() > LINE {
            self.fold();
        } else {
            self.atom(" ");
        }
        self.atom(s);
    }

    /// More of a tag, where folding white space is allowed before it.
    fn atom_or_fold(&mut self, s: &str) {
        if self.line + s.len() + 1 > LINE {
            self.fold();
        }
        self.atom(s);
    }

    /// A base64 value, which may be folded anywhere.
    fn base64(&mut self, value: &str) {
        let mut rest = value;
        while !rest.is_empty() {
            // Leave room for the `;` that may follow.
            let room = (LINE - 1).saturating_sub(self.line);
            if room == 0 {
                self.fold();
                continue;
            }
            let (now, later) = rest.split_at(room.min(rest.len()));
            self.atom(now);
            rest = later;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::process::Command;

    use proptest::prelude::*;

    use super::*;

    const UNSUBSCRIBE: &str =
        "<https://news.example.org/u/TOKEN1>,\r\n <mailto:leave+TOKEN1@example.org>";

    fn key(file: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/dkim")
            .join(file)
    }

    fn settings(file: &str) -> DkimSettings {
        DkimSettings {
            selector: "nec2025".into(),
            domain: "example.org".into(),
            key_file: key(file),
        }
    }

    fn signer(file: &str) -> DkimSigner {
        DkimSigner::load(&settings(file)).expect("the test key loads")
    }

    fn with_selector(file: &str, selector: &str) -> DkimSigner {
        let settings = DkimSettings {
            selector: selector.into(),
            ..settings(file)
        };
        DkimSigner::load(&settings).expect("the test key loads")
    }

    /// A campaign message shaped like the ones `render::personal` writes.
    fn message(list_unsubscribe: &str, body_text: &str) -> Vec<u8> {
        format!(
            "From: NEC Report <nec@example.org>\r\n\
             To: Ann Member <ann@example.net>\r\n\
             Subject: =?utf-8?b?TkVDIHJlcG9ydDogSnVseSDigJQgZmluYW5jZQ==?=\r\n\
             Date: Tue, 1 Jul 2025 10:00:00 +0000\r\n\
             Message-ID: <c1.r1@example.org>\r\n\
             List-Id: NEC reports <nec-reports.example.org>\r\n\
             List-Unsubscribe: {list_unsubscribe}\r\n\
             List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n\
             Precedence: bulk\r\n\
             Auto-Submitted: auto-generated\r\n\
             Feedback-ID: c1:nec-reports:report:necmail\r\n\
             MIME-Version: 1.0\r\n\
             Content-Type: multipart/alternative;\r\n boundary=\"=_b1\"\r\n\
             \r\n\
             --=_b1\r\n\
             Content-Type: text/plain; charset=utf-8\r\n\
             Content-Transfer-Encoding: quoted-printable\r\n\
             \r\n\
             {body_text}\r\n\
             --=_b1\r\n\
             Content-Type: text/html; charset=utf-8\r\n\
             Content-Transfer-Encoding: quoted-printable\r\n\
             \r\n\
             <p>{body_text}</p>\r\n\
             --=_b1--\r\n"
        )
        .into_bytes()
    }

    fn signed(signer: &DkimSigner, message: &[u8]) -> Vec<u8> {
        let mut out = signer
            .sign(message)
            .expect("the message signs")
            .into_bytes();
        out.extend_from_slice(message);
        out
    }

    fn relaxed_body(body: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        canonical_body(body, &mut out);
        out
    }

    fn relaxed_header(field: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        canonical_header(field, &mut out);
        out
    }

    /// Relaxed body canonicalization as RFC 6376 §3.4.4 words it, one step
    /// after the other on copies.
    fn reference_body(body: &[u8]) -> Vec<u8> {
        let mut lines: Vec<&[u8]> = body.split(|&b| b == b'\n').collect();
        let unterminated = lines.pop().unwrap_or_default();
        // A CR is part of the line end only right before the LF.
        let mut lines: Vec<&[u8]> = lines
            .iter()
            .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
            .collect();
        lines.push(unterminated);
        let mut canonical: Vec<Vec<u8>> = lines
            .iter()
            .map(|line| {
                let mut out = Vec::new();
                for &b in *line {
                    if !is_wsp(b) {
                        out.push(b);
                    } else if out.last() != Some(&b' ') {
                        out.push(b' ');
                    }
                }
                while out.last() == Some(&b' ') {
                    out.pop();
                }
                out
            })
            .collect();
        while canonical.last().is_some_and(Vec::is_empty) {
            canonical.pop();
        }
        canonical
            .into_iter()
            .flat_map(|line| line.into_iter().chain(*b"\r\n"))
            .collect()
    }

    /// What dkimpy says about a signed message: `Ok` with the headers it
    /// found signed, or `Err` with why it failed. The tests that ask are
    /// `#[ignore]`d; `scripts/test` runs them when python3 has dkimpy.
    fn dkimpy(signer: &DkimSigner, signed: &[u8]) -> Result<String, String> {
        dkimpy_all(std::slice::from_ref(signer), signed)
    }

    /// What dkimpy says about a message signed once with each of `signers`.
    fn dkimpy_all(signers: &[DkimSigner], signed: &[u8]) -> Result<String, String> {
        let mut file = tempfile::NamedTempFile::new().expect("a temporary file");
        file.write_all(signed).expect("the message is written");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/dkim_verify.py");
        let mut command = Command::new("python3");
        command.arg(script).arg(file.path());
        for signer in signers {
            command.arg(signer.dns_name()).arg(signer.dns_record());
        }
        let output = command.output().expect("python3 runs");
        assert_ne!(
            output.status.code(),
            Some(77),
            "python3 lacks dkimpy: pip install dkimpy pynacl"
        );
        let stdout = String::from_utf8_lossy(&output.stdout).trim().to_owned();
        let stderr = String::from_utf8_lossy(&output.stderr).trim().to_owned();
        if output.status.success() {
            Ok(stdout)
        } else {
            Err(stderr)
        }
    }

    fn tag<'a>(header: &'a str, name: &str) -> &'a str {
        let unfolded = header.split(';').map(str::trim);
        let value = unfolded
            .clone()
            .find_map(|t| t.strip_prefix(name)?.strip_prefix('='));
        value.unwrap_or_else(|| panic!("no {name}= tag in {header}"))
    }

    #[test]
    fn relaxed_headers_match_the_rfc_6376_example() {
        assert_eq!(relaxed_header(b"A: X"), b"a:X");
        assert_eq!(relaxed_header(b"B : Y\t\r\n\tZ  "), b"b:Y Z");
    }

    #[test]
    fn relaxed_headers_lowercase_long_names_and_drop_empty_values() {
        let name = "X-".to_owned() + &"Long".repeat(40);
        let field = format!("{name}:  \r\n value");
        assert_eq!(
            relaxed_header(field.as_bytes()),
            format!("{}:value", name.to_lowercase()).as_bytes()
        );
        assert_eq!(relaxed_header(b"Subject: \t "), b"subject:");
        assert_eq!(relaxed_header(b"no colon here"), b"");
    }

    #[test]
    fn relaxed_body_matches_the_rfc_6376_example() {
        assert_eq!(relaxed_body(b" C \r\nD \t E\r\n\r\n\r\n"), b" C\r\nD E\r\n");
    }

    #[test]
    fn an_empty_body_or_one_of_only_blank_lines_canonicalizes_to_nothing() {
        assert_eq!(relaxed_body(b""), b"");
        assert_eq!(relaxed_body(b"\r\n\r\n \t\r\n"), b"");
    }

    #[test]
    fn a_body_without_a_final_line_break_gets_one() {
        assert_eq!(relaxed_body(b"last line"), b"last line\r\n");
        assert_eq!(relaxed_body(b"last line  "), b"last line\r\n");
    }

    #[test]
    fn bare_line_feeds_end_lines_and_whitespace_runs_become_one_space() {
        assert_eq!(relaxed_body(b"a\nb\t\tc \n"), b"a\r\nb c\r\n");
        assert_eq!(relaxed_body(b"\n \ta"), b"\r\n a\r\n");
        assert_eq!(relaxed_body(b"a \tb  c\r\n"), b"a b c\r\n");
        assert_eq!(
            relaxed_body(b"\r"),
            b"\r\r\n",
            "a CR is a line end only before LF"
        );
    }

    #[test]
    fn blank_lines_inside_the_body_are_kept() {
        assert_eq!(
            relaxed_body(b"a\r\n\r\n  \r\nb\r\n\r\n"),
            b"a\r\n\r\n\r\nb\r\n"
        );
        assert_eq!(relaxed_body(b"a\r\n\r\n\r\nb\r\n"), b"a\r\n\r\n\r\nb\r\n");
    }

    proptest! {
        #[test]
        fn streaming_body_canonicalization_matches_the_rfc_wording(
            body in prop::collection::vec(prop::sample::select(b"ab \t\r\n".to_vec()), 0..200)
        ) {
            prop_assert_eq!(relaxed_body(&body), reference_body(&body));
        }
    }

    proptest! {
        #[test]
        fn signing_any_bytes_gives_a_header_or_an_error_without_panicking(
            from in any::<bool>(),
            bytes in prop::collection::vec(
                prop::sample::select(b"From:a \t\r\n\xff".to_vec()),
                0..300,
            ),
        ) {
            let from_line: &[u8] = if from { b"From: a@example.org\r\n" } else { b"" };
            let message = [from_line, &bytes].concat();
            match signer("ed25519.pem").sign_at(&message, 0) {
                Ok(header) => {
                    prop_assert!(header.ends_with("\r\n") && header.contains("h=from:from"))
                }
                Err(error) => prop_assert!(matches!(error, DkimError::NoFrom) && !from),
            }
        }
    }

    #[test]
    fn a_message_without_a_body_has_the_empty_body_hash() {
        let header = signer("ed25519.pem")
            .sign_at(b"From: a@example.org\r\n", 0)
            .unwrap();
        assert_eq!(
            tag(&header, "bh"),
            "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
        );
    }

    #[test]
    fn h_lists_each_signed_header_once_more_than_the_message_has_it() {
        let signer = signer("ed25519.pem");
        let header = signer.sign_at(&message(UNSUBSCRIBE, "Hi"), 1).unwrap();
        let h: String = tag(&header, "h").split_whitespace().collect();
        assert_eq!(
            h,
            "from:from:reply-to:to:to:cc:subject:subject:date:date:message-id:message-id:\
             list-id:list-id:list-unsubscribe:list-unsubscribe:\
             list-unsubscribe-post:list-unsubscribe-post:list-archive:list-subscribe:\
             list-help:list-post:feedback-id:feedback-id:\
             mime-version:mime-version:content-type:content-type"
        );
        let plain = b"Subject: hi\r\nFrom: a@example.org\r\nX-Other: 1\r\n\r\nbody\r\n";
        let header = signer.sign_at(plain, 1).unwrap();
        let h: String = tag(&header, "h").split_whitespace().collect();
        assert_eq!(
            h,
            "from:from:reply-to:to:cc:subject:subject:date:message-id:list-id:\
             list-unsubscribe:list-unsubscribe-post:list-archive:list-subscribe:list-help:\
             list-post:feedback-id:mime-version:content-type"
        );
    }

    #[test]
    fn the_header_names_the_key_the_time_and_the_canonicalization() {
        let signer = signer("rsa2048.pkcs8.pem");
        let header = signer
            .sign_at(&message(UNSUBSCRIBE, "Hi"), 1_751_364_000)
            .unwrap();
        assert!(
            header.starts_with(
                "DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=example.org;"
            )
        );
        assert_eq!(tag(&header, "s"), "nec2025");
        assert_eq!(tag(&header, "t"), "1751364000");
        let b: String = tag(&header, "b").split_whitespace().collect();
        assert_eq!(BASE64.decode(b).unwrap().len(), 256);
    }

    #[test]
    fn a_signature_fits_the_room_kept_for_it_so_the_buffer_never_grows() {
        for file in ["rsa4096.pkcs8.pem", "rsa2048.pkcs1.pem", "ed25519.pem"] {
            let header = signer(file).sign(&message(UNSUBSCRIBE, "Hi")).unwrap();
            assert!(header.len() < SIGNATURE_ROOM, "{file}: {}", header.len());
        }
    }

    #[test]
    fn the_header_is_folded_into_lines_of_at_most_78_characters() {
        for file in ["rsa2048.pkcs1.pem", "ed25519.pem"] {
            let header = signer(file).sign(&message(UNSUBSCRIBE, "Hi")).unwrap();
            let lines: Vec<&str> = header.strip_suffix("\r\n").unwrap().split("\r\n").collect();
            assert!(lines.len() > 2, "{header}");
            for (i, line) in lines.iter().enumerate() {
                assert!(line.len() <= LINE, "{line:?} is {} long", line.len());
                assert_eq!(i > 0, line.starts_with(' '), "{line:?}");
            }
        }
    }

    #[test]
    fn an_rsa_and_an_ed25519_key_load_together_but_two_of_one_algorithm_do_not() {
        let both = load_all(&[settings("rsa2048.pkcs1.pem"), settings("ed25519.pem")]).unwrap();
        let algorithms: Vec<&str> = both.iter().map(DkimSigner::algorithm).collect();
        assert_eq!(algorithms, ["rsa-sha256", "ed25519-sha256"]);
        assert!(!ed25519_only(&both));
        assert!(ed25519_only(&load_all(&[settings("ed25519.pem")]).unwrap()));
        assert!(!ed25519_only(&[]));
        let error = load_all(&[settings("rsa2048.pkcs1.pem"), settings("rsa2048.pkcs8.pem")]);
        assert!(
            matches!(error, Err(DkimError::SameAlgorithm { .. })),
            "{error:?}"
        );
    }

    #[test]
    fn a_message_without_from_is_refused() {
        let error = signer("ed25519.pem")
            .sign(b"To: a@example.org\r\n\r\nhi\r\n")
            .unwrap_err();
        assert!(matches!(error, DkimError::NoFrom), "{error}");
    }

    #[test]
    fn a_missing_or_unreadable_key_file_is_an_error_naming_it() {
        for path in [key("no-such-key.pem"), key("")] {
            let error = DkimSigner::load(&DkimSettings {
                key_file: path.clone(),
                ..settings("")
            })
            .unwrap_err();
            assert!(matches!(error, DkimError::Unreadable { .. }), "{error}");
            assert!(
                error.to_string().contains(&path.display().to_string()),
                "{error}"
            );
        }
    }

    #[test]
    fn a_file_that_is_no_usable_key_is_an_error_naming_it() {
        for (file, reason) in [
            ("README.md", "no BEGIN"),
            ("ec-p256.pem", "another kind (algorithm 1.2.840.10045.2.1)"),
            ("ed25519.encrypted.pem", "encrypted"),
            ("rsa512.pkcs1.pem", "512-bit"),
            ("rsa1024.pkcs1.pem", "1024-bit"),
            ("rsa2048-e3.pkcs8.pem", "public exponent"),
        ] {
            let error = DkimSigner::load(&settings(file)).unwrap_err().to_string();
            assert!(error.contains(&key(file).display().to_string()), "{error}");
            assert!(error.contains(reason), "{error}");
            assert_eq!(error.matches(". ").count(), 0, "one sentence: {error}");
        }
    }

    #[test]
    fn a_corrupt_pem_key_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let good = std::fs::read_to_string(key("rsa2048.pkcs1.pem")).unwrap();
        for (name, text) in [
            ("cut.pem", good[..good.len() / 2].to_owned()),
            (
                "binary.pem",
                String::from_utf8_lossy(&[0xff, 0xfe, 0]).into_owned(),
            ),
            (
                "big.pem",
                "-----BEGIN PRIVATE KEY-----\n".to_owned() + &"A".repeat(70_000),
            ),
        ] {
            let path = dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            let error = DkimSigner::load(&DkimSettings {
                key_file: path.clone(),
                ..settings("")
            })
            .unwrap_err();
            assert!(matches!(error, DkimError::NotAKey { .. }), "{error}");
            assert!(
                error.to_string().contains(&path.display().to_string()),
                "{error}"
            );
        }
    }

    #[test]
    fn a_selector_or_domain_that_is_not_a_dns_name_is_refused() {
        for selector in ["", "a b", "s;t=1", "a..b"] {
            let error = DkimSigner::load(&DkimSettings {
                selector: selector.into(),
                ..settings("ed25519.pem")
            });
            assert!(
                matches!(error, Err(DkimError::InvalidSelector(_))),
                "{selector:?}"
            );
        }
        let error = DkimSigner::load(&DkimSettings {
            domain: "example.org;".into(),
            ..settings("ed25519.pem")
        });
        assert!(matches!(error, Err(DkimError::InvalidDomain(_))));
        let idn = DkimSigner::load(&DkimSettings {
            domain: "bücher.example".into(),
            ..settings("ed25519.pem")
        });
        assert_eq!(
            idn.unwrap().dns_name(),
            "nec2025._domainkey.xn--bcher-kva.example"
        );
    }

    #[test]
    fn the_dns_record_publishes_the_public_key() {
        let record = signer("ed25519.pem").dns_record();
        let p = record
            .strip_prefix("v=DKIM1; k=ed25519; p=")
            .expect(&record);
        assert_eq!(BASE64.decode(p).unwrap().len(), 32);
        let record = signer("rsa2048.pkcs1.pem").dns_record();
        let p = record.strip_prefix("v=DKIM1; k=rsa; p=").expect(&record);
        assert_eq!(
            BASE64.decode(p).unwrap().len(),
            294,
            "a 2048-bit SubjectPublicKeyInfo"
        );
    }

    #[test]
    fn the_zone_entry_splits_the_record_into_strings_of_at_most_255_bytes() {
        for (file, count) in [
            ("rsa2048.pkcs1.pem", 2),
            ("rsa4096.pkcs8.pem", 3),
            ("ed25519.pem", 1),
        ] {
            let signer = signer(file);
            let entry = signer.zone_entry();
            let (name, rest) = entry.split_once(" IN TXT ( ").expect(&entry);
            assert_eq!(name, format!("{}.", signer.dns_name()));
            let strings: Vec<&str> = rest
                .strip_suffix(" )")
                .expect(&entry)
                .split("\n\t")
                .map(|s| {
                    s.strip_prefix('"')
                        .and_then(|s| s.strip_suffix('"'))
                        .expect(s)
                })
                .collect();
            assert_eq!(strings.len(), count, "{entry}");
            assert!(strings.iter().all(|s| s.len() <= 255), "{entry}");
            assert_eq!(strings.concat(), signer.dns_record());
        }
    }

    #[test]
    fn the_rsa_public_key_is_published_as_openssl_writes_it() {
        for (file, public) in [
            ("rsa2048.pkcs1.pem", "rsa2048.pub.pem"),
            ("rsa2048.pkcs8.pem", "rsa2048.pub.pem"),
            ("rsa4096.pkcs8.pem", "rsa4096.pub.pem"),
        ] {
            // Made with `openssl rsa -in FILE -pubout`.
            let pem = std::fs::read_to_string(key(public)).unwrap();
            let spki: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
            assert_eq!(
                signer(file).dns_record(),
                format!("v=DKIM1; k=rsa; p={spki}"),
                "{file}"
            );
        }
    }

    #[test]
    fn der_lengths_are_short_under_128_and_long_from_there_without_leading_zeros() {
        for (len, der) in [
            (0, &[0x00][..]),
            (1, &[0x01]),
            (127, &[0x7f]),
            (128, &[0x81, 0x80]),
            (255, &[0x81, 0xff]),
            (256, &[0x82, 0x01, 0x00]),
            (270, &[0x82, 0x01, 0x0e]),
            (65_535, &[0x82, 0xff, 0xff]),
            (65_536, &[0x83, 0x01, 0x00, 0x00]),
            (0x0102_0304, &[0x84, 0x01, 0x02, 0x03, 0x04]),
        ] {
            let mut out = Vec::new();
            der_length(len, &mut out);
            assert_eq!(out, der, "{len}");
        }
    }

    #[test]
    fn the_public_numbers_of_a_malformed_rsa_key_are_unknown_rather_than_a_panic() {
        for der in [
            &b""[..],
            b"\x30",
            b"\x30\x03\x02\x01\x00",
            b"\x04\x00",
            b"\x30\x05\x02\x01\x00\x02\x00",
            b"\x30\x08\x02\x01\x00\x02\x01\x80\x04\x00",
        ] {
            assert_eq!(rsa_public_numbers(der), None, "{der:?}");
        }
    }

    #[test]
    fn the_public_numbers_of_an_rsa_key_are_its_modulus_length_and_exponent() {
        let numbers = |modulus: &[u8], exponent: &[u8]| {
            let mut der = vec![0x30, 0, 0x02, 0x01, 0x00, 0x02, modulus.len() as u8];
            der.extend_from_slice(modulus);
            der.extend_from_slice(&[0x02, exponent.len() as u8]);
            der.extend_from_slice(exponent);
            der[1] = (der.len() - 2) as u8;
            rsa_public_numbers(&der)
        };
        assert_eq!(numbers(&[0x00, 0x80], &[3]), Some((8, Some(3))));
        assert_eq!(
            numbers(&[0x01, 0x00], &[0x01, 0x00, 0x01]),
            Some((9, Some(65_537)))
        );
        assert_eq!(numbers(&[0x7f], &[0x01; 9]), Some((7, None)));
        for file in [
            "rsa2048.pkcs1.pem",
            "rsa2560.pkcs8.pem",
            "rsa4096.pkcs8.pem",
        ] {
            let pem = std::fs::read_to_string(key(file)).unwrap();
            let (_, der) = SecretDocument::from_pem(&pem).unwrap();
            let der = match PrivateKeyInfo::try_from(der.as_bytes()) {
                Ok(info) => info.private_key.to_vec(),
                Err(_) => der.as_bytes().to_vec(),
            };
            let bits: usize = file[3..7].parse().unwrap();
            assert_eq!(
                rsa_public_numbers(&der),
                Some((bits, Some(65_537))),
                "{file}"
            );
        }
    }

    #[test]
    fn debug_output_leaves_the_private_key_out() {
        let debug = format!("{:?}", signer("rsa2048.pkcs1.pem"));
        assert!(
            debug.contains("rsa-sha256") && debug.contains("nec2025"),
            "{debug}"
        );
        assert!(!debug.contains("primes") && debug.len() < 300, "{debug}");
    }

    /// Cross-checks with dkimpy, an independent verifier. They need python3
    /// with dkimpy, so they are ignored; `scripts/test` runs them when it
    /// is installed.
    mod dkimpy {
        use super::*;

        #[test]
        #[ignore = "needs python3 with dkimpy: scripts/test runs it when it is installed"]
        fn an_rsa_signature_verifies_with_dkimpy() {
            for file in ["rsa2048.pkcs1.pem", "rsa2048.pkcs8.pem"] {
                let signer = signer(file);
                assert_eq!(signer.algorithm(), "rsa-sha256");
                let verdict = dkimpy(
                    &signer,
                    &signed(&signer, &message(UNSUBSCRIBE, "Hello  Ann,")),
                );
                let headers = verdict.unwrap_or_else(|e| panic!("{file}: {e}"));
                assert!(
                    headers.contains("list-unsubscribe list-unsubscribe-post"),
                    "{headers}"
                );
            }
        }

        #[test]
        #[ignore = "needs python3 with dkimpy: scripts/test runs it when it is installed"]
        fn an_ed25519_signature_verifies_with_dkimpy() {
            let signer = signer("ed25519.pem");
            assert_eq!(signer.algorithm(), "ed25519-sha256");
            let verdict = dkimpy(
                &signer,
                &signed(&signer, &message(UNSUBSCRIBE, "Hello Ann,\t ")),
            );
            let headers = verdict.unwrap_or_else(|e| panic!("{e}"));
            assert!(
                headers.contains("list-unsubscribe list-unsubscribe-post"),
                "{headers}"
            );
        }

        #[test]
        #[ignore = "needs python3 with dkimpy: scripts/test runs it when it is installed"]
        fn a_tampered_body_fails_verification() {
            for file in ["rsa2048.pkcs1.pem", "ed25519.pem"] {
                let signer = signer(file);
                let header = signer.sign(&message(UNSUBSCRIBE, "Vote yes.")).unwrap();
                let tampered = [header.as_bytes(), &message(UNSUBSCRIBE, "Vote no.")].concat();
                let verdict = dkimpy(&signer, &tampered);
                let error = verdict.expect_err("a changed body must not verify");
                assert!(error.contains("body hash mismatch"), "{error}");
            }
        }

        #[test]
        #[ignore = "needs python3 with dkimpy: scripts/test runs it when it is installed"]
        fn a_changed_list_unsubscribe_header_fails_verification() {
            for file in ["rsa2048.pkcs1.pem", "ed25519.pem"] {
                let signer = signer(file);
                let header = signer.sign(&message(UNSUBSCRIBE, "Hello")).unwrap();
                let other = UNSUBSCRIBE.replace("TOKEN1", "TOKEN2");
                let tampered = [header.as_bytes(), &message(&other, "Hello")].concat();
                let verdict = dkimpy(&signer, &tampered);
                assert!(
                    verdict.is_err(),
                    "a changed List-Unsubscribe must not verify"
                );
            }
        }

        #[test]
        #[ignore = "needs python3 with dkimpy: scripts/test runs it when it is installed"]
        fn a_header_field_added_after_signing_fails_verification() {
            let signer = signer("ed25519.pem");
            let message = message(UNSUBSCRIBE, "Hello");
            let header = signer.sign(&message).unwrap();
            let signed = String::from_utf8([header.as_bytes(), &message].concat()).unwrap();
            assert!(dkimpy(&signer, signed.as_bytes()).is_ok());
            for field in [
                "From: x@evil.example",
                "Subject: Vote no",
                "List-Unsubscribe: <https://evil.example/u/x>",
                "To: x@evil.example",
                "Content-Type: text/plain",
                "Reply-To: x@evil.example",
                "Cc: x@evil.example",
            ] {
                let tampered = signed.replacen("To: ", &format!("{field}\r\nTo: "), 1);
                let verdict = dkimpy(&signer, tampered.as_bytes());
                assert!(verdict.is_err(), "an added {field} must not verify");
            }
        }

        #[test]
        #[ignore = "needs python3 with dkimpy: scripts/test runs it when it is installed"]
        fn a_relay_that_refolds_headers_and_pads_white_space_does_not_break_the_signature() {
            for file in ["rsa2048.pkcs1.pem", "ed25519.pem"] {
                let signer = signer(file);
                let message = message(UNSUBSCRIBE, "Hello Ann,");
                let header = signer.sign(&message).unwrap();
                let relayed = String::from_utf8(message)
                    .unwrap()
                    .replace("Subject: ", "Subject:\t ")
                    .replace(",\r\n <mailto", ", <mailto")
                    .replace(";\r\n boundary", ";\r\n\t  boundary")
                    .replace("Hello Ann,", "Hello \t Ann,")
                    .replace("quoted-printable\r\n", "quoted-printable \t\r\n")
                    .replace("--=_b1--\r\n", "--=_b1--\r\n\r\n \r\n");
                let verdict = dkimpy(&signer, &[header.as_bytes(), relayed.as_bytes()].concat());
                verdict.unwrap_or_else(|e| panic!("{file}: {e}"));
            }
        }

        #[test]
        #[ignore = "needs python3 with dkimpy: scripts/test runs it when it is installed"]
        fn an_rsa_and_an_ed25519_signature_together_both_verify_with_dkimpy() {
            let signers = [
                signer("rsa2048.pkcs8.pem"),
                with_selector("ed25519.pem", "ed"),
            ];
            let message = message(UNSUBSCRIBE, "Hello Ann,");
            let mut head = String::new();
            sign_with(&signers, &message, 1_751_364_000, &mut head).unwrap();
            assert_eq!(head.matches("DKIM-Signature:").count(), 2, "{head}");
            let signed = [head.as_bytes(), &message].concat();
            dkimpy_all(&signers, &signed).unwrap_or_else(|e| panic!("{e}"));
            let tampered = String::from_utf8(signed).unwrap().replace("Hello", "Bye");
            assert!(dkimpy_all(&signers, tampered.as_bytes()).is_err());
        }

        #[test]
        #[ignore = "needs python3 with dkimpy: scripts/test runs it when it is installed"]
        fn a_2560_and_a_4096_bit_rsa_signature_verify_with_dkimpy() {
            for (file, bytes) in [("rsa2560.pkcs8.pem", 320), ("rsa4096.pkcs8.pem", 512)] {
                let signer = signer(file);
                let header = signer.sign_at(&message(UNSUBSCRIBE, "Hi"), 1).unwrap();
                let b: String = tag(&header, "b").split_whitespace().collect();
                assert_eq!(BASE64.decode(b).unwrap().len(), bytes, "{file}");
                let verdict = dkimpy(&signer, &signed(&signer, &message(UNSUBSCRIBE, "Hi")));
                verdict.unwrap_or_else(|e| panic!("{file}: {e}"));
            }
        }
    }
}
