//! The sender against real servers: PostgreSQL (a fresh database per test),
//! the aiosmtpd sink (`tests/support/smtp_sink.py`, a subprocess on a free
//! port, every accepted message a file) and the push gateway stand-in (in
//! process), with contacts from the accounts stand-in. Notifications and
//! deliveries are written with the storage functions intake uses; each test
//! then runs sender passes ([`Sender::send_due`]) and moves a manual clock
//! between them instead of sleeping.
//!
//! `KEEP_TEST_MAIL=1` keeps each test's mail directory to read.
//!
//! Needs python3 with aiosmtpd (`scripts/lib/deps.sh` installs it into
//! `~/.cache/helpdesk-tools/venv`; `HELPDESK_PYTHON` names another python).

use std::{collections::HashMap, path::Path, sync::Arc, time::Duration};

use chrono::{TimeZone, Utc};
use helpdesk_kit::{
    auth::AuthConfig,
    clock::{Clock, ManualClock},
};
use helpdesk_testkit::{
    TestDb,
    smtp::{Mail, SmtpSink},
};
use notification_service::{
    MIGRATOR,
    app::sender::{self, Sender, SenderConfig},
    channels::{
        email::{Email, Mailer, Secret, SmtpConfig, SmtpTls},
        push::{PushConfig, parse_url},
    },
    clients::accounts::Directory,
    domain::{Channel, Kind, retry::RetryPolicy},
    storage::{
        deliveries::NewDelivery,
        notifications::{self, EventPart, NewNotification},
        outgoing,
    },
    templates::Templates,
};
use platform_standin::{DemoData, Options, PushGateway, PushOptions};
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

const ALICE: &str = "0f000000-0000-4000-8000-000000000001";
const NOBODY: &str = "0f000000-0000-4000-8000-000000000002";
/// pt-BR, one push token.
const PAULA: &str = "0f000000-0000-4000-8000-000000000003";
/// One dead push token and one live one.
const DANA: &str = "0f000000-0000-4000-8000-000000000004";
/// Only a dead push token.
const GUS: &str = "0f000000-0000-4000-8000-000000000005";
const CAROL_INACTIVE: &str = "0f000000-0000-4000-8000-000000000006";
/// No email, no push token.
const NED_NO_ADDRESS: &str = "0f000000-0000-4000-8000-000000000007";

const MAIL_DOMAIN: &str = "helpdesk.test";
const PUSH_KEY: &str = "push-test-key";

fn seed() -> DemoData {
    let user = |id: &str, name: &str, email: &str, locale: &str, tokens: &[&str], active: bool| {
        json!({"id": id, "display_name": name, "email": email, "locale": locale,
               "push_tokens": tokens, "active": active, "is_staff": false,
               "create_time": "2024-01-01T00:00:00Z"})
    };
    let users = vec![
        user(
            ALICE,
            "Alice Archer",
            "alice@example.com",
            "en-GB",
            &["tok-alice-1"],
            true,
        ),
        user(NOBODY, "Nobody Here", "nobody@example.com", "en", &[], true),
        user(
            PAULA,
            "Paula Pereira",
            "paula@example.com",
            "pt-BR",
            &["tok-paula-1"],
            true,
        ),
        user(
            DANA,
            "Dana Dual",
            "dana@example.com",
            "en",
            &["dead-dana-1", "live-dana-1"],
            true,
        ),
        user(
            GUS,
            "Gus Gone",
            "gus@example.com",
            "en",
            &["dead-gus-1"],
            true,
        ),
        user(
            CAROL_INACTIVE,
            "Carol Carter",
            "carol@example.com",
            "en",
            &["tok-carol"],
            false,
        ),
        user(NED_NO_ADDRESS, "Ned Nowhere", "", "en", &[], true),
    ];
    DemoData::from_json(&json!({"users": users, "rides": []}).to_string()).expect("seed")
}

// ------------------------------------------------------------- SMTP sink

// ----------------------------------------------------------------- world

struct World {
    db: TestDb,
    clock: Arc<ManualClock>,
    sink: SmtpSink,
    push: PushGateway,
    push_url: String,
    standin_addr: String,
    templates: Arc<Templates>,
    _stops: Vec<oneshot::Sender<()>>,
}

/// A notification written as intake writes it, with its deliveries' ids.
struct Notified {
    notification_id: Uuid,
    deliveries: HashMap<Channel, Uuid>,
}

