//! Who is calling. The gateway or a calling service sends
//! `authorization: Bearer <JWT>`; the [`AuthLayer`] verifies it once per call
//! and hands handlers a typed [`Caller`] through the request extensions.
//! Health and reflection stay open so probes and `buf curl` need no token.
//!
//! Local runs sign with a shared HS256 secret; production verifies RS256 or
//! EdDSA signatures with the identity provider's public keys
//! (`JWT_PUBLIC_KEY_FILE`), several at once and re-read while running, so a
//! key rotation needs no restart ([`keys`]).

mod keys;
#[cfg(test)]
mod rotation_tests;

use std::{
    fmt,
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use jsonwebtoken::{Algorithm, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use tonic::Status;
use uuid::Uuid;

use crate::config::{string_or, var_or};

/// The secret local runs and tests share. Never used when a key file is set.
pub const DEV_SECRET: &str = "helpdesk-dev-secret-change-me";
/// The `iss` local runs and tests sign and expect (`JWT_ISSUER`).
pub const DEFAULT_ISSUER: &str = "helpdesk-dev";
/// The `aud` every token must carry (`JWT_AUDIENCE`).
pub const DEFAULT_AUDIENCE: &str = "helpdesk";

/// The role claim.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// A rider or driver, acting for themself.
    User,
    /// A support agent.
    Staff,
    /// A support admin: staff powers plus configuration.
    Admin,
    /// Another service (ours or a platform team's) acting on its own behalf.
    Service,
}

impl Role {
    /// The claim value (`user`, `staff`, `admin`, `service`).
    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Staff => "staff",
            Role::Admin => "admin",
            Role::Service => "service",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "user" => Ok(Role::User),
            "staff" => Ok(Role::Staff),
            "admin" => Ok(Role::Admin),
            "service" => Ok(Role::Service),
            other => Err(format!("unknown role {other:?}")),
        }
    }
}

/// JWT claims we issue and accept.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Claims {
    /// The account id, or the service name for `service`.
    pub sub: String,
    /// What the caller may do.
    pub role: Role,
    /// Expiry, seconds since the epoch.
    pub exp: i64,
    /// Who issued the token.
    pub iss: String,
    /// Who the token is for (Helpdesk).
    pub aud: String,
}

/// Our own services: trusted with staff powers (`TRUSTED_SERVICES`).
/// Other teams' services (rides, payments, ...) may open tickets for users
/// and read them, but not edit, assign or read internal notes.
pub const DEFAULT_TRUSTED_SERVICES: &[&str] = &[
    "ticket-service",
    "assignment-service",
    "notification-service",
    "scheduler-service",
];

/// The verified caller of an RPC: a typed principal, so a handler matches
/// on who is calling instead of comparing role strings, and an account id is
/// a parsed UUID wherever one exists.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Caller {
    /// A rider or driver, acting for themself.
    User(Uuid),
    /// A support agent.
    Staff(Uuid),
    /// A support admin: staff powers plus configuration.
    Admin(Uuid),
    /// One of our own services (`TRUSTED_SERVICES`): staff powers.
    TrustedService(String),
    /// Another team's service: may open tickets for users and read them.
    Service(String),
}

impl Caller {
    /// The caller's account id; `None` for services.
    pub fn account_id(&self) -> Option<Uuid> {
        match self {
            Caller::User(id) | Caller::Staff(id) | Caller::Admin(id) => Some(*id),
            Caller::TrustedService(_) | Caller::Service(_) => None,
        }
    }

    /// Staff or admin: sees every ticket and internal notes.
    pub fn is_staff(&self) -> bool {
        matches!(self, Caller::Staff(_) | Caller::Admin(_))
    }

    /// An admin.
    pub fn is_admin(&self) -> bool {
        matches!(self, Caller::Admin(_))
    }

    /// Any service, ours or another team's.
    pub fn is_service(&self) -> bool {
        matches!(self, Caller::TrustedService(_) | Caller::Service(_))
    }

    /// One of our own services (see [`DEFAULT_TRUSTED_SERVICES`]).
    pub fn is_trusted_service(&self) -> bool {
        matches!(self, Caller::TrustedService(_))
    }

    /// The role the token claimed.
    pub fn role(&self) -> Role {
        match self {
            Caller::User(_) => Role::User,
            Caller::Staff(_) => Role::Staff,
            Caller::Admin(_) => Role::Admin,
            Caller::TrustedService(_) | Caller::Service(_) => Role::Service,
        }
    }

