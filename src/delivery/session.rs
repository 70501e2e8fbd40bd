//! One SMTP client connection, spoken by necmail itself: replies read into
//! a buffer the connection keeps, commands written from another, and the
//! message data written dot-stuffed with one vectored write, without a copy.
//!
//! A message built by [`crate::render`] never needs stuffing: its header
//! lines start with a field name or a space, and its quoted-printable body
//! encodes a `.` that starts a line. So the scan for lines that start with
//! a dot (`memchr`'s search for `\n.`) finds nothing, and the data goes out
//! as its parts and the final `.` in one `writev`. Any other message is
//! stuffed just as correctly, by writing a `.` in front of each such line.

use std::io::{self, IoSlice};
use std::ops::Range;
use std::pin::Pin;
use std::task::{Context, Poll};

use memchr::memmem;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use super::Outgoing;

/// The longest reply read, all its lines together.
const MAX_REPLY: usize = 64 * 1024;
/// Slices written per `writev` at most; more are written in turns.
const SLICES: usize = 16;

/// The socket: TCP, or TLS over TCP.
#[derive(Debug)]
pub(super) enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Stream::Tls(s) => Pin::new(s).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Stream::Plain(s) => s.is_write_vectored(),
            Stream::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}

/// What the server offers in its EHLO reply, of what necmail uses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Extensions {
    pub pipelining: bool,
    pub eight_bit_mime: bool,
    pub smtp_utf8: bool,
    pub starttls: bool,
    pub auth_plain: bool,
    pub auth_login: bool,
}

