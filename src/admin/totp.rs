//! Two-factor sign-in with TOTP (RFC 6238: SHA-1, 6 digits, 30 s, one step
//! of skew), the kind every authenticator app reads.

use totp_rs::{Builder, Secret, Totp};

/// A new secret, in base32, to show to the person setting it up.
pub fn new_secret() -> String {
    Secret::generate().to_base32()
}

fn totp(secret: &str, account: &str) -> Option<Totp> {
    let bytes = Secret::try_from_base32(secret).ok()?;
    Builder::new()
        .with_secret(bytes)
        .with_account_name(account.replace(':', ""))
        .with_issuer(Some("necmail"))
        .build()
        .ok()
}

/// The `otpauth://` URL an authenticator app takes, for `account`.
pub fn setup_url(secret: &str, account: &str) -> Option<String> {
    totp(secret, account)?.to_url().ok()
}

/// Whether `code` is the current code (or the one just before or after)
/// of `secret`.
pub fn check(secret: &str, code: &str) -> bool {
    let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    code.len() == 6
        && totp(secret, "")
            .and_then(|t| t.check_current(&code))
            .is_some()
}

/// The current code of `secret` (for tests and set-up checks).
pub fn current_code(secret: &str) -> Option<String> {
    Some(totp(secret, "")?.generate_current().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_current_code_checks_and_others_do_not() {
        let secret = new_secret();
        let code = current_code(&secret).unwrap();
        assert!(check(&secret, &code));
        let wrong = format!(
            "{:06}",
            (code.parse::<u32>().unwrap() + 500_000) % 1_000_000
        );
        assert!(!check(&secret, &wrong));
        assert!(!check(&secret, ""));
        assert!(
            setup_url(&secret, "ann@example.org")
                .unwrap()
                .starts_with("otpauth://totp/")
        );
    }
}
