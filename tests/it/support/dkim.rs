//! DKIM verification for the tests by mail-auth, a verifier independent of
//! necmail's signer, with the public keys handed to it instead of looked
//! up in DNS.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use mail_auth::common::crypto::Algorithm;
use mail_auth::common::parse::TxtRecordParser;
use mail_auth::common::verify::DomainKey;
use mail_auth::hickory_resolver::config::{NameServerConfig, ResolverConfig, ResolverOpts};
use mail_auth::{AuthenticatedMessage, DkimResult, MessageAuthenticator, Parameters};
use mail_auth::{ResolverCache, Txt};
use necmail::config::Config;
use necmail::delivery::dkim::DkimSigner;

/// The RSA-2048 test key.
pub const RSA_KEY: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/dkim/rsa2048.pkcs1.pem"
);
/// The Ed25519 test key.
pub const ED25519_KEY: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/dkim/ed25519.pem"
);

/// The variables that sign with the RSA key, under the selector `rsa`.
pub const RSA: [(&str, &str); 2] = [
    ("NECMAIL_DKIM_SELECTOR", "rsa"),
    ("NECMAIL_DKIM_KEY_FILE", RSA_KEY),
];

/// The variables that sign with the Ed25519 key, under the selector `ed`.
pub const ED25519: [(&str, &str); 2] = [
    ("NECMAIL_DKIM_SELECTOR", "ed"),
    ("NECMAIL_DKIM_KEY_FILE", ED25519_KEY),
];

/// The variables that sign with both keys, RSA first (RFC 8463).
pub const BOTH: [(&str, &str); 4] = [
    ("NECMAIL_DKIM_SELECTOR", "rsa"),
    ("NECMAIL_DKIM_KEY_FILE", RSA_KEY),
    ("NECMAIL_DKIM_SELECTOR_2", "ed"),
    ("NECMAIL_DKIM_KEY_FILE_2", ED25519_KEY),
];

/// The signers `config` names, for their DNS names and records.
pub fn signers(config: &Config) -> Vec<DkimSigner> {
    config
        .dkim()
        .iter()
        .map(|settings| DkimSigner::load(settings).expect("the test key loads"))
        .collect()
}

/// One signature that verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// `rsa-sha256` or `ed25519-sha256`.
    pub algorithm: String,
    /// The `h=` tag, lowercase, in order.
    pub headers: Vec<String>,
}

/// The public keys of `signers`, where mail-auth looks for them.
struct Keys(HashMap<Box<str>, Txt>);

impl ResolverCache<Box<str>, Txt> for Keys {
    fn get<Q>(&self, name: &Q) -> Option<Txt>
    where
        Box<str>: std::borrow::Borrow<Q>,
        Q: std::hash::Hash + Eq + ?Sized,
    {
        self.0.get(name).cloned()
    }

    fn remove<Q>(&self, _: &Q) -> Option<Txt>
    where
        Box<str>: std::borrow::Borrow<Q>,
        Q: std::hash::Hash + Eq + ?Sized,
    {
        None
    }

    fn insert(&self, _: Box<str>, _: Txt, _: std::time::Instant) {}
}

/// What mail-auth says of each DKIM signature of `message`, top first:
/// `Ok` when it verifies with the public key of one of `signers`, `Err`
/// with why not. A key it is not given is looked up on 127.0.0.1 only,
/// where no DNS server answers.
pub async fn verify(message: &[u8], signers: &[DkimSigner]) -> Vec<Result<Verified, String>> {
    let keys = Keys(
        signers
            .iter()
            .map(|signer| {
                let record = DomainKey::parse(signer.dns_record().as_bytes())
                    .expect("mail-auth reads the record");
                let name = format!("{}.", signer.dns_name()).into_boxed_str();
                (name, Txt::DomainKey(Arc::new(record)))
            })
            .collect(),
    );
    let loopback = NameServerConfig::udp_and_tcp(IpAddr::V4(Ipv4Addr::LOCALHOST));
    let authenticator = MessageAuthenticator::new(
        ResolverConfig::from_name_servers(vec![loopback]),
        ResolverOpts::default(),
    )
    .expect("a resolver");
    let parsed = AuthenticatedMessage::parse(message).expect("mail-auth parses the message");
    let outputs = authenticator
        .verify_dkim(Parameters::new(&parsed).with_txt_cache(&keys))
        .await;
    outputs
        .iter()
        .map(|output| match output.result() {
            DkimResult::Pass => {
                let signature = output.signature().expect("a passing signature");
                Ok(Verified {
                    algorithm: match signature.a {
                        Algorithm::RsaSha256 => "rsa-sha256".to_owned(),
                        Algorithm::Ed25519Sha256 => "ed25519-sha256".to_owned(),
                        other => format!("{other:?}"),
                    },
                    headers: signature.h.iter().map(|h| h.to_lowercase()).collect(),
                })
            }
            other => Err(format!("{other:?}")),
        })
        .collect()
}

/// Asserts that `message` carries one signature per signer and that each
/// verifies; returns them.
#[track_caller]
pub fn assert_verifies(verdicts: Vec<Result<Verified, String>>, signers: usize) -> Vec<Verified> {
    assert_eq!(
        verdicts.len(),
        signers,
        "one signature per key: {verdicts:?}"
    );
    verdicts
        .into_iter()
        .map(|v| v.unwrap_or_else(|e| panic!("a signature does not verify: {e}")))
        .collect()
}
