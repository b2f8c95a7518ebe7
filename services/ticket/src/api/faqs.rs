//! `support.v1.FaqService`: everyone signed in reads, searches and votes on
//! published entries; admins write, publish and unpublish them (each change
//! with its event, in its transaction) and see drafts and analytics. An
//! entry a caller may not see is NOT_FOUND, never PERMISSION_DENIED.

mod cache;
mod convert;
mod requests;

use helpdesk_events::outbox::Waker;
use helpdesk_kit::{
    auth::Caller,
    clock::SharedClock,
    error::{ApiError, ApiResult},
    idempotency,
    page_token::{self, Cursor},
};
use helpdesk_proto::support::v1::{self as pb, faq_service_server::FaqService};
use sqlx::PgPool;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use self::{
    cache::{Kept, Page, SearchCache},
    convert::Change,
};
use crate::{
    domain::faq::{Faq, FaqKey, Vote},
    storage::faqs::{self, Hit, Reader},
};

pub struct FaqApi {
    pool: PgPool,
    /// Generic plans (`db::connect_lazy_generic`): a kept search page's
    /// entries, read on every hit, plan in more time than they take to read.
    lookups: PgPool,
    clock: SharedClock,
    outbox: Waker,
    search_cache: SearchCache,
}

impl FaqApi {
    /// `lookups`: a pool with generic plans on the same database;
    /// `search_cache`: SearchFaqs pages kept (`FAQ_SEARCH_CACHE`; 0: none).
    pub fn new(
        pool: PgPool,
        lookups: PgPool,
        clock: SharedClock,
        outbox: Waker,
        search_cache: usize,
    ) -> Self {
        Self {
            pool,
            lookups,
            clock,
            outbox,
            search_cache: SearchCache::new(search_cache),
        }
    }
}

fn reader(caller: &Caller) -> Reader {
    Reader {
        account: caller.account_id(),
        admin: caller.is_admin(),
    }
}

fn admin_only(caller: &Caller) -> ApiResult<()> {
    if caller.is_admin() {
        Ok(())
    } else {
        Err(ApiError::denied("only admins may write FAQ entries"))
    }
}

fn not_found(raw: &str) -> ApiError {
    ApiError::not_found(format!("FAQ entry {raw}"))
}

/// Cuts one extra row off `items` and returns the next page's token (empty
/// on the last page).
fn next_page<T>(
    items: &mut Vec<T>,
    limit: i64,
    fingerprint: u64,
    cursor: impl Fn(&T) -> Cursor,
) -> String {
    if items.len() as i64 > limit {
        items.truncate(limit as usize);
        items
            .last()
            .map(|last| page_token::encode(cursor(last), fingerprint))
            .unwrap_or_default()
    } else {
        String::new()
    }
}

impl FaqApi {
    async fn list(
        &self,
        caller: &Caller,
        req: pb::ListFaqsRequest,
    ) -> ApiResult<pb::ListFaqsResponse> {
        let (mut query, fingerprint) = requests::list_faqs(caller, &req)?;
        let limit = query.limit;
        query.limit += 1;
        let mut rows = faqs::list(&self.pool, &query, reader(caller)).await?;
        let next_page_token = next_page(&mut rows, limit, fingerprint, |f| {
            requests::list_cursor(f.sort_order, f.id)
        });
        Ok(pb::ListFaqsResponse {
            faqs: rows.iter().map(convert::faq).collect(),
            next_page_token,
        })
    }

    async fn search(
        &self,
        caller: &Caller,
        req: pb::SearchFaqsRequest,
    ) -> ApiResult<pb::SearchFaqsResponse> {
        let (mut params, fingerprints) = requests::search_faqs(caller, &req)?;
        let limit = params.limit;
        params.limit += 1;
        let reader = reader(caller);
        let served = match self.search_cache.get(&params) {
            Some(kept) => self.serve_kept(kept, limit, reader).await?,
            None => None,
        };
        self.search_cache.count(served.is_some());
        let (Page { mut hits, fuzzy }, mut entries) = match served {
            Some(served) => served,
            None => {
                let generation = match self.search_cache.enabled() {
                    true => Some(faqs::search_generation(&self.pool).await?),
                    false => None,
                };
                let page = self.search_page(params.clone()).await?;
                if let Some(g) = generation {
                    self.search_cache.put(&params, g, page.clone());
                }
                let entries =
                    faqs::get_many(&self.lookups, &page.shown(limit), reader, None).await?;
                (page, entries)
            }
        };
        let fingerprint = fingerprints.of(fuzzy);
        let next_page_token = next_page(&mut hits, limit, fingerprint, |h: &Hit| {
            requests::search_cursor(h.score, h.id)
        });
        let results = hits
            .into_iter()
            .filter_map(|h| {
                // An entry unpublished between the two reads is left out.
                let at = entries.iter().position(|f| f.id == h.id)?;
                let f = entries.swap_remove(at);
                Some(pb::FaqSearchResult {
                    faq: Some(convert::faq(&f)),
                    question_snippet: h.question_snippet,
                    answer_snippet: h.answer_snippet,
                    score: h.score,
                })
            })
            .collect();
        Ok(pb::SearchFaqsResponse {
            results,
            next_page_token,
            fuzzy,
        })
    }

