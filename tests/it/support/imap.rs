//! A real IMAP server for the bounce mailbox tests: Debian's Dovecot
//! (`apt-get install dovecot-imapd`), started with a throwaway
//! configuration of its own in a temporary folder — one user from a
//! passwd-file, plain-text login allowed on loopback, a Maildir in the
//! folder — on a free loopback port, and stopped when dropped.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use async_imap::Session;
use futures_util::TryStreamExt;
use tempfile::TempDir;
use tokio::net::TcpStream;

/// The mailbox's user and password. The password is distinctive so that
/// the tests can look for it in every log line and error.
pub const USER: &str = "bounces";
pub const PASSWORD: &str = "imap-pw-7Qx9vK2mZ";

/// How long Dovecot may take to start.
const START: Duration = Duration::from_secs(20);

/// A Dovecot serving one user's Maildir on 127.0.0.1: IMAP, and IMAP over
/// TLS with the test CA's certificate.
pub struct Dovecot {
    child: Child,
    dir: TempDir,
    pub port: u16,
    pub tls_port: u16,
}

/// Where Debian installs the binary, or whatever PATH has.
fn binary() -> PathBuf {
    let sbin = Path::new("/usr/sbin/dovecot");
    if sbin.exists() {
        sbin.to_owned()
    } else {
        PathBuf::from("dovecot")
    }
}

impl Dovecot {
    /// Starts Dovecot and waits until it greets.
    pub async fn start() -> Dovecot {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let root = dir.path();
        // Dovecot's unprivileged processes must reach the folder.
        std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o755)).unwrap();
        let mail = root.join("mail");
        std::fs::create_dir(&mail).unwrap();
        // As root, Dovecot runs its login processes as its own users and
        // the mail as nobody; as anyone else, everything as that user.
        let (login_user, internal_user, uid, gid) = if std::fs::metadata(root).unwrap().uid() == 0 {
            std::os::unix::fs::chown(&mail, Some(65534), Some(65534)).unwrap();
            ("dovenull".to_owned(), "dovecot".to_owned(), 65534, 65534)
        } else {
            let me = std::env::var("USER").expect("USER names who runs the tests");
            let meta = std::fs::metadata(root).unwrap();
            (me.clone(), me, meta.uid(), meta.gid())
        };
        let (port, tls_port) = (crate::serve::free_port(), crate::serve::free_port());
        std::fs::write(root.join("passwd"), format!("{USER}:{{PLAIN}}{PASSWORD}\n")).unwrap();
        let (certificate, key) = crate::support::smtp::test_server_pem();
        std::fs::write(root.join("cert.pem"), certificate).unwrap();
        std::fs::write(root.join("key.pem"), key).unwrap();
        let root = root.display();
        let conf = format!(
            "base_dir = {root}/run\n\
             state_dir = {root}/state\n\
             log_path = {root}/dovecot.log\n\
             protocols = imap\n\
             listen = 127.0.0.1\n\
             ssl = yes\n\
             ssl_cert = <{root}/cert.pem\n\
             ssl_key = <{root}/key.pem\n\
             disable_plaintext_auth = no\n\
             auth_mechanisms = plain login\n\
             default_login_user = {login_user}\n\
             default_internal_user = {internal_user}\n\
             first_valid_uid = 1\n\
             passdb {{\n  driver = passwd-file\n\
               args = scheme=PLAIN username_format=%u {root}/passwd\n}}\n\
             userdb {{\n  driver = static\n  args = uid={uid} gid={gid} home={root}/mail/%u\n}}\n\
             mail_location = maildir:~/Maildir\n\
             service imap-login {{\n  chroot =\n\
               inet_listener imap {{\n    address = 127.0.0.1\n    port = {port}\n  }}\n\
               inet_listener imaps {{\n    address = 127.0.0.1\n    port = {tls_port}\n  }}\n}}\n\
             service anvil {{\n  chroot =\n}}\n"
        );
        let conf_file = dir.path().join("dovecot.conf");
        std::fs::write(&conf_file, conf).unwrap();
        let child = Command::new(binary())
            .arg("-c")
            .arg(&conf_file)
            .arg("-F")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("stderr.log")).unwrap())
            .spawn()
            .expect("dovecot runs (apt-get install dovecot-imapd)");
        let dovecot = Dovecot {
            child,
            dir,
            port,
            tls_port,
        };
        let deadline = tokio::time::Instant::now() + START;
        while dovecot.session().await.is_err() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "Dovecot did not start:\n{}",
                dovecot.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        dovecot
    }

    /// NECMAIL_BOUNCE_MAILBOX for this server's INBOX.
    pub fn url(&self) -> String {
        format!("imap://{USER}:{PASSWORD}@127.0.0.1:{}/INBOX", self.port)
    }

    /// NECMAIL_BOUNCE_MAILBOX for the INBOX over TLS, at `host`.
    pub fn tls_url(&self, host: &str) -> String {
        format!("imaps://{USER}:{PASSWORD}@{host}:{}/INBOX", self.tls_port)
    }

    /// What Dovecot logged.
    pub fn log(&self) -> String {
        let read = |name| std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default();
        format!("{}{}", read("stderr.log"), read("dovecot.log"))
    }

    async fn session(&self) -> Result<Session<TcpStream>, String> {
        let tcp = TcpStream::connect(("127.0.0.1", self.port))
            .await
            .map_err(|e| e.to_string())?;
        let mut client = async_imap::Client::new(tcp);
        client
            .read_response()
            .await
            .map_err(|e| e.to_string())?
            .ok_or("no greeting")?;
        let mut session = client
            .login(USER, PASSWORD)
            .await
            .map_err(|(e, _)| e.to_string())?;
        session.select("INBOX").await.map_err(|e| e.to_string())?;
        Ok(session)
    }

    /// Puts `message` in the INBOX with IMAP APPEND, unseen.
    pub async fn append(&self, message: &[u8]) {
        let mut session = self.session().await.unwrap();
        session.append("INBOX", None, None, message).await.unwrap();
        session.logout().await.unwrap();
    }

    /// The flags of every message in the INBOX, in order: `["\\Seen"]`.
    pub async fn flags(&self) -> Vec<Vec<String>> {
        let mut session = self.session().await.unwrap();
        let fetched: Vec<_> = session
            .fetch("1:*", "FLAGS")
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap_or_default();
        let flags = fetched
            .iter()
            .map(|f| f.flags().map(|flag| format!("{flag:?}")).collect())
            .collect();
        session.logout().await.unwrap();
        flags
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}
