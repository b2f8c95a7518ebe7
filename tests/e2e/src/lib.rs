//! Runs the real binaries (`platform-standin`, `ticket`, `assignment`,
//! `notification`, `scheduler`) as child processes with their own databases, a private
//! exchange and queues, and free ports, exactly as an operator would run
//! them, with a real SMTP server (the aiosmtpd sink) and the stand-in's push
//! gateway; tests talk to them over gRPC and read the mail the sink got. The binaries come from the same `target/` directory as the
//! test (a workspace test run builds them; otherwise `cargo build --bins`).
//!
//! Each process logs its JSON lines to `<name>.log` in the stack's own
//! directory ([`Stack::logs`]; kept when a test fails, its path printed),
//! so a test can read what they logged. `TEST_LOG=1` also shows them;
//! `E2E_RUST_LOG` sets their filter. [`Options`] adds an OTLP collector
//! and SMTP credentials.

pub mod otlp;

use std::{
    collections::HashMap,
    io::{BufRead, BufReader, Write},
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Stdio},
    time::{Duration, Instant},
};

use helpdesk_testkit::{
    admin_url, amqp_url, delete_broker_objects, smtp::SmtpSink, unique_exchange, with_database,
};
use sqlx::{Connection, Executor, PgConnection};
use tonic_health::pb::health_check_response::ServingStatus;
use uuid::Uuid;

/// Where cargo put the service binaries: beside the running executable (a
/// binary such as `bench` in target/<profile>/) or one level up (a test in
/// target/<profile>/deps/).
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("executable path");
    let dir = exe.parent().expect("target dir");
    let candidates = [dir.join(name), dir.parent().unwrap_or(dir).join(name)];
    candidates
        .iter()
        .find(|p| p.exists())
        .cloned()
        .unwrap_or_else(|| {
            panic!(
                "{} is missing: build the binaries first (cargo build --workspace --bins)",
                candidates[1].display()
            )
        })
}

/// A free local port (bound, then released for the child to take).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// One running binary.
pub struct Process {
    name: &'static str,
    env: HashMap<String, String>,
    child: Option<Child>,
    log: PathBuf,
    pub port: u16,
    /// Where its Prometheus endpoint listens (127.0.0.1).
    pub metrics_port: u16,
}

impl Process {
    fn spawn(name: &'static str, env: HashMap<String, String>, port: u16, logs: &Path) -> Self {
        let metrics_port = env
            .get("METRICS_ADDR")
            .and_then(|a| a.rsplit_once(':'))
            .and_then(|(_, p)| p.parse().ok())
            .unwrap_or(0);
        let mut process = Self {
            name,
            env,
            child: None,
            log: logs.join(format!("{name}.log")),
            port,
            metrics_port,
        };
        process.start();
        process
    }

    /// Starts (or restarts) the binary with its environment; its output is
    /// appended to its log file (and shown with `TEST_LOG=1`).
    pub fn start(&mut self) {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap_or_else(|e| panic!("{}: {e}", self.log.display()));
        let shown = std::env::var_os("TEST_LOG").is_some();
        let output = |file: &std::fs::File| {
            if shown {
                Stdio::piped()
            } else {
                Stdio::from(file.try_clone().expect("log file"))
            }
        };
        let mut child = Command::new(binary(self.name))
            .envs(&self.env)
            .stdout(output(&file))
            .stderr(output(&file))
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", self.name));
        if shown {
            let name = self.name;
            let stdout = child
                .stdout
                .take()
                .map(|o| Box::new(o) as Box<dyn std::io::Read + Send>);
            let stderr = child
                .stderr
                .take()
                .map(|o| Box::new(o) as Box<dyn std::io::Read + Send>);
            for stream in [stdout, stderr].into_iter().flatten() {
                let mut file = file.try_clone().expect("log file");
                std::thread::spawn(move || {
                    for line in BufReader::new(stream).lines().map_while(Result::ok) {
                        let _ = writeln!(file, "{line}");
                        eprintln!("[{name}] {line}");
                    }
                });
            }
        }
        self.child = Some(child);
    }

    /// Its Prometheus exposition, as served now.
    pub async fn metrics(&self) -> String {
        scrape(self.metrics_port)
            .await
            .unwrap_or_else(|e| panic!("scraping {}: {e:#}", self.name))
    }

