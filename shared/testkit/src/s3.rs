//! A real S3 API server for tests: `tests/support/s3_server.py` (moto in
//! server mode) as a subprocess on a free port, with the buckets asked for.
//! It stops when dropped (its stdin closes, and it is killed).

use std::{
    process::{Child, Command},
    time::Duration,
};

use crate::python_server::{self, Spec, python};

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
        let mut args = vec!["--port", "0"];
        for bucket in buckets {
            args.extend(["--bucket", bucket]);
        }
        let spec = Spec {
            name: "S3 server",
            script: "s3_server.py",
            imports: "moto.server, boto3",
            ensure: "ensure_moto",
            startup: Duration::from_secs(60),
        };
        let (child, port) = python_server::start(&spec, &args);
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
