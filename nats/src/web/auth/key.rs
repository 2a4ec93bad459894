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
    /// The identity provider's published key set (a JWK Set, RFC 7517), for keys that rotate:
    /// a token names its key by `kid`. Public keys only.
    Jwks(String),
}

impl std::fmt::Debug for Key {
    // Never print a secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Key::Secret(_) => f.write_str("Secret(..)"),
            Key::PublicPem(_) => f.write_str("PublicPem(..)"),
            Key::Jwks(_) => f.write_str("Jwks(..)"),
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

    /// From `JWT_SECRET`, `JWT_PUBLIC_KEY` (a PEM, or the path of a PEM file) or `JWT_JWKS` (a
    /// JWK Set's JSON, or the path of its file), `JWT_ISSUER` and `JWT_AUDIENCE`. Outside `dev_mode` a missing key, a secret shorter than
    /// [`MIN_SECRET_BYTES`] or a known public one is refused: anyone could mint admin tokens.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>, dev_mode: bool) -> anyhow::Result<Self> {
        let nonempty = |k: &str| var(k).filter(|v| !v.trim().is_empty());
        if let Some(jwks) = nonempty("JWT_JWKS") {
            if nonempty("JWT_SECRET").is_some() || nonempty("JWT_PUBLIC_KEY").is_some() {
                bail!("set one of JWT_SECRET, JWT_PUBLIC_KEY and JWT_JWKS");
            }
            let text = if jwks.trim_start().starts_with('{') {
                jwks
            } else {
                std::fs::read_to_string(&jwks)
                    .with_context(|| format!("read JWT_JWKS from the file {jwks:?}"))?
            };
            return Ok(AuthConfig {
                key: Key::Jwks(text),
                issuer: nonempty("JWT_ISSUER"),
                audience: nonempty("JWT_AUDIENCE"),
            });
        }
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

/// The keys of a JWK Set, each with its `kid` and the one algorithm it verifies: the set's
/// `alg` when given, else the key type's (RSA → RS256, EC P-256 → ES256, Ed25519 → EdDSA). A
/// shared secret (`kty: oct`) is refused: a service holding it could sign.
pub(super) fn key_set(json: &str) -> anyhow::Result<Vec<(Option<String>, DecodingKey, Algorithm)>> {
    use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, JwkSet};
    let set: JwkSet = serde_json::from_str(json).context("JWT_JWKS is not a JWK Set")?;
    if set.keys.is_empty() {
        bail!("JWT_JWKS holds no key");
    }
    set.keys
        .iter()
        .map(|jwk| {
            let kid = jwk.common.key_id.clone();
            let by_type = match &jwk.algorithm {
                AlgorithmParameters::RSA(_) => Algorithm::RS256,
                AlgorithmParameters::EllipticCurve(ec) if ec.curve == EllipticCurve::P256 => {
                    Algorithm::ES256
                }
                AlgorithmParameters::OctetKeyPair(_) => Algorithm::EdDSA,
                AlgorithmParameters::OctetKey(_) => bail!(
                    "JWT_JWKS key {kid:?} is a shared secret: a service could sign with it;                      publish public keys only"
                ),
                _ => bail!("JWT_JWKS key {kid:?}: only RSA, EC P-256 and Ed25519 keys are taken"),
            };
            let algorithm = match jwk.common.key_algorithm {
                Some(alg) => Algorithm::try_from(alg)
                    .map_err(|e| anyhow::anyhow!("JWT_JWKS key {kid:?}: {e}"))?,
                None => by_type,
            };
            if matches!(algorithm, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512) {
                bail!("JWT_JWKS key {kid:?} names {algorithm:?}: public keys only");
            }
            let key = DecodingKey::from_jwk(jwk)
                .with_context(|| format!("JWT_JWKS key {kid:?} is not usable"))?;
            Ok((kid, key, algorithm))
        })
        .collect()
}
