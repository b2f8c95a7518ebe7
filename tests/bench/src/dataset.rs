//! The benchmark data set (issue 14): tickets over users and staff with
//! realistic mixes of status, priority, category and age, a conversation on
//! most of them with some internal notes, and support vocabulary in every
//! text so full-text search has something to find.
//!
//! `bench dataset --tickets 1000000 --messages 5000000` loads it into a
//! database migrated by the ticket service's own migrator, named after its
//! size (`helpdesk_bench_1000000_5000000`), and marks it complete; other
//! modes reuse a complete one instead of loading again (`ensure`).
//!
//! Loading: secondary indexes are dropped and rebuilt after the COPY (one
//! index build beats millions of index inserts), foreign-key triggers are
//! off for the loading sessions (the generator writes only valid
//! references), and several COPY streams run at once, because the server's
//! share of the work (parsing, and each row's generated tsvector) is the
//! bulk of it. Everything is generated from a fixed seed: two loads of the
//! same size hold the same text.

use std::{
    sync::{Arc, Mutex},
    time::Instant,
};

use chrono::{DateTime, Duration, Utc};
use sqlx::{Connection, Executor, PgConnection, PgPool};
use uuid::Uuid;

/// How big a data set is.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    pub tickets: u64,
    pub messages: u64,
    pub users: u64,
    pub staff: u64,
}

impl Shape {
    /// `--tickets N --messages M` from the command line (after the mode),
    /// defaulting to issue 14's 1,000,000 and 5,000,000.
    pub fn from_args() -> anyhow::Result<Self> {
        let mut shape = Shape {
            tickets: 1_000_000,
            messages: 5_000_000,
            users: 100_000,
            staff: 200,
        };
        let args: Vec<String> = std::env::args().skip(2).collect();
        let mut it = args.iter();
        while let Some(flag) = it.next() {
            let value = it
                .next()
                .ok_or_else(|| anyhow::anyhow!("{flag} needs a value"))?;
            let n: u64 = value.replace('_', "").parse()?;
            match flag.as_str() {
                "--tickets" => shape.tickets = n,
                "--messages" => shape.messages = n,
                "--users" => shape.users = n,
                "--staff" => shape.staff = n,
                other => anyhow::bail!("unknown flag {other}"),
            }
        }
        anyhow::ensure!(shape.tickets > 0 && shape.users > 0 && shape.staff > 0);
        Ok(shape)
    }

    /// The database a data set of this shape lives in.
    pub fn database(&self) -> String {
        format!("helpdesk_bench_{}_{}", self.tickets, self.messages)
    }
}

/// The account id of user `n` (0-based): the stand-in's customer prefix.
pub fn user_id(n: u64) -> Uuid {
    Uuid::parse_str(&format!("0a000000-0000-4000-8000-{:012}", n + 1_000_000)).expect("uuid")
}

/// The account id of staff member `n`.
pub fn staff_id(n: u64) -> Uuid {
    Uuid::parse_str(&format!("0b000000-0000-4000-8000-{:012}", n + 1_000_000)).expect("uuid")
}

/// Makes sure the data set of `shape` exists and is complete (loading it
/// if not); returns its URL.
pub async fn ensure(shape: Shape) -> anyhow::Result<String> {
    let admin = helpdesk_testkit::admin_url();
    let name = shape.database();
    let url = helpdesk_testkit::with_database(&admin, &name);
    let mark = completion_mark();
    let mut conn = PgConnection::connect(&admin).await?;
    let comment: Option<String> = sqlx::query_scalar(
        "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = $1",
    )
    .bind(&name)
    .fetch_optional(&mut conn)
    .await?
    .flatten();
    if comment.as_deref() == Some(mark.as_str()) {
        println!("reusing data set {name}");
        return Ok(url);
    }
    load(shape).await?;
    Ok(url)
}

/// What marks a database complete: the migrations it was loaded under.
fn completion_mark() -> String {
    let last = ticket_service::MIGRATOR
        .iter()
        .map(|m| m.version)
        .max()
        .unwrap_or(0);
    format!("complete; migrations up to {last}")
}

