//! The keys tokens are verified with, and their rotation without a restart.
//!
//! `JWT_PUBLIC_KEY_FILE` holds the identity provider's public keys: one or
//! more PEM blocks (each of `JWT_ALGORITHM`), or a JWK set
//! (`{"keys": [...]}`, each key with its `kid` and `alg`). During a rotation
//! it holds the current key and the next one, so tokens signed with either
//! verify. A token whose header names a `kid` is checked against the keys
//! with that `kid` (and those without one); a token without one against
//! every key in turn.
//!
//! Kubernetes updates a mounted Secret in place, so the file is re-read by a
//! background task every [`KEY_FILE_REFRESH`], and at once (at most every
//! [`MIN_RELOAD_GAP`]) when a token's signature matches no key we hold: a key
//! added to the Secret verifies as soon as the kubelet writes the file, a key
//! removed stops verifying within one refresh. Reads use async file I/O, so
//! no call waits on the disk holding a runtime thread. A read that fails or
//! finds no key keeps the keys we have (a Secret update in flight).

use std::{
    path::{Path, PathBuf},
    sync::{Arc, RwLock, Weak},
    time::Duration,
};

use anyhow::Context as _;
use jsonwebtoken::{Algorithm, DecodingKey, Validation, errors::ErrorKind, jwk::JwkSet};
use tokio::{sync::Mutex, time::Instant};

use super::Claims;

/// How often the key file is re-read.
pub(super) const KEY_FILE_REFRESH: Duration = Duration::from_secs(30);
/// The least time between two re-reads caused by failing tokens, so a flood
/// of forged tokens costs one read a second, not one per call.
pub(super) const MIN_RELOAD_GAP: Duration = Duration::from_secs(1);

/// One key, with the validation (algorithm, issuer, audience) it is used with.
struct Key {
    kid: Option<String>,
    key: DecodingKey,
    validation: Validation,
}

/// The keys in force at one moment.
pub(super) struct KeySet(Vec<Key>);

/// Why a token did not verify.
pub(super) enum Rejected {
    /// No key we hold matches its signature (or its `kid`/algorithm): a
    /// re-read of the key file may help.
    NoKey(String),
    /// Malformed, expired, wrong issuer or audience: final.
    Invalid(jsonwebtoken::errors::Error),
}

impl KeySet {
    /// The HS256 secret of local runs and tests.
    pub(super) fn secret(secret: &str, base: &Validation) -> Self {
        Self(vec![Key {
            kid: None,
            key: DecodingKey::from_secret(secret.as_bytes()),
            validation: with_algorithm(base, Algorithm::HS256),
        }])
    }

    /// Parses a key file: a JWK set (JSON) or PEM blocks of `algorithm`.
    pub(super) fn parse(
        bytes: &[u8],
        algorithm: Algorithm,
        base: &Validation,
    ) -> anyhow::Result<Self> {
        let text = std::str::from_utf8(bytes).context("the key file is not UTF-8")?;
        let keys = if text.trim_start().starts_with('{') {
            let set: JwkSet = serde_json::from_str(text).context("not a JWK set")?;
            set.keys
                .iter()
                .map(|jwk| {
                    let algorithm = match jwk.common.key_algorithm {
                        Some(alg) => Algorithm::try_from(alg)
                            .map_err(|e| anyhow::anyhow!("JWK {:?}: {e}", jwk.common.key_id))?,
                        None => algorithm,
                    };
                    Ok(Key {
                        kid: jwk.common.key_id.clone(),
                        key: DecodingKey::from_jwk(jwk)
                            .with_context(|| format!("JWK {:?}", jwk.common.key_id))?,
                        validation: with_algorithm(base, algorithm),
                    })
                })
                .collect::<anyhow::Result<Vec<_>>>()?
        } else {
            pem_blocks(text)
                .map(|pem| {
                    let key = match algorithm {
                        Algorithm::EdDSA => DecodingKey::from_ed_pem(pem.as_bytes()),
                        Algorithm::ES256 | Algorithm::ES384 => {
                            DecodingKey::from_ec_pem(pem.as_bytes())
                        }
                        _ => DecodingKey::from_rsa_pem(pem.as_bytes()),
                    };
                    Ok(Key {
                        kid: None,
                        key: key.with_context(|| format!("a {algorithm:?} public key (PEM)"))?,
                        validation: with_algorithm(base, algorithm),
                    })
                })
                .collect::<anyhow::Result<Vec<_>>>()?
        };
        anyhow::ensure!(!keys.is_empty(), "the key file holds no key");
        Ok(Self(keys))
    }