    /// Who the caller is, as the token's `sub` said it: the account id, or
    /// the service's name. Keys idempotency records, page-token
    /// fingerprints and event actors.
    pub fn subject(&self) -> String {
        match self {
            Caller::User(id) | Caller::Staff(id) | Caller::Admin(id) => id.to_string(),
            Caller::TrustedService(name) | Caller::Service(name) => name.clone(),
        }
    }

    /// Reads the caller the [`AuthLayer`] stored on the request.
    pub fn from_request<T>(request: &tonic::Request<T>) -> Result<Caller, Status> {
        request
            .extensions()
            .get::<Caller>()
            .cloned()
            .ok_or_else(|| Status::unauthenticated("missing credentials"))
    }
}

/// How tokens are verified (`JWT_*` environment variables).
#[derive(Clone)]
pub struct AuthConfig {
    /// `JWT_SECRET`: HS256 secret (local runs). Defaults to [`DEV_SECRET`].
    pub secret: String,
    /// `JWT_PUBLIC_KEY_FILE` + `JWT_ALGORITHM` (RS256 or EdDSA): the
    /// production keys' file (PEM blocks or a JWK set), re-read while running.
    pub public_key_file: Option<(Algorithm, std::path::PathBuf)>,
    /// `JWT_ISSUER`.
    pub issuer: String,
    /// `JWT_AUDIENCE`.
    pub audience: String,
    /// `SERVICE_TOKEN_FILE`: the token this service presents to others,
    /// issued by the identity provider; unset = minted with `secret`.
    pub service_token_file: Option<std::path::PathBuf>,
    /// `TRUSTED_SERVICES`: comma-separated service subjects with staff powers.
    pub trusted_services: Vec<String>,
}

impl fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthConfig")
            .field("secret", &"<redacted>")
            .field("public_key_file", &self.public_key_file)
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("service_token_file", &self.service_token_file)
            .field("trusted_services", &self.trusted_services)
            .finish()
    }
}

impl AuthConfig {
    /// The local-run settings: the public dev secret, default issuer and audience.
    pub fn dev() -> Self {
        Self {
            secret: DEV_SECRET.to_owned(),
            public_key_file: None,
            issuer: DEFAULT_ISSUER.to_owned(),
            audience: DEFAULT_AUDIENCE.to_owned(),
            service_token_file: None,
            trusted_services: DEFAULT_TRUSTED_SERVICES
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
        }
    }

    /// Reads the `JWT_*` settings. Without `JWT_SECRET` or
    /// `JWT_PUBLIC_KEY_FILE` the process refuses to start, unless
    /// `HELPDESK_DEV=true` explicitly accepts the public development secret
    /// (anyone could mint an admin token with it).
    pub fn from_env() -> anyhow::Result<Self> {
        let config = Self::from_env_allowing_dev_secret()?;
        let explicit = std::env::var_os("JWT_SECRET").is_some_and(|v| !v.is_empty());
        if config.public_key_file.is_none() && !explicit && !var_or("HELPDESK_DEV", false)? {
            anyhow::bail!(
                "set JWT_SECRET or JWT_PUBLIC_KEY_FILE (or HELPDESK_DEV=true to accept the public development secret)"
            );
        }
        Ok(config)
    }

    /// As [`Self::from_env`], falling back to the development secret (the
    /// `mint-token` dev tool).
    pub fn from_env_allowing_dev_secret() -> anyhow::Result<Self> {
        let public_key_file = match std::env::var("JWT_PUBLIC_KEY_FILE") {
            Ok(path) if !path.is_empty() => {
                let algorithm: Algorithm = var_or("JWT_ALGORITHM", Algorithm::RS256)?;
                Some((algorithm, path.into()))
            }
            _ => None,
        };
        Ok(Self {
            secret: string_or("JWT_SECRET", DEV_SECRET),
            public_key_file,
            issuer: string_or("JWT_ISSUER", DEFAULT_ISSUER),
            audience: string_or("JWT_AUDIENCE", DEFAULT_AUDIENCE),
            service_token_file: std::env::var_os("SERVICE_TOKEN_FILE")
                .filter(|v| !v.is_empty())
                .map(Into::into),
            trusted_services: match std::env::var("TRUSTED_SERVICES") {
                Ok(list) if !list.trim().is_empty() => list
                    .split(',')
                    .map(|s| s.trim().to_owned())
                    .filter(|s| !s.is_empty())
                    .collect(),
                _ => DEFAULT_TRUSTED_SERVICES
                    .iter()
                    .map(|s| (*s).to_owned())
                    .collect(),
            },
        })
    }
}