/// Loads a fresh data set of `shape` into its database (dropped first).
pub async fn load(shape: Shape) -> anyhow::Result<()> {
    load_into(shape, &shape.database()).await.map(|_| ())
}

/// Loads a fresh data set of `shape` into database `name` (dropped
/// first); returns its URL.
pub async fn load_into(shape: Shape, name: &str) -> anyhow::Result<String> {
    let admin = helpdesk_testkit::admin_url();
    let url = helpdesk_testkit::with_database(&admin, name);
    let mut conn = PgConnection::connect(&admin).await?;
    conn.execute(sqlx::AssertSqlSafe(format!(
        r#"DROP DATABASE IF EXISTS "{name}" WITH (FORCE)"#
    )))
    .await?;
    conn.execute(sqlx::AssertSqlSafe(format!(r#"CREATE DATABASE "{name}""#)))
        .await?;
    let pool = helpdesk_kit::db::connect(&url, 8).await?;
    helpdesk_kit::db::migrate(&pool, &ticket_service::MIGRATOR).await?;

    println!(
        "loading {} tickets over {} users and {} staff, {} messages into {name}",
        shape.tickets, shape.users, shape.staff, shape.messages
    );
    let started = Instant::now();
    let indexes = drop_secondary_indexes(&pool).await?;
    let now = Utc::now();
    const STREAMS: u64 = 4;
    let mut tasks = Vec::new();
    for s in 0..STREAMS {
        let (url, start, end) = (
            url.clone(),
            shape.tickets * s / STREAMS,
            shape.tickets * (s + 1) / STREAMS,
        );
        tasks.push(tokio::spawn(async move {
            copy_range(&url, shape, start, end, now).await
        }));
    }
    let mut messages = 0;
    for task in tasks {
        messages += task.await??;
    }
    let copied = started.elapsed();
    // Two builders side by side: GIN builds use one core each, so the two
    // full-text indexes go first, one per builder, while the B-trees (built
    // with parallel workers) fill in after them.
    let mut queue = indexes;
    // Builders pop from the end: the GIN indexes last in the queue.
    queue.sort_by_key(|def| def.contains("USING gin"));
    let queue = Arc::new(Mutex::new(queue));
    let mut builders = Vec::new();
    for _ in 0..2 {
        let (url, queue) = (url.clone(), queue.clone());
        builders.push(tokio::spawn(async move {
            let mut conn = PgConnection::connect(&url).await?;
            conn.execute("SET maintenance_work_mem = '512MB'").await?;
            loop {
                let next = queue.lock().expect("not poisoned").pop();
                let Some(def) = next else { break };
                conn.execute(sqlx::AssertSqlSafe(def)).await?;
            }
            anyhow::Ok(())
        }));
    }
    for builder in builders {
        builder.await??;
    }
    sqlx::query("SELECT setval('ticket_number_seq', $1)")
        .bind(i64::try_from(shape.tickets)?)
        .execute(&pool)
        .await?;
    let (a, b) = tokio::join!(
        sqlx::query("VACUUM (ANALYZE) tickets").execute(&pool),
        sqlx::query("VACUUM (ANALYZE) ticket_messages").execute(&pool),
    );
    a?;
    b?;
    pool.close().await;
    conn.execute(sqlx::AssertSqlSafe(format!(
        r#"COMMENT ON DATABASE "{name}" IS '{}'"#,
        completion_mark()
    )))
    .await?;
    println!(
        "loaded {} tickets and {messages} messages in {:.1} s (COPY {:.1} s, indexes and analyze {:.1} s)",
        shape.tickets,
        started.elapsed().as_secs_f64(),
        copied.as_secs_f64(),
        (started.elapsed() - copied).as_secs_f64()
    );
    Ok(url)
}

/// Drops every index of the two big tables but their primary keys and
/// unique constraints; returns the statements that recreate them.
async fn drop_secondary_indexes(pool: &PgPool) -> anyhow::Result<Vec<String>> {
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT i.indexname, i.indexdef FROM pg_indexes i
         WHERE i.schemaname = 'public' AND i.tablename IN ('tickets', 'ticket_messages')
           AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)",
    )
    .fetch_all(pool)
    .await?;
    for (name, _) in &rows {
        sqlx::query(sqlx::AssertSqlSafe(format!(r#"DROP INDEX "{name}""#)))
            .execute(pool)
            .await?;
    }
    Ok(rows.into_iter().map(|(_, def)| def).collect())
}

/// COPYs tickets `start..end` and their messages over two connections of
/// one stream; returns the number of messages.
async fn copy_range(
    url: &str,
    shape: Shape,
    start: u64,
    end: u64,
    now: DateTime<Utc>,
) -> anyhow::Result<u64> {
    let mut tconn = PgConnection::connect(url).await?;
    let mut mconn = PgConnection::connect(url).await?;
    for c in [&mut tconn, &mut mconn] {
        c.execute("SET session_replication_role = replica; SET synchronous_commit = off")
            .await?;
    }
    let mut tcopy = tconn
        .copy_in_raw(
            "COPY tickets (id, number, human_id, user_id, ride_id, category_id, subject,
                           description, priority, status, assignee_id, rating, rating_feedback,
                           first_response_at, resolved_at, closed_at, rated_at, created_at,
                           updated_at, version) FROM STDIN",
        )
        .await?;
    let mut mcopy = mconn
        .copy_in_raw(
            "COPY ticket_messages (id, ticket_id, author_id, author_role, body, internal, created_at)
             FROM STDIN",
        )
        .await?;
    // The stream's exact share of the messages, spread by weight.
    let quota = shape.messages * end / shape.tickets - shape.messages * start / shape.tickets;
    let weights: Vec<f64> = (start..end)
        .map(|n| Ticket::new(shape, n, now).message_weight())
        .collect();
    let total: f64 = weights.iter().sum();
    let (mut cum, mut given) = (0.0, 0u64);
    let (mut tbuf, mut mbuf) = (String::new(), String::new());
    for (i, n) in (start..end).enumerate() {
        cum += weights[i];
        let due = ((cum / total) * quota as f64).round() as u64;
        let count = due.min(quota) - given;
        given += count;
        let ticket = Ticket::new(shape, n, now);
        ticket.write_row(&mut tbuf);
        ticket.write_messages(count, &mut mbuf);
        if tbuf.len() > 1 << 20 {
            tcopy.send(std::mem::take(&mut tbuf).into_bytes()).await?;
        }
        if mbuf.len() > 1 << 20 {
            mcopy.send(std::mem::take(&mut mbuf).into_bytes()).await?;
        }
    }
    tcopy.send(tbuf.into_bytes()).await?;
    mcopy.send(mbuf.into_bytes()).await?;
    tcopy.finish().await?;
    Ok(mcopy.finish().await?)
}

/// SplitMix64: a small, fast, seedable generator (no dependency).
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0x5DEE_CE66_D1CE_4E5B)
    }
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn pick<'a, T: ?Sized>(&mut self, items: &[&'a T]) -> &'a T {
        items[self.below(items.len() as u64) as usize]
    }
    /// An index into `weights` with probability proportional to its weight.
    fn weighted(&mut self, weights: &[u32]) -> usize {
        let total: u32 = weights.iter().sum();
        let mut x = self.below(u64::from(total)) as u32;
        for (i, w) in weights.iter().enumerate() {
            if x < *w {
                return i;
            }
            x -= w;
        }
        weights.len() - 1
    }
}

