//! FAQ entries: what admins write and everyone reads, searches and votes
//! on. Values parse here ("parse, don't validate"); counting views and votes
//! exactly is storage's job (storage/faqs.rs).

use std::fmt;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{CategoryId, Text};

const QUESTION_MAX: usize = 500;
const QUERY_MAX: usize = 200;

/// How a caller names an entry: its UUID or its number (`42`, the id of the
/// original REST API).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaqKey {
    Id(Uuid),
    Number(i64),
}

impl FaqKey {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let raw = raw.trim();
        if raw.is_empty() {
            return Err("is required".into());
        }
        if let Ok(id) = Uuid::parse_str(raw) {
            return Ok(Self::Id(id));
        }
        match raw.parse::<i64>() {
            Ok(n) if n > 0 => Ok(Self::Number(n)),
            _ => Err("must be a FAQ entry's UUID or its number (e.g. 42)".into()),
        }
    }
}

/// An entry's question: 1-500 characters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Question(String);

impl Question {
    pub fn parse(raw: &str) -> Result<Self, String> {
        Text::parse(raw).and_then(|t| {
            let n = t.as_str().chars().count();
            if n > QUESTION_MAX {
                Err(format!(
                    "must be at most {QUESTION_MAX} characters (got {n})"
                ))
            } else {
                Ok(Self(t.as_str().to_owned()))
            }
        })
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A language code reduced to its ISO 639 primary subtag, lowercase:
/// `pt-BR` and `PT` are `pt`. It picks the stemming of search.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Language(String);

impl Language {
    pub fn english() -> Self {
        Self("en".into())
    }

    /// Empty means English.
    pub fn parse_or_english(raw: &str) -> Result<Self, String> {
        Self::parse_optional(raw).map(|l| l.unwrap_or_else(Self::english))
    }

    /// Empty means none.
    pub fn parse_optional(raw: &str) -> Result<Option<Self>, String> {
        if raw.is_empty() {
            return Ok(None);
        }
        let primary = raw.split(['-', '_']).next().unwrap_or_default();
        let tag_ok = raw.len() <= 35
            && raw
                .split(['-', '_'])
                .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_alphanumeric()));
        if tag_ok
            && (2..=3).contains(&primary.len())
            && primary.bytes().all(|b| b.is_ascii_alphabetic())
        {
            Ok(Some(Self(primary.to_ascii_lowercase())))
        } else {
            Err("must be a language code such as en, pt or pt-BR".into())
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Language {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What SearchFaqs looks for: 1-200 characters, trimmed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SearchQuery(String);

impl SearchQuery {
    pub fn parse(raw: &str) -> Result<Self, String> {
        Text::parse(raw).and_then(|t| {
            let n = t.as_str().chars().count();
            if n > QUERY_MAX {
                Err(format!("must be at most {QUERY_MAX} characters (got {n})"))
            } else {
                Ok(Self(t.as_str().to_owned()))
            }
        })
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A vote on an entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Vote {
    Helpful,
    NotHelpful,
}

/// One FAQ entry as stored, with its counts.
#[derive(Clone, Debug, PartialEq)]
pub struct Faq {
    pub id: Uuid,
    pub number: i64,
    pub question: Question,
    pub answer: Text,
    pub category_id: CategoryId,
    pub language: Language,
    pub published: bool,
    pub sort_order: i32,
    pub view_count: i64,
    pub helpful_count: i64,
    pub not_helpful_count: i64,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The reader's own vote, where the read knew the reader.
    pub my_vote: Option<Vote>,
    /// The last analytics run's figures, where the read asked for them.
    pub analytics: Option<FaqAnalytics>,
}

/// The figures of one entry over the 7 and 30 whole days before `as_of`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FaqAnalytics {
    pub as_of: chrono::NaiveDate,
    pub views_7: i64,
    pub views_30: i64,
    pub helpful_7: i64,
    pub helpful_30: i64,
    pub not_helpful_7: i64,
    pub not_helpful_30: i64,
    pub computed_at: DateTime<Utc>,
}

/// CreateFaq.
#[derive(Clone, Debug, PartialEq)]
pub struct NewFaq {
    pub question: Question,
    pub answer: Text,
    pub category_id: CategoryId,
    pub language: Language,
    pub sort_order: i32,
}

/// UpdateFaq: each `Some` is to be set.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FaqEdit {
    pub question: Option<Question>,
    pub answer: Option<Text>,
    pub category_id: Option<CategoryId>,
    pub language: Option<Language>,
    pub sort_order: Option<i32>,
}

impl Faq {
    /// Applies an admin's edit; the names of the fields it really changed
    /// (none: nothing to write, no event).
    pub fn apply(&mut self, edit: FaqEdit, now: DateTime<Utc>) -> Vec<&'static str> {
        let mut changed = Vec::new();
        macro_rules! set {
            ($field:ident, $name:literal) => {
                if let Some(value) = edit.$field
                    && value != self.$field
                {
                    self.$field = value;
                    changed.push($name);
                }
            };
        }
        set!(question, "question");
        set!(answer, "answer");
        set!(category_id, "category_id");
        set!(language, "language_code");
        set!(sort_order, "sort_order");
        if !changed.is_empty() {
            self.version += 1;
            self.updated_at = now;
        }
        changed
    }

    /// Publishes or unpublishes; `false` when it already was.
    pub fn set_published(&mut self, published: bool, now: DateTime<Utc>) -> bool {
        if self.published == published {
            return false;
        }
        self.published = published;
        self.version += 1;
        self.updated_at = now;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_uuids_or_positive_numbers() {
        assert_eq!(FaqKey::parse("42"), Ok(FaqKey::Number(42)));
        assert!(matches!(
            FaqKey::parse("0f000000-0000-4000-8000-000000000001"),
            Ok(FaqKey::Id(_))
        ));
        for bad in ["", "0", "-3", "FAQ-1", "4.2", "99999999999999999999"] {
            assert!(FaqKey::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn languages_reduce_to_their_primary_subtag() {
        assert_eq!(Language::parse_or_english("").unwrap().as_str(), "en");
        assert_eq!(Language::parse_or_english("pt-BR").unwrap().as_str(), "pt");
        assert_eq!(Language::parse_or_english("DE").unwrap().as_str(), "de");
        assert_eq!(
            Language::parse_or_english("zh_Hant_TW").unwrap().as_str(),
            "zh"
        );
        for bad in ["e", "english", "en-", "1a", "en us", "ü"] {
            assert!(Language::parse_optional(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn questions_and_queries_have_limits() {
        assert!(Question::parse(&"é".repeat(500)).is_ok());
        assert!(Question::parse(&"é".repeat(501)).is_err());
        assert!(Question::parse(" ").is_err());
        assert!(SearchQuery::parse(&"a".repeat(201)).is_err());
        assert_eq!(SearchQuery::parse(" refund ").unwrap().as_str(), "refund");
    }
}