    /// A kept page and its entries, if the search generation is still the
    /// one it was computed at: for a page with hits that is checked by the
    /// statement reading their entries, so a hit is one statement.
    async fn serve_kept(
        &self,
        kept: Kept,
        limit: i64,
        reader: Reader,
    ) -> ApiResult<Option<(Page, Vec<Faq>)>> {
        let Kept { generation, page } = kept;
        if page.hits.is_empty() {
            let current = faqs::search_generation(&self.pool).await?;
            return Ok((current == generation).then_some((page, Vec::new())));
        }
        let entries =
            faqs::get_many(&self.lookups, &page.shown(limit), reader, Some(generation)).await?;
        // Nothing: an edit since (a current page's entries are all visible).
        Ok((!entries.is_empty()).then_some((page, entries)))
    }

    /// The hits of `params` (one more than a page): full text first, the
    /// similarity fallback only when it finds nothing at all (a later page
    /// stays in the mode of the first).
    async fn search_page(&self, mut params: faqs::SearchQueryParams) -> ApiResult<Page> {
        if params.fuzzy {
            let hits = faqs::search_similar(&self.pool, &params).await?;
            return Ok(Page { hits, fuzzy: true });
        }
        let hits = faqs::search_text(&self.pool, &params).await?;
        if hits.is_empty() && params.after.is_none() {
            params.fuzzy = true;
            let hits = faqs::search_similar(&self.pool, &params).await?;
            return Ok(Page { hits, fuzzy: true });
        }
        Ok(Page { hits, fuzzy: false })
    }

    async fn get(&self, caller: &Caller, req: pb::GetFaqRequest) -> ApiResult<pb::Faq> {
        let key = requests::faq_key("id", &req.id)?;
        let day = self.clock.now().date_naive();
        // The view commits on its own first: its shard's lock is held for
        // one statement, and the count read next includes it.
        let id = faqs::count_view(&self.pool, key, caller.is_admin(), day)
            .await?
            .ok_or_else(|| not_found(&req.id))?;
        faqs::get(&self.pool, FaqKey::Id(id), reader(caller))
            .await?
            .map(|f| convert::faq(&f))
            .ok_or_else(|| not_found(&req.id))
    }

    async fn create(&self, caller: &Caller, req: pb::CreateFaqRequest) -> ApiResult<pb::Faq> {
        admin_only(caller)?;
        let (new, key) = requests::create_faq(caller, &req)?;
        let now = self.clock.now();
        let mut tx = self.pool.begin().await?;
        if let Some(done) = idempotency::claim_opt(&mut tx, key.as_ref()).await? {
            return Ok(done);
        }
        let id = Uuid::now_v7();
        if faqs::insert(&mut *tx, id, &new, now).await?.is_none() {
            return Err(ApiError::invalid("faq.category_id", "no such category"));
        }
        let faq = faqs::get(&mut *tx, FaqKey::Id(id), reader(caller))
            .await?
            .ok_or_else(|| ApiError::internal(anyhow::anyhow!("FAQ entry {id} vanished")))?;
        convert::emit(&mut tx, caller, now, &faq, Change::Created).await?;
        let response = convert::faq(&faq);
        idempotency::complete_opt(&mut tx, key.as_ref(), &response).await?;
        self.outbox.commit(tx).await?;
        Ok(response)
    }

    async fn update(&self, caller: &Caller, req: pb::UpdateFaqRequest) -> ApiResult<pb::Faq> {
        admin_only(caller)?;
        let (key, edit, idem) = requests::update_faq(caller, &req)?;
        let mut tx = self.pool.begin().await?;
        if let Some(done) = idempotency::claim_opt(&mut tx, idem.as_ref()).await? {
            return Ok(done);
        }
        let raw = req.faq.as_ref().map(|f| f.id.as_str()).unwrap_or_default();
        let mut faq = faqs::lock(&mut tx, key, reader(caller))
            .await?
            .ok_or_else(|| not_found(raw))?;
        let now = self.clock.now();
        let changed = faq.apply(edit, now);
        if !changed.is_empty() {
            if !faqs::save(&mut tx, &faq).await? {
                return Err(ApiError::invalid("faq.category_id", "no such category"));
            }
            convert::emit(&mut tx, caller, now, &faq, Change::Updated(changed)).await?;
        }
        let response = convert::faq(&faq);
        idempotency::complete_opt(&mut tx, idem.as_ref(), &response).await?;
        self.outbox.commit(tx).await?;
        Ok(response)
    }

