//! FaqService requests parsed into domain values, every field violation at
//! once (as `api/requests.rs` does for tickets), and the keyset cursors of
//! its two lists.

use chrono::DateTime;
use helpdesk_kit::{
    auth::Caller,
    error::{ApiError, ApiResult, Violations},
    idempotency::{Key, parse_request_id},
    page_token::{self, Cursor, PageSize},
};
use helpdesk_proto::support::v1 as pb;
use prost::Message;
use uuid::Uuid;

use crate::{
    domain::{
        CategoryId, Text,
        faq::{FaqEdit, FaqKey, Language, NewFaq, Question, SearchQuery},
    },
    storage::faqs::{ListQuery, SearchQueryParams},
};

const LIST_PAGE: PageSize = PageSize {
    default: 20,
    max: 100,
};
const SEARCH_PAGE: PageSize = PageSize {
    default: 10,
    max: 50,
};

/// The fields UpdateFaq can change.
const EDITABLE: &str = "question, answer, category_id, language_code, sort_order";

fn finish<T>(v: Violations, command: Option<T>) -> ApiResult<T> {
    match command {
        Some(command) if v.is_empty() => Ok(command),
        _ => Err(ApiError::InvalidArgument(v)),
    }
}

/// An entry named in `field`.
pub fn faq_key(field: &str, raw: &str) -> ApiResult<FaqKey> {
    FaqKey::parse(raw).map_err(|why| ApiError::invalid(field, why))
}

/// The keyset cursor of ListFaqs: the kit's token holds a time and a UUID,
/// so the sort order rides in the time slot as microseconds since the epoch
/// (any `i32` is a valid time there).
pub fn list_cursor(sort_order: i32, id: Uuid) -> Cursor {
    Cursor {
        at: DateTime::from_timestamp_micros(i64::from(sort_order)).unwrap_or_default(),
        id,
    }
}

fn list_position(c: Cursor) -> Option<(i32, Uuid)> {
    i32::try_from(c.at.timestamp_micros())
        .ok()
        .map(|s| (s, c.id))
}

/// SearchFaqs' cursor: the score's bits in the time slot (exact, so the
/// next page starts precisely after the last row served).
pub fn search_cursor(score: f32, id: Uuid) -> Cursor {
    Cursor {
        at: DateTime::from_timestamp_micros(i64::from(score.to_bits())).unwrap_or_default(),
        id,
    }
}

fn search_position(c: Cursor) -> Option<(f32, Uuid)> {
    u32::try_from(c.at.timestamp_micros())
        .ok()
        .map(|bits| (f32::from_bits(bits), c.id))
}

/// A page: its size, where it starts, and the fingerprint binding the next
/// token to the caller and the filters.
fn page<P>(
    v: &mut Violations,
    caller: &Caller,
    policy: PageSize,
    size: i32,
    token: &str,
    filters: &impl Message,
    position: fn(Cursor) -> Option<P>,
) -> (Option<(i64, Option<P>)>, u64) {
    let fingerprint =
        page_token::fingerprint(&[caller.subject().as_bytes(), &filters.encode_to_vec()]);
    let limit = v.take("page_size", policy.resolve(size));
    let after = v
        .take("page_token", page_token::decode(token, fingerprint))
        .and_then(|c| match c.map(position) {
            None => Some(None),
            Some(Some(p)) => Some(Some(p)),
            Some(None) => {
                v.add("page_token", "is not a page token from this list");
                None
            }
        });
    let page = (|| Some((limit?, after?)))();
    (page, fingerprint)
}

pub fn list_faqs(caller: &Caller, req: &pb::ListFaqsRequest) -> ApiResult<(ListQuery, u64)> {
    if req.show_unpublished && !caller.is_admin() {
        return Err(ApiError::denied(
            "only admins may list unpublished FAQ entries",
        ));
    }
    let mut v = Violations::default();
    let category = v.take("category_id", CategoryId::parse_optional(&req.category_id));
    let language = v.take(
        "language_code",
        Language::parse_optional(&req.language_code),
    );
    let filters = pb::ListFaqsRequest {
        page_size: 0,
        page_token: String::new(),
        ..req.clone()
    };
    let (page, fingerprint) = page(
        &mut v,
        caller,
        LIST_PAGE,
        req.page_size,
        &req.page_token,
        &filters,
        list_position,
    );
    let query = (|| {
        let (limit, after) = page?;
        Some(ListQuery {
            category: category?,
            language: language?,
            drafts: req.show_unpublished,
            after,
            limit,
        })
    })();
    Ok((finish(v, query)?, fingerprint))
}

/// The fingerprints of a search's tokens: one per mode, so a later page
/// stays in the mode (full text or similarity) its first page was served in.
#[derive(Clone, Copy, Debug)]
pub struct SearchFingerprints(u64);

impl SearchFingerprints {
    pub fn of(self, fuzzy: bool) -> u64 {
        if fuzzy { self.0 ^ 1 } else { self.0 & !1 }
    }
}