    /// The claims of `token`, if a key of ours signed it.
    pub(super) fn decode(&self, token: &str) -> Result<Claims, Rejected> {
        let header = jsonwebtoken::decode_header(token).map_err(Rejected::Invalid)?;
        let kid = header.kid.as_deref();
        let mut tried = false;
        for key in &self.0 {
            let kid_fits = key.kid.is_none() || kid.is_none() || key.kid.as_deref() == kid;
            if !kid_fits || !key.validation.algorithms.contains(&header.alg) {
                continue;
            }
            tried = true;
            match jsonwebtoken::decode::<Claims>(token, &key.key, &key.validation) {
                Ok(data) => return Ok(data.claims),
                Err(e) if matches!(e.kind(), ErrorKind::InvalidSignature) => {}
                Err(e) => return Err(Rejected::Invalid(e)),
            }
        }
        Err(Rejected::NoKey(match (tried, kid) {
            (true, _) => "no key matches its signature".into(),
            (false, Some(kid)) => format!("no {:?} key with kid {kid:?}", header.alg),
            (false, None) => format!("no {:?} key", header.alg),
        }))
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.0.len()
    }
}

fn with_algorithm(base: &Validation, algorithm: Algorithm) -> Validation {
    let mut validation = base.clone();
    validation.algorithms = vec![algorithm];
    validation
}

/// Each `-----BEGIN ...-----` ... `-----END ...-----` block of `text`.
fn pem_blocks(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = text;
    std::iter::from_fn(move || {
        let start = rest.find("-----BEGIN ")?;
        let end_marker = rest[start..].find("-----END ")? + start;
        let end = rest[end_marker + 9..].find("-----")? + end_marker + 9 + 5;
        let block = &rest[start..end];
        rest = &rest[end..];
        Some(block)
    })
}

/// The keys in force, and where they are re-read from.
pub(super) struct Keys {
    current: Arc<RwLock<Arc<KeySet>>>,
    file: Option<KeyFile>,
}

struct KeyFile {
    path: PathBuf,
    algorithm: Algorithm,
    base: Validation,
    /// When a failing token last caused a read (none yet: the first may at
    /// once); held across the read, so calls failing together wait for one
    /// read instead of each starting their own.
    last_read: Mutex<Option<Instant>>,
}

impl Keys {
    /// Fixed keys (the HS256 secret): nothing to re-read.
    pub(super) fn fixed(set: KeySet) -> Self {
        Self {
            current: Arc::new(RwLock::new(Arc::new(set))),
            file: None,
        }
    }

    /// The keys of the file at `path`, read now (a bad file stops the start),
    /// then every `every` by a task that ends with the last verifier.
    pub(super) fn from_file(
        path: &Path,
        algorithm: Algorithm,
        base: &Validation,
        every: Duration,
    ) -> anyhow::Result<Self> {
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let set = KeySet::parse(&bytes, algorithm, base)
            .with_context(|| format!("JWT_PUBLIC_KEY_FILE {}", path.display()))?;
        let keys = Self {
            current: Arc::new(RwLock::new(Arc::new(set))),
            file: Some(KeyFile {
                path: path.to_owned(),
                algorithm,
                base: base.clone(),
                last_read: Mutex::new(None),
            }),
        };
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(refresh(
                path.to_owned(),
                algorithm,
                base.clone(),
                Arc::downgrade(&keys.current),
                every,
            ));
        }
        Ok(keys)
    }

    /// The keys in force now.
    pub(super) fn current(&self) -> Arc<KeySet> {
        self.current.read().expect("key set lock").clone()
    }

    /// Re-reads the key file after a token matched no key, unless a miss
    /// caused a read less than [`MIN_RELOAD_GAP`] ago. Returns whether the
    /// keys were replaced meanwhile (by this read or another).
    pub(super) async fn reload_after_miss(&self) -> bool {
        let Some(file) = &self.file else {
            return false;
        };
        let mut last_read = file.last_read.lock().await;
        let before = self.current();
        if last_read.is_none_or(|at| at.elapsed() >= MIN_RELOAD_GAP) {
            reload(&file.path, file.algorithm, &file.base, &self.current).await;
            *last_read = Some(Instant::now());
        }
        // Another call may have re-read the file while this one waited.
        !Arc::ptr_eq(&before, &self.current())
    }
}

#[cfg(test)]
impl Keys {
    /// One re-read now, as the periodic task does it.
    pub(super) async fn reload_now(&self) {
        let file = self.file.as_ref().expect("a key file");
        reload(&file.path, file.algorithm, &file.base, &self.current).await;
    }
}

/// Re-reads the key file every `every` until the verifier is dropped.
async fn refresh(
    path: PathBuf,
    algorithm: Algorithm,
    base: Validation,
    current: Weak<RwLock<Arc<KeySet>>>,
    every: Duration,
) {
    loop {
        tokio::time::sleep(every).await;
        let Some(current) = current.upgrade() else {
            return;
        };
        reload(&path, algorithm, &base, &current).await;
    }
}

/// One re-read. A failed read or a file without keys keeps the last keys.
async fn reload(
    path: &Path,
    algorithm: Algorithm,
    base: &Validation,
    current: &RwLock<Arc<KeySet>>,
) {
    let parsed = match tokio::fs::read(path).await {
        Ok(bytes) => KeySet::parse(&bytes, algorithm, base),
        Err(e) => Err(e.into()),
    };
    match parsed {
        Ok(set) => *current.write().expect("key set lock") = Arc::new(set),
        Err(e) => tracing::warn!(
            path = %path.display(),
            error = format!("{e:#}"),
            "cannot re-read JWT_PUBLIC_KEY_FILE; keeping the last keys"
        ),
    }
}