    async fn set_published(
        &self,
        caller: &Caller,
        raw: &str,
        published: bool,
    ) -> ApiResult<pb::Faq> {
        admin_only(caller)?;
        let key = requests::faq_key("id", raw)?;
        let mut tx = self.pool.begin().await?;
        let mut faq = faqs::lock(&mut tx, key, reader(caller))
            .await?
            .ok_or_else(|| not_found(raw))?;
        let now = self.clock.now();
        if faq.set_published(published, now) {
            faqs::save(&mut tx, &faq).await?;
            let change = if published {
                Change::Published
            } else {
                Change::Unpublished
            };
            convert::emit(&mut tx, caller, now, &faq, change).await?;
        }
        let response = convert::faq(&faq);
        self.outbox.commit(tx).await?;
        Ok(response)
    }

    /// Casts, changes (`Some`) or withdraws (`None`) the caller's vote.
    async fn vote(&self, caller: &Caller, raw: &str, vote: Option<Vote>) -> ApiResult<pb::Faq> {
        let account = caller
            .account_id()
            .ok_or_else(|| ApiError::denied("only people vote on FAQ entries"))?;
        let key = requests::faq_key("id", raw)?;
        let mut tx = self.pool.begin().await?;
        // The entry's row lock serializes the votes on it: the counts below
        // move by exactly the difference each vote makes.
        let faq = match faqs::lock(&mut tx, key, reader(caller)).await? {
            Some(f) if f.published || caller.is_admin() => f,
            _ => return Err(not_found(raw)),
        };
        match vote {
            Some(vote) => faqs::vote(&mut tx, faq.id, account, vote, self.clock.now()).await?,
            None => faqs::clear_vote(&mut tx, faq.id, account).await?,
        }
        let faq: Faq = faqs::get(&mut *tx, FaqKey::Id(faq.id), reader(caller))
            .await?
            .ok_or_else(|| not_found(raw))?;
        tx.commit().await?;
        Ok(convert::faq(&faq))
    }
}

#[tonic::async_trait]
impl FaqService for FaqApi {
    async fn list_faqs(
        &self,
        request: Request<pb::ListFaqsRequest>,
    ) -> Result<Response<pb::ListFaqsResponse>, Status> {
        let caller = Caller::from_request(&request)?;
        Ok(Response::new(
            self.list(&caller, request.into_inner()).await?,
        ))
    }

    async fn search_faqs(
        &self,
        request: Request<pb::SearchFaqsRequest>,
    ) -> Result<Response<pb::SearchFaqsResponse>, Status> {
        let caller = Caller::from_request(&request)?;
        Ok(Response::new(
            self.search(&caller, request.into_inner()).await?,
        ))
    }

    async fn get_faq(
        &self,
        request: Request<pb::GetFaqRequest>,
    ) -> Result<Response<pb::Faq>, Status> {
        let caller = Caller::from_request(&request)?;
        Ok(Response::new(
            self.get(&caller, request.into_inner()).await?,
        ))
    }

    async fn create_faq(
        &self,
        request: Request<pb::CreateFaqRequest>,
    ) -> Result<Response<pb::Faq>, Status> {
        let caller = Caller::from_request(&request)?;
        Ok(Response::new(
            self.create(&caller, request.into_inner()).await?,
        ))
    }

    async fn update_faq(
        &self,
        request: Request<pb::UpdateFaqRequest>,
    ) -> Result<Response<pb::Faq>, Status> {
        let caller = Caller::from_request(&request)?;
        Ok(Response::new(
            self.update(&caller, request.into_inner()).await?,
        ))
    }

    async fn publish_faq(
        &self,
        request: Request<pb::PublishFaqRequest>,
    ) -> Result<Response<pb::Faq>, Status> {
        let caller = Caller::from_request(&request)?;
        Ok(Response::new(
            self.set_published(&caller, &request.get_ref().id, true)
                .await?,
        ))
    }

    async fn unpublish_faq(
        &self,
        request: Request<pb::UnpublishFaqRequest>,
    ) -> Result<Response<pb::Faq>, Status> {
        let caller = Caller::from_request(&request)?;
        Ok(Response::new(
            self.set_published(&caller, &request.get_ref().id, false)
                .await?,
        ))
    }

    async fn mark_faq_helpful(
        &self,
        request: Request<pb::MarkFaqHelpfulRequest>,
    ) -> Result<Response<pb::Faq>, Status> {
        let caller = Caller::from_request(&request)?;
        Ok(Response::new(
            self.vote(&caller, &request.get_ref().id, Some(Vote::Helpful))
                .await?,
        ))
    }

    async fn mark_faq_not_helpful(
        &self,
        request: Request<pb::MarkFaqNotHelpfulRequest>,
    ) -> Result<Response<pb::Faq>, Status> {
        let caller = Caller::from_request(&request)?;
        Ok(Response::new(
            self.vote(&caller, &request.get_ref().id, Some(Vote::NotHelpful))
                .await?,
        ))
    }

    async fn clear_faq_vote(
        &self,
        request: Request<pb::ClearFaqVoteRequest>,
    ) -> Result<Response<pb::Faq>, Status> {
        let caller = Caller::from_request(&request)?;
        Ok(Response::new(
            self.vote(&caller, &request.get_ref().id, None).await?,
        ))
    }
}
