//! Ticket search (SearchTickets): the query text, the order of results and
//! where a page starts. How the order is chosen is in docs/search.md: by
//! relevance when the query matches few enough texts to rank every match
//! within the latency budget, newest first otherwise.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::ListFilter;

const QUERY_MAX: usize = 200;

/// What to find, in web-search syntax: trimmed, 1-200 characters, no NUL.
/// Whether it holds a word to find is for the text-search parser to say.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SearchText(String);

impl SearchText {
    pub fn parse(raw: &str) -> Result<Self, String> {
        if raw.contains('\0') {
            return Err("must not contain NUL characters".into());
        }
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err("is required".into());
        }
        let chars = trimmed.chars().count();
        if chars > QUERY_MAX {
            return Err(format!(
                "must be at most {QUERY_MAX} characters (got {chars})"
            ));
        }
        Ok(Self(trimmed.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The order of one search's results, fixed for all its pages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SearchOrder {
    /// Best match first; ties broken by ticket id, newest first.
    Relevance,
    /// Newest ticket first, as ListTickets.
    Newest,
}

/// Where the next page starts: after the last row served, in its order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SearchCursor {
    /// After (`rank`, `id`), descending.
    Relevance { rank: i64, id: Uuid },
    /// After (`at`, `id`), descending.
    Newest { at: DateTime<Utc>, id: Uuid },
}

impl SearchCursor {
    pub fn order(self) -> SearchOrder {
        match self {
            SearchCursor::Relevance { .. } => SearchOrder::Relevance,
            SearchCursor::Newest { .. } => SearchOrder::Newest,
        }
    }
}

/// A search, parsed and scoped to what the caller may see.
#[derive(Clone, Debug)]
pub struct Search {
    pub text: SearchText,
    pub filter: ListFilter,
    /// Whether internal notes are searched (and may be quoted).
    pub notes: bool,
}

/// The most common lexemes of one table's `search` column, as ANALYZE last
/// saw them (statistics target 1,000: the 10,000 most common), and the
/// table's row count.
#[derive(Clone, Debug, Default)]
pub struct LexemeStats {
    pub rows: f64,
    pub freqs: std::collections::HashMap<String, f64>,
}

impl LexemeStats {
    /// About how many rows match a query of `words` (its lexemes, excluded
    /// ones left out): a word among the most common counts with its
    /// frequency, any other as rare (0). Words that must all match
    /// multiply, as if independent (the planner assumes the same); with an
    /// OR (`any_of`) their counts add up. The planner's own estimate is not
    /// used: it guesses up to 0.5% of the table for a word outside its
    /// statistics, which makes a receipt number look like a common word.
    pub fn estimate(&self, words: &[String], any_of: bool) -> i64 {
        if words.is_empty() {
            return 0;
        }
        let freq = |w: &String| self.freqs.get(w).copied().unwrap_or(0.0);
        let share = if any_of {
            words.iter().map(freq).sum::<f64>()
        } else {
            words.iter().map(freq).product::<f64>()
        };
        (self.rows * share.min(1.0)).round() as i64
    }
}

/// The lexemes named in a query tree as PostgreSQL prints it
/// (`querytree`: `'umbrella' & 'airport'`), and whether it holds an OR.
pub fn tree_words(tree: &str) -> (Vec<String>, bool) {
    let mut words = Vec::new();
    let mut chars = tree.chars().peekable();
    let mut any_of = false;
    while let Some(c) = chars.next() {
        match c {
            '|' => any_of = true,
            '\'' => {
                let mut word = String::new();
                while let Some(c) = chars.next() {
                    if c == '\'' {
                        // '' is a quote inside the lexeme.
                        if chars.peek() == Some(&'\'') {
                            chars.next();
                            word.push('\'');
                            continue;
                        }
                        break;
                    }
                    word.push(c);
                }
                if !words.contains(&word) {
                    words.push(word);
                }
            }
            _ => {}
        }
    }
    (words, any_of)
}

/// Whether to walk a table's matches in list order rather than read them
/// all from the GIN index: when they are many (about `estimate`).
pub fn walk(estimate: i64) -> bool {
    estimate > RANK_AT_MOST
}

/// The most matching texts (ticket texts plus messages) a query may have
/// for its results to be ranked by relevance when the caller did not choose
/// an order: ranking reads every match, and this many fit the latency
/// budget (docs/search.md, measured in docs/performance.md).
pub const RANK_AT_MOST: i64 = 2_000;

/// The order a first page uses: the caller's, else relevance when the
/// query matches about [`RANK_AT_MOST`] texts at most (`matched`, an
/// estimate; `None` when not estimated because the filter already confines
/// the search to one user's few tickets).
pub fn choose_order(requested: Option<SearchOrder>, matched: Option<i64>) -> SearchOrder {
    match (requested, matched) {
        (Some(order), _) => order,
        (None, Some(n)) if n > RANK_AT_MOST => SearchOrder::Newest,
        (None, _) => SearchOrder::Relevance,
    }
}

/// A passage of text split where it matched: (text, highlighted).
pub type Fragments = Vec<(String, bool)>;

/// Splits text marked with `start` and `stop` (what the database's
/// headline function wraps matches in) into fragments; the marks go.
pub fn fragments(marked: &str, start: char, stop: char) -> Fragments {
    let mut out: Fragments = Vec::new();
    let mut current = String::new();
    let mut highlighted = false;
    for c in marked.chars() {
        let switch = match c {
            c if c == start => Some(true),
            c if c == stop => Some(false),
            _ => None,
        };
        match switch {
            Some(on) => {
                if !current.is_empty() {
                    out.push((std::mem::take(&mut current), highlighted));
                }
                highlighted = on;
            }
            None => current.push(c),
        }
    }
    if !current.is_empty() {
        out.push((current, highlighted));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_are_bounded() {
        assert!(SearchText::parse("  ").is_err());
        assert!(SearchText::parse("a\0").is_err());
        assert!(SearchText::parse(&"x".repeat(201)).is_err());
        assert_eq!(SearchText::parse(" refund ").unwrap().as_str(), "refund");
    }

    #[test]
    fn broad_queries_fall_back_to_newest_unless_an_order_was_asked() {
        assert_eq!(choose_order(None, Some(10)), SearchOrder::Relevance);
        assert_eq!(choose_order(None, None), SearchOrder::Relevance);
        assert_eq!(
            choose_order(None, Some(RANK_AT_MOST + 1)),
            SearchOrder::Newest
        );
        assert_eq!(
            choose_order(Some(SearchOrder::Relevance), Some(RANK_AT_MOST + 1)),
            SearchOrder::Relevance
        );
    }

    #[test]
    fn estimates_multiply_common_words_and_take_others_as_rare() {
        let stats = LexemeStats {
            rows: 1_000_000.0,
            freqs: [("refund".to_owned(), 0.1), ("airport".to_owned(), 0.05)]
                .into_iter()
                .collect(),
        };
        let (words, any_of) = tree_words("'refund' & 'airport'");
        assert_eq!(stats.estimate(&words, any_of), 5_000);
        let (words, any_of) = tree_words("'refund' | 'airport'");
        assert_eq!(stats.estimate(&words, any_of), 150_000);
        let (words, any_of) = tree_words("'refund' & 'r00007919'");
        assert_eq!(stats.estimate(&words, any_of), 0);
        assert_eq!(tree_words("'it''s' <-> 'x'").0, ["it's", "x"]);
        assert_eq!(tree_words("T"), (Vec::new(), false));
    }

    #[test]
    fn marks_split_text_into_fragments() {
        assert_eq!(
            fragments("a [refund] was [issued]", '[', ']'),
            vec![
                ("a ".to_owned(), false),
                ("refund".to_owned(), true),
                (" was ".to_owned(), false),
                ("issued".to_owned(), true),
            ]
        );
        assert_eq!(fragments("", '[', ']'), Vec::new());
    }
}
