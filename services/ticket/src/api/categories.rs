//! `support.v1.CategoryService`: everyone reads active categories; admins
//! create and edit them. Categories are never deleted (tickets refer to
//! them); deactivating hides them from new tickets.

use helpdesk_kit::{
    auth::Caller,
    error::{ApiError, ApiResult, Violations},
    idempotency::{self, Key, parse_request_id},
};
use helpdesk_proto::support::v1::{self as pb, category_service_server::CategoryService};
use sqlx::PgPool;
use tonic::{Request, Response, Status};

use crate::{
    domain::fields::{self, CATEGORY_DESCRIPTION_MAX, CATEGORY_NAME_MAX},
    storage::categories::{self, Category},
};

pub struct CategoryApi {
    pool: PgPool,
}

impl CategoryApi {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

fn to_pb(c: Category) -> pb::Category {
    pb::Category {
        id: c.id,
        name: c.name,
        description: c.description,
        active: c.active,
        sort_order: c.sort_order,
    }
}

fn admin_only(caller: &Caller) -> ApiResult<()> {
    if caller.is_admin() {
        Ok(())
    } else {
        Err(ApiError::denied("only admins may manage categories"))
    }
}

/// Validates the fields of a category; `field_prefix` is `category.`.
fn validate(v: &mut Violations, c: &pb::Category, paths: &[&str]) -> Option<Category> {
    let id = v.take("category.id", fields::category_id(&c.id));
    let name = if paths.contains(&"name") {
        v.take("category.name", fields::text(&c.name, CATEGORY_NAME_MAX))
    } else {
        Some(String::new())
    };
    let description = if paths.contains(&"description") {
        v.take(
            "category.description",
            fields::optional_text(&c.description, CATEGORY_DESCRIPTION_MAX)
                .map(Option::unwrap_or_default),
        )
    } else {
        Some(String::new())
    };
    Some(Category {
        id: id?,
        name: name?,
        description: description?,
        active: c.active,
        sort_order: c.sort_order,
    })
}

impl CategoryApi {
    async fn create(
        &self,
        caller: &Caller,
        req: pb::CreateCategoryRequest,
    ) -> ApiResult<pb::Category> {
        admin_only(caller)?;
        let mut v = Violations::default();
        let request_id = v
            .take("request_id", parse_request_id(&req.request_id))
            .flatten();
        let Some(c) = req.category.as_ref() else {
            return Err(ApiError::invalid("category", "is required"));
        };
        let category = validate(&mut v, c, &["name", "description"]);
        v.into_result()?;
        let category = category.expect("validated");
        let key = request_id.map(|id| Key::new(&caller.subject(), "CreateCategory", id, &req));

        let mut tx = self.pool.begin().await?;
        if let Some(done) = idempotency::claim_opt(&mut tx, key.as_ref()).await? {
            return Ok(done);
        }
        if !categories::insert(&mut *tx, &category).await? {
            return Err(ApiError::AlreadyExists(format!("category {}", category.id)));
        }
        let response = to_pb(category);
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
        let mut v = Violations::default();
        let request_id = v
            .take("request_id", parse_request_id(&req.request_id))
            .flatten();
        let Some(c) = req.category.as_ref() else {
            return Err(ApiError::invalid("category", "is required"));
        };
        let paths: Vec<&str> = req
            .update_mask
            .as_ref()
            .map(|m| m.paths.iter().map(String::as_str).collect())
            .unwrap_or_default();
        if paths.is_empty() {
            v.add("update_mask", "must name at least one field");
        }
        for path in &paths {
            if !["name", "description", "active", "sort_order"].contains(path) {
                v.add("update_mask", format!("{path:?} cannot be updated"));
            }
        }
        let patch = validate(&mut v, c, &paths);
        v.into_result()?;
        let patch = patch.expect("validated");
        let key = request_id.map(|id| Key::new(&caller.subject(), "UpdateCategory", id, &req));

        let mut tx = self.pool.begin().await?;
        if let Some(done) = idempotency::claim_opt(&mut tx, key.as_ref()).await? {
            return Ok(done);
        }
        let mut current = categories::lock(&mut tx, &patch.id)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("category {}", patch.id)))?;
        for path in &paths {
            match *path {
                "name" => current.name.clone_from(&patch.name),
                "description" => current.description.clone_from(&patch.description),
                "active" => current.active = patch.active,
                "sort_order" => current.sort_order = patch.sort_order,
                _ => {}
            }
        }
        categories::update(&mut *tx, &current).await?;
        let response = to_pb(current);
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
            categories: rows.into_iter().map(to_pb).collect(),
        }))
    }

    async fn get_category(
        &self,
        request: Request<pb::GetCategoryRequest>,
    ) -> Result<Response<pb::Category>, Status> {
        let caller = Caller::from_request(&request)?;
        let id = fields::category_id(&request.get_ref().id)
            .map_err(|why| ApiError::invalid("id", why))?;
        match categories::get(&self.pool, &id)
            .await
            .map_err(ApiError::from)?
        {
            Some(c) if c.active || caller.is_staff() => Ok(Response::new(to_pb(c))),
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