/// Verifies bearer tokens.
pub struct Verifier {
    keys: keys::Keys,
    trusted_services: Vec<String>,
}

impl Verifier {
    /// A verifier for `config`'s keys, issuer and audience. A key file is
    /// read now (a bad one stops the start) and re-read while running.
    pub fn new(config: &AuthConfig) -> anyhow::Result<Self> {
        Self::with_refresh(config, keys::KEY_FILE_REFRESH)
    }

    fn with_refresh(config: &AuthConfig, every: std::time::Duration) -> anyhow::Result<Self> {
        let mut base = Validation::new(Algorithm::HS256);
        base.set_audience(&[&config.audience]);
        base.set_issuer(&[&config.issuer]);
        base.set_required_spec_claims(&["exp", "sub", "iss", "aud"]);
        base.leeway = 30;
        let keys = match &config.public_key_file {
            Some((algorithm, path)) => keys::Keys::from_file(path, *algorithm, &base, every)?,
            None => keys::Keys::fixed(keys::KeySet::secret(&config.secret, &base)),
        };
        Ok(Self {
            keys,
            trusted_services: config.trusted_services.clone(),
        })
    }

    /// The bare token of an `authorization` header value.
    fn bearer(value: Option<&http::HeaderValue>) -> Result<&str, Status> {
        let value = value.ok_or_else(|| Status::unauthenticated("missing bearer token"))?;
        value
            .to_str()
            .ok()
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim)
            .ok_or_else(|| Status::unauthenticated("authorization must be `Bearer <token>`"))
    }

    /// Verifies an `authorization` header value. A token no key we hold
    /// verifies is checked again after re-reading the key file (at most
    /// once a second): it may be signed with a key just added.
    pub async fn verify_header(&self, value: Option<&http::HeaderValue>) -> Result<Caller, Status> {
        let Some(verified) = self.verify_held(value) else {
            self.keys.reload_after_miss().await;
            return self.caller(self.keys.current().decode(Self::bearer(value)?));
        };
        verified
    }

    /// Verifies with the keys held now; `None` when no key matched, so a
    /// re-read of the key file may still verify the token.
    fn verify_held(&self, value: Option<&http::HeaderValue>) -> Option<Result<Caller, Status>> {
        let token = match Self::bearer(value) {
            Ok(token) => token,
            Err(status) => return Some(Err(status)),
        };
        match self.keys.current().decode(token) {
            Err(keys::Rejected::NoKey(_)) => None,
            decoded => Some(self.caller(decoded)),
        }
    }

    /// Verifies a bare JWT with the keys held now and returns the caller it names.
    pub fn verify(&self, token: &str) -> Result<Caller, Status> {
        self.caller(self.keys.current().decode(token))
    }

    fn caller(&self, decoded: Result<Claims, keys::Rejected>) -> Result<Caller, Status> {
        let claims = decoded.map_err(|rejected| {
            Status::unauthenticated(match rejected {
                keys::Rejected::NoKey(why) => format!("invalid token: {why}"),
                keys::Rejected::Invalid(e) => format!("invalid token: {e}"),
            })
        })?;
        // Account roles must name an account, so ownership checks compare UUIDs.
        let account = || {
            Uuid::parse_str(&claims.sub)
                .map_err(|_| Status::unauthenticated("token subject is not an account id"))
        };
        Ok(match claims.role {
            Role::User => Caller::User(account()?),
            Role::Staff => Caller::Staff(account()?),
            Role::Admin => Caller::Admin(account()?),
            Role::Service if self.trusted_services.contains(&claims.sub) => {
                Caller::TrustedService(claims.sub)
            }
            Role::Service => Caller::Service(claims.sub),
        })
    }
}

/// Signs tokens: HS256 for the dev tool, tests, and service-to-service
/// calls in local runs; with a private key (RS256, EdDSA, ES256) to try a
/// production-style verifier by hand or in tests.
#[derive(Clone)]
pub struct Minter {
    key: EncodingKey,
    algorithm: Algorithm,
    kid: Option<String>,
    issuer: String,
    audience: String,
}