const CATEGORIES: [&str; 8] = [
    "ride_issue",
    "payment_issue",
    "driver_issue",
    "lost_item",
    "account",
    "vehicle",
    "gps_location",
    "other",
];
const CATEGORY_WEIGHTS: [u32; 8] = [25, 25, 15, 8, 10, 5, 7, 5];
const PRIORITIES: [&str; 4] = ["low", "medium", "high", "urgent"];
const PRIORITY_WEIGHTS: [u32; 4] = [25, 50, 20, 5];

/// Subjects per category (same order as `CATEGORIES`).
const SUBJECTS: [&[&str]; 8] = [
    &[
        "Trip took much longer than expected",
        "Driver took a longer route",
        "Ride was cancelled after waiting",
        "Charged for a ride I did not take",
        "Pickup was at the wrong place",
        "Driver never arrived",
        "Airport trip fare too high",
        "Shared ride detour",
    ],
    &[
        "Charged twice for one trip",
        "Refund not received",
        "Cancellation fee charged unfairly",
        "Promo code did not apply",
        "Receipt shows wrong amount",
        "Card declined but money taken",
        "Tip charged without asking",
        "Surge pricing was not shown",
    ],
    &[
        "Driver was rude",
        "Driver was speaking on the phone while driving",
        "Unsafe driving on the highway",
        "Driver asked for cash payment",
        "Driver refused to take my dog",
        "Driver smoked in the car",
        "Driver ended the trip early",
    ],
    &[
        "Left my phone in the car",
        "Lost wallet after a ride",
        "Forgot my keys in the vehicle",
        "Left a backpack in the trunk",
        "Lost my glasses during the trip",
        "Umbrella left behind",
        "Laptop bag forgotten in the back seat",
    ],
    &[
        "Cannot sign in to my account",
        "Password reset email never arrives",
        "Phone number change",
        "Account blocked without reason",
        "Delete my account",
        "Two-factor code not received",
        "Email address already in use",
    ],
    &[
        "Car was dirty",
        "Air conditioning not working",
        "Vehicle did not match the app",
        "Licence plate was different",
        "Seat belts were broken",
        "Car smelled of smoke",
    ],
    &[
        "GPS showed the wrong pickup point",
        "Map sent the driver to the wrong street",
        "Location not updating in the app",
        "Drop-off pin moved by itself",
        "Route through a closed road",
    ],
    &[
        "App crashes on start",
        "Question about my invoice",
        "Feedback about the new app",
        "Accessibility request",
        "Business account question",
        "Notifications arrive late",
    ],
];

