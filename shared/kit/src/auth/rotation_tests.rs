//! Key rotation without a restart: keys added to the key file verify at
//! once, removed ones stop verifying within a refresh, a `kid` selects its
//! key, and a bad re-read keeps the keys in force.

use std::{
    convert::Infallible,
    future::Future,
    path::PathBuf,
    pin::Pin,
    task::{Context, Poll},
    time::Duration,
};

use jsonwebtoken::Algorithm;
use tonic::Code;
use tower::{Layer, Service};

use super::*;

// Test-only Ed25519 keys (generated with `openssl genpkey -algorithm ed25519`
// for these tests; they sign nothing else).
const A_PRIVATE: &str = "-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIPcA7IOdqD8zzkxVZuFsKKbQEU4aP9PN++DRdrW5m5aQ
-----END PRIVATE KEY-----
";
const A_PUBLIC: &str = "-----BEGIN PUBLIC KEY-----
MCowBQYDK2VwAyEAXA+7+LPeAJiuWUF7xS0FUKGNqciKKDAGjMNnxU2uY9c=
-----END PUBLIC KEY-----
";
const A_X: &str = "XA-7-LPeAJiuWUF7xS0FUKGNqciKKDAGjMNnxU2uY9c";
const B_PRIVATE: &str = "-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIJcDMs3kD8LnXDUmODGKZoFcyK4lRNQxgaJxVL/QOj3z
-----END PRIVATE KEY-----
";
const B_PUBLIC: &str = "-----BEGIN PUBLIC KEY-----
MCowBQYDK2VwAyEAD602jODPQ3/KCYwe3arQrkjhdlIAdNJGnYw4TBsPlvo=
-----END PUBLIC KEY-----
";
const B_X: &str = "D602jODPQ3_KCYwe3arQrkjhdlIAdNJGnYw4TBsPlvo";

const STAFF: &str = "0b000000-0000-4000-8000-000000000001";

/// A staff token signed with `private`, its header naming `kid` if given.
fn token(private: &str, kid: Option<&str>) -> String {
    let config = AuthConfig::dev();
    Minter::with_private_key(
        &config,
        Algorithm::EdDSA,
        private.as_bytes(),
        kid.map(Into::into),
    )
    .unwrap()
    .mint(STAFF, Role::Staff, chrono::Duration::hours(1))
}

fn jwk(kid: &str, x: &str) -> String {
    format!(r#"{{"kty":"OKP","crv":"Ed25519","alg":"EdDSA","kid":"{kid}","x":"{x}"}}"#)
}

/// A key file holding `contents`, and the config that names it.
fn key_file(contents: &str) -> (PathBuf, AuthConfig) {
    let path = std::env::temp_dir().join(format!("jwt-keys-{}", Uuid::new_v4()));
    std::fs::write(&path, contents).unwrap();
    let config = AuthConfig {
        public_key_file: Some((Algorithm::EdDSA, path.clone())),
        ..AuthConfig::dev()
    };
    (path, config)
}

fn header(token: &str) -> http::HeaderValue {
    format!("Bearer {token}").parse().unwrap()
}

/// The service behind the auth layer: answers 200 with the caller's subject.
#[derive(Clone)]
struct Echo;

impl Service<http::Request<()>> for Echo {
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<()>) -> Self::Future {
        let caller = request.extensions().get::<Caller>().cloned();
        Box::pin(async move {
            let mut response = http::Response::new(tonic::body::Body::empty());
            if let Some(caller) = caller {
                response
                    .headers_mut()
                    .insert("x-subject", caller.subject().parse().unwrap());
            }
            Ok(response)
        })
    }
}

/// What the auth layer over [`Echo`] answers to `token`: the subject, or the
/// gRPC code it refused with.
async fn call(layer: &AuthLayer, token: &str) -> Result<String, Code> {
    let mut service = layer.layer(Echo);
    let request = http::Request::builder()
        .uri("/support.v1.TicketService/GetTicket")
        .header(http::header::AUTHORIZATION, header(token))
        .body(())
        .unwrap();
    let response = service.call(request).await.unwrap();
    match response.headers().get("x-subject") {
        Some(subject) => Ok(subject.to_str().unwrap().to_owned()),
        None => Err(Status::from_header_map(response.headers()).unwrap().code()),
    }
}

