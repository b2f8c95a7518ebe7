//! The HTTP push gateway: one JSON POST per device token
//! (docs/notifications.md, "Push gateway", has the payload and how it maps
//! to FCM v1 and APNs). The gateway owns the provider credentials; we only
//! speak this one small contract, over the hyper client tonic already links
//! (HTTP/1.1, pooled), so push adds no HTTP stack of its own.
//!
//! Answers, classified here once:
//!
//! - 2xx: sent;
//! - 410, a 404 with a JSON body, or a body `{"error": "unregistered"}` (any
//!   case): the token is dead; the sender records it and never uses it
//!   again (a 404 that is not JSON is a wrong URL path, hence permanent);
//! - 5xx, 408, 429, a timeout or a refused connection: transient;
//! - any other 4xx (or a redirect): permanent; the payload or the key is
//!   wrong, and retrying will not fix it.

use std::time::Duration;

use bytes::Bytes;
use helpdesk_kit::config::{millis_or, string_or};
use http::{
    HeaderValue, Request, StatusCode, Uri,
    header::{AUTHORIZATION, CONTENT_TYPE},
};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::{TokioExecutor, TokioTimer},
};
use serde::Serialize;

use super::{SendError, email::Secret};

/// The most of an answer's body we read (it only ever says what went wrong).
const MAX_ANSWER: usize = 64 * 1024;

/// `PUSH_*` settings.
#[derive(Clone, Debug)]
pub struct PushConfig {
    /// `PUSH_GATEWAY_URL`: the endpoint each message is POSTed to
    /// (`http://…/v1/push`). Unset: no gateway; push deliveries are skipped
    /// with reason `no_gateway`, so a local run without one does not pile up
    /// retries. Plain HTTP only: the gateway sits inside the cluster (TLS, if
    /// wanted, is the mesh's); an `https` URL is refused at start.
    pub gateway_url: Option<Uri>,
    /// `PUSH_GATEWAY_KEY`: sent as `Authorization: Bearer <key>` when set.
    pub key: Option<Secret>,
    /// `PUSH_TIMEOUT_MS` (default 5000): connect, send and answer, per token.
    pub timeout: Duration,
}

impl PushConfig {
    pub fn from_env() -> anyhow::Result<Self> {
        let gateway_url = match string_or("PUSH_GATEWAY_URL", "").trim() {
            "" => None,
            raw => Some(parse_url(raw).map_err(|e| anyhow::anyhow!("PUSH_GATEWAY_URL: {e}"))?),
        };
        Ok(Self {
            gateway_url,
            key: Some(string_or("PUSH_GATEWAY_KEY", ""))
                .filter(|k| !k.is_empty())
                .map(Secret),
            timeout: millis_or("PUSH_TIMEOUT_MS", Duration::from_secs(5))?,
        })
    }
}

/// An `http://host[:port]/path` URL.
pub fn parse_url(raw: &str) -> Result<Uri, String> {
    let uri: Uri = raw.parse().map_err(|e| format!("{raw:?}: {e}"))?;
    match (uri.scheme_str(), uri.host()) {
        (Some("http"), Some(_)) => Ok(uri),
        (Some("https"), _) => Err(format!(
            "{raw:?}: https is not supported (the gateway is reached over plain HTTP inside the cluster)"
        )),
        _ => Err(format!("{raw:?} is not an http:// URL")),
    }
}

/// What the gateway receives, one per device token.
#[derive(Clone, Debug, Serialize)]
pub struct PushMessage<'a> {
    pub token: &'a str,
    pub title: &'a str,
    pub body: &'a str,
    /// `ticket-<ticket_id>`: a burst about one ticket shows as one.
    pub collapse_key: String,
    pub data: PushData<'a>,
}

/// The app's part of a push: where to go when it is opened. Every value is
/// a string (FCM's `data` allows nothing else).
#[derive(Clone, Debug, Serialize)]
pub struct PushData<'a> {
    pub notification_id: String,
    pub ticket_id: String,
    pub human_id: &'a str,
    pub kind: &'a str,
    pub link: &'a str,
}

/// How one token's push went.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PushOutcome {
    Sent,
    /// The gateway says the token is no longer registered.
    Unregistered,
    Failed(SendError),
}

/// The gateway client; clones share the connection pool.
#[derive(Clone)]
pub struct PushGateway {
    client: Client<HttpConnector, Full<Bytes>>,
    url: Uri,
    auth: Option<HeaderValue>,
    timeout: Duration,
}

