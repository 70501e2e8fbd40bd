//! Passwords: hashed with argon2id (the `argon2` crate's defaults, 19 MiB
//! and 2 passes), checked in time that does not tell whether an account exists.

use std::sync::LazyLock;

use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};

use super::AdminError;

/// The fewest characters a password may have.
pub const MIN_CHARS: usize = 12;
/// The most bytes a password may have: hashing a longer one is wasted work.
pub const MAX_BYTES: usize = 1024;

/// A hash checked when there is no account, so that a sign-in takes as
/// long either way.
static DUMMY: LazyLock<String> =
    LazyLock::new(|| hash("a password nobody has").expect("hashing works"));

/// Whether `password` may be used; the sentence says why not.
pub fn check_new(password: &str, again: &str) -> Result<(), AdminError> {
    if password != again {
        return Err(AdminError::Invalid("The two passwords differ.".into()));
    }
    if password.chars().count() < MIN_CHARS {
        return Err(AdminError::Invalid(format!(
            "A password needs at least {MIN_CHARS} characters."
        )));
    }
    if password.len() > MAX_BYTES {
        return Err(AdminError::Invalid(format!(
            "A password may have at most {MAX_BYTES} bytes."
        )));
    }
    Ok(())
}

/// The argon2id hash of `password`, as a PHC string.
pub fn hash(password: &str) -> Result<String, AdminError> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| AdminError::Hash(e.to_string()))
}

/// Whether `password` matches `stored`; with no stored hash, a dummy one is
/// checked (and fails) so that the answer takes as long.
pub fn verify(password: &str, stored: Option<&str>) -> bool {
    if password.len() > MAX_BYTES {
        return false;
    }
    let (hash, real) = match stored {
        Some(h) => (h, true),
        None => (DUMMY.as_str(), false),
    };
    Argon2::default()
        .verify_password(password.as_bytes(), hash)
        .is_ok()
        && real
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_is_argon2id_and_verifies_only_its_password() {
        let h = hash("correct horse battery").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify("correct horse battery", Some(&h)));
        assert!(!verify("correct horse batterY", Some(&h)));
        assert!(!verify("a password nobody has", None));
    }

    #[test]
    fn short_and_mismatched_passwords_are_refused() {
        assert!(check_new("short", "short").is_err());
        assert!(check_new("long enough pass", "long enough pasS").is_err());
        assert!(check_new("long enough pass", "long enough pass").is_ok());
    }
}
