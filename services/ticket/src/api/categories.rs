//! `support.v1.CategoryService`: everyone reads active categories; admins
//! create and edit them. Categories are never deleted (tickets refer to
//! them); deactivating hides them from new tickets.

use helpdesk_kit::{
    auth::Caller,
    error::{ApiError, ApiResult},
    idempotency,
};
use helpdesk_proto::support::v1::{self as pb, category_service_server::CategoryService};
use sqlx::PgPool;
use tonic::{Request, Response, Status};

use super::{
    access::admin_only,
    convert,
    requests::{self, Parsed},
};
use crate::{domain::CategoryId, storage::categories};

pub struct CategoryApi {
    pool: PgPool,
}

impl CategoryApi {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

impl CategoryApi {
    async fn create(
        &self,
        caller: &Caller,
        req: pb::CreateCategoryRequest,
    ) -> ApiResult<pb::Category> {
        admin_only(caller)?;
        let Parsed {
            command: category,
            idempotency: key,
        } = requests::create_category(caller, &req)?;

        let mut tx = self.pool.begin().await?;
        if let Some(done) = idempotency::claim_opt(&mut tx, key.as_ref()).await? {
            return Ok(done);
        }
        if !categories::insert(&mut *tx, &category).await? {
            return Err(ApiError::AlreadyExists(format!("category {}", category.id)));
        }
        let response = convert::category(category);
        idempotency::complete_opt(&mut tx, key.as_ref(), &response).await?;
        tx.commit().await?;
        Ok(response)
    }

    async fn update(
        &self,
        caller: &Caller,
        req: pb::UpdateCategoryRequest,
    ) -> ApiResult<pb::Category> {
        admin_only(caller)?;
        let Parsed {
            command: (id, edit),
            idempotency: key,
        } = requests::update_category(caller, &req)?;

        let mut tx = self.pool.begin().await?;
        if let Some(done) = idempotency::claim_opt(&mut tx, key.as_ref()).await? {
            return Ok(done);
        }
        let mut current = categories::lock(&mut tx, &id)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("category {id}")))?;
        current.apply(edit);
        categories::update(&mut *tx, &current).await?;
        let response = convert::category(current);
        idempotency::complete_opt(&mut tx, key.as_ref(), &response).await?;
        tx.commit().await?;
        Ok(response)
    }
}

#[tonic::async_trait]
impl CategoryService for CategoryApi {
    async fn list_categories(
        &self,
        request: Request<pb::ListCategoriesRequest>,
    ) -> Result<Response<pb::ListCategoriesResponse>, Status> {
        let caller = Caller::from_request(&request)?;
        let include_inactive = request.get_ref().show_inactive && caller.is_staff();
        let rows = categories::list(&self.pool, include_inactive)
            .await
            .map_err(ApiError::from)?;
        Ok(Response::new(pb::ListCategoriesResponse {
            categories: rows.into_iter().map(convert::category).collect(),
        }))
    }

    async fn get_category(
        &self,
        request: Request<pb::GetCategoryRequest>,
    ) -> Result<Response<pb::Category>, Status> {
        let caller = Caller::from_request(&request)?;
        let id =
            CategoryId::parse(&request.get_ref().id).map_err(|why| ApiError::invalid("id", why))?;
        match categories::get(&self.pool, &id)
            .await
            .map_err(ApiError::from)?
        {
            Some(c) if c.active || caller.is_staff() => Ok(Response::new(convert::category(c))),
            _ => Err(ApiError::not_found(format!("category {id}")).into()),
        }
    }

    async fn create_category(
        &self,
        request: Request<pb::CreateCategoryRequest>,
    ) -> Result<Response<pb::Category>, Status> {
        let caller = Caller::from_request(&request)?;
        Ok(Response::new(
            self.create(&caller, request.into_inner()).await?,
        ))
    }

    async fn update_category(
        &self,
        request: Request<pb::UpdateCategoryRequest>,
    ) -> Result<Response<pb::Category>, Status> {
        let caller = Caller::from_request(&request)?;
        Ok(Response::new(
            self.update(&caller, request.into_inner()).await?,
        ))
    }
}
