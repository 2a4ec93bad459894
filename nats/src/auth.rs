//! auth: identity from `Authorization: Bearer <JWT>` — HS256 pinned, `exp` required and checked,
//! `sub` is the user id, `role: "admin"` opens admin routes.

use crate::http::Problem;
use axum::extract::FromRequestParts;
use axum::http::{StatusCode, header, request::Parts};
use contracts::UserId;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
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
}

/// Verifies (and, for tests and tools, issues) tokens signed with the shared secret.
pub struct Auth {
    decoding: DecodingKey,
    encoding: EncodingKey,
    validation: Validation,
}

impl Auth {
    pub fn new(secret: &str) -> Arc<Self> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_required_spec_claims(&["exp", "sub"]);
        validation.leeway = 5;
        Arc::new(Auth {
            decoding: DecodingKey::from_secret(secret.as_bytes()),
            encoding: EncodingKey::from_secret(secret.as_bytes()),
            validation,
        })
    }

    pub fn verify(&self, token: &str) -> Result<Claims, jsonwebtoken::errors::Error> {
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation).map(|d| d.claims)
    }

    /// A token for `sub`, valid for `ttl`.
    pub fn issue(&self, sub: &str, role: Option<&str>, ttl: Duration) -> String {
        let exp = time::OffsetDateTime::now_utc().unix_timestamp() as u64 + ttl.as_secs();
        let claims = Claims {
            sub: sub.to_owned(),
            exp,
            role: role.map(str::to_owned),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .expect("HS256 signing with a byte secret cannot fail")
    }
}

fn claims(parts: &Parts, auth: &Auth) -> Result<Claims, Problem> {
    let value = parts
        .headers
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
    Ok(claims)
}

fn unauthorized(detail: &str) -> Problem {
    Problem::new(StatusCode::UNAUTHORIZED, detail)
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
        claims(parts, &auth).map(|c| User(UserId(c.sub)))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Admin {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Problem> {
        let auth = verifier(parts)?;
        let claims = claims(parts, &auth)?;
        if claims.role.as_deref() != Some(ADMIN_ROLE) {
            return Err(Problem::new(
                StatusCode::FORBIDDEN,
                "this action needs the admin role",
            ));
        }
        Ok(Admin(UserId(claims.sub)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_verify_only_with_their_secret_and_algorithm() {
        let auth = Auth::new("s3cret");
        let token = auth.issue("alice", Some(ADMIN_ROLE), Duration::from_secs(60));
        let claims = auth.verify(&token).unwrap();
        assert_eq!(claims.sub, "alice");
        assert_eq!(claims.role.as_deref(), Some(ADMIN_ROLE));
        assert!(Auth::new("other").verify(&token).is_err());

        // An HS384 token with the right secret is still refused: the algorithm is pinned.
        let hs384 = jsonwebtoken::encode(
            &Header::new(Algorithm::HS384),
            &claims,
            &EncodingKey::from_secret(b"s3cret"),
        )
        .unwrap();
        assert!(auth.verify(&hs384).is_err());
    }

    #[test]
    fn expired_tokens_are_refused() {
        let auth = Auth::new("s3cret");
        let claims = Claims {
            sub: "bob".into(),
            exp: 1_000,
            role: None,
        };
        let token = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(b"s3cret"),
        )
        .unwrap();
        assert!(auth.verify(&token).is_err());
    }
}
