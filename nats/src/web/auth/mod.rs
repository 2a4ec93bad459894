//! auth: identity from `Authorization: Bearer <JWT>` — the algorithm pinned by the key (HS256
//! with a shared secret, or RS256 / ES256 / EdDSA with a public key or a key set, which can
//! verify but not sign), `exp` required and checked, `iss` and `aud` when configured, `sub` is the user id,
//! `role: "admin"` opens admin routes. What a service accepts as a key is decided here too.

mod key;

pub use key::{AuthConfig, DEV_JWT_SECRET, Key, MIN_SECRET_BYTES};

use super::problem::{Problem, kinds};
use axum::extract::FromRequestParts;
use axum::http::{HeaderMap, header, request::Parts};
use contracts::UserId;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use key::{key_set, public_key};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;

pub const ADMIN_ROLE: &str = "admin";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub exp: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<String>,
}

/// Verifies tokens, and issues them where it holds a secret (tests, tools, the demo).
pub struct Auth {
    /// Each key with its `kid` (a key set's) and the validation that pins its algorithm.
    keys: Vec<(Option<String>, DecodingKey, Validation)>,
    encoding: Option<(EncodingKey, Algorithm)>,
    issuer: Option<String>,
    audience: Option<String>,
}

impl Auth {
    /// A verifier (and issuer) with a shared secret and no issuer or audience.
    pub fn new(secret: &str) -> Arc<Self> {
        Self::from_config(&AuthConfig::secret(secret)).expect("a secret is always a valid key")
    }

    pub fn from_config(config: &AuthConfig) -> anyhow::Result<Arc<Self>> {
        let (keys, encoding) = match &config.key {
            Key::Secret(secret) => (
                vec![(
                    None,
                    DecodingKey::from_secret(secret.as_bytes()),
                    Algorithm::HS256,
                )],
                Some((
                    EncodingKey::from_secret(secret.as_bytes()),
                    Algorithm::HS256,
                )),
            ),
            Key::PublicPem(pem) => {
                let (key, algorithm) = public_key(pem)?;
                (vec![(None, key, algorithm)], None)
            }
            Key::Jwks(json) => (key_set(json)?, None),
        };
        let keys = keys
            .into_iter()
            .map(|(kid, key, algorithm)| (kid, key, Self::validation(config, algorithm)))
            .collect();
        Ok(Arc::new(Auth {
            keys,
            encoding,
            issuer: config.issuer.clone(),
            audience: config.audience.clone(),
        }))
    }

    /// `exp` and `sub` always required, `iss` and `aud` when configured, `algorithm` only.
    fn validation(config: &AuthConfig, algorithm: Algorithm) -> Validation {
        let mut validation = Validation::new(algorithm);
        let mut required = vec!["exp", "sub"];
        if let Some(iss) = &config.issuer {
            validation.set_issuer(&[iss]);
            required.push("iss");
        }
        match &config.audience {
            Some(aud) => {
                validation.set_audience(&[aud]);
                required.push("aud");
            }
            None => validation.validate_aud = false,
        }
        validation.set_required_spec_claims(&required);
        validation.leeway = 5;
        validation
    }

    /// The token's claims if one of the keys verifies it: the one its `kid` names in a key set,
    /// else the only key.
    pub fn verify(&self, token: &str) -> Result<Claims, jsonwebtoken::errors::Error> {
        let key = match self.keys.as_slice() {
            [(None, key, validation)] => Some((key, validation)),
            keys => {
                let kid = jsonwebtoken::decode_header(token)?.kid;
                keys.iter()
                    .find(|(k, _, _)| k.is_some() && *k == kid)
                    .or(match keys {
                        [only] if kid.is_none() => Some(only),
                        _ => None,
                    })
                    .map(|(_, key, validation)| (key, validation))
            }
        };
        let (key, validation) = key.ok_or(jsonwebtoken::errors::ErrorKind::InvalidToken)?;
        jsonwebtoken::decode::<Claims>(token, key, validation).map(|d| d.claims)
    }