impl Notified {
    fn email(&self) -> Uuid {
        self.deliveries[&Channel::Email]
    }
    fn push(&self) -> Uuid {
        self.deliveries[&Channel::Push]
    }
}

#[derive(Debug, sqlx::FromRow)]
struct DeliveryRow {
    state: String,
    reason: Option<String>,
    attempts: i32,
    last_error: Option<String>,
}

impl World {
    async fn new() -> Self {
        helpdesk_kit::telemetry::init_for_tests();
        let clock = Arc::new(ManualClock::new(
            Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0).unwrap(),
        ));
        let mut stops = Vec::new();

        let listener = helpdesk_kit::server::bind("127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let standin_addr = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = oneshot::channel::<()>();
        stops.push(stop);
        tokio::spawn(platform_standin::run(
            listener,
            seed(),
            Options::default(),
            async move {
                let _ = stopped.await;
            },
        ));

        let push = PushGateway::new(PushOptions {
            key: Some(PUSH_KEY.into()),
            log_file: None,
        });
        let push_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let push_url = format!("http://{}/v1/push", push_listener.local_addr().unwrap());
        let (stop, stopped) = oneshot::channel::<()>();
        stops.push(stop);
        tokio::spawn(push.clone().serve(push_listener, async move {
            let _ = stopped.await;
        }));

        let templates = Arc::new(
            Templates::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("templates")).unwrap(),
        );
        Self {
            db: TestDb::create(&MIGRATOR).await.expect("database"),
            clock,
            sink: SmtpSink::start(),
            push,
            push_url,
            standin_addr,
            templates,
            _stops: stops,
        }
    }

    fn config(&self) -> SenderConfig {
        SenderConfig {
            smtp: SmtpConfig {
                host: "127.0.0.1".into(),
                port: self.sink.port,
                credentials: None,
                tls: SmtpTls::None,
                from: "Helpdesk <support@helpdesk.test>".parse().unwrap(),
                mail_domain: MAIL_DOMAIN.into(),
                timeout: Duration::from_secs(5),
                pool_size: 2,
            },
            push: PushConfig {
                gateway_url: Some(parse_url(&self.push_url).unwrap()),
                key: Some(Secret(PUSH_KEY.into())),
                timeout: Duration::from_secs(5),
            },
            retry: RetryPolicy {
                first: Duration::from_secs(10),
                max: Duration::from_secs(3600),
                budget: Duration::from_secs(24 * 3600),
            },
            poll: Duration::from_millis(100),
            batch: 32,
            concurrency: 4,
            lease: Duration::from_secs(60),
            app_base_url: "https://app.test/".into(),
        }
    }

    fn sender_with(&self, config: SenderConfig) -> Sender {
        let directory = Directory::new(
            &self.standin_addr,
            Duration::from_secs(2),
            Duration::from_secs(60),
            &AuthConfig::dev(),
            "notification-service",
        )
        .unwrap();
        Sender::new(
            self.db.pool.clone(),
            self.templates.clone(),
            directory,
            config,
            self.clock.clone(),
        )
        .unwrap()
    }

    fn sender(&self) -> Sender {
        self.sender_with(self.config())
    }

    fn advance(&self, seconds: i64) {
        self.clock.advance(chrono::Duration::seconds(seconds));
    }

    /// A `kind` notification about `ticket` for `recipient`, queued on
    /// `channels`.
    async fn notify(
        &self,
        recipient: &str,
        kind: Kind,
        ticket: Uuid,
        subject: &str,
        channels: &[Channel],
    ) -> Notified {
        let simple = ticket.simple().to_string();
        let human_id = format!("TKT-{}", simple[simple.len() - 6..].to_uppercase());
        let link = format!("/support/tickets/{human_id}");
        let params = json!({
            "ticket": {"id": ticket.to_string(), "human_id": human_id, "subject": subject,
                       "status": "open", "priority": "high"},
            "actor_name": "Sam Support", "user_name": "Alice Archer", "assignee_name": "Sue Support",
            "excerpt": "We found it.\nIt is at the front desk.", "reminder": 0,
            "due_at": "", "reason": "", "link": link,
        });
        let notification_id = Uuid::now_v7();
        let mut tx = self.db.pool.begin().await.unwrap();
        let wanted: Vec<NewDelivery> = channels
            .iter()
            .map(|c| NewDelivery {
                notification_id,
                channel: c.as_str(),
            })
            .collect();
        notifications::store(
            &mut tx,
            &EventPart {
                event_id: Uuid::now_v7(),
                ticket_id: ticket,
                human_id: &human_id,
                link: &link,
                params: &params,
                create_time: self.clock.now(),
            },
            &[NewNotification {
                id: notification_id,
                recipient_id: Uuid::parse_str(recipient).unwrap(),
                kind: kind.as_str(),
                title: "title".into(),
                body: "body".into(),
                declined: 0,
            }],
            &wanted,
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
        let rows: Vec<(Uuid, String)> =
            sqlx::query_as("SELECT id, channel FROM deliveries WHERE notification_id = $1")
                .bind(notification_id)
                .fetch_all(&self.db.pool)
                .await
                .unwrap();
        Notified {
            notification_id,
            deliveries: rows
                .into_iter()
                .map(|(id, channel)| (channel.parse().unwrap(), id))
                .collect(),
        }
    }

    async fn delivery(&self, id: Uuid) -> DeliveryRow {
        sqlx::query_as("SELECT state, reason, attempts, last_error FROM deliveries WHERE id = $1")
            .bind(id)
            .fetch_one(&self.db.pool)
            .await
            .unwrap()
    }
}

