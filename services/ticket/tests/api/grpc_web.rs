//! gRPC-Web on the same port as gRPC (the kit server's tonic-web layer),
//! through a real gRPC-Web client: `buf curl --protocol grpcweb` over
//! HTTP/1.1, the way a browser or an admin tool without HTTP/2 gRPC calls.
//! buf is required, not optional: scripts/test.sh installs it (PATH, or
//! the tools directory it uses).

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
};

use helpdesk_kit::auth::Role;
use helpdesk_proto::support::v1 as pb;
use helpdesk_testkit::minter;

use crate::helpers::*;

/// `buf` from PATH, else where scripts/test.sh installs it.
fn buf() -> PathBuf {
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("buf"))
            .find(|candidate| candidate.is_file())
    });
    let tools = std::env::var_os("HOME")
        .map(|home| PathBuf::from(home).join(".cache/helpdesk-tools/bin/buf"))
        .filter(|candidate| candidate.is_file());
    on_path.or(tools).expect(
        "buf not found on PATH or in ~/.cache/helpdesk-tools/bin: run `bash scripts/test.sh` \
         (it installs buf) or `source scripts/lib/deps.sh && ensure_buf`",
    )
}

/// The descriptor set the server was built from, as buf's `--schema`
/// (gRPC-Web has no streaming reflection to ask the server).
struct Schema(PathBuf);

impl Schema {
    fn write() -> Self {
        let path = std::env::temp_dir().join(format!("helpdesk-{}.binpb", uuid::Uuid::new_v4()));
        std::fs::write(&path, helpdesk_proto::FILE_DESCRIPTOR_SET).unwrap();
        Self(path)
    }
    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// `buf curl --protocol grpcweb` (HTTP/1.1) of `method` with `body`, as `auth`.
async fn grpc_web(app: &TestApp, method: &str, body: String, auth: Option<String>) -> Output {
    let url = format!("{}/{method}", app.addr);
    let schema = Schema::write();
    let buf = buf();
    tokio::task::spawn_blocking(move || {
        let mut command = Command::new(buf);
        command
            .args(["curl", "--protocol", "grpcweb", "--schema"])
            .arg(schema.path())
            .args(["--data", &body]);
        if let Some(token) = auth {
            command.args(["--header", &format!("authorization: Bearer {token}")]);
        }
        let output = command.arg(&url).output().expect("run buf curl");
        drop(schema);
        output
    })
    .await
    .unwrap()
}

fn token(sub: &str, role: Role) -> Option<String> {
    Some(minter().mint(sub, role, chrono::Duration::hours(1)))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test]
async fn a_grpc_web_client_reads_and_writes_tickets() {
    let app = spawn().await;
    let created = app.alice_ticket().await;

    // A read over gRPC-Web returns what gRPC wrote.
    let got = grpc_web(
        &app,
        "support.v1.TicketService/GetTicket",
        format!(r#"{{"id": "{}"}}"#, created.human_id),
        token(ALICE, Role::User),
    )
    .await;
    let out = text(&got.stdout);
    assert!(got.status.success(), "{out}{}", text(&got.stderr));
    assert!(out.contains(&format!(r#""id": "{}""#, created.id)), "{out}");
    assert!(
        out.contains(r#""subject": "Driver took a long detour""#),
        "{out}"
    );

    // A write over gRPC-Web is a real write, seen over gRPC.
    let posted = grpc_web(
        &app,
        "support.v1.TicketService/PostMessage",
        format!(
            r#"{{"ticket_id": "{}", "body": "Sent from a browser"}}"#,
            created.id
        ),
        token(ALICE, Role::User),
    )
    .await;
    assert!(posted.status.success(), "{}", text(&posted.stderr));
    let messages = app
        .alice()
        .tickets
        .list_messages(pb::ListMessagesRequest {
            ticket_id: created.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        messages
            .messages
            .iter()
            .any(|m| m.body == "Sent from a browser"),
        "{messages:?}"
    );
}

#[tokio::test]
async fn grpc_web_errors_carry_the_same_codes() {
    let app = spawn().await;
    let created = app.alice_ticket().await;
    let get = |auth| {
        grpc_web(
            &app,
            "support.v1.TicketService/GetTicket",
            format!(r#"{{"id": "{}"}}"#, created.id),
            auth,
        )
    };

    // The auth layer sees gRPC-Web calls too.
    let anonymous = get(None).await;
    assert!(!anonymous.status.success());
    assert!(
        text(&anonymous.stderr).contains("unauthenticated"),
        "{}",
        text(&anonymous.stderr)
    );

    // Someone else's ticket does not exist for Bob, in either protocol.
    let bob = get(token(BOB, Role::User)).await;
    assert!(!bob.status.success());
    assert!(
        text(&bob.stderr).contains("not_found"),
        "{}",
        text(&bob.stderr)
    );
}
