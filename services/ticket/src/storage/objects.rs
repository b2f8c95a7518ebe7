//! Attachment bytes in object storage (`object_store`): a local directory by
//! default, any S3-compatible service from config (docs/attachments.md).
//!
//! An object is written under its final key and is complete before its
//! database row is committed; nothing half-written is ever visible:
//! - up to [`PART`] bytes are held in memory and written with one `put`
//!   (atomic on every store), so a small upload that is refused leaves the
//!   store untouched;
//! - a larger one streams into a multipart upload (S3 multipart; a `#n`
//!   staging file renamed on completion on the filesystem) that is aborted on
//!   any error, and also when the [`Upload`] is dropped unfinished (the
//!   client went away and the handler was cancelled).
//!
//! A crash between the object's completion and the row's commit leaves an
//! object without a row: [`Objects::sweep`] deletes those once they are an
//! hour old (no upload in flight takes that long).

use std::{sync::Arc, time::Duration};

use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures_util::{StreamExt, TryStreamExt, stream::BoxStream};
use object_store::{
    ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart, aws::AmazonS3Builder,
    local::LocalFileSystem, path::Path,
};
use sqlx::PgPool;

use crate::{config::StoreConfig, domain::attachment::Attachment, storage::attachments};

/// Bytes per multipart part (S3's minimum part size), and the most one
/// upload holds in memory.
pub const PART: usize = 5 * 1024 * 1024;

/// Parts of one upload in flight at once.
const PARTS_IN_FLIGHT: usize = 2;

/// An object without a row younger than this may be an upload about to
/// commit; older ones are orphans.
pub const ORPHAN_AGE: Duration = Duration::from_secs(3600);

/// The attachment store.
#[derive(Clone, Debug)]
pub struct Objects {
    store: Arc<dyn ObjectStore>,
}

impl Objects {
    /// Opens the configured store; a local directory is created if missing.
    pub fn open(config: &StoreConfig) -> anyhow::Result<Self> {
        let store: Arc<dyn ObjectStore> = match config {
            StoreConfig::Directory(dir) => {
                std::fs::create_dir_all(dir)
                    .map_err(|e| anyhow::anyhow!("attachment directory {}: {e}", dir.display()))?;
                Arc::new(LocalFileSystem::new_with_prefix(dir)?)
            }
            StoreConfig::S3(s3) => {
                // reqwest is built without a crypto provider of its own
                // (it would bring aws-lc-rs): use ring, as the rest of the
                // tree does. Already installed is fine.
                let _ = rustls::crypto::ring::default_provider().install_default();
                let mut builder = AmazonS3Builder::from_env()
                    .with_bucket_name(&s3.bucket)
                    .with_region(&s3.region)
                    .with_allow_http(s3.allow_http);
                if let Some(endpoint) = &s3.endpoint {
                    builder = builder.with_endpoint(endpoint);
                }
                if let Some((id, secret)) = &s3.credentials {
                    builder = builder
                        .with_access_key_id(id)
                        .with_secret_access_key(secret);
                }
                Arc::new(builder.build()?)
            }
        };
        Ok(Self { store })
    }

    /// Starts writing the object `key`.
    pub fn upload(&self, key: &str) -> Upload {
        Upload {
            store: self.store.clone(),
            path: Path::from(key),
            state: State::Buffered(Vec::new()),
        }
    }

    /// The object's bytes as they arrive from the store.
    pub async fn read(
        &self,
        key: &str,
    ) -> object_store::Result<BoxStream<'static, object_store::Result<Bytes>>> {
        Ok(self.store.get(&Path::from(key)).await?.into_stream())
    }

    /// Deletes an object (a missing one is not an error).
    pub async fn delete(&self, key: &str) -> object_store::Result<()> {
        match self.store.delete(&Path::from(key)).await {
            Err(object_store::Error::NotFound { .. }) => Ok(()),
            other => other,
        }
    }

    /// Every attachment object's key (for tests and operators; it lists
    /// the whole prefix).
    pub async fn keys(&self) -> object_store::Result<Vec<String>> {
        self.store
            .list(Some(&Path::from("attachments")))
            .map_ok(|meta| meta.location.to_string())
            .try_collect()
            .await
    }

    /// Deletes the attachment objects last modified before `before` that
    /// have no row; returns how many. One listing, one query per page of
    /// 500 objects.
    pub async fn sweep(&self, pool: &PgPool, before: DateTime<Utc>) -> anyhow::Result<usize> {
        let mut listing = self.store.list(Some(&Path::from("attachments")));
        let mut deleted = 0;
        loop {
            let mut page = Vec::new();
            while page.len() < 500 {
                match listing.try_next().await? {
                    Some(meta) if meta.last_modified < before => page.push(meta.location),
                    Some(_) => {}
                    None => break,
                }
            }
            if page.is_empty() {
                return Ok(deleted);
            }
            let ids: Vec<_> = page
                .iter()
                .filter_map(|p| Attachment::id_of_key(p.as_ref()))
                .collect();
            let kept = attachments::existing(pool, &ids).await?;
            for path in page {
                let orphan =
                    Attachment::id_of_key(path.as_ref()).is_none_or(|id| !kept.contains(&id));
                if orphan {
                    self.delete(path.as_ref()).await?;
                    tracing::warn!(object = %path, "deleted an attachment object without a row");
                    deleted += 1;
                }
            }
        }
    }
}