const PLACES: [&str; 16] = [
    "the airport",
    "the central station",
    "downtown",
    "the stadium",
    "my office",
    "the hospital",
    "the university campus",
    "the shopping mall",
    "the harbour",
    "the hotel",
    "the conference centre",
    "the train station",
    "the old town",
    "the museum",
    "the concert hall",
    "the bus terminal",
];

const DETAILS: [&str; 24] = [
    "The app showed a different price before I booked.",
    "I have attached a screenshot of the receipt.",
    "This is the second time it happened this month.",
    "My card was charged even though the trip was cancelled.",
    "The driver did not follow the navigation.",
    "I waited more than twenty minutes at the pickup point.",
    "Please check the GPS trace of the trip.",
    "I would like a refund to my original payment method.",
    "The driver was polite but the car was in bad condition.",
    "I could not reach the driver by phone.",
    "Customer support chat did not answer.",
    "The estimated arrival time kept changing.",
    "My child was with me and the seat was unsafe.",
    "The fare doubled because of surge pricing.",
    "I paid with my business account by mistake.",
    "The driver asked me to cancel the ride myself.",
    "Please call me back, it is urgent.",
    "I used a promo code from the newsletter.",
    "The app logged me out and now I cannot sign in.",
    "There was heavy traffic near the bridge.",
    "The vehicle had a strong smell of smoke.",
    "I left the item on the back seat behind the driver.",
    "The trip was much longer than the estimate.",
    "I am a regular customer and this never happened before.",
];

const USER_REPLIES: [&str; 12] = [
    "Thanks for looking into this, any update?",
    "I still have not received the refund.",
    "Here is the trip date and time you asked for.",
    "The driver still has my phone, can you contact him?",
    "I checked my bank statement and the charge is still there.",
    "That is not what happened, please read my message again.",
    "Thank you, the problem is solved.",
    "Can I get a receipt with the company name on it?",
    "The promo code still does not work.",
    "I tried again and the app crashes at the payment screen.",
    "Please escalate this, it has been a week.",
    "The wallet is brown leather with my ID inside.",
];

