//! What a file is, decided from its bytes, never from what the client says:
//! a few magic numbers for the binary types we accept, and for anything else
//! a check that the whole file is plain UTF-8 text. Our own few lines rather
//! than a crate: the accepted set is small, and every rule is visible here.
//!
//! The [`Sniffer`] is fed the upload chunk by chunk: it decides the kind once
//! it has [`PREFIX`] bytes (or the end), and for text keeps checking every
//! later byte, so a text file with a NUL in its tenth megabyte is refused
//! there, while it streams.

use std::fmt;

/// Bytes needed to tell every accepted binary type apart.
pub const PREFIX: usize = 16;

/// The file types an attachment may have.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Png,
    Jpeg,
    Gif,
    Webp,
    Pdf,
    Text,
}

impl Kind {
    /// The content type served back.
    pub fn mime(self) -> &'static str {
        match self {
            Kind::Png => "image/png",
            Kind::Jpeg => "image/jpeg",
            Kind::Gif => "image/gif",
            Kind::Webp => "image/webp",
            Kind::Pdf => "application/pdf",
            Kind::Text => "text/plain; charset=utf-8",
        }
    }

    /// File name extensions (lower case) that may carry this kind; `""` is
    /// a name without one.
    pub fn extensions(self) -> &'static [&'static str] {
        match self {
            Kind::Png => &["png"],
            Kind::Jpeg => &["jpg", "jpeg"],
            Kind::Gif => &["gif"],
            Kind::Webp => &["webp"],
            Kind::Pdf => &["pdf"],
            Kind::Text => &["txt", "text", "log", "csv", "md", ""],
        }
    }

    /// The binary kind whose magic number `prefix` starts with.
    fn from_magic(prefix: &[u8]) -> Option<Kind> {
        let starts = |magic: &[u8]| prefix.starts_with(magic);
        if starts(b"\x89PNG\r\n\x1a\n") {
            Some(Kind::Png)
        } else if starts(b"\xff\xd8\xff") {
            Some(Kind::Jpeg)
        } else if starts(b"GIF87a") || starts(b"GIF89a") {
            Some(Kind::Gif)
        } else if prefix.len() >= 12 && starts(b"RIFF") && &prefix[8..12] == b"WEBP" {
            Some(Kind::Webp)
        } else if starts(b"%PDF-") {
            Some(Kind::Pdf)
        } else {
            None
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::Png => "a PNG image",
            Kind::Jpeg => "a JPEG image",
            Kind::Gif => "a GIF image",
            Kind::Webp => "a WebP image",
            Kind::Pdf => "a PDF document",
            Kind::Text => "plain text",
        })
    }
}

/// Why bytes were refused (phrased for a field violation).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refused(pub String);

/// Decides the kind of a stream of bytes as they arrive.
#[derive(Debug, Default)]
pub struct Sniffer {
    /// The first bytes, until the kind is decided.
    prefix: Vec<u8>,
    kind: Option<Kind>,
    text: TextCheck,
}

impl Sniffer {
    /// Takes the next chunk. Returns the kind the moment it is decided
    /// (once), or why the bytes are refused.
    pub fn feed(&mut self, chunk: &[u8]) -> Result<Option<Kind>, Refused> {
        match self.kind {
            Some(Kind::Text) => self.text.feed(chunk).map(|()| None),
            Some(_) => Ok(None),
            None => {
                self.prefix.extend_from_slice(chunk);
                if self.prefix.len() >= PREFIX {
                    self.decide().map(Some)
                } else {
                    Ok(None)
                }
            }
        }
    }

    /// The end of the stream: the kind, if it was not decided yet.
    pub fn finish(&mut self) -> Result<Kind, Refused> {
        let kind = match self.kind {
            Some(kind) => kind,
            None => self.decide()?,
        };
        if kind == Kind::Text {
            self.text.finish()?;
        }
        Ok(kind)
    }

    fn decide(&mut self) -> Result<Kind, Refused> {
        let prefix = std::mem::take(&mut self.prefix);
        if prefix.is_empty() {
            return Err(Refused("the file is empty".into()));
        }
        let kind = match Kind::from_magic(&prefix) {
            Some(kind) => kind,
            None if prefix.starts_with(b"#!") => {
                return Err(Refused("scripts are not accepted".into()));
            }
            None => {
                self.text.feed(&prefix)?;
                Kind::Text
            }
        };
        self.kind = Some(kind);
        Ok(kind)
    }
}

