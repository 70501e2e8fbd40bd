//! The outbox: every message as an `.eml` file in a folder. The default
//! transport, for trying necmail out and for tests.

use std::path::{Path, PathBuf};

use async_trait::async_trait;

use super::{Accepted, Envelope, Outgoing, SendError, Transport};

pub struct Outbox {
    dir: PathBuf,
}

impl Outbox {
    /// Uses `dir`, creating it if needed.
    pub fn new(dir: &Path) -> Result<Self, SendError> {
        std::fs::create_dir_all(dir).map_err(|e| {
            SendError::Local(format!(
                "cannot create the outbox folder {}: {e}",
                dir.display()
            ))
        })?;
        Ok(Outbox {
            dir: dir.to_path_buf(),
        })
    }
}

#[async_trait]
impl Transport for Outbox {
    /// Writes `<id>.eml` atomically (a temporary file renamed into place),
    /// with the envelope in `Return-Path` and `X-Envelope-To` headers.
    #[tracing::instrument(level = "debug", skip_all, fields(id = envelope.id))]
    async fn send(
        &self,
        envelope: &Envelope<'_>,
        message: Outgoing<'_>,
    ) -> Result<Accepted, SendError> {
        let name = format!("{}.eml", envelope.id);
        let path = self.dir.join(&name);
        let tmp = self.dir.join(format!(".{name}.tmp"));
        let mut data = Vec::with_capacity(message.len() + 128);
        data.extend_from_slice(format!("Return-Path: <{}>\r\n", envelope.mail_from).as_bytes());
        data.extend_from_slice(format!("X-Envelope-To: <{}>\r\n", envelope.rcpt_to).as_bytes());
        for part in message.parts() {
            data.extend_from_slice(part.bytes());
        }
        let fail =
            |e: std::io::Error| SendError::Local(format!("cannot write {}: {e}", path.display()));
        tokio::fs::write(&tmp, &data).await.map_err(fail)?;
        tokio::fs::rename(&tmp, &path).await.map_err(fail)?;
        Ok(Accepted {
            reply: format!("written to {}", path.display()),
        })
    }

    fn describe(&self) -> String {
        format!("the outbox folder {}", self.dir.display())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_message_becomes_one_eml_file_named_by_its_id() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = Outbox::new(&dir.path().join("outbox")).unwrap();
        let jo = crate::subscribers::SubscriberEmail::parse("jo@example.org").unwrap();
        let env = Envelope {
            id: "d42",
            mail_from: "bounce+x@nec.example",
            rcpt_to: &jo,
        };
        let accepted = outbox
            .send(&env, Outgoing::from(&b"Subject: hi\r\n\r\nbody\r\n"[..]))
            .await
            .unwrap();
        let written = std::fs::read_to_string(dir.path().join("outbox/d42.eml")).unwrap();
        assert_eq!(
            written,
            "Return-Path: <bounce+x@nec.example>\r\nX-Envelope-To: <jo@example.org>\r\nSubject: hi\r\n\r\nbody\r\n"
        );
        assert!(accepted.reply.contains("d42.eml"));
        let names: Vec<_> = std::fs::read_dir(dir.path().join("outbox"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(
            names.len(),
            1,
            "no temporary file is left behind: {names:?}"
        );
    }

    #[test]
    fn an_outbox_that_cannot_be_created_is_a_clear_local_error() {
        let err = Outbox::new(Path::new("/proc/necmail-outbox"))
            .err()
            .unwrap();
        assert!(
            matches!(err, SendError::Local(ref m) if m.contains("cannot create the outbox folder")),
            "{err}"
        );
    }
}