const STAFF_REPLIES: [&str; 12] = [
    "Sorry for the trouble, we are checking the trip details.",
    "We have issued a refund, it should arrive in 3 to 5 business days.",
    "We contacted the driver and asked him to return your item.",
    "Could you send us the date and time of the trip?",
    "We adjusted the fare to the original estimate.",
    "The cancellation fee has been reversed.",
    "We reported the driver's behaviour to our safety team.",
    "Please update the app to the latest version and try again.",
    "Your account is unblocked, you can sign in again.",
    "We sent a password reset link to your email address.",
    "The duplicate charge was only an authorisation hold and will be released.",
    "We have added a credit to your account for the inconvenience.",
];

/// Internal notes: staff-only words (`chargeback`, `fraud`, `tier 2`...)
/// that a user's search must never match.
const NOTES: [&str; 10] = [
    "Escalated to tier 2, possible chargeback.",
    "Fraud check: card used from three countries this week.",
    "Driver has two similar complaints, flagged for quality review.",
    "Refund approved by finance, ledger entry pending.",
    "VIP customer, handle with priority.",
    "Called the driver, he denies everything. Keep the ticket open.",
    "Duplicate of an older ticket, merged notes here.",
    "Payment provider incident on that day explains the double charge.",
    "Lost and found office confirmed the item is in storage.",
    "Goodwill voucher of 10 EUR issued, do not repeat.",
];

/// The receipt number some tickets quote: unique per ticket.
pub fn receipt(n: u64) -> String {
    format!("R{:08}", n.wrapping_mul(7_919) % 100_000_000)
}

/// One generated ticket: everything is a function of its number.
struct Ticket {
    n: u64,
    id: Uuid,
    user: Uuid,
    category: usize,
    priority: &'static str,
    status: &'static str,
    assignee: Option<Uuid>,
    created: DateTime<Utc>,
    resolved: Option<DateTime<Utc>>,
    closed: Option<DateTime<Utc>>,
    rating: Option<u64>,
    ride: Option<Uuid>,
    subject: String,
    description: String,
}

/// Timestamps as COPY's text format reads them.
fn ts(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S%.6f+00").to_string()
}

fn opt<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map_or_else(|| "\\N".to_owned(), |v| v.to_string())
}

/// A v7-shaped UUID at `t` whose random bits come from `rng`.
fn v7(t: DateTime<Utc>, rng: &mut Rng) -> Uuid {
    let ms = u64::try_from(t.timestamp_millis()).unwrap_or(0);
    let mut random = [0u8; 10];
    random[..8].copy_from_slice(&rng.next().to_be_bytes());
    random[8..].copy_from_slice(&rng.next().to_be_bytes()[..2]);
    uuid::Builder::from_unix_timestamp_millis(ms, &random).into_uuid()
}

impl Ticket {
    fn new(shape: Shape, n: u64, now: DateTime<Utc>) -> Self {
        let mut rng = Rng::new(n);
        // Two years of tickets, more of them lately (the business grows):
        // ticket n of N sits at sqrt(n / N) of the span.
        let span = Duration::days(730).num_seconds() as f64;
        let age = span * (1.0 - ((n as f64 + 0.5) / shape.tickets as f64).sqrt());
        let created = now - Duration::milliseconds((age * 1000.0) as i64 + 60_000);
        let age_days = age / 86_400.0;
        // Old tickets are done; recent ones are still being worked on.
        let status = if age_days > 14.0 {
            ["closed", "closed", "closed", "closed", "resolved"][rng.below(5) as usize]
        } else {
            ["open", "in_progress", "waiting_user", "resolved", "closed"]
                [rng.weighted(&[25, 20, 15, 20, 20])]
        };
        let done = matches!(status, "resolved" | "closed");
        let resolved =
            done.then(|| created + Duration::minutes(30 + rng.below(7 * 24 * 60) as i64));
        let closed = (status == "closed").then(|| resolved.expect("done") + Duration::days(7));
        let assignee =
            (status != "open" || rng.below(3) == 0).then(|| staff_id(rng.below(shape.staff)));
        // Users file unevenly: a few file a hundred tickets, most a handful.
        let user = user_id((rng.unit().powf(1.3) * shape.users as f64) as u64 % shape.users);
        let category = rng.weighted(&CATEGORY_WEIGHTS);
        let priority = PRIORITIES[rng.weighted(&PRIORITY_WEIGHTS)];
        let rating =
            (done && rng.below(5) < 2).then(|| 1 + rng.weighted(&[8, 5, 10, 27, 50]) as u64);
        let ride = (category < 4 && rng.below(10) < 8).then(|| v7(created, &mut rng));
        let subject = rng.pick(SUBJECTS[category]).to_owned();
        let mut description = format!(
            "{} {} near {}. {} {}",
            subject,
            [
                "yesterday",
                "this morning",
                "last night",
                "on Friday",
                "today"
            ][rng.below(5) as usize],
            rng.pick(&PLACES),
            rng.pick(&DETAILS),
            rng.pick(&DETAILS),
        );
        // What makes one ticket findable among a million: a receipt number.
        if rng.below(10) < 3 {
            description.push_str(&format!(" Receipt {}.", receipt(n)));
        }
        let id = v7(created, &mut rng);
        Ticket {
            n,
            id,
            user,
            category,
            priority,
            status,
            assignee,
            created,
            resolved,
            closed,
            rating,
            ride,
            subject,
            description,
        }
    }