// ----------------------------------------------------------------- tests

#[tokio::test]
async fn smtp_answering_451_for_a_while_then_250_sends_each_email_exactly_once() {
    let world = World::new().await;
    let sender = world.sender();
    let ticket = Uuid::now_v7();
    let mut sent = Vec::new();
    for _ in 0..3 {
        let n = world
            .notify(
                ALICE,
                Kind::StaffReply,
                ticket,
                "Lost phone",
                &[Channel::Email],
            )
            .await;
        sent.push(n.email());
    }

    world.sink.set_mode("tempfail");
    assert_eq!(sender.send_due().await.unwrap(), 3);
    for id in &sent {
        let row = world.delivery(*id).await;
        assert_eq!((row.state.as_str(), row.attempts), ("queued", 1));
        assert!(row.last_error.unwrap_or_default().contains("451"));
    }
    // The retry is not due yet: a pass now claims nothing.
    assert_eq!(sender.send_due().await.unwrap(), 0);
    world.advance(3600);
    assert_eq!(sender.send_due().await.unwrap(), 3);
    assert!(world.sink.files().is_empty());

    world.sink.set_mode("accept");
    world.advance(3600);
    assert_eq!(sender.send_due().await.unwrap(), 3);
    for id in &sent {
        let row = world.delivery(*id).await;
        assert_eq!((row.state.as_str(), row.attempts), ("sent", 3), "{row:?}");
    }
    world.advance(24 * 3600);
    assert_eq!(sender.send_due().await.unwrap(), 0);
    assert_eq!(
        world.sink.files().len(),
        3,
        "exactly one email per delivery"
    );
}

#[tokio::test]
async fn a_550_fails_at_once_and_is_never_retried() {
    let world = World::new().await;
    let sender = world.sender();
    let n = world
        .notify(
            NOBODY,
            Kind::TicketResolved,
            Uuid::now_v7(),
            "Refund",
            &[Channel::Email],
        )
        .await;

    let failed = r#"notification_deliveries_total{channel="email",outcome="failed"}"#;
    let series = |name: &str| {
        helpdesk_kit::metrics::value(&helpdesk_kit::metrics::encode(), name).unwrap_or(0.0)
    };
    let before = series(failed);
    assert_eq!(sender.send_due().await.unwrap(), 1);
    let row = world.delivery(n.email()).await;
    assert_eq!((row.state.as_str(), row.attempts), ("failed", 1));
    let error = row.last_error.unwrap();
    assert!(error.contains("550"), "{error}");
    // Counted (other tests of this binary may fail emails at the same time).
    assert!(series(failed) >= before + 1.0);

    world.advance(48 * 3600);
    assert_eq!(sender.send_due().await.unwrap(), 0);
    assert_eq!(world.delivery(n.email()).await.attempts, 1);
    assert!(world.sink.files().is_empty());
}

