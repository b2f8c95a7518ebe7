//! SMTP email through lettre's pooled async transport: one message per
//! delivery, plain text and HTML as `multipart/alternative`.
//!
//! Two headers make redelivery safe and threading work:
//!
//! - `Message-ID: <{delivery_id}@{MAIL_DOMAIN}>` is the same on every attempt
//!   of a delivery, so a message sent again after a crash (the server took it,
//!   we died before recording that) is recognisably the same message;
//! - `In-Reply-To` and `References: <ticket-{ticket_id}@{MAIL_DOMAIN}>` name
//!   one (never sent) root per ticket, so mail clients thread every email of
//!   a ticket together.
//!
//! Failures are classified here, once: an SMTP 5xx reply (550 unknown
//! mailbox) or a message the client cannot send is permanent; a 4xx reply,
//! a timeout, a refused or dropped connection and TLS trouble are transient.

use std::{fmt, time::Duration};

use chrono::{DateTime, Utc};
use helpdesk_kit::config::{millis_or, string_or, var_or};
use lettre::{
    AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor,
    message::{Mailbox, MultiPart},
    transport::smtp::{
        PoolConfig,
        authentication::Credentials,
        client::{Tls, TlsParameters},
    },
};
use uuid::Uuid;

use super::SendError;
use crate::templates::EmailText;

/// How the connection to the SMTP server is protected (`SMTP_TLS`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SmtpTls {
    /// `none`: plain SMTP (a local sink or a relay on the same host).
    None,
    /// `starttls`: plain, then upgraded; refuses to go on without TLS.
    StartTls,
    /// `tls`: TLS from the first byte (SMTPS, usually port 465).
    Tls,
}

impl std::str::FromStr for SmtpTls {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "none" => Ok(Self::None),
            "starttls" => Ok(Self::StartTls),
            "tls" => Ok(Self::Tls),
            _ => Err(format!("{s:?} is not none, starttls or tls")),
        }
    }
}

/// A value that stays out of logs and `Debug` output.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"***\"")
    }
}

/// `SMTP_*` and `MAIL_DOMAIN` settings.
#[derive(Clone, Debug)]
pub struct SmtpConfig {
    /// `SMTP_HOST` (default `127.0.0.1`).
    pub host: String,
    /// `SMTP_PORT` (default 2525, the local sink's).
    pub port: u16,
    /// `SMTP_USERNAME` and `SMTP_PASSWORD`: both or neither.
    pub credentials: Option<(String, Secret)>,
    /// `SMTP_TLS`: `none` (default), `starttls` or `tls`.
    pub tls: SmtpTls,
    /// `SMTP_FROM` (default `Helpdesk <support@helpdesk.local>`).
    pub from: Mailbox,
    /// `MAIL_DOMAIN`: the right-hand side of our Message-IDs (default: the
    /// `SMTP_FROM` address's domain).
    pub mail_domain: String,
    /// `SMTP_TIMEOUT_MS` (default 10000): connecting, and each command's
    /// reply; a slower server is a transient failure.
    pub timeout: Duration,
    /// `SMTP_POOL_SIZE` (default 4): connections kept open to the server.
    pub pool_size: u32,
}

impl SmtpConfig {
    pub fn from_env() -> anyhow::Result<Self> {
        let from: Mailbox = string_or("SMTP_FROM", "Helpdesk <support@helpdesk.local>")
            .parse()
            .map_err(|e| anyhow::anyhow!("SMTP_FROM: {e}"))?;
        let credentials = match (
            std::env::var("SMTP_USERNAME")
                .ok()
                .filter(|v| !v.is_empty()),
            std::env::var("SMTP_PASSWORD")
                .ok()
                .filter(|v| !v.is_empty()),
        ) {
            (Some(user), Some(password)) => Some((user, Secret(password))),
            (None, None) => None,
            _ => anyhow::bail!("SMTP_USERNAME and SMTP_PASSWORD go together"),
        };
        let pool_size = var_or("SMTP_POOL_SIZE", 4u32)?;
        anyhow::ensure!(pool_size >= 1, "SMTP_POOL_SIZE must be at least 1");
        Ok(Self {
            host: string_or("SMTP_HOST", "127.0.0.1"),
            port: var_or("SMTP_PORT", 2525)?,
            credentials,
            tls: var_or("SMTP_TLS", SmtpTls::None)?,
            mail_domain: string_or("MAIL_DOMAIN", from.email.domain()),
            from,
            timeout: millis_or("SMTP_TIMEOUT_MS", Duration::from_secs(10))?,
            pool_size,
        })
    }
}

/// One email to send: who, what, and the ids its headers are made of.
#[derive(Clone, Debug)]
pub struct Email<'a> {
    pub delivery_id: Uuid,
    pub ticket_id: Uuid,
    pub to_name: &'a str,
    pub to_address: &'a str,
    pub content: &'a EmailText,
    pub date: DateTime<Utc>,
}

/// The pooled SMTP transport; clones share the pool.
#[derive(Clone)]
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    domain: String,
}

impl Mailer {
    /// Builds the transport; nothing connects until the first send.
    pub fn new(config: &SmtpConfig) -> anyhow::Result<Self> {
        let tls = match config.tls {
            SmtpTls::None => Tls::None,
            SmtpTls::StartTls => Tls::Required(TlsParameters::new(config.host.clone())?),
            SmtpTls::Tls => Tls::Wrapper(TlsParameters::new(config.host.clone())?),
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&config.host)
            .port(config.port)
            .tls(tls)
            .timeout(Some(config.timeout))
            .pool_config(PoolConfig::new().max_size(config.pool_size));
        if let Some((user, password)) = &config.credentials {
            builder = builder.credentials(Credentials::new(user.clone(), password.0.clone()));
        }
        Ok(Self {
            transport: builder.build(),
            from: config.from.clone(),
            domain: config.mail_domain.clone(),
        })
    }

