//! key: what a service accepts to verify tokens with — a shared secret long and private enough,
//! or a public key — read from its configuration, failing closed outside development.

use anyhow::{Context as _, bail};
use jsonwebtoken::{Algorithm, DecodingKey};

/// The secret a service uses without `JWT_SECRET` in development (`DEV_MODE=true`) only.
pub const DEV_JWT_SECRET: &str = "dev-secret-change-me";

/// Shortest shared secret accepted outside development: 256 bits, as HS256 needs (RFC 7518 3.2).
pub const MIN_SECRET_BYTES: usize = 32;

/// Secrets that are public (shipped in this repository's code, configs or docs at some point):
/// whoever knows one can mint admin tokens.
pub(super) const KNOWN_SECRETS: &[&str] = &[
    DEV_JWT_SECRET,
    "change-me-in-production",
    "e2e-secret",
    "test-secret",
    "secret",
    "changeme",
];

/// What tokens are verified with.
#[derive(Clone)]
pub enum Key {
    /// A secret shared with whoever issues tokens (HS256): it can sign too.
    Secret(String),
    /// A public key in PEM (RSA, EC P-256 or Ed25519): it verifies only; tokens come from the
    /// identity provider that holds the private key.
    PublicPem(String),
}

impl std::fmt::Debug for Key {
    // Never print a secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Key::Secret(_) => f.write_str("Secret(..)"),
            Key::PublicPem(_) => f.write_str("PublicPem(..)"),
        }
    }
}

/// How a service verifies tokens: the key and the issuer and audience they must name.
#[derive(Clone, Debug)]
pub struct AuthConfig {
    pub key: Key,
    pub issuer: Option<String>,
    pub audience: Option<String>,
}

impl AuthConfig {
    /// A shared secret, no issuer or audience required (tests and development).
    pub fn secret(secret: &str) -> Self {
        AuthConfig {
            key: Key::Secret(secret.to_owned()),
            issuer: None,
            audience: None,
        }
    }

    /// From `JWT_SECRET` or `JWT_PUBLIC_KEY` (a PEM, or the path of a PEM file), `JWT_ISSUER` and
    /// `JWT_AUDIENCE`. Outside `dev_mode` a missing key, a secret shorter than
    /// [`MIN_SECRET_BYTES`] or a known public one is refused: anyone could mint admin tokens.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>, dev_mode: bool) -> anyhow::Result<Self> {
        let nonempty = |k: &str| var(k).filter(|v| !v.trim().is_empty());
        let key = match (nonempty("JWT_SECRET"), nonempty("JWT_PUBLIC_KEY")) {
            (Some(_), Some(_)) => bail!("set JWT_SECRET or JWT_PUBLIC_KEY, not both"),
            (None, Some(pem)) => Key::PublicPem(if pem.trim_start().starts_with("-----BEGIN") {
                pem
            } else {
                std::fs::read_to_string(&pem)
                    .with_context(|| format!("read JWT_PUBLIC_KEY from the file {pem:?}"))?
            }),
            (Some(secret), None) => {
                let weak = if KNOWN_SECRETS.contains(&secret.as_str()) {
                    Some("is a publicly known default")
                } else if secret.len() < MIN_SECRET_BYTES {
                    Some("is shorter than 32 bytes")
                } else {
                    None
                };
                match weak {
                    Some(why) if !dev_mode => bail!(
                        "JWT_SECRET {why}: anyone could sign admin tokens with it. Set a random \
                         secret of at least {MIN_SECRET_BYTES} bytes (e.g. `openssl rand -hex 32`) \
                         or JWT_PUBLIC_KEY, or DEV_MODE=true for development"
                    ),
                    Some(why) => tracing::warn!("JWT_SECRET {why}; accepted because DEV_MODE=true"),
                    None => {}
                }
                Key::Secret(secret)
            }
            (None, None) if dev_mode => {
                tracing::warn!(
                    "JWT_SECRET is not set: using the development secret (DEV_MODE=true)"
                );
                Key::Secret(DEV_JWT_SECRET.to_owned())
            }
            (None, None) => bail!(
                "JWT_SECRET or JWT_PUBLIC_KEY is required (DEV_MODE=true uses a development secret)"
            ),
        };
        Ok(AuthConfig {
            key,
            issuer: nonempty("JWT_ISSUER"),
            audience: nonempty("JWT_AUDIENCE"),
        })
    }
}

/// The key a public-key PEM holds, and the one algorithm it verifies.
pub(super) fn public_key(pem: &str) -> anyhow::Result<(DecodingKey, Algorithm)> {
    let pem = pem.as_bytes();
    if let Ok(key) = DecodingKey::from_ed_pem(pem) {
        return Ok((key, Algorithm::EdDSA));
    }
    if let Ok(key) = DecodingKey::from_ec_pem(pem) {
        return Ok((key, Algorithm::ES256));
    }
    DecodingKey::from_rsa_pem(pem)
        .map(|key| (key, Algorithm::RS256))
        .context("JWT_PUBLIC_KEY is not a PEM public key (RSA, EC P-256 or Ed25519)")
}
