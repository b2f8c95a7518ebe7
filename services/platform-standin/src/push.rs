//! A stand-in for the platform's push gateway: accepts the notification
//! service's JSON push messages (docs/notifications.md, "Push gateway") over
//! HTTP/1.1, keeps them, and misbehaves on demand.
//!
//! - `POST /v1/push` with `{"token", "title", "body", "collapse_key",
//!   "data"}`: 200 `{"id": n}`, and the message is kept ([`PushGateway::received`])
//!   and appended to the JSON-lines file, if one is set (`PUSH_LOG_FILE`), so
//!   a newcomer can read what their phone would have shown;
//! - a token starting with `dead-`: 410 `{"error": "unregistered"}`;
//! - while [`PushGateway::set_down`]: 503 to everything;
//! - a wrong `Authorization: Bearer` (when a key is set): 401; a body that is
//!   not such a message: 400; another path: 404 with a plain-text body.
//!
//! A hand-written HTTP/1.1 server of one request per connection (it answers
//! `Connection: close`): the stand-in has no use for hyper's server, and the
//! protocol needed here fits on a page.

use std::{
    future::Future,
    io::Write,
    path::PathBuf,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use serde_json::{Value, json};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};

/// The largest request head and body accepted.
const MAX_HEAD: usize = 16 * 1024;
const MAX_BODY: usize = 1024 * 1024;
/// A client that sends nothing for this long is dropped.
const IDLE: Duration = Duration::from_secs(10);

/// How the gateway is set up.
#[derive(Clone, Debug, Default)]
pub struct PushOptions {
    /// `PUSH_GATEWAY_KEY`: when set, requests must carry it as a bearer token.
    pub key: Option<String>,
    /// `PUSH_LOG_FILE`: every accepted message is appended as a JSON line.
    pub log_file: Option<PathBuf>,
}

/// The gateway's state; clones share it, so a test keeps one to flip
/// switches and read what arrived while [`serve`](Self::serve) runs.
#[derive(Clone, Debug, Default)]
pub struct PushGateway {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    options: PushOptions,
    down: AtomicBool,
    received: Mutex<Vec<Value>>,
    /// Requests answered, whatever the answer (tests count retries).
    requests: Mutex<u64>,
}

impl PushGateway {
    pub fn new(options: PushOptions) -> Self {
        Self {
            inner: Arc::new(Inner {
                options,
                ..Inner::default()
            }),
        }
    }

    /// Down: 503 to every request until set up again.
    pub fn set_down(&self, down: bool) {
        self.inner.down.store(down, Ordering::SeqCst);
    }

    /// Every message accepted so far, in arrival order.
    pub fn received(&self) -> Vec<Value> {
        self.inner.received.lock().expect("push lock").clone()
    }

    /// How many requests were answered, accepted or not.
    pub fn requests(&self) -> u64 {
        *self.inner.requests.lock().expect("push lock")
    }