    /// A token for `sub`, valid for `ttl`, naming the configured issuer and audience; `None`
    /// when this verifier holds a public key only.
    pub fn try_issue(&self, sub: &str, role: Option<&str>, ttl: Duration) -> Option<String> {
        let (key, algorithm) = self.encoding.as_ref()?;
        let exp = time::OffsetDateTime::now_utc().unix_timestamp() as u64 + ttl.as_secs();
        let claims = Claims {
            sub: sub.to_owned(),
            exp,
            role: role.map(str::to_owned),
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
        };
        jsonwebtoken::encode(&Header::new(*algorithm), &claims, key).ok()
    }

    /// [`Auth::try_issue`] for tests and tools, which always hold a secret.
    pub fn issue(&self, sub: &str, role: Option<&str>, ttl: Duration) -> String {
        self.try_issue(sub, role, ttl)
            .expect("issuing tokens needs a shared secret, not a public key")
    }
}

/// The claims of the request's bearer token, verified and checked (a gateway at the edge and
/// every service's extractors alike).
pub fn claims(headers: &HeaderMap, auth: &Auth) -> Result<Claims, Problem> {
    let value = headers
        .get(header::AUTHORIZATION)
        .ok_or_else(|| unauthorized("an Authorization: Bearer <token> header is required"))?;
    let token = value
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(|| unauthorized("the Authorization header must read 'Bearer <token>'"))?;
    let claims = auth
        .verify(token.trim())
        .map_err(|e| unauthorized(&format!("the bearer token is not valid: {e}")))?;
    if claims.sub.trim().is_empty() {
        return Err(unauthorized("the bearer token names no user (empty sub)"));
    }
    // A user id is stored and sent on events: no control characters (no database keeps a NUL).
    if claims.sub.chars().any(char::is_control) {
        return Err(unauthorized(
            "the bearer token's sub has control characters",
        ));
    }
    Ok(claims)
}

fn unauthorized(detail: &str) -> Problem {
    Problem::new(kinds::UNAUTHORIZED, detail)
}

/// The signed-in user.
#[derive(Debug, Clone)]
pub struct User(pub UserId);

/// A signed-in user with the admin role.
#[derive(Debug, Clone)]
pub struct Admin(pub UserId);

/// The verifier, put on every request by the service runtime.
fn verifier(parts: &Parts) -> Result<Arc<Auth>, Problem> {
    parts
        .extensions
        .get::<Arc<Auth>>()
        .cloned()
        .ok_or_else(|| Problem::internal("no Auth extension on the router"))
}

impl<S: Send + Sync> FromRequestParts<S> for User {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Problem> {
        let auth = verifier(parts)?;
        claims(&parts.headers, &auth).map(|c| User(UserId(c.sub)))
    }
}

/// The caller and until when their token is good: for responses that last (a live stream ends
/// when the token that opened it expires).
pub struct Session {
    pub user: UserId,
    pub expires_at: time::OffsetDateTime,
}

impl<S: Send + Sync> FromRequestParts<S> for Session {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Problem> {
        let auth = verifier(parts)?;
        let c = claims(&parts.headers, &auth)?;
        let expires_at = i64::try_from(c.exp)
            .ok()
            .and_then(|exp| time::OffsetDateTime::from_unix_timestamp(exp).ok())
            .ok_or_else(|| unauthorized("the bearer token's exp is out of range"))?;
        Ok(Session {
            user: UserId(c.sub),
            expires_at,
        })
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Admin {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Problem> {
        let auth = verifier(parts)?;
        let claims = claims(&parts.headers, &auth)?;
        if claims.role.as_deref() != Some(ADMIN_ROLE) {
            return Err(Problem::new(
                kinds::ADMIN_ONLY,
                "this action needs the admin role",
            ));
        }
        Ok(Admin(UserId(claims.sub)))
    }
}

#[cfg(test)]
mod tests;