#[tokio::test]
async fn transient_failures_stop_at_the_retry_budget() {
    let world = World::new().await;
    let mut config = world.config();
    config.retry.budget = Duration::from_secs(60);
    let sender = world.sender_with(config);
    let n = world
        .notify(
            ALICE,
            Kind::StaffReply,
            Uuid::now_v7(),
            "Lost phone",
            &[Channel::Email],
        )
        .await;
    world.sink.set_mode("tempfail");

    assert_eq!(sender.send_due().await.unwrap(), 1);
    assert_eq!(world.delivery(n.email()).await.state, "queued");
    world.advance(55);
    assert_eq!(sender.send_due().await.unwrap(), 1);
    let row = world.delivery(n.email()).await;
    assert_eq!((row.state.as_str(), row.attempts), ("failed", 2), "{row:?}");
    assert!(
        row.last_error
            .unwrap()
            .starts_with("gave up after 2 attempts")
    );
}

#[tokio::test]
async fn emails_carry_a_stable_message_id_thread_by_ticket_and_escape_html() {
    let world = World::new().await;
    let sender = world.sender();
    let (ticket, other) = (Uuid::now_v7(), Uuid::now_v7());
    let subject = "Lost <b>phone</b> & \"wallet\"";
    let first = world
        .notify(ALICE, Kind::StaffReply, ticket, subject, &[Channel::Email])
        .await;
    let second = world
        .notify(
            ALICE,
            Kind::TicketResolved,
            ticket,
            subject,
            &[Channel::Email],
        )
        .await;
    let elsewhere = world
        .notify(
            PAULA,
            Kind::StaffReply,
            other,
            "Cobrança duplicada",
            &[Channel::Email],
        )
        .await;
    assert_eq!(sender.send_due().await.unwrap(), 3);

    let mails = world.sink.messages();
    assert_eq!(mails.len(), 3);
    let by_id: HashMap<&str, &Mail> = mails.iter().map(|m| (m.header("message-id"), m)).collect();
    let mail_of = |n: &Notified| {
        let id = format!("<{}@{MAIL_DOMAIN}>", n.email());
        *by_id
            .get(id.as_str())
            .unwrap_or_else(|| panic!("no mail with Message-ID {id}"))
    };
    let thread = format!("<ticket-{ticket}@{MAIL_DOMAIN}>");
    for n in [&first, &second] {
        let mail = mail_of(n);
        assert_eq!(mail.header("in-reply-to"), thread);
        assert_eq!(mail.header("references"), thread);
        assert_eq!(mail.header("to"), "Alice Archer <alice@example.com>");
        assert_eq!(mail.content_type, "multipart/alternative");
        assert!(mail.text.contains("Hello Alice Archer,"), "{}", mail.text);
        assert!(mail.text.contains(subject), "the text part is not escaped");
        assert!(
            mail.html.contains("Lost &lt;b&gt;phone&lt;"),
            "{}",
            mail.html
        );
        assert!(!mail.html.contains("<b>phone"), "{}", mail.html);
        assert!(
            mail.html.contains("&amp; &quot;wallet&quot;"),
            "{}",
            mail.html
        );
        assert!(mail.text.contains("https://app.test/support/tickets/TKT-"));
    }
    assert!(
        mail_of(&first)
            .header("subject")
            .starts_with("New reply from support on TKT-")
    );
    // Another ticket, another thread; Paula reads Portuguese.
    let pt = mail_of(&elsewhere);
    assert_eq!(
        pt.header("references"),
        format!("<ticket-{other}@{MAIL_DOMAIN}>")
    );
    assert!(pt.text.contains("Olá, Paula Pereira,"), "{}", pt.text);
    assert!(
        pt.header("subject").starts_with("Nova resposta do suporte"),
        "{:?}",
        pt.headers
    );
    assert!(pt.html.contains("lang=\"pt-BR\""));
}