    /// How many messages this ticket gets, relative to others.
    fn message_weight(&self) -> f64 {
        let base = match self.status {
            "open" => 0.3,
            "in_progress" | "waiting_user" => 1.0,
            _ => 1.4,
        };
        base * (0.2 + 1.6 * Rng::new(self.n ^ 0xABCD).unit())
    }

    fn write_row(&self, out: &mut String) {
        use std::fmt::Write;
        let first_response = self.resolved.map(|r| self.created + (r - self.created) / 4);
        let rated = self
            .rating
            .map(|_| self.resolved.expect("rated when done") + Duration::days(2));
        let updated = self.closed.or(self.resolved).unwrap_or(self.created);
        let _ = writeln!(
            out,
            "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t1",
            self.id,
            self.n,
            ticket_service::domain::TicketNumber::from_sequence(self.n),
            self.user,
            opt(self.ride),
            CATEGORIES[self.category],
            self.subject,
            self.description,
            self.priority,
            self.status,
            opt(self.assignee),
            opt(self.rating),
            opt(self.rating.map(|r| if r >= 4 {
                "Quick and helpful"
            } else {
                "Took too long"
            })),
            opt(first_response.map(ts)),
            opt(self.resolved.map(ts)),
            opt(self.closed.map(ts)),
            opt(rated.map(ts)),
            ts(self.created),
            ts(updated),
        );
    }

    /// `count` messages: staff and user take turns, staff first; about one
    /// staff message in six is an internal note.
    fn write_messages(&self, count: u64, out: &mut String) {
        use std::fmt::Write;
        let mut rng = Rng::new(self.n ^ 0x5EED);
        let end = self.resolved.unwrap_or(self.created + Duration::hours(20));
        let step = (end - self.created) / i32::try_from(count + 1).unwrap_or(i32::MAX);
        let staff = self.assignee.unwrap_or_else(|| staff_id(self.n % 200));
        let mut staff_turn = true;
        for k in 0..count {
            let at = self.created + step * i32::try_from(k + 1).unwrap_or(0);
            let note = staff_turn && rng.below(6) == 0;
            let (author, role, body) = if note {
                (staff, "staff", rng.pick(&NOTES).to_owned())
            } else if staff_turn {
                (staff, "staff", rng.pick(&STAFF_REPLIES).to_owned())
            } else {
                (self.user, "user", rng.pick(&USER_REPLIES).to_owned())
            };
            if !note {
                staff_turn = !staff_turn;
            }
            let _ = writeln!(
                out,
                "{}\t{}\t{author}\t{role}\t{body}\t{}\t{}",
                v7(at, &mut rng),
                self.id,
                if note { "t" } else { "f" },
                ts(at),
            );
        }
    }
}

/// `bench dataset`: loads (always afresh) and reports the time.
pub async fn run() -> anyhow::Result<()> {
    load(Shape::from_args()?).await
}
