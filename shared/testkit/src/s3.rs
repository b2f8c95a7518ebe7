//! A real S3 API server for tests: `tests/support/s3_server.py` (moto in
//! server mode) as a subprocess on a free port, with the buckets asked for.
//! It stops when dropped (its stdin closes, and it is killed).

use std::{
    io::{BufRead, BufReader},
    path::Path,
    process::{Child, Command, Stdio},
    time::Duration,
};

use crate::smtp::python;

/// The moto S3 server as a subprocess.
pub struct S3Server {
    /// Where it listens (on 127.0.0.1).
    pub port: u16,
    child: Child,
}

impl S3Server {
    /// Starts the server with `buckets` created; panics with what to do
    /// when python or moto is missing.
    pub fn start(buckets: &[&str]) -> Self {
        let python = python();
        match Command::new(&python)
            .args(["-c", "import moto.server, boto3"])
            .output()
        {
            Ok(out) if out.status.success() => {}
            other => panic!(
                "these tests need python with moto[server] ({python}: {other:?}); \
                 run `bash -c 'source scripts/lib/deps.sh && ensure_moto'` \
                 or set HELPDESK_PYTHON to a python that has it"
            ),
        }
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/support/s3_server.py");
        let mut command = Command::new(&python);
        command.arg(&script).args(["--port", "0"]);
        for bucket in buckets {
            command.args(["--bucket", bucket]);
        }
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", script.display()));
        let stdout = child.stdout.take().unwrap();
        let (first_tx, first_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let _ = first_tx.send(lines.next());
            for _ in lines.map_while(Result::ok) {}
        });
        let first = match first_rx.recv_timeout(Duration::from_secs(60)) {
            Ok(Some(Ok(line))) => line,
            other => {
                let _ = child.kill();
                panic!("the S3 server did not start: {other:?}")
            }
        };
        let port = first
            .strip_prefix("LISTENING ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("unexpected first line from the S3 server: {first:?}"));
        Self { port, child }
    }

    /// Its endpoint URL.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// How many multipart uploads in `bucket` were started and neither
    /// completed nor aborted (asked with boto3's ListMultipartUploads).
    pub fn incomplete_uploads(&self, bucket: &str) -> usize {
        let out = Command::new(python())
            .args(["-c", LIST_UPLOADS, &self.endpoint(), bucket])
            .output()
            .expect("python");
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .expect("a count")
    }
}

const LIST_UPLOADS: &str = r#"
import sys, boto3
s3 = boto3.client("s3", endpoint_url=sys.argv[1], region_name="us-east-1",
                  aws_access_key_id="test", aws_secret_access_key="test")
print(len(s3.list_multipart_uploads(Bucket=sys.argv[2]).get("Uploads", [])))
"#;

impl Drop for S3Server {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