#[tokio::test]
async fn a_key_added_to_the_file_after_start_verifies_on_its_first_call() {
    let (path, config) = key_file(A_PUBLIC);
    // No periodic re-read during the test: only the re-read a miss causes.
    let layer = AuthLayer::new(Verifier::with_refresh(&config, Duration::from_secs(3600)).unwrap());
    assert_eq!(
        call(&layer, &token(A_PRIVATE, None)).await,
        Ok(STAFF.into())
    );

    // The rotation begins: the Secret holds the current key and the next.
    std::fs::write(&path, format!("{A_PUBLIC}{B_PUBLIC}")).unwrap();
    assert_eq!(
        call(&layer, &token(B_PRIVATE, None)).await,
        Ok(STAFF.into())
    );
    assert_eq!(
        call(&layer, &token(A_PRIVATE, None)).await,
        Ok(STAFF.into())
    );
    // Misses re-read the file at most once a second: a flood of forged
    // tokens costs one read a second, not one per call.
    assert!(!layer.verifier.keys.reload_after_miss().await);
    std::fs::remove_file(&path).unwrap();
}

#[tokio::test]
async fn a_key_removed_from_the_file_stops_verifying_within_a_refresh() {
    let (path, config) = key_file(&format!("{A_PUBLIC}{B_PUBLIC}"));
    let verifier = Verifier::with_refresh(&config, Duration::from_millis(10)).unwrap();
    let (old, new) = (token(A_PRIVATE, None), token(B_PRIVATE, None));
    assert!(verifier.verify(&old).is_ok() && verifier.verify(&new).is_ok());

    // The rotation ends: the old key leaves the Secret.
    std::fs::write(&path, B_PUBLIC).unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while verifier.verify(&old).is_ok() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the removed key still verifies"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let refused = verifier
        .verify_header(Some(&header(&old)))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated);
    assert!(verifier.verify(&new).is_ok());

    // A Secret update in flight (half written, or the file gone) keeps the keys.
    std::fs::write(&path, "-----BEGIN PUBLIC KEY-----\ntrunc").unwrap();
    verifier.keys.reload_now().await;
    assert!(verifier.verify(&new).is_ok(), "a bad file dropped the keys");
    std::fs::remove_file(&path).unwrap();
    verifier.keys.reload_now().await;
    assert!(
        verifier.verify(&new).is_ok(),
        "a missing file dropped the keys"
    );
}

#[tokio::test]
async fn a_kid_selects_its_key_in_a_jwk_set() {
    let set = format!(
        r#"{{"keys":[{},{}]}}"#,
        jwk("2026-11", A_X),
        jwk("2026-12", B_X)
    );
    let (path, config) = key_file(&set);
    let verifier = Verifier::with_refresh(&config, Duration::from_secs(3600)).unwrap();
    assert_eq!(verifier.keys.current().len(), 2);
    for (private, kid) in [(A_PRIVATE, "2026-11"), (B_PRIVATE, "2026-12")] {
        let value = header(&token(private, Some(kid)));
        let caller = verifier.verify_header(Some(&value)).await.unwrap();
        assert_eq!(caller.subject(), STAFF, "{kid}");
    }
    // Without a kid every key is tried in turn.
    assert!(verifier.verify(&token(B_PRIVATE, None)).is_ok());
    // A kid names one key: another key's signature under it is refused, and
    // so is an unknown kid (after a re-read that finds no such key).
    for kid in ["2026-11", "2027-01"] {
        let refused = verifier
            .verify_header(Some(&header(&token(B_PRIVATE, Some(kid)))))
            .await
            .unwrap_err();
        assert_eq!(refused.code(), Code::Unauthenticated, "{kid}");
    }
    std::fs::remove_file(&path).unwrap();
}
