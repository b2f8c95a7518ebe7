//! `support.v1.AttachmentService`: files on tickets (docs/attachments.md).
//!
//! An upload is checked while it streams: the metadata first (who, which
//! ticket, what name), then every chunk (size so far, kind sniffed from the
//! first bytes, text still text), and it is refused the moment a limit is
//! passed. Its object is complete in the store before its row is committed
//! (`storage::objects`); if the commit fails the object is deleted again, and
//! if the process dies in between, the sweeper deletes it an hour later.

use futures_util::{StreamExt, stream::BoxStream};
use helpdesk_events::outbox::Waker;
use helpdesk_kit::{
    auth::Caller,
    clock::SharedClock,
    error::{ApiError, ApiResult},
    idempotency::{self, Key},
    page_token::Cursor,
};
use helpdesk_proto::support::v1::{
    self as pb, attachment_service_server::AttachmentService,
    download_attachment_response::Payload as Down, upload_attachment_request::Payload as Up,
};
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use tonic::{Request, Response, Status, Streaming};
use uuid::Uuid;

use super::{
    access::{self, sees_internal},
    convert,
    events::Context,
    requests::{self, Parsed},
    tickets::{next_page, visible_ticket},
};
use crate::{
    domain::{
        Status as TicketStatus, TicketKey,
        attachment::{Attachment, FileName, Limits, NewUpload},
        sniff::{Kind, Refused, Sniffer},
    },
    storage::{
        attachments,
        objects::{self, Objects, Upload},
        tickets,
    },
};

/// Bytes per DownloadAttachment message.
pub const DOWNLOAD_CHUNK: usize = 64 * 1024;

pub struct AttachmentApi {
    pool: PgPool,
    /// The generic-plan pool, for finding the ticket an attachment is on.
    lookups: PgPool,
    objects: Objects,
    limits: Limits,
    clock: SharedClock,
    outbox: Waker,
}

impl AttachmentApi {
    pub fn new(
        pool: PgPool,
        lookups: PgPool,
        objects: Objects,
        limits: Limits,
        clock: SharedClock,
        outbox: Waker,
    ) -> Self {
        Self {
            pool,
            lookups,
            objects,
            limits,
            clock,
            outbox,
        }
    }
}

/// The store failed: a dependency, so UNAVAILABLE (nothing was kept).
fn store_error(e: object_store::Error) -> ApiError {
    tracing::warn!(error = %e, "attachment store");
    ApiError::Unavailable("attachment storage is unavailable".into())
}

fn closed() -> ApiError {
    ApiError::precondition("the ticket is closed; it takes no more attachments")
}

fn too_many(limits: &Limits) -> ApiError {
    ApiError::invalid(
        "metadata.ticket_id",
        format!(
            "the ticket already has {} attachments, the most it may have",
            limits.per_ticket
        ),
    )
}

/// What a finished stream held.
struct Received {
    kind: Kind,
    size: u64,
    sha256: [u8; 32],
}

impl AttachmentApi {
    async fn upload(
        &self,
        caller: &Caller,
        mut stream: Streaming<pb::UploadAttachmentRequest>,
    ) -> Result<pb::Attachment, Status> {
        let meta = match stream.message().await? {
            Some(pb::UploadAttachmentRequest {
                payload: Some(Up::Metadata(meta)),
            }) => meta,
            _ => {
                return Err(
                    ApiError::invalid("metadata", "the first message must carry it").into(),
                );
            }
        };
        if caller.is_service() {
            return Err(ApiError::denied("services may not upload attachments").into());
        }
        if meta.internal && !caller.is_staff() {
            return Err(ApiError::denied("only staff may upload staff-only attachments").into());
        }
        let uploader = access::own_account(caller)?;
        let Parsed {
            command: new,
            idempotency: key,
        } = requests::upload_attachment(caller, &meta)?;
        // A retry of an upload that was stored: its answer, without the bytes.
        if let Some(key) = &key
            && let Some(done) = idempotency::replayed(&self.pool, key).await?
        {
            return Ok(done);
        }
        let ticket = visible_ticket(&self.lookups, caller, &new.key, &meta.ticket_id).await?;
        if ticket.status == TicketStatus::Closed {
            return Err(closed().into());
        }
        // Checked again under the ticket's lock at the end; this spares the
        // client sending bytes that cannot be kept.
        if attachments::count(&self.pool, ticket.id)
            .await
            .map_err(ApiError::from)?
            >= self.limits.per_ticket
        {
            return Err(too_many(&self.limits).into());
        }

        let id = Uuid::now_v7();
        let object_key = Attachment::object_key(ticket.id, id);
        let mut upload = self.objects.upload(&object_key);
        let received = match self.receive(&mut stream, &mut upload, &new.file_name).await {
            Ok(received) => received,
            Err(status) => {
                upload.abort().await;
                return Err(status);
            }
        };
        if !meta.content_type.is_empty()
            && !received
                .kind
                .mime()
                .starts_with(meta.content_type.split(';').next().unwrap_or("").trim())
        {
            tracing::info!(declared = %meta.content_type, sniffed = received.kind.mime(),
                "an upload's declared content type differs from its bytes");
        }
        upload.finish().await.map_err(store_error)?;

        let attachment = Attachment {
            id,
            ticket_id: ticket.id,
            message_id: None,
            uploader_id: uploader,
            file_name: new.file_name.clone(),
            content_type: received.kind.mime().to_owned(),
            size_bytes: i64::try_from(received.size).map_err(ApiError::internal)?,
            sha256: received.sha256,
            object_key,
            internal: new.internal,
            created_at: self.clock.now(),
        };
        match self.commit(caller, &new, key.as_ref(), attachment).await {
            Ok((response, true)) => Ok(response),
            // Replayed (a concurrent duplicate won) or failed: this object
            // has no row and never will.
            other => {
                let object_key = Attachment::object_key(ticket.id, id);
                if let Err(e) = self.objects.delete(&object_key).await {
                    tracing::warn!(object = %object_key, error = %e,
                        "could not delete an upload's object; the sweeper will");
                }
                Ok(other?.0)
            }
        }
    }