/// Plain text: valid UTF-8 with no control characters but tab, line feed,
/// form feed and carriage return. A UTF-8 sequence split across two chunks
/// is carried over (at most 3 bytes).
#[derive(Debug, Default)]
struct TextCheck {
    carry: Vec<u8>,
}

fn not_text() -> Refused {
    Refused(
        "is not an accepted type (PNG, JPEG, GIF, WebP, PDF, or UTF-8 plain text without control characters)"
            .into(),
    )
}

impl TextCheck {
    fn feed(&mut self, chunk: &[u8]) -> Result<(), Refused> {
        // Control bytes never occur inside a multi-byte UTF-8 sequence, so
        // they can be checked byte by byte.
        if chunk
            .iter()
            .any(|&b| (b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\x0c' | b'\r')) || b == 0x7f)
        {
            return Err(not_text());
        }
        let joined;
        let bytes = if self.carry.is_empty() {
            chunk
        } else {
            joined = [self.carry.as_slice(), chunk].concat();
            &joined
        };
        match std::str::from_utf8(bytes) {
            Ok(_) => self.carry.clear(),
            // Cut off mid-sequence at the end: wait for the next chunk.
            Err(e) if e.error_len().is_none() => {
                self.carry = bytes[e.valid_up_to()..].to_vec();
            }
            Err(_) => return Err(not_text()),
        }
        Ok(())
    }

    fn finish(&self) -> Result<(), Refused> {
        if self.carry.is_empty() {
            Ok(())
        } else {
            Err(not_text())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sniff_in(chunks: &[&[u8]]) -> Result<Kind, Refused> {
        let mut s = Sniffer::default();
        for c in chunks {
            s.feed(c)?;
        }
        s.finish()
    }

    fn sniff(bytes: &[u8]) -> Result<Kind, Refused> {
        sniff_in(&[bytes])
    }

    #[test]
    fn magic_numbers() {
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"), Ok(Kind::Png));
        assert_eq!(sniff(b"\xff\xd8\xff\xe0\0\x10JFIF\0"), Ok(Kind::Jpeg));
        assert_eq!(sniff(b"GIF89a\x01\0\x01\0"), Ok(Kind::Gif));
        assert_eq!(sniff(b"RIFF\x24\0\0\0WEBPVP8 "), Ok(Kind::Webp));
        assert_eq!(sniff(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n"), Ok(Kind::Pdf));
    }

    #[test]
    fn text_is_utf8_without_controls() {
        assert_eq!(sniff("Grüße\r\n\tcol1,col2\n".as_bytes()), Ok(Kind::Text));
        assert!(sniff(b"hello\0world").is_err());
        assert!(sniff(b"bell\x07").is_err());
        assert!(sniff(b"latin-1 \xe9t\xe9").is_err());
        assert!(
            sniff(b"RIFF\x24\0\0\0AVI LIST").is_err(),
            "RIFF but not WebP"
        );
    }

    #[test]
    fn a_script_is_refused_whatever_its_name() {
        assert!(sniff(b"#!/bin/sh\nrm -rf /\n").is_err());
    }

    #[test]
    fn empty_is_refused() {
        assert!(sniff(b"").is_err());
    }

    #[test]
    fn split_utf8_sequences_and_tiny_chunks() {
        let text = "ünïcödé ✓ text that is long enough".as_bytes();
        let chunks: Vec<&[u8]> = text.chunks(1).collect();
        assert_eq!(sniff_in(&chunks), Ok(Kind::Text));
        // A file cut inside a sequence is not text.
        assert!(sniff_in(&[b"0123456789abcdef", b"\xe2\x9c"]).is_err());
    }

    #[test]
    fn a_control_byte_late_in_the_file_is_caught_when_it_arrives() {
        let mut s = Sniffer::default();
        assert_eq!(s.feed(&[b'a'; 64]), Ok(Some(Kind::Text)));
        assert_eq!(s.feed(&[b'b'; 64]), Ok(None));
        assert!(s.feed(b"c\0").is_err());
    }
}