impl PushGateway {
    /// `None` when no gateway is configured.
    pub fn new(config: &PushConfig) -> anyhow::Result<Option<Self>> {
        let Some(url) = config.gateway_url.clone() else {
            return Ok(None);
        };
        let auth = config
            .key
            .as_ref()
            .map(|key| {
                let mut value = HeaderValue::try_from(format!("Bearer {}", key.0))
                    .map_err(|_| anyhow::anyhow!("PUSH_GATEWAY_KEY is not a valid header value"))?;
                value.set_sensitive(true);
                anyhow::Ok(value)
            })
            .transpose()?;
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(config.timeout));
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .pool_timer(TokioTimer::new())
            .build(connector);
        Ok(Some(Self {
            client,
            url,
            auth,
            timeout: config.timeout,
        }))
    }

    /// POSTs `message` and classifies the answer.
    pub async fn send(&self, message: &PushMessage<'_>) -> PushOutcome {
        let payload = match serde_json::to_vec(message) {
            Ok(json) => json,
            Err(e) => return PushOutcome::Failed(SendError::Permanent(format!("push: {e}"))),
        };
        let mut request = Request::post(self.url.clone())
            .header(CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(payload)))
            .expect("a request from a parsed URL and fixed headers is valid");
        if let Some(auth) = &self.auth {
            request.headers_mut().insert(AUTHORIZATION, auth.clone());
        }
        let exchange = async {
            let answer =
                self.client.request(request).await.map_err(|e| {
                    SendError::Transient(format!("push gateway: {}", error_chain(&e)))
                })?;
            let status = answer.status();
            // A body cut short still leaves the status to go by.
            let body = Limited::new(answer.into_body(), MAX_ANSWER)
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            Ok((status, body))
        };
        match tokio::time::timeout(self.timeout, exchange).await {
            Err(_) => PushOutcome::Failed(SendError::Transient(format!(
                "push gateway: no answer within {} ms",
                self.timeout.as_millis()
            ))),
            Ok(Err(e)) => PushOutcome::Failed(e),
            Ok(Ok((status, body))) => classify(status, &body),
        }
    }
}

/// The answer's meaning (module doc).
pub fn classify(status: StatusCode, body: &[u8]) -> PushOutcome {
    let says_unregistered = || {
        serde_json::from_slice::<serde_json::Value>(body)
            .ok()
            .and_then(|v| v.get("error")?.as_str().map(str::to_owned))
            .is_some_and(|e| e.eq_ignore_ascii_case("unregistered"))
    };
    let failure = || {
        let text = String::from_utf8_lossy(body);
        let text: String = text.trim().chars().take(200).collect();
        format!("push gateway answered {status}: {text}")
    };
    if status.is_server_error()
        || status == StatusCode::REQUEST_TIMEOUT
        || status == StatusCode::TOO_MANY_REQUESTS
    {
        PushOutcome::Failed(SendError::Transient(failure()))
    } else if status == StatusCode::GONE
        || says_unregistered()
        // A gateway's 404 about a token is JSON; a web server's 404 for a
        // wrong PUSH_GATEWAY_URL path is not, and must not kill every token.
        || (status == StatusCode::NOT_FOUND && serde_json::from_slice::<serde_json::Value>(body).is_ok())
    {
        PushOutcome::Unregistered
    } else if status.is_success() {
        PushOutcome::Sent
    } else {
        PushOutcome::Failed(SendError::Permanent(failure()))
    }
}

/// An error and its causes on one line (hyper's own text is just "client
/// error (Connect)").
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_classified() {
        let sent = classify(StatusCode::OK, b"{}");
        assert_eq!(sent, PushOutcome::Sent);
        assert_eq!(classify(StatusCode::GONE, b""), PushOutcome::Unregistered);
        assert_eq!(
            classify(StatusCode::NOT_FOUND, br#"{"error":"NOT_FOUND"}"#),
            PushOutcome::Unregistered
        );
        // A wrong URL path, not a dead token.
        assert!(matches!(
            classify(StatusCode::NOT_FOUND, b"<html>Not Found</html>"),
            PushOutcome::Failed(SendError::Permanent(_))
        ));
        assert_eq!(
            classify(StatusCode::BAD_REQUEST, br#"{"error":"UNREGISTERED"}"#),
            PushOutcome::Unregistered
        );
        for later in [
            StatusCode::SERVICE_UNAVAILABLE,
            StatusCode::INTERNAL_SERVER_ERROR,
            StatusCode::TOO_MANY_REQUESTS,
        ] {
            assert!(matches!(
                classify(later, b""),
                PushOutcome::Failed(SendError::Transient(_))
            ));
        }
        assert!(matches!(
            classify(StatusCode::UNAUTHORIZED, b"bad key"),
            PushOutcome::Failed(SendError::Permanent(e)) if e.contains("401") && e.contains("bad key")
        ));
    }

    #[test]
    fn only_plain_http_urls_are_accepted() {
        assert!(parse_url("http://127.0.0.1:50061/v1/push").is_ok());
        assert!(parse_url("https://push.example.com/v1/push").is_err());
        assert!(parse_url("push.example.com").is_err());
    }

    #[tokio::test]
    async fn a_refused_connection_is_transient() {
        let gateway = PushGateway::new(&PushConfig {
            gateway_url: Some(parse_url("http://127.0.0.1:1/v1/push").unwrap()),
            key: None,
            timeout: Duration::from_secs(2),
        })
        .unwrap()
        .unwrap();
        let message = PushMessage {
            token: "t",
            title: "title",
            body: "body",
            collapse_key: "ticket-1".into(),
            data: PushData {
                notification_id: "n".into(),
                ticket_id: "1".into(),
                human_id: "TKT-1",
                kind: "staff_reply",
                link: "/support/tickets/TKT-1",
            },
        };
        assert!(matches!(
            gateway.send(&message).await,
            PushOutcome::Failed(SendError::Transient(_))
        ));
    }
}
