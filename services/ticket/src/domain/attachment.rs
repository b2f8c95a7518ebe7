//! Files on tickets: their names, their limits and how they are recorded.
//! The bytes themselves are in object storage (`storage::objects`); their
//! kind is decided from the bytes (`sniff`).

use std::fmt;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{AccountId, TicketKey, sniff::Kind};

const FILE_NAME_MAX: usize = 200;

/// A file name as stored and shown: the last path component of what the
/// client sent, white space squeezed to one space and trimmed, other control
/// characters and the characters Windows forbids replaced by `_`; 1-200
/// characters, not `.` or `..`. Only a label: object keys never contain it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileName(String);

impl FileName {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let base = raw.rsplit(['/', '\\']).next().unwrap_or_default();
        let mut cleaned = String::with_capacity(base.len());
        for c in base.chars() {
            if c.is_whitespace() {
                if !cleaned.ends_with(' ') {
                    cleaned.push(' ');
                }
            } else if c.is_control() || matches!(c, '<' | '>' | ':' | '"' | '|' | '?' | '*') {
                cleaned.push('_');
            } else {
                cleaned.push(c);
            }
        }
        let cleaned = cleaned.trim();
        if cleaned.is_empty() || cleaned == "." || cleaned == ".." {
            return Err("must name a file".into());
        }
        let chars = cleaned.chars().count();
        if chars > FILE_NAME_MAX {
            return Err(format!(
                "must be at most {FILE_NAME_MAX} characters (got {chars})"
            ));
        }
        Ok(Self(cleaned.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The extension in lower case; `""` when there is none (a leading dot,
    /// as in `.profile`, does not start one).
    pub fn extension(&self) -> String {
        match self.0.rsplit_once('.') {
            Some((stem, ext)) if !stem.is_empty() => ext.to_ascii_lowercase(),
            _ => String::new(),
        }
    }

    /// Whether the name may carry bytes of `kind`: a PNG must be `.png`, and
    /// a text file named `.png` is refused (someone is disguising it).
    pub fn fits(&self, kind: Kind) -> bool {
        kind.extensions().contains(&self.extension().as_str())
    }
}

impl fmt::Display for FileName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What the service accepts (`ATTACHMENT_MAX_BYTES`, `ATTACHMENTS_PER_TICKET`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    pub max_bytes: u64,
    pub per_ticket: i64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_bytes: 10 * 1024 * 1024,
            per_ticket: 20,
        }
    }
}

/// UploadAttachment's first message, parsed.
#[derive(Clone, Debug, PartialEq)]
pub struct NewUpload {
    pub key: TicketKey,
    pub file_name: FileName,
    pub internal: bool,
}

/// One stored attachment.
#[derive(Clone, Debug, PartialEq)]
pub struct Attachment {
    pub id: Uuid,
    pub ticket_id: Uuid,
    pub message_id: Option<Uuid>,
    pub uploader_id: AccountId,
    pub file_name: FileName,
    pub content_type: String,
    pub size_bytes: i64,
    pub sha256: [u8; 32],
    pub object_key: String,
    pub internal: bool,
    pub created_at: DateTime<Utc>,
}

impl Attachment {
    /// Where its bytes live: by ticket, then by attachment id; no part of
    /// the key comes from the client.
    pub fn object_key(ticket_id: Uuid, id: Uuid) -> String {
        format!("attachments/{ticket_id}/{id}")
    }

    /// The attachment id at the end of an object key (the sweeper's way
    /// back from an object to its row).
    pub fn id_of_key(key: &str) -> Option<Uuid> {
        key.strip_prefix("attachments/")?
            .rsplit('/')
            .next()
            .and_then(|id| Uuid::parse_str(id).ok())
    }

    pub fn sha256_hex(&self) -> String {
        self.sha256.iter().map(|b| format!("{b:02x}")).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_are_cleaned() {
        let name = |raw| FileName::parse(raw).map(|n| n.0);
        assert_eq!(name("../../etc/passwd"), Ok("passwd".into()));
        assert_eq!(name(r"C:\Users\me\shot 1.png"), Ok("shot 1.png".into()));
        assert_eq!(name("  a\t\tb\n.txt "), Ok("a b .txt".into()));
        assert_eq!(name("x<y>:z?.pdf"), Ok("x_y__z_.pdf".into()));
        assert_eq!(name("nul\0byte.txt"), Ok("nul_byte.txt".into()));
        for bad in ["", "   ", "dir/", "..", "."] {
            assert!(FileName::parse(bad).is_err(), "{bad:?}");
        }
        assert!(FileName::parse(&"é".repeat(200)).is_ok());
        assert!(FileName::parse(&"é".repeat(201)).is_err());
    }

    #[test]
    fn extensions_must_fit_the_bytes() {
        let name = |raw| FileName::parse(raw).unwrap();
        assert!(name("shot.PNG").fits(Kind::Png));
        assert!(name("photo.jpeg").fits(Kind::Jpeg));
        assert!(name("notes").fits(Kind::Text));
        assert!(name(".notes").fits(Kind::Text));
        assert!(!name("evil.png").fits(Kind::Text));
        assert!(!name("run.sh").fits(Kind::Text));
        assert!(!name("image.gif").fits(Kind::Png));
    }

    #[test]
    fn object_keys_lead_back_to_their_id() {
        let (t, a) = (Uuid::now_v7(), Uuid::now_v7());
        assert_eq!(
            Attachment::id_of_key(&Attachment::object_key(t, a)),
            Some(a)
        );
        assert_eq!(Attachment::id_of_key("other/thing"), None);
    }
}