impl Minter {
    /// A minter signing with `config`'s secret (local runs and tests only).
    pub fn new(config: &AuthConfig) -> Self {
        Self {
            key: EncodingKey::from_secret(config.secret.as_bytes()),
            algorithm: Algorithm::HS256,
            kid: None,
            issuer: config.issuer.clone(),
            audience: config.audience.clone(),
        }
    }

    /// A minter signing with the private key `pem` of `algorithm`, naming
    /// `kid` in the token's header if given; `config`'s issuer and audience.
    pub fn with_private_key(
        config: &AuthConfig,
        algorithm: Algorithm,
        pem: &[u8],
        kid: Option<String>,
    ) -> anyhow::Result<Self> {
        let key = match algorithm {
            Algorithm::EdDSA => EncodingKey::from_ed_pem(pem),
            Algorithm::ES256 | Algorithm::ES384 => EncodingKey::from_ec_pem(pem),
            Algorithm::RS256 | Algorithm::RS384 | Algorithm::RS512 => {
                EncodingKey::from_rsa_pem(pem)
            }
            other => anyhow::bail!("{other:?} is not a private-key algorithm"),
        }?;
        Ok(Self {
            key,
            algorithm,
            kid,
            issuer: config.issuer.clone(),
            audience: config.audience.clone(),
        })
    }

    /// A token for `sub` with `role`, valid for `ttl`.
    pub fn mint(&self, sub: &str, role: Role, ttl: chrono::Duration) -> String {
        let claims = Claims {
            sub: sub.to_owned(),
            role,
            exp: (chrono::Utc::now() + ttl).timestamp(),
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
        };
        let mut header = Header::new(self.algorithm);
        header.kid.clone_from(&self.kid);
        jsonwebtoken::encode(&header, &claims, &self.key).expect("a parsed key signs any claims")
    }

    /// `Bearer <token>` metadata value, ready for a request.
    pub fn bearer(
        &self,
        sub: &str,
        role: Role,
    ) -> tonic::metadata::MetadataValue<tonic::metadata::Ascii> {
        format!(
            "Bearer {}",
            self.mint(sub, role, chrono::Duration::hours(1))
        )
        .parse()
        .expect("a JWT is valid ASCII metadata")
    }
}

/// Paths that need no token: probes and reflection.
fn is_public(path: &str) -> bool {
    path.starts_with("/grpc.health.v1.") || path.starts_with("/grpc.reflection.")
}

/// Tower layer that authenticates every call but the public ones.
#[derive(Clone)]
pub struct AuthLayer {
    verifier: Arc<Verifier>,
}

impl AuthLayer {
    /// A layer that verifies every call with `verifier`.
    pub fn new(verifier: Verifier) -> Self {
        Self {
            verifier: Arc::new(verifier),
        }
    }
}

impl<S> tower::Layer<S> for AuthLayer {
    type Service = AuthService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        AuthService {
            inner,
            verifier: self.verifier.clone(),
        }
    }
}

#[derive(Clone)]
/// The service [`AuthLayer`] wraps: verifies, then calls `S`.
pub struct AuthService<S> {
    inner: S,
    verifier: Arc<Verifier>,
}

type BoxFuture<T, E> = Pin<Box<dyn Future<Output = Result<T, E>> + Send>>;

impl<S, B> tower::Service<http::Request<B>> for AuthService<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<tonic::body::Body>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        if is_public(request.uri().path()) {
            return Box::pin(self.inner.call(request));
        }
        // The common case answers without waiting: only a token that no key
        // verifies waits, for one re-read of the key file.
        let header = request.headers().get(http::header::AUTHORIZATION);
        match self.verifier.verify_held(header) {
            Some(Ok(caller)) => {
                request.extensions_mut().insert(caller);
                Box::pin(self.inner.call(request))
            }
            Some(Err(status)) => Box::pin(async move { Ok(status.into_http()) }),
            None => {
                // Calling `inner` after an await needs a ready clone of it
                // (tower's rule: the one `poll_ready` readied is `self.inner`).
                let clone = self.inner.clone();
                let mut inner = std::mem::replace(&mut self.inner, clone);
                let verifier = self.verifier.clone();
                let header = header.cloned();
                Box::pin(async move {
                    match verifier.verify_header(header.as_ref()).await {
                        Ok(caller) => {
                            request.extensions_mut().insert(caller);
                            inner.call(request).await
                        }
                        Err(status) => Ok(status.into_http()),
                    }
                })
            }
        }
    }
}