    /// `<{delivery_id}@{MAIL_DOMAIN}>`: the same for every attempt.
    pub fn message_id(&self, delivery_id: Uuid) -> String {
        format!("<{delivery_id}@{}>", self.domain)
    }

    /// `<ticket-{ticket_id}@{MAIL_DOMAIN}>`: the thread every email of a
    /// ticket replies to.
    pub fn thread_id(&self, ticket_id: Uuid) -> String {
        format!("<ticket-{ticket_id}@{}>", self.domain)
    }

    /// The message for `email`; an address that does not parse is permanent.
    pub fn message(&self, email: &Email<'_>) -> Result<Message, SendError> {
        // The error is stored and logged: it names no address.
        let address = email
            .to_address
            .parse()
            .map_err(|e| SendError::Permanent(format!("invalid recipient address: {e}")))?;
        let name = Some(email.to_name.trim())
            .filter(|n| !n.is_empty())
            .map(str::to_owned);
        let thread = self.thread_id(email.ticket_id);
        Message::builder()
            .from(self.from.clone())
            .to(Mailbox::new(name, address))
            .subject(email.content.subject.clone())
            .message_id(Some(self.message_id(email.delivery_id)))
            .in_reply_to(thread.clone())
            .references(thread)
            .date(email.date.into())
            .multipart(MultiPart::alternative_plain_html(
                email.content.text.clone(),
                email.content.html.clone(),
            ))
            .map_err(|e| SendError::Permanent(format!("building the message: {e}")))
    }

    /// Hands `message` to the SMTP server.
    pub async fn send(&self, message: &Message) -> Result<(), SendError> {
        self.transport
            .send(message.clone())
            .await
            .map(drop)
            .map_err(classify)
    }
}

/// 5xx replies and what the client refuses to send are permanent; the rest
/// (4xx, timeouts, refused or dropped connections, TLS) may clear.
fn classify(err: lettre::transport::smtp::Error) -> SendError {
    let text = format!("smtp: {}", redact_addresses(&err.to_string()));
    if err.is_permanent() || err.is_client() {
        SendError::Permanent(text)
    } else {
        SendError::Transient(text)
    }
}

/// A server's reply often quotes the recipient ("550 <bob@example.com>:
/// unknown user"); the error is stored and logged, so addresses go.
fn redact_addresses(text: &str) -> String {
    text.split(' ')
        .map(|word| {
            if word.contains('@') {
                "<address>"
            } else {
                word
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_replies_lose_their_addresses() {
        assert_eq!(
            redact_addresses("550 5.1.1 <bob@example.com>: Recipient address rejected"),
            "550 5.1.1 <address> Recipient address rejected"
        );
    }

    fn mailer() -> Mailer {
        Mailer::new(&SmtpConfig {
            host: "127.0.0.1".into(),
            port: 1,
            credentials: None,
            tls: SmtpTls::None,
            from: "Helpdesk <support@helpdesk.local>".parse().unwrap(),
            mail_domain: "helpdesk.local".into(),
            timeout: Duration::from_secs(2),
            pool_size: 1,
        })
        .unwrap()
    }

    fn content() -> EmailText {
        EmailText {
            subject: "Ticket TKT-ABC123 créé".into(),
            text: "Hello".into(),
            html: "<p>Hello</p>".into(),
        }
    }

    #[tokio::test]
    async fn headers_name_the_delivery_and_the_ticket() {
        let (delivery, ticket) = (Uuid::now_v7(), Uuid::now_v7());
        let content = content();
        let message = mailer()
            .message(&Email {
                delivery_id: delivery,
                ticket_id: ticket,
                to_name: "Alice Archer",
                to_address: "alice@example.com",
                content: &content,
                date: Utc::now(),
            })
            .unwrap();
        let raw = String::from_utf8(message.formatted()).unwrap();
        assert!(raw.contains(&format!("Message-ID: <{delivery}@helpdesk.local>")));
        assert!(raw.contains(&format!("In-Reply-To: <ticket-{ticket}@helpdesk.local>")));
        assert!(raw.contains(&format!("References: <ticket-{ticket}@helpdesk.local>")));
        assert!(
            raw.contains("To: \"Alice Archer\" <alice@example.com>"),
            "{raw}"
        );
        assert!(raw.contains("multipart/alternative"));
    }

    #[tokio::test]
    async fn a_bad_address_is_permanent_and_a_refused_connection_transient() {
        let content = content();
        let mailer = mailer();
        let email = |to| Email {
            delivery_id: Uuid::now_v7(),
            ticket_id: Uuid::now_v7(),
            to_name: "",
            to_address: to,
            content: &content,
            date: Utc::now(),
        };
        assert!(matches!(
            mailer.message(&email("not an address")),
            Err(SendError::Permanent(_))
        ));
        // Port 1: nothing listens.
        let message = mailer.message(&email("alice@example.com")).unwrap();
        assert!(matches!(
            mailer.send(&message).await,
            Err(SendError::Transient(_))
        ));
    }

    #[test]
    fn tls_modes_parse() {
        assert_eq!("STARTTLS".parse::<SmtpTls>().unwrap(), SmtpTls::StartTls);
        assert!("ssl".parse::<SmtpTls>().is_err());
    }
}