    /// Reads the chunks into `upload`, enforcing every limit as they arrive.
    async fn receive(
        &self,
        stream: &mut Streaming<pb::UploadAttachmentRequest>,
        upload: &mut Upload,
        name: &FileName,
    ) -> Result<Received, Status> {
        let fits = |kind: Kind| -> Result<(), Status> {
            if name.fits(kind) {
                Ok(())
            } else {
                Err(ApiError::invalid(
                    "metadata.file_name",
                    format!(
                        "the file is {kind}, which {name:?} does not say (its name must end in .{})",
                        kind.extensions()[0]
                    ),
                )
                .into())
            }
        };
        let refused = |Refused(why)| -> Status { ApiError::invalid("chunk", why).into() };
        let mut sniffer = Sniffer::default();
        let mut hasher = Sha256::new();
        let mut size: u64 = 0;
        while let Some(message) = stream.message().await? {
            let chunk = match message.payload {
                Some(Up::Chunk(chunk)) => chunk,
                Some(Up::Metadata(_)) => {
                    return Err(ApiError::invalid(
                        "metadata",
                        "only the first message may carry it",
                    )
                    .into());
                }
                None => continue,
            };
            size += chunk.len() as u64;
            if size > self.limits.max_bytes {
                return Err(ApiError::invalid(
                    "chunk",
                    format!(
                        "the file is larger than the {} bytes allowed",
                        self.limits.max_bytes
                    ),
                )
                .into());
            }
            if let Some(kind) = sniffer.feed(&chunk).map_err(refused)? {
                fits(kind)?;
            }
            hasher.update(&chunk);
            upload.write(&chunk).await.map_err(store_error)?;
        }
        let kind = sniffer.finish().map_err(refused)?;
        fits(kind)?;
        Ok(Received {
            kind,
            size,
            sha256: hasher.finalize().into(),
        })
    }

    /// The row, its event and its idempotency record in one transaction,
    /// with the ticket locked so that its state and attachment count are
    /// current. `true` when this call stored it (not a replay).
    async fn commit(
        &self,
        caller: &Caller,
        new: &NewUpload,
        key: Option<&Key>,
        attachment: Attachment,
    ) -> ApiResult<(pb::Attachment, bool)> {
        let mut tx = self.pool.begin().await?;
        if let Some(done) = idempotency::claim_opt(&mut tx, key).await? {
            return Ok((done, false));
        }
        let ticket = tickets::lock(&mut tx, &TicketKey::Id(attachment.ticket_id))
            .await?
            .ok_or_else(|| ApiError::not_found("ticket"))?;
        if ticket.status == TicketStatus::Closed {
            return Err(closed());
        }
        if attachments::count(&mut *tx, ticket.id).await? >= self.limits.per_ticket {
            return Err(too_many(&self.limits));
        }
        attachments::insert(&mut tx, &attachment).await?;
        Context {
            caller,
            now: attachment.created_at,
        }
        .attachment_added(&mut tx, &ticket, &attachment)
        .await?;
        let response = convert::attachment(&attachment);
        idempotency::complete_opt(&mut tx, key, &response).await?;
        self.outbox.commit(tx).await?;
        tracing::info!(ticket = %ticket.human_id, attachment = %attachment.id,
            bytes = attachment.size_bytes, internal = new.internal, "attachment stored");
        Ok((response, true))
    }

    /// One attachment `caller` may see.
    async fn find(
        &self,
        caller: &Caller,
        ticket_id: &str,
        attachment_id: &str,
    ) -> ApiResult<Attachment> {
        let (key, id) = requests::attachment_ref(ticket_id, attachment_id)?;
        let ticket = visible_ticket(&self.lookups, caller, &key, ticket_id).await?;
        attachments::get(&self.pool, ticket.id, id, sees_internal(caller))
            .await?
            .ok_or_else(|| ApiError::not_found(format!("attachment {id}")))
    }