    /// Answers on `listener` until `shutdown` completes.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> anyhow::Result<()> {
        tracing::info!(addr = %listener.local_addr()?, "push gateway stand-in listening");
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => return Ok(()),
                accepted = listener.accept() => {
                    let (stream, _) = match accepted {
                        Ok(accepted) => accepted,
                        Err(e) => {
                            tracing::warn!(error = %e, "push gateway accept failed");
                            continue;
                        }
                    };
                    let gateway = self.clone();
                    tokio::spawn(async move {
                        if let Err(e) = gateway.connection(stream).await {
                            tracing::debug!(error = %e, "push gateway connection ended");
                        }
                    });
                }
            }
        }
    }

    async fn connection(&self, mut stream: TcpStream) -> anyhow::Result<()> {
        let (status, answer) = match tokio::time::timeout(IDLE, read_request(&mut stream)).await {
            Err(_) => return Ok(()),
            Ok(Err(e)) => (400, json!({ "error": e.to_string() }).to_string()),
            Ok(Ok(request)) => self.answer(&request),
        };
        *self.inner.requests.lock().expect("push lock") += 1;
        let reason = match status {
            200 => "OK",
            400 => "Bad Request",
            401 => "Unauthorized",
            404 => "Not Found",
            410 => "Gone",
            503 => "Service Unavailable",
            _ => "",
        };
        let content_type = if status == 404 {
            "text/plain"
        } else {
            "application/json"
        };
        let head = format!(
            "HTTP/1.1 {status} {reason}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
            answer.len()
        );
        stream.write_all(head.as_bytes()).await?;
        stream.write_all(answer.as_bytes()).await?;
        stream.shutdown().await?;
        Ok(())
    }

    fn answer(&self, request: &HttpRequest) -> (u16, String) {
        if request.method != "POST" || request.path != "/v1/push" {
            return (404, format!("no {} {} here", request.method, request.path));
        }
        if self.inner.down.load(Ordering::SeqCst) {
            return (503, json!({ "error": "unavailable" }).to_string());
        }
        if let Some(key) = &self.inner.options.key
            && request.authorization.as_deref() != Some(&format!("Bearer {key}"))
        {
            return (401, json!({ "error": "unauthenticated" }).to_string());
        }
        let message: Value = match serde_json::from_slice(&request.body) {
            Ok(message) => message,
            Err(e) => {
                return (
                    400,
                    json!({ "error": format!("not JSON: {e}") }).to_string(),
                );
            }
        };
        let field = |name: &str| message.get(name).and_then(Value::as_str);
        let Some(token) = field("token").filter(|t| !t.is_empty()) else {
            return (400, json!({ "error": "token is required" }).to_string());
        };
        if field("title").is_none() || field("body").is_none() {
            return (
                400,
                json!({ "error": "title and body are required" }).to_string(),
            );
        }
        if token.starts_with("dead-") {
            return (410, json!({ "error": "unregistered" }).to_string());
        }
        let id = {
            let mut received = self.inner.received.lock().expect("push lock");
            received.push(message.clone());
            received.len()
        };
        if let Some(path) = &self.inner.options.log_file {
            let line = format!("{message}\n");
            let written = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .and_then(|mut f| f.write_all(line.as_bytes()));
            if let Err(e) = written {
                tracing::warn!(path = %path.display(), error = %e, "could not append to PUSH_LOG_FILE");
            }
        }
        // Like a real gateway's logs: an id, never the token or the text
        // (PUSH_LOG_FILE holds whole messages for those who want them).
        tracing::info!(id, "push accepted");
        (200, json!({ "id": id }).to_string())
    }
}

/// The parts of a request the gateway looks at.
struct HttpRequest {
    method: String,
    path: String,
    authorization: Option<String>,
    body: Vec<u8>,
}

/// Reads one request: the head up to the blank line, then `content-length`
/// bytes of body.
async fn read_request(stream: &mut TcpStream) -> anyhow::Result<HttpRequest> {
    let mut buf = Vec::with_capacity(4096);
    let head_end = loop {
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        anyhow::ensure!(buf.len() <= MAX_HEAD, "request head too large");
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await?;
        anyhow::ensure!(n > 0, "connection closed mid-request");
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = std::str::from_utf8(&buf[..head_end])?;
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next().unwrap_or_default().split(' ');
    let (method, path) = (
        request_line.next().unwrap_or_default().to_owned(),
        request_line.next().unwrap_or_default().to_owned(),
    );
    let (mut length, mut authorization) = (0usize, None);
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        match name.trim().to_ascii_lowercase().as_str() {
            "content-length" => length = value.trim().parse()?,
            "authorization" => authorization = Some(value.trim().to_owned()),
            "transfer-encoding" => anyhow::bail!("chunked bodies are not supported"),
            _ => {}
        }
    }
    anyhow::ensure!(length <= MAX_BODY, "body too large");
    let mut body = buf[head_end..].to_vec();
    while body.len() < length {
        let mut chunk = vec![0u8; length - body.len()];
        let n = stream.read(&mut chunk).await?;
        anyhow::ensure!(n > 0, "connection closed mid-body");
        body.extend_from_slice(&chunk[..n]);
    }
    body.truncate(length);
    Ok(HttpRequest {
        method,
        path,
        authorization,
        body,
    })
}
