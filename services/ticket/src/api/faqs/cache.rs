//! SearchFaqs' answers, kept per replica (docs/faq.md, "Search cache").
//!
//! Riders ask the same few questions over and over, and a FAQ changes a few
//! times a day, so most searches can skip ranking and highlighting (about
//! 1.5 ms of database CPU each, 40 ms for the similarity fallback). A page
//! of hits (ids, scores, snippets: nothing about the reader) is kept under
//! its parameters together with the FAQ's search generation, a number that
//! every change to what a search can return raises in its own transaction
//! (migration `20261217000001`). A kept page is served only if the
//! generation is still the one it was computed at, checked in the same
//! statement that reads the page's entries (`faqs::get_many`), so an edit
//! on any replica is seen by the next search on every replica. View counts
//! and the reader's vote are never kept: they are read for every answer.
//!
//! Bounded by `FAQ_SEARCH_CACHE` pages (0 turns it off), evicting roughly
//! least recently used: pages live in a young and an old map; a hit in the
//! old map moves the page to the young one, and when the young map is full
//! the old one is dropped and the young one becomes old.

use std::{collections::HashMap, sync::LazyLock, sync::Mutex};

use helpdesk_kit::metrics::register;
use prometheus_client::metrics::counter::Counter;

use crate::storage::faqs::{Hit, SearchQueryParams};

/// A page of hits and whether the similarity fallback found it.
#[derive(Clone, Debug, PartialEq)]
pub struct Page {
    pub hits: Vec<Hit>,
    pub fuzzy: bool,
}

impl Page {
    /// The ids of the hits served (a page holds one more, to know there is
    /// a next page).
    pub fn shown(&self, limit: i64) -> Vec<uuid::Uuid> {
        let n = usize::try_from(limit).unwrap_or(0);
        self.hits.iter().take(n).map(|h| h.id).collect()
    }
}

/// What a page is kept under: every parameter of the search.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Key {
    query: String,
    language: String,
    category: Option<String>,
    drafts: bool,
    fuzzy: bool,
    after: Option<(u32, uuid::Uuid)>,
    limit: i64,
}

impl Key {
    fn of(p: &SearchQueryParams) -> Self {
        // Taken apart whole, so a parameter added later cannot be left out
        // of the key (two searches would then share a page).
        let SearchQueryParams {
            query,
            language,
            category,
            drafts,
            fuzzy,
            after,
            limit,
        } = p;
        Self {
            query: query.as_str().to_owned(),
            language: language.as_str().to_owned(),
            category: category.as_ref().map(|c| c.as_str().to_owned()),
            drafts: *drafts,
            fuzzy: *fuzzy,
            after: after.map(|(score, id)| (score.to_bits(), id)),
            limit: *limit,
        }
    }
}

/// A page and the search generation it was computed at.
#[derive(Clone, Debug, PartialEq)]
pub struct Kept {
    pub generation: i64,
    pub page: Page,
}

type Entries = HashMap<Key, Kept>;

pub struct SearchCache {
    /// Pages per map; 0: nothing is kept.
    half: usize,
    maps: Mutex<(Entries, Entries)>,
}

struct Metrics {
    hits: Counter,
    misses: Counter,
}

static METRICS: LazyLock<Metrics> = LazyLock::new(|| {
    let m = Metrics {
        hits: Counter::default(),
        misses: Counter::default(),
    };
    register(|r| {
        r.register(
            "faq_search_cache_hits",
            "SearchFaqs answered from a kept page",
            m.hits.clone(),
        );
        r.register(
            "faq_search_cache_misses",
            "SearchFaqs that ranked and highlighted in the database",
            m.misses.clone(),
        );
    });
    m
});

impl SearchCache {
    /// A cache of about `pages` pages (0: off).
    pub fn new(pages: usize) -> Self {
        Self {
            half: pages.div_ceil(2),
            maps: Mutex::default(),
        }
    }

    pub fn enabled(&self) -> bool {
        self.half > 0
    }

    /// The page kept for `params`, whatever its generation: the caller
    /// serves it only if the generation is still current.
    pub fn get(&self, params: &SearchQueryParams) -> Option<Kept> {
        if !self.enabled() {
            return None;
        }
        let key = Key::of(params);
        let mut maps = self.maps.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(kept) = maps.0.get(&key) {
            return Some(kept.clone());
        }
        let kept = maps.1.remove(&key)?;
        Self::insert(&mut maps, self.half, key, kept.clone());
        Some(kept)
    }

    /// Keeps `page`, computed for `params` at `generation` (read before the
    /// search, so a change committed meanwhile only costs a miss later).
    pub fn put(&self, params: &SearchQueryParams, generation: i64, page: Page) {
        if !self.enabled() {
            return;
        }
        let mut maps = self.maps.lock().unwrap_or_else(|e| e.into_inner());
        Self::insert(
            &mut maps,
            self.half,
            Key::of(params),
            Kept { generation, page },
        );
    }

    /// Counts a search answered from a kept page (`hit`) or computed.
    pub fn count(&self, hit: bool) {
        if self.enabled() {
            match hit {
                true => METRICS.hits.inc(),
                false => METRICS.misses.inc(),
            };
        }
    }

    fn insert(maps: &mut (Entries, Entries), half: usize, key: Key, value: Kept) {
        if maps.0.len() >= half && !maps.0.contains_key(&key) {
            maps.1 = std::mem::take(&mut maps.0);
        }
        maps.0.insert(key, value);
    }
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::*;
    use crate::domain::faq::{Language, SearchQuery};

    fn params(query: &str) -> SearchQueryParams {
        SearchQueryParams::first_page(SearchQuery::parse(query).unwrap(), Language::english(), 11)
    }

    fn page(n: u128) -> Page {
        Page {
            hits: vec![Hit {
                id: Uuid::from_u128(n),
                score: 0.5,
                question_snippet: format!("q{n}"),
                answer_snippet: format!("a{n}"),
            }],
            fuzzy: false,
        }
    }

    #[test]
    fn a_page_is_kept_under_every_parameter_with_its_generation() {
        let cache = SearchCache::new(8);
        cache.put(&params("refund"), 3, page(1));
        let kept = cache.get(&params("refund")).unwrap();
        assert_eq!((kept.generation, kept.page), (3, page(1)));
        assert_eq!(cache.get(&params("refunds")), None, "another query");
        let mut drafts = params("refund");
        drafts.drafts = true;
        assert_eq!(cache.get(&drafts), None, "admins' pages are their own");
        let mut next = params("refund");
        next.after = Some((0.5, Uuid::nil()));
        assert_eq!(cache.get(&next), None, "another page");
    }

    #[test]
    fn the_least_recently_used_pages_go_first() {
        let cache = SearchCache::new(4);
        for n in 0..4 {
            cache.put(&params(&format!("q{n}")), 1, page(n));
        }
        // q0 and q1 went to the old map when q2 came; reading q0 keeps it.
        assert!(cache.get(&params("q0")).is_some());
        for n in 4..6 {
            cache.put(&params(&format!("q{n}")), 1, page(n));
        }
        assert!(cache.get(&params("q0")).is_some(), "recently used");
        assert!(cache.get(&params("q1")).is_none(), "least recently used");
        assert!(cache.get(&params("q5")).is_some());
    }

    #[test]
    fn off_keeps_nothing() {
        let cache = SearchCache::new(0);
        cache.put(&params("refund"), 1, page(1));
        assert_eq!(cache.get(&params("refund")), None);
    }
}