    pub fn addr(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// SIGTERM, then the exit status (bounded wait).
    pub fn terminate(&mut self) -> ExitStatus {
        self.signal("-TERM");
        let mut child = self.child.take().expect("running");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                return status;
            }
            assert!(Instant::now() < deadline, "{} ignored SIGTERM", self.name);
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGSTOP: the process holds still (its connections stay open, its
    /// queue fills) until [`Process::resume`]. The benchmark uses it to
    /// measure a service without the others on the same cores.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// SIGCONT after [`Process::pause`].
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        if let Some(child) = &self.child {
            let _ = Command::new("kill")
                .args([signal, &child.id().to_string()])
                .status();
        }
    }

    /// SIGKILL: the process dies mid-whatever.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Waits until the health service reports SERVING (bounded).
    pub async fn wait_serving(&self) {
        helpdesk_testkit::wait_for_health(
            self.addr(),
            "",
            ServingStatus::Serving,
            Duration::from_secs(30),
        )
        .await
        .unwrap_or_else(|e| panic!("{} never became healthy: {e:#}", self.name));
    }
}

/// GET `/metrics` on 127.0.0.1:`port` (HTTP/1.0: the server closes after
/// the answer); the body.
pub async fn scrape(port: u16) -> anyhow::Result<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    stream
        .write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .await?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await?;
    let (head, body) = answer
        .split_once("\r\n\r\n")
        .ok_or_else(|| anyhow::anyhow!("no HTTP answer: {answer:?}"))?;
    anyhow::ensure!(
        head.starts_with("HTTP/1.") && head.contains(" 200 "),
        "{head}"
    );
    Ok(body.to_owned())
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The stand-in, the ticket, assignment and notification services, and the
/// SMTP sink, wired.
pub struct Stack {
    pub standin: Process,
    pub ticket: Process,
    pub assignment: Process,
    pub notification: Process,
    pub scheduler: Process,
    /// Every email the notification service sent.
    pub mail: SmtpSink,
    /// The directory holding each process's `<name>.log`.
    pub logs: PathBuf,
    /// The assignment and notification services' queues.
    pub assignment_queue: String,
    pub notification_queue: String,
    /// Each service's database.
    pub ticket_database_url: String,
    pub assignment_database_url: String,
    pub notification_database_url: String,
    pub scheduler_database_url: String,
    /// The exchange every service publishes to.
    pub exchange: String,
    /// Dropped at the end (not a database the caller passed in).
    databases: Vec<String>,
    queues: Vec<String>,
    /// The ticket service's attachment directory (removed at the end).
    attachments: std::path::PathBuf,
}

/// The processes a [`Stack`] runs, by the names [`Options::env`] takes.
pub const PROCESSES: [&str; 5] = [
    "platform-standin",
    "ticket",
    "assignment",
    "notification",
    "scheduler",
];

/// What a stack adds to the defaults.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// `OTEL_EXPORTER_OTLP_ENDPOINT` for every process (spans exported in
    /// batches every 100 ms).
    pub otlp_endpoint: Option<String>,
    /// The SMTP sink requires these credentials (`SMTP_USERNAME`,
    /// `SMTP_PASSWORD`), and the notification service presents them.
    pub smtp_auth: Option<(String, String)>,
    /// The ticket service reaches RabbitMQ at this URL (a `TcpProxy` the
    /// test can cut) instead of the broker's own.
    pub ticket_amqp_url: Option<String>,
    /// The ticket service uses this existing database (e.g. a loaded
    /// benchmark data set) instead of a fresh one; it is kept at the end.
    pub ticket_database_url: Option<String>,
    /// More environment, as `(process, name, value)` with `process` one of
    /// [`PROCESSES`]: e.g. `("assignment", "DEFAULT_CAPACITY", "100000")`.
    pub env: Vec<(&'static str, String, String)>,
    /// Every process's `RUST_LOG` (default `E2E_RUST_LOG`, else `info`).
    pub log_filter: Option<String>,
}

impl Options {
    /// `name`'s extra environment.
    fn env_of(&self, name: &str) -> impl Iterator<Item = (String, String)> + '_ {
        let name = name.to_owned();
        self.env
            .iter()
            .filter(move |(process, _, _)| *process == name)
            .map(|(_, k, v)| (k.clone(), v.clone()))
    }
}