enum State {
    /// Fewer than [`PART`] bytes so far: nothing in the store yet.
    Buffered(Vec<u8>),
    /// A multipart upload under way.
    Streaming(WriteMultipart),
    /// Finished or aborted.
    Done,
}

/// One object being written. [`Upload::finish`] makes it visible under its
/// key; anything else (an error, [`Upload::abort`], a drop) leaves nothing.
pub struct Upload {
    store: Arc<dyn ObjectStore>,
    path: Path,
    state: State,
}

impl Upload {
    /// Adds the next bytes; parts are sent as they fill, with a bounded
    /// number in flight (backpressure on the client's stream).
    pub async fn write(&mut self, chunk: &[u8]) -> object_store::Result<()> {
        match &mut self.state {
            State::Buffered(buffer) if buffer.len() + chunk.len() <= PART => {
                buffer.extend_from_slice(chunk);
            }
            State::Buffered(buffer) => {
                let buffer = std::mem::take(buffer);
                let upload = self.store.put_multipart(&self.path).await?;
                let mut writer = WriteMultipart::new_with_chunk_size(upload, PART);
                writer.write(&buffer);
                writer.write(chunk);
                self.state = State::Streaming(writer);
            }
            State::Streaming(writer) => {
                writer.wait_for_capacity(PARTS_IN_FLIGHT).await?;
                writer.write(chunk);
            }
            State::Done => {}
        }
        Ok(())
    }

    /// Completes the object under its key.
    pub async fn finish(mut self) -> object_store::Result<()> {
        match std::mem::replace(&mut self.state, State::Done) {
            State::Buffered(buffer) => {
                self.store
                    .put(&self.path, PutPayload::from(Bytes::from(buffer)))
                    .await?;
            }
            // `finish` aborts the upload itself when it fails.
            State::Streaming(writer) => {
                writer.finish().await?;
            }
            State::Done => {}
        }
        Ok(())
    }

    /// Gives up: nothing of it stays in the store.
    pub async fn abort(mut self) {
        if let State::Streaming(writer) = std::mem::replace(&mut self.state, State::Done)
            && let Err(e) = writer.abort().await
        {
            tracing::warn!(object = %self.path, error = %e, "aborting an upload failed");
        }
    }
}

impl Drop for Upload {
    /// Cancelled mid-stream (the handler's future dropped): abort in the
    /// background, since a drop cannot wait.
    fn drop(&mut self) {
        if let State::Streaming(writer) = std::mem::replace(&mut self.state, State::Done)
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            let path = self.path.clone();
            runtime.spawn(async move {
                if let Err(e) = writer.abort().await {
                    tracing::warn!(object = %path, error = %e, "aborting a dropped upload failed");
                }
            });
        }
    }
}

/// Re-cuts a byte stream into chunks of `size` (the last may be shorter).
pub fn rechunk(
    input: BoxStream<'static, object_store::Result<Bytes>>,
    size: usize,
) -> BoxStream<'static, object_store::Result<Bytes>> {
    futures_util::stream::unfold(
        (input, bytes::BytesMut::new(), false),
        move |(mut input, mut buffer, mut ended)| async move {
            while !ended && buffer.len() < size {
                match input.next().await {
                    Some(Ok(bytes)) => buffer.extend_from_slice(&bytes),
                    Some(Err(e)) => return Some((Err(e), (input, buffer, true))),
                    None => ended = true,
                }
            }
            if buffer.is_empty() {
                return None;
            }
            let take = buffer.len().min(size);
            let chunk = buffer.split_to(take).freeze();
            Some((Ok(chunk), (input, buffer, ended)))
        },
    )
    .boxed()
}
