//! The SMTP sink of the tests: `tests/support/smtp_sink.py` (aiosmtpd) as a
//! subprocess on a free port, writing each accepted message to a directory
//! of its own; tests read the messages back, decoded by Python's `email`
//! package, and can make it answer 451 or 550.

use std::{
    collections::HashMap,
    ffi::OsString,
    path::PathBuf,
    process::{Child, Command},
    time::Duration,
};

use serde_json::json;

use crate::python_server::{self, Spec};
use uuid::Uuid;

/// The aiosmtpd sink as a subprocess, writing into a directory of its own.
pub struct SmtpSink {
    /// Where it listens (on 127.0.0.1).
    pub port: u16,
    dir: PathBuf,
    control: PathBuf,
    child: Child,
}

pub use crate::python_server::python;

impl SmtpSink {
    /// Starts the sink on a free port; panics with what to do when python
    /// or aiosmtpd is missing.
    pub fn start() -> Self {
        Self::start_with(None)
    }

    /// Starts the sink requiring `AUTH` with `user` and `password` (PLAIN or
    /// LOGIN, over the plain connection).
    pub fn with_auth(user: &str, password: &str) -> Self {
        Self::start_with(Some(format!("{user}:{password}")))
    }

    fn start_with(auth: Option<String>) -> Self {
        let dir = std::env::temp_dir().join(format!("smtp-sink-{}", Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let control = dir.join("control.json");
        let mut args: Vec<OsString> = ["--host", "127.0.0.1", "--port", "0", "--dir"]
            .map(OsString::from)
            .into();
        args.extend([
            dir.join("mail").into(),
            "--control".into(),
            control.clone().into(),
        ]);
        if let Some(auth) = &auth {
            args.extend(["--auth".into(), auth.into()]);
        }
        let spec = Spec {
            name: "smtp-sink",
            script: "smtp_sink.py",
            imports: "aiosmtpd",
            ensure: "ensure_aiosmtpd",
            startup: Duration::from_secs(20),
        };
        let (child, port) = python_server::start(&spec, &args);
        Self {
            port,
            dir,
            control,
            child,
        }
    }

    /// `accept`, `tempfail` or `reject` for every recipient.
    pub fn set_mode(&self, mode: &str) {
        std::fs::write(&self.control, json!({ "mode": mode }).to_string()).unwrap();
    }

    /// The accepted messages' files, oldest first.
    pub fn files(&self) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(self.dir.join("mail"))
            .map(|dir| dir.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        files.retain(|p| p.extension().is_some_and(|e| e == "eml"));
        files.sort();
        files
    }

    /// The accepted messages, parsed by Python's `email` package (headers
    /// decoded, each body part decoded from its transfer encoding).
    pub fn messages(&self) -> Vec<Mail> {
        let mut out = Vec::new();
        for file in self.files() {
            let parsed = Command::new(python())
                .args(["-c", PARSE_EML])
                .arg(&file)
                .output()
                .unwrap();
            assert!(parsed.status.success(), "{parsed:?}");
            out.push(serde_json::from_slice(&parsed.stdout).unwrap());
        }
        out
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // KEEP_TEST_MAIL=1 keeps the messages to read (the path is printed).
        if std::env::var_os("KEEP_TEST_MAIL").is_some() {
            eprintln!("test mail kept in {}", self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

const PARSE_EML: &str = r#"
import email, email.policy, json, sys
m = email.message_from_binary_file(open(sys.argv[1], "rb"), policy=email.policy.default)
print(json.dumps({
    "headers": {k.lower(): str(v) for k, v in m.items()},
    "content_type": m.get_content_type(),
    "text": m.get_body(("plain",)).get_content(),
    "html": m.get_body(("html",)).get_content(),
}))
"#;

/// One accepted message, decoded.
#[derive(Debug, serde::Deserialize)]
pub struct Mail {
    /// Header names lower-cased, values decoded.
    pub headers: HashMap<String, String>,
    /// The top-level content type (`multipart/alternative`).
    pub content_type: String,
    /// The plain-text part.
    pub text: String,
    /// The HTML part.
    pub html: String,
}

impl Mail {
    /// A header's value (`""` when absent); `name` in lower case.
    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).map(String::as_str).unwrap_or("")
    }
}