/// A new empty database: its URL and its name.
pub async fn create_database() -> (String, String) {
    let name = format!("e2e_{}", Uuid::new_v4().simple());
    let mut conn = PgConnection::connect(&admin_url()).await.expect("postgres");
    conn.execute(sqlx::AssertSqlSafe(format!(r#"CREATE DATABASE "{name}""#)))
        .await
        .expect("create database");
    (with_database(&admin_url(), &name), name)
}

fn common_env(port: u16, options: &Options) -> HashMap<String, String> {
    let mut env = HashMap::from([
        ("LISTEN_ADDR".into(), format!("127.0.0.1:{port}")),
        ("HELPDESK_DEV".into(), "true".into()),
        // Its own metrics port: tests run side by side, and beside a local stack.
        ("METRICS_ADDR".into(), format!("127.0.0.1:{}", free_port())),
        (
            "RUST_LOG".into(),
            options
                .log_filter
                .clone()
                .unwrap_or_else(|| std::env::var("E2E_RUST_LOG").unwrap_or_else(|_| "info".into())),
        ),
    ]);
    if let Some(endpoint) = &options.otlp_endpoint {
        env.insert("OTEL_EXPORTER_OTLP_ENDPOINT".into(), endpoint.clone());
        env.insert("OTEL_BSP_SCHEDULE_DELAY".into(), "100".into());
    }
    env
}

/// Waits until `queue` has a consumer (bounded): then its bindings exist.
async fn wait_for_queue(queue: &str) {
    let connection = helpdesk_events::amqp::connect(&amqp_url(), "e2e")
        .await
        .expect("broker");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let channel = connection.create_channel().await.expect("channel");
        let passive = lapin::options::QueueDeclareOptions {
            passive: true,
            ..Default::default()
        };
        if channel
            .queue_declare(queue.into(), passive, Default::default())
            .await
            .is_ok()
        {
            let _ = connection.close(200, "done".into()).await;
            return;
        }
        assert!(Instant::now() < deadline, "queue {queue} never declared");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

impl Stack {
    pub async fn start() -> Self {
        Self::start_with(Options::default()).await
    }

    pub async fn start_with(options: Options) -> Self {
        let logs = std::env::temp_dir().join(format!("helpdesk-e2e-{}", Uuid::new_v4().simple()));
        std::fs::create_dir_all(&logs).expect("log directory");
        let exchange = unique_exchange();
        let queue = format!("e2e.assignment.{}", Uuid::new_v4().simple());
        let notification_queue = format!("e2e.notification.{}", Uuid::new_v4().simple());
        let (ticket_db, ticket_name) = match &options.ticket_database_url {
            Some(url) => (url.clone(), None),
            None => {
                let (url, name) = create_database().await;
                (url, Some(name))
            }
        };
        let (assignment_db, assignment_name) = create_database().await;
        let (notification_db, notification_name) = create_database().await;
        let (scheduler_db, scheduler_name) = create_database().await;

        let standin_port = free_port();
        let push_port = free_port();
        let mut env = common_env(standin_port, &options);
        env.insert("PUSH_LISTEN_ADDR".into(), format!("127.0.0.1:{push_port}"));
        env.extend(options.env_of("platform-standin"));
        let standin = Process::spawn("platform-standin", env, standin_port, &logs);
        standin.wait_serving().await;

        let ticket_port = free_port();
        let mut env = common_env(ticket_port, &options);
        let attachments = std::env::temp_dir().join(format!("e2e-attachments-{}", Uuid::new_v4()));
        env.extend([
            (
                "ATTACHMENTS_STORE".into(),
                attachments.display().to_string(),
            ),
            ("DATABASE_URL".into(), ticket_db.clone()),
            ("ACCOUNTS_ADDR".into(), standin.addr()),
            ("RIDES_ADDR".into(), standin.addr()),
            (
                "AMQP_URL".into(),
                options.ticket_amqp_url.clone().unwrap_or_else(amqp_url),
            ),
            ("EVENTS_EXCHANGE".into(), exchange.clone()),
        ]);
        env.extend(options.env_of("ticket"));
        let ticket = Process::spawn("ticket", env, ticket_port, &logs);
        ticket.wait_serving().await;

        let assignment_port = free_port();
        let mut env = common_env(assignment_port, &options);
        env.extend([
            ("DATABASE_URL".into(), assignment_db.clone()),
            ("ACCOUNTS_ADDR".into(), standin.addr()),
            ("TICKET_ADDR".into(), ticket.addr()),
            ("AMQP_URL".into(), amqp_url()),
            ("EVENTS_EXCHANGE".into(), exchange.clone()),
            ("CONSUMER_QUEUE".into(), queue.clone()),
            ("DRAIN_SECS".into(), "1".into()),
        ]);
        env.extend(options.env_of("assignment"));
        let assignment = Process::spawn("assignment", env, assignment_port, &logs);
        assignment.wait_serving().await;
        let mail = match &options.smtp_auth {
            Some((user, password)) => SmtpSink::with_auth(user, password),
            None => SmtpSink::start(),
        };
        let notification_port = free_port();
        let mut env = common_env(notification_port, &options);
        env.extend([
            ("DATABASE_URL".into(), notification_db.clone()),
            ("ACCOUNTS_ADDR".into(), standin.addr()),
            ("AMQP_URL".into(), amqp_url()),
            ("EVENTS_EXCHANGE".into(), exchange.clone()),
            ("CONSUMER_QUEUE".into(), notification_queue.clone()),
            ("SMTP_HOST".into(), "127.0.0.1".into()),
            ("SMTP_PORT".into(), mail.port.to_string()),
            (
                "PUSH_GATEWAY_URL".into(),
                format!("http://127.0.0.1:{push_port}/v1/push"),
            ),
            ("SENDER_POLL_MS".into(), "200".into()),
        ]);
        if let Some((user, password)) = &options.smtp_auth {
            env.insert("SMTP_USERNAME".into(), user.clone());
            env.insert("SMTP_PASSWORD".into(), password.clone());
        }
        env.extend(options.env_of("notification"));
        let notification = Process::spawn("notification", env, notification_port, &logs);
        notification.wait_serving().await;

        let scheduler_port = free_port();
        let mut env = common_env(scheduler_port, &options);
        env.extend([
            ("DATABASE_URL".into(), scheduler_db.clone()),
            ("TICKET_ADDR".into(), ticket.addr()),
            ("TICK_MS".into(), "200".into()),
        ]);
        env.extend(options.env_of("scheduler"));
        let scheduler = Process::spawn("scheduler", env, scheduler_port, &logs);
        scheduler.wait_serving().await;
        // Serving gRPC comes before the consumers have declared their queues
        // and bindings; events published before that would not reach them.
        wait_for_queue(&queue).await;
        wait_for_queue(&notification_queue).await;

        Self {
            standin,
            ticket,
            assignment,
            notification,
            scheduler,
            mail,
            logs,
            assignment_queue: queue.clone(),
            notification_queue: notification_queue.clone(),
            ticket_database_url: ticket_db,
            assignment_database_url: assignment_db,
            notification_database_url: notification_db,
            scheduler_database_url: scheduler_db,
            databases: ticket_name
                .into_iter()
                .chain([assignment_name, notification_name, scheduler_name])
                .collect(),
            exchange,
            queues: vec![queue, notification_queue],
            attachments,
        }
    }
}

impl Stack {
    /// The process named `name` (one of [`PROCESSES`]).
    pub fn process(&self, name: &str) -> Option<&Process> {
        match name {
            "platform-standin" => Some(&self.standin),
            "ticket" => Some(&self.ticket),
            "assignment" => Some(&self.assignment),
            "notification" => Some(&self.notification),
            "scheduler" => Some(&self.scheduler),
            _ => None,
        }
    }

    /// Each service with a database, and that database's URL.
    pub fn service_databases(&self) -> [(&'static str, &str); 4] {
        [
            ("ticket", &self.ticket_database_url),
            ("assignment", &self.assignment_database_url),
            ("notification", &self.notification_database_url),
            ("scheduler", &self.scheduler_database_url),
        ]
    }

    /// Every line every process logged so far, as `(process, line)`.
    pub fn log_lines(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(&self.logs)
            .expect("log directory")
            .flatten()
        {
            let name = entry
                .file_name()
                .to_string_lossy()
                .trim_end_matches(".log")
                .to_owned();
            let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
            out.extend(text.lines().map(|l| (name.clone(), l.to_owned())));
        }
        out
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        self.scheduler.kill();
        self.notification.kill();
        self.assignment.kill();
        self.ticket.kill();
        self.standin.kill();
        if std::thread::panicking() {
            eprintln!("the stack's logs are kept in {}", self.logs.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.logs);
        }
        let _ = std::fs::remove_dir_all(&self.attachments);
        let mut queues = Vec::new();
        for queue in &self.queues {
            queues.extend([queue.clone(), format!("{queue}.dead")]);
            queues.extend((1..10).map(|n| format!("{queue}.retry.{n}")));
        }
        delete_broker_objects(Some(self.exchange.clone()), queues);
        let databases = std::mem::take(&mut self.databases);
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                if let Ok(mut conn) = PgConnection::connect(&admin_url()).await {
                    for name in databases {
                        let _ = conn
                            .execute(sqlx::AssertSqlSafe(format!(
                                r#"DROP DATABASE IF EXISTS "{name}" WITH (FORCE)"#
                            )))
                            .await;
                    }
                }
            });
        })
        .join();
    }
}