#[tokio::test]
async fn a_claimed_delivery_waits_for_its_lease_and_a_resend_keeps_its_message_id() {
    let world = World::new().await;
    let sender = world.sender();
    let n = world
        .notify(
            ALICE,
            Kind::StaffReply,
            Uuid::now_v7(),
            "Lost phone",
            &[Channel::Email],
        )
        .await;

    // A sender claims it, gets the email accepted, and dies before
    // recording that.
    let now = world.clock.now();
    let claimed = outgoing::claim(&world.db.pool, now, now + chrono::Duration::seconds(60), 10)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    let content = world
        .templates
        .email("en", Kind::StaffReply, &{
            let mut p = claimed[0].params.clone();
            p["recipient_name"] = "Alice Archer".into();
            p["url"] = "https://app.test/x".into();
            p
        })
        .unwrap();
    let mailer = Mailer::new(&world.config().smtp).unwrap();
    let message = mailer
        .message(&Email {
            delivery_id: n.email(),
            ticket_id: claimed[0].ticket_id,
            to_name: "Alice Archer",
            to_address: "alice@example.com",
            content: &content,
            date: now,
        })
        .unwrap();
    mailer.send(&message).await.unwrap();

    // Another sender leaves it alone while the lease holds...
    assert_eq!(sender.send_due().await.unwrap(), 0);
    world.advance(59);
    assert_eq!(sender.send_due().await.unwrap(), 0);
    assert_eq!(world.sink.files().len(), 1);
    // ...and sends it once the lease lapses.
    world.advance(2);
    assert_eq!(sender.send_due().await.unwrap(), 1);
    let row = world.delivery(n.email()).await;
    assert_eq!((row.state.as_str(), row.attempts), ("sent", 2));
    world.advance(3600);
    assert_eq!(sender.send_due().await.unwrap(), 0);

    // Sent twice in all (the dead sender's and the retry), recognisably the
    // same message.
    let mails = world.sink.messages();
    assert_eq!(mails.len(), 2);
    let id = format!("<{}@{MAIL_DOMAIN}>", n.email());
    assert!(mails.iter().all(|m| m.header("message-id") == id));
    // The dead sender's outcome, had it come back, no longer counts.
    let stale = outgoing::failed(&world.db.pool, n.email(), 1, "late", &[])
        .await
        .unwrap();
    assert!(!stale);
    assert_eq!(world.delivery(n.email()).await.state, "sent");
}

#[tokio::test]
async fn the_push_gateway_down_then_up_gets_each_push_exactly_once() {
    let world = World::new().await;
    let sender = world.sender();
    let ticket = Uuid::now_v7();
    let a = world
        .notify(
            PAULA,
            Kind::StaffReply,
            ticket,
            "Cobrança duplicada",
            &[Channel::Push],
        )
        .await;
    let b = world
        .notify(
            PAULA,
            Kind::TicketResolved,
            ticket,
            "Cobrança duplicada",
            &[Channel::Push],
        )
        .await;

    world.push.set_down(true);
    assert_eq!(sender.send_due().await.unwrap(), 2);
    world.advance(3600);
    assert_eq!(sender.send_due().await.unwrap(), 2);
    assert_eq!(world.push.requests(), 4);
    assert!(world.push.received().is_empty());
    let row = world.delivery(a.push()).await;
    assert_eq!((row.state.as_str(), row.attempts), ("queued", 2));
    assert!(row.last_error.unwrap().contains("503"));

    world.push.set_down(false);
    world.advance(3600);
    assert_eq!(sender.send_due().await.unwrap(), 2);
    world.advance(24 * 3600);
    assert_eq!(sender.send_due().await.unwrap(), 0);

    let received = world.push.received();
    assert_eq!(received.len(), 2, "{received:#?}");
    for n in [&a, &b] {
        assert_eq!(world.delivery(n.push()).await.state, "sent");
        let push: Vec<&Value> = received
            .iter()
            .filter(|p| p["data"]["notification_id"] == n.notification_id.to_string())
            .collect();
        assert_eq!(push.len(), 1);
        assert_eq!(push[0]["token"], "tok-paula-1");
        assert_eq!(push[0]["collapse_key"], format!("ticket-{ticket}"));
        assert_eq!(push[0]["data"]["ticket_id"], ticket.to_string());
        assert!(
            push[0]["data"]["link"]
                .as_str()
                .unwrap()
                .starts_with("/support/tickets/TKT-")
        );
    }
    // Rendered in Paula's locale.
    let resolved = received
        .iter()
        .find(|p| p["data"]["kind"] == "ticket_resolved")
        .unwrap();
    assert!(
        resolved["title"]
            .as_str()
            .unwrap()
            .contains("foi resolvido"),
        "{resolved}"
    );
}