pub fn search_faqs(
    caller: &Caller,
    req: &pb::SearchFaqsRequest,
) -> ApiResult<(SearchQueryParams, SearchFingerprints)> {
    let mut v = Violations::default();
    let query = v.take("query", SearchQuery::parse(&req.query));
    let language = v.take(
        "language_code",
        Language::parse_or_english(&req.language_code),
    );
    let category = v.take("category_id", CategoryId::parse_optional(&req.category_id));
    let filters = pb::SearchFaqsRequest {
        page_size: 0,
        page_token: String::new(),
        ..req.clone()
    };
    let fingerprints = SearchFingerprints(
        page_token::fingerprint(&[caller.subject().as_bytes(), &filters.encode_to_vec()]) & !1,
    );
    let limit = v.take("page_size", SEARCH_PAGE.resolve(req.page_size));
    // (fuzzy, position): the token decodes under one mode's fingerprint.
    let after = match page_token::decode(&req.page_token, fingerprints.of(false)) {
        Ok(c) => Some((false, c)),
        Err(text_error) => match page_token::decode(&req.page_token, fingerprints.of(true)) {
            Ok(c) => Some((true, c)),
            Err(_) => {
                v.add("page_token", text_error);
                None
            }
        },
    }
    .and_then(|(fuzzy, c)| match c.map(search_position) {
        None => Some((fuzzy, None)),
        Some(Some(p)) => Some((fuzzy, Some(p))),
        Some(None) => {
            v.add("page_token", "is not a page token from this list");
            None
        }
    });
    let params = (|| {
        let (fuzzy, after) = after?;
        Some(SearchQueryParams {
            query: query?,
            language: language?,
            category: category?,
            // Search is for readers: admins find drafts through ListFaqs.
            drafts: false,
            fuzzy,
            after,
            limit: limit?,
        })
    })();
    Ok((finish(v, params)?, fingerprints))
}

/// A create and its idempotency key.
pub fn create_faq(caller: &Caller, req: &pb::CreateFaqRequest) -> ApiResult<(NewFaq, Option<Key>)> {
    let mut v = Violations::default();
    let request_id = v
        .take("request_id", parse_request_id(&req.request_id))
        .flatten();
    let Some(f) = req.faq.as_ref() else {
        v.add("faq", "is required");
        return Err(ApiError::InvalidArgument(v));
    };
    let question = v.take("faq.question", Question::parse(&f.question));
    let answer = v.take("faq.answer", Text::parse(&f.answer));
    let category = v
        .take(
            "faq.category_id",
            CategoryId::parse_optional(&f.category_id),
        )
        .map(|c| c.unwrap_or_else(CategoryId::other));
    let language = v.take(
        "faq.language_code",
        Language::parse_or_english(&f.language_code),
    );
    if f.published {
        v.add(
            "faq.published",
            "is set by PublishFaq; create the entry, then publish it",
        );
    }
    let new = (|| {
        Some(NewFaq {
            question: question?,
            answer: answer?,
            category_id: category?,
            language: language?,
            sort_order: f.sort_order,
        })
    })();
    let new = finish(v, new)?;
    let key = request_id.map(|id| Key::new(&caller.subject(), "CreateFaq", id, req));
    Ok((new, key))
}

/// An update, its entry and its idempotency key.
pub fn update_faq(
    caller: &Caller,
    req: &pb::UpdateFaqRequest,
) -> ApiResult<(FaqKey, FaqEdit, Option<Key>)> {
    let mut v = Violations::default();
    let request_id = v
        .take("request_id", parse_request_id(&req.request_id))
        .flatten();
    let Some(f) = req.faq.as_ref() else {
        v.add("faq", "is required");
        return Err(ApiError::InvalidArgument(v));
    };
    let key = v.take("faq.id", FaqKey::parse(&f.id));
    let mut edit = FaqEdit::default();
    match req.update_mask.as_ref().map(|m| m.paths.as_slice()) {
        None | Some([]) => v.add("update_mask", "must name at least one field"),
        Some(paths) => {
            for path in paths {
                match path.as_str() {
                    "question" => {
                        edit.question = v.take("faq.question", Question::parse(&f.question))
                    }
                    "answer" => edit.answer = v.take("faq.answer", Text::parse(&f.answer)),
                    "category_id" => {
                        edit.category_id =
                            v.take("faq.category_id", CategoryId::parse(&f.category_id))
                    }
                    "language_code" => {
                        edit.language = v.take(
                            "faq.language_code",
                            Language::parse_optional(&f.language_code)
                                .and_then(|l| l.ok_or_else(|| "is required".to_owned())),
                        )
                    }
                    "sort_order" => edit.sort_order = Some(f.sort_order),
                    "published" => v.add(
                        "update_mask",
                        "\"published\" is changed by PublishFaq and UnpublishFaq",
                    ),
                    other => v.add(
                        "update_mask",
                        format!("{other:?} cannot be updated ({EDITABLE})"),
                    ),
                }
            }
        }
    }
    let key = finish(v, key)?;
    let idem = request_id.map(|id| Key::new(&caller.subject(), "UpdateFaq", id, req));
    Ok((key, edit, idem))
}