impl Extensions {
    /// The extensions named in an EHLO reply's lines after the first.
    fn parse(reply: &[u8]) -> Extensions {
        let mut found = Extensions::default();
        for line in reply_lines(reply).skip(1) {
            let text = String::from_utf8_lossy(line.get(4..).unwrap_or_default());
            let mut words = text.split([' ', '=']);
            let keyword = words.next().unwrap_or_default().to_ascii_uppercase();
            match keyword.as_str() {
                "PIPELINING" => found.pipelining = true,
                "8BITMIME" => found.eight_bit_mime = true,
                "SMTPUTF8" => found.smtp_utf8 = true,
                "STARTTLS" => found.starttls = true,
                "AUTH" => {
                    for mechanism in words {
                        match mechanism.to_ascii_uppercase().as_str() {
                            "PLAIN" => found.auth_plain = true,
                            "LOGIN" => found.auth_login = true,
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
        found
    }
}

/// The lines of a reply, each without its line end.
fn reply_lines(reply: &[u8]) -> impl Iterator<Item = &[u8]> {
    reply
        .split(|b| *b == b'\n')
        .map(|line| line.strip_suffix(b"\r").unwrap_or(line))
        .filter(|line| !line.is_empty())
}

/// One SMTP conversation: the socket and the buffers it reuses.
#[derive(Debug)]
pub(super) struct Session {
    stream: Stream,
    /// Bytes read: the replies parsed (up to `parsed`), then those not yet.
    input: Vec<u8>,
    parsed: usize,
    /// Where the last reply is in `input`.
    last: Range<usize>,
    /// The commands being written.
    commands: Vec<u8>,
    pub extensions: Extensions,
}

impl Session {
    pub fn new(stream: Stream) -> Session {
        Session {
            stream,
            input: Vec::with_capacity(1024),
            parsed: 0,
            last: 0..0,
            commands: Vec::with_capacity(256),
            extensions: Extensions::default(),
        }
    }

    pub fn is_encrypted(&self) -> bool {
        matches!(self.stream, Stream::Tls(_))
    }

    /// The TCP socket, to encrypt it: only before anything is buffered.
    pub fn into_plain(self) -> Option<TcpStream> {
        match self.stream {
            Stream::Plain(tcp) if self.parsed == self.input.len() => Some(tcp),
            _ => None,
        }
    }

    /// Notes the extensions of the last reply, an EHLO's.
    pub fn note_extensions(&mut self) {
        self.extensions = Extensions::parse(&self.input[self.last.clone()]);
    }

    /// Adds the command made of `parts` to those [`Session::send_commands`] writes.
    pub fn queue(&mut self, parts: &[&str]) {
        for part in parts {
            self.commands.extend_from_slice(part.as_bytes());
        }
        self.commands.extend_from_slice(b"\r\n");
    }

    /// Writes the commands buffered so far, in one write.
    pub async fn send_commands(&mut self) -> io::Result<()> {
        let written = self.stream.write_all(&self.commands).await;
        self.commands.clear();
        written?;
        self.stream.flush().await
    }

    /// Writes `message` as the content of DATA: dot-stuffed (but for the
    /// pieces checked to need none), then CRLF.CRLF (the message's own
    /// final CRLF being the first of them).
    pub async fn send_data(&mut self, message: Outgoing<'_>) -> io::Result<()> {
        let mut slices: [IoSlice<'_>; SLICES] = [IoSlice::new(&[]); SLICES];
        let mut used = 0;
        let mut at_line_start = true;
        let mut ends_with_crlf = true;
        for part in message.parts() {
            let (safe, part) = (part.is_safe(), part.bytes());
            let mut from = 0;
            let dots = (!safe).then(|| line_start_dots(part, at_line_start));
            for dot in dots.into_iter().flatten() {
                if used + 2 > SLICES {
                    write_all_vectored(&mut self.stream, &mut slices[..used]).await?;
                    used = 0;
                }
                slices[used] = IoSlice::new(&part[from..dot]);
                slices[used + 1] = IoSlice::new(b".");
                used += 2;
                from = dot;
            }
            if used + 1 > SLICES {
                write_all_vectored(&mut self.stream, &mut slices[..used]).await?;
                used = 0;
            }
            slices[used] = IoSlice::new(&part[from..]);
            used += 1;
            at_line_start = part.ends_with(b"\n");
            ends_with_crlf = part.ends_with(b"\r\n");
        }
        let end: &[u8] = if ends_with_crlf {
            b".\r\n"
        } else {
            b"\r\n.\r\n"
        };
        if used == SLICES {
            write_all_vectored(&mut self.stream, &mut slices[..used]).await?;
            used = 0;
        }
        slices[used] = IoSlice::new(end);
        write_all_vectored(&mut self.stream, &mut slices[..=used]).await?;
        self.stream.flush().await
    }

    /// Reads the next reply and returns its code; [`Session::reply_text`]
    /// then has its text.
    pub async fn read_reply(&mut self) -> io::Result<u16> {
        self.input.drain(..self.parsed);
        self.parsed = 0;
        loop {
            if let Some((code, length)) = complete_reply(&self.input[self.parsed..])? {
                self.last = self.parsed..self.parsed + length;
                self.parsed += length;
                return Ok(code);
            }
            if self.input.len() - self.parsed > MAX_REPLY {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "the reply is too long",
                ));
            }
            self.input.reserve(1024);
            if self.stream.read_buf(&mut self.input).await? == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
        }
    }

    /// The last reply as the server sent it, its lines joined by spaces:
    /// `550 5.1.1 <jo@example.org>: no such user`.
    pub fn reply_text(&self) -> String {
        let reply = &self.input[self.last.clone()];
        let mut text = String::with_capacity(reply.len());
        for (i, line) in reply_lines(reply).enumerate() {
            let line = String::from_utf8_lossy(line);
            if i == 0 {
                text.push_str(&line);
            } else if let Some(rest) = line.get(4..).filter(|r| !r.is_empty()) {
                text.push(' ');
                text.push_str(rest);
            }
        }
        if text.as_bytes().get(3) == Some(&b'-') {
            text.replace_range(3..4, " ");
        }
        text.truncate(text.trim_end().len());
        text
    }

    /// Shuts the socket down, for a connection that is done with.
    pub async fn shutdown(&mut self) {
        let _ = self.stream.shutdown().await;
    }
}

/// The positions of the dots in `part` that start a line, and so need
/// another dot in front; `at_line_start` says whether `part` starts one.
fn line_start_dots(part: &[u8], at_line_start: bool) -> impl Iterator<Item = usize> + '_ {
    let first = (at_line_start && part.first() == Some(&b'.')).then_some(0);
    first
        .into_iter()
        .chain(memmem::find_iter(part, b"\n.").map(|at| at + 1))
}

/// Writes all of `slices`, in as few writes as the socket allows.
async fn write_all_vectored(stream: &mut Stream, mut slices: &mut [IoSlice<'_>]) -> io::Result<()> {
    while !slices.is_empty() {
        let n = stream.write_vectored(slices).await?;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        IoSlice::advance_slices(&mut slices, n);
    }
    Ok(())
}

/// The code and length of the complete reply at the start of `input`, if
/// it has arrived: lines `NNN-text` up to one `NNN text` (or `NNN`).
fn complete_reply(input: &[u8]) -> io::Result<Option<(u16, usize)>> {
    let mut at = 0;
    while let Some(end) = memchr::memchr(b'\n', &input[at..]) {
        let line = &input[at..at + end];
        at += end + 1;
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let code = match line.get(..3) {
            Some(&[a, b, c]) if [a, b, c].iter().all(u8::is_ascii_digit) => {
                u16::from(a - b'0') * 100 + u16::from(b - b'0') * 10 + u16::from(c - b'0')
            }
            _ => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "the server's reply is not SMTP",
                ));
            }
        };
        if line.get(3) != Some(&b'-') {
            return Ok(Some((code, at)));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reply_is_complete_at_its_line_without_a_hyphen() {
        assert_eq!(complete_reply(b"250-a\r\n250-b\r\n").unwrap(), None);
        assert_eq!(
            complete_reply(b"250-a\r\n250 b\r\n354 go").unwrap(),
            Some((250, 14))
        );
        assert_eq!(complete_reply(b"221\r\n").unwrap(), Some((221, 5)));
        assert!(complete_reply(b"hello\r\n").is_err());
    }

    #[test]
    fn extensions_are_read_from_the_ehlo_reply() {
        let reply = b"250-mx.example\r\n250-PIPELINING\r\n250-8BITMIME\r\n\
                      250-AUTH=LOGIN\r\n250-auth PLAIN LOGIN\r\n250 STARTTLS\r\n";
        let found = Extensions::parse(reply);
        assert_eq!(
            found,
            Extensions {
                pipelining: true,
                eight_bit_mime: true,
                smtp_utf8: false,
                starttls: true,
                auth_plain: true,
                auth_login: true,
            }
        );
        assert_eq!(
            Extensions::parse(b"250 PIPELINING\r\n"),
            Extensions::default()
        );
    }

    #[test]
    fn dots_that_start_a_line_are_found_and_no_others() {
        let dots = |part: &[u8], start| line_start_dots(part, start).collect::<Vec<_>>();
        assert_eq!(dots(b".a\r\nb.c\r\n..d\r\n.", true), [0, 9, 14]);
        assert_eq!(dots(b".a\r\n", false), Vec::<usize>::new());
        assert_eq!(dots(b"no dots\r\n", true), Vec::<usize>::new());
    }
}