    async fn list(
        &self,
        caller: &Caller,
        req: pb::ListAttachmentsRequest,
    ) -> ApiResult<pb::ListAttachmentsResponse> {
        let (key, page) = requests::list_attachments(caller, &req)?;
        let ticket = visible_ticket(&self.lookups, caller, &key, &req.ticket_id).await?;
        let mut rows = attachments::list(
            &self.pool,
            ticket.id,
            sees_internal(caller),
            page.cursor,
            page.limit + 1,
        )
        .await?;
        let next_page_token = next_page(&mut rows, &page, |a| Cursor {
            at: a.created_at,
            id: a.id,
        });
        Ok(pb::ListAttachmentsResponse {
            attachments: rows.iter().map(convert::attachment).collect(),
            next_page_token,
        })
    }

    /// The metadata, then the bytes in [`DOWNLOAD_CHUNK`]s; the SHA-256 is
    /// checked on the way, and a mismatch ends the stream with DATA_LOSS
    /// instead of a silently corrupt file.
    async fn download(
        &self,
        caller: &Caller,
        req: pb::DownloadAttachmentRequest,
    ) -> ApiResult<BoxStream<'static, Result<pb::DownloadAttachmentResponse, Status>>> {
        let attachment = self
            .find(caller, &req.ticket_id, &req.attachment_id)
            .await?;
        let bytes = match self.objects.read(&attachment.object_key).await {
            Ok(bytes) => bytes,
            Err(object_store::Error::NotFound { .. }) => {
                return Err(ApiError::internal(anyhow::anyhow!(
                    "attachment {} has a row but no object {}",
                    attachment.id,
                    attachment.object_key
                )));
            }
            Err(e) => return Err(store_error(e)),
        };
        let first = pb::DownloadAttachmentResponse {
            payload: Some(Down::Metadata(convert::attachment(&attachment))),
        };
        let chunks = objects::rechunk(bytes, DOWNLOAD_CHUNK).map(|item| {
            item.map(|chunk| pb::DownloadAttachmentResponse {
                payload: Some(Down::Chunk(chunk.to_vec())),
            })
            .map_err(|e| Status::from(store_error(e)))
        });
        Ok(futures_util::stream::once(std::future::ready(Ok(first)))
            .chain(verify(chunks, attachment.sha256))
            .boxed())
    }
}

/// Passes `chunks` through, hashing them, and appends a DATA_LOSS error if
/// the bytes did not hash to `expected`.
fn verify(
    chunks: impl futures_util::Stream<Item = Result<pb::DownloadAttachmentResponse, Status>>
    + Send
    + 'static,
    expected: [u8; 32],
) -> impl futures_util::Stream<Item = Result<pb::DownloadAttachmentResponse, Status>> + Send + 'static
{
    futures_util::stream::unfold(
        (Box::pin(chunks), Sha256::new(), false),
        move |(mut chunks, mut hasher, ended)| async move {
            if ended {
                return None;
            }
            match chunks.next().await {
                Some(Ok(message)) => {
                    if let Some(Down::Chunk(bytes)) = &message.payload {
                        hasher.update(bytes);
                    }
                    Some((Ok(message), (chunks, hasher, false)))
                }
                Some(Err(status)) => Some((Err(status), (chunks, hasher, true))),
                None => {
                    let actual: [u8; 32] = hasher.clone().finalize().into();
                    if actual == expected {
                        None
                    } else {
                        tracing::error!("an attachment's bytes no longer match their SHA-256");
                        Some((
                            Err(Status::data_loss(
                                "the stored file is damaged (its SHA-256 does not match)",
                            )),
                            (chunks, hasher, true),
                        ))
                    }
                }
            }
        },
    )
}

#[tonic::async_trait]
impl AttachmentService for AttachmentApi {
    async fn upload_attachment(
        &self,
        request: Request<Streaming<pb::UploadAttachmentRequest>>,
    ) -> Result<Response<pb::Attachment>, Status> {
        let caller = Caller::from_request(&request)?;
        Ok(Response::new(
            self.upload(&caller, request.into_inner()).await?,
        ))
    }

    type DownloadAttachmentStream =
        BoxStream<'static, Result<pb::DownloadAttachmentResponse, Status>>;

    async fn download_attachment(
        &self,
        request: Request<pb::DownloadAttachmentRequest>,
    ) -> Result<Response<Self::DownloadAttachmentStream>, Status> {
        let caller = Caller::from_request(&request)?;
        Ok(Response::new(
            self.download(&caller, request.into_inner()).await?,
        ))
    }

    async fn get_attachment(
        &self,
        request: Request<pb::GetAttachmentRequest>,
    ) -> Result<Response<pb::Attachment>, Status> {
        let caller = Caller::from_request(&request)?;
        let req = request.into_inner();
        let attachment = self
            .find(&caller, &req.ticket_id, &req.attachment_id)
            .await?;
        Ok(Response::new(convert::attachment(&attachment)))
    }

    async fn list_attachments(
        &self,
        request: Request<pb::ListAttachmentsRequest>,
    ) -> Result<Response<pb::ListAttachmentsResponse>, Status> {
        let caller = Caller::from_request(&request)?;
        Ok(Response::new(
            self.list(&caller, request.into_inner()).await?,
        ))
    }
}