#[tokio::test]
async fn an_unregistered_token_is_recorded_and_never_used_again() {
    let world = World::new().await;
    let sender = world.sender();
    let ticket = Uuid::now_v7();

    // Dana: one dead token, one live one.
    let first = world
        .notify(
            DANA,
            Kind::StaffReply,
            ticket,
            "Lost phone",
            &[Channel::Push],
        )
        .await;
    assert_eq!(sender.send_due().await.unwrap(), 1);
    assert_eq!(world.delivery(first.push()).await.state, "sent");
    assert_eq!(world.push.requests(), 2);
    let dead: Vec<(String, Uuid)> =
        sqlx::query_as("SELECT token, account_id FROM unregistered_push_tokens")
            .fetch_all(&world.db.pool)
            .await
            .unwrap();
    assert_eq!(
        dead,
        [("dead-dana-1".to_owned(), Uuid::parse_str(DANA).unwrap())]
    );

    let second = world
        .notify(
            DANA,
            Kind::TicketResolved,
            ticket,
            "Lost phone",
            &[Channel::Push],
        )
        .await;
    assert_eq!(sender.send_due().await.unwrap(), 1);
    assert_eq!(world.delivery(second.push()).await.state, "sent");
    assert_eq!(world.push.requests(), 3, "only the live token this time");
    let tokens: Vec<String> = world
        .push
        .received()
        .iter()
        .map(|p| p["token"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(tokens, ["live-dana-1", "live-dana-1"]);

    // Gus: his only token dies on the first push; the next is not tried.
    let gus = world
        .notify(
            GUS,
            Kind::StaffReply,
            ticket,
            "Lost phone",
            &[Channel::Push],
        )
        .await;
    assert_eq!(sender.send_due().await.unwrap(), 1);
    let row = world.delivery(gus.push()).await;
    assert_eq!(
        (row.state.as_str(), row.reason.as_deref()),
        ("skipped", Some("unregistered_token"))
    );
    let again = world
        .notify(
            GUS,
            Kind::TicketResolved,
            ticket,
            "Lost phone",
            &[Channel::Push],
        )
        .await;
    let before = world.push.requests();
    assert_eq!(sender.send_due().await.unwrap(), 1);
    let row = world.delivery(again.push()).await;
    assert_eq!(
        (row.state.as_str(), row.reason.as_deref()),
        ("skipped", Some("unregistered_token"))
    );
    assert_eq!(world.push.requests(), before);
}

#[tokio::test]
async fn deliveries_nobody_can_receive_are_skipped_with_the_reason() {
    let world = World::new().await;
    let both = [Channel::Email, Channel::Push];
    let ticket = Uuid::now_v7();
    let inactive = world
        .notify(CAROL_INACTIVE, Kind::StaffReply, ticket, "s", &both)
        .await;
    let nowhere = world
        .notify(NED_NO_ADDRESS, Kind::StaffReply, ticket, "s", &both)
        .await;
    let unknown = world
        .notify(
            "0f000000-0000-4000-8000-0000000000ff",
            Kind::StaffReply,
            ticket,
            "s",
            &both,
        )
        .await;
    assert_eq!(world.sender().send_due().await.unwrap(), 6);
    let reason = |row: DeliveryRow| (row.state, row.reason.unwrap_or_default());
    for (n, why) in [
        (&inactive, "inactive_account"),
        (&nowhere, "no_address"),
        (&unknown, "no_address"),
    ] {
        for id in [n.email(), n.push()] {
            assert_eq!(
                reason(world.delivery(id).await),
                ("skipped".into(), why.into())
            );
        }
    }

    // No gateway configured: push is skipped, email still goes.
    let mut config = world.config();
    config.push.gateway_url = None;
    let alice = world
        .notify(ALICE, Kind::StaffReply, ticket, "s", &both)
        .await;
    assert_eq!(world.sender_with(config).send_due().await.unwrap(), 2);
    assert_eq!(
        reason(world.delivery(alice.push()).await),
        ("skipped".into(), "no_gateway".into())
    );
    assert_eq!(world.delivery(alice.email()).await.state, "sent");
    assert!(world.push.received().is_empty());
}

#[tokio::test]
async fn the_loop_sends_when_woken_and_stops_when_told() {
    let world = World::new().await;
    let mut config = world.config();
    // Only a wake-up can make it look again within the test.
    config.poll = Duration::from_secs(3600);
    let sender = world.sender_with(config);
    let stop = CancellationToken::new();
    let running = tokio::spawn(sender::run(sender.clone(), stop.clone()));

    let n = world
        .notify(
            ALICE,
            Kind::StaffReply,
            Uuid::now_v7(),
            "Lost phone",
            &[Channel::Email],
        )
        .await;
    sender.wake();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while world.delivery(n.email()).await.state != "sent" {
        assert!(
            tokio::time::Instant::now() < deadline,
            "not sent after a wake-up"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(world.sink.files().len(), 1);

    stop.cancel();
    tokio::time::timeout(Duration::from_secs(5), running)
        .await
        .expect("the loop did not stop")
        .unwrap();
}
