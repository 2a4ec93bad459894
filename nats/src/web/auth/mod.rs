//! auth: identity from `Authorization: Bearer <JWT>` — the algorithm pinned by the key (HS256
//! with a shared secret, or RS256 / ES256 / EdDSA with a public key that can verify but not
//! sign), `exp` required and checked, `iss` and `aud` when configured, `sub` is the user id,
//! `role: "admin"` opens admin routes. What a service accepts as a key is decided here too.

mod key;

pub use key::{AuthConfig, DEV_JWT_SECRET, Key, MIN_SECRET_BYTES};

use super::problem::Problem;
use axum::extract::FromRequestParts;
use axum::http::{StatusCode, header, request::Parts};
use contracts::UserId;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use key::public_key;
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
    decoding: DecodingKey,
    encoding: Option<(EncodingKey, Algorithm)>,
    validation: Validation,
    issuer: Option<String>,
    audience: Option<String>,
}

impl Auth {
    /// A verifier (and issuer) with a shared secret and no issuer or audience.
    pub fn new(secret: &str) -> Arc<Self> {
        Self::from_config(&AuthConfig::secret(secret)).expect("a secret is always a valid key")
    }

    pub fn from_config(config: &AuthConfig) -> anyhow::Result<Arc<Self>> {
        let (decoding, encoding, algorithm) = match &config.key {
            Key::Secret(secret) => (
                DecodingKey::from_secret(secret.as_bytes()),
                Some((
                    EncodingKey::from_secret(secret.as_bytes()),
                    Algorithm::HS256,
                )),
                Algorithm::HS256,
            ),
            Key::PublicPem(pem) => {
                let (key, algorithm) = public_key(pem)?;
                (key, None, algorithm)
            }
        };
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
        Ok(Arc::new(Auth {
            decoding,
            encoding,
            validation,
            issuer: config.issuer.clone(),
            audience: config.audience.clone(),
        }))
    }

    pub fn verify(&self, token: &str) -> Result<Claims, jsonwebtoken::errors::Error> {
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation).map(|d| d.claims)
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
        let c = claims(parts, &auth)?;
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
    use super::key::KNOWN_SECRETS;
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
            iss: None,
            aud: None,
        };
        let token = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(b"s3cret"),
        )
        .unwrap();
        assert!(auth.verify(&token).is_err());
    }

    fn from(vars: &[(&str, &str)], dev_mode: bool) -> anyhow::Result<AuthConfig> {
        let vars: std::collections::HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        AuthConfig::from_vars(|k| vars.get(k).cloned(), dev_mode)
    }

    fn refusal(vars: &[(&str, &str)]) -> String {
        format!("{:#}", from(vars, false).expect_err("refused"))
    }

    #[test]
    fn a_missing_short_or_known_secret_is_refused_outside_development() {
        assert!(refusal(&[]).contains("JWT_SECRET or JWT_PUBLIC_KEY is required"));
        assert!(refusal(&[("JWT_SECRET", "")]).contains("is required"));
        assert!(refusal(&[("JWT_SECRET", "short")]).contains("shorter than 32 bytes"));
        for known in KNOWN_SECRETS {
            assert!(refusal(&[("JWT_SECRET", known)]).contains("publicly known"));
        }
        let strong = "0123456789abcdef0123456789abcdef";
        assert!(refusal(&[("JWT_SECRET", strong), ("JWT_PUBLIC_KEY", "x")]).contains("not both"));
        assert!(
            matches!(from(&[("JWT_SECRET", strong)], false).unwrap().key, Key::Secret(s) if s == strong)
        );
        // Development may use the defaults.
        assert!(matches!(from(&[], true).unwrap().key, Key::Secret(s) if s == DEV_JWT_SECRET));
        assert!(from(&[("JWT_SECRET", "short")], true).is_ok());
    }

    /// An identity provider's key pair; the services get the public half only.
    fn provider_token(private_pem: &str, algorithm: Algorithm, claims: &Claims) -> String {
        let key = match algorithm {
            Algorithm::EdDSA => EncodingKey::from_ed_pem(private_pem.as_bytes()),
            _ => EncodingKey::from_rsa_pem(private_pem.as_bytes()),
        }
        .unwrap();
        jsonwebtoken::encode(&Header::new(algorithm), claims, &key).unwrap()
    }

    fn claims(iss: Option<&str>, aud: Option<&str>) -> Claims {
        Claims {
            sub: "ann".into(),
            exp: time::OffsetDateTime::now_utc().unix_timestamp() as u64 + 60,
            role: None,
            iss: iss.map(str::to_owned),
            aud: aud.map(str::to_owned),
        }
    }

    #[test]
    fn a_public_key_verifies_its_providers_tokens_and_cannot_sign() {
        let keys = [
            (
                include_str!("test_keys/ed25519.pem"),
                include_str!("test_keys/ed25519.pub.pem"),
                Algorithm::EdDSA,
            ),
            (
                include_str!("test_keys/rsa.pem"),
                include_str!("test_keys/rsa.pub.pem"),
                Algorithm::RS256,
            ),
        ];
        for (private, public, algorithm) in keys {
            let config = from(&[("JWT_PUBLIC_KEY", public)], false).unwrap();
            let auth = Auth::from_config(&config).unwrap();
            let token = provider_token(private, algorithm, &claims(None, None));
            assert_eq!(auth.verify(&token).unwrap().sub, "ann");
            assert_eq!(
                auth.try_issue("mallory", Some(ADMIN_ROLE), Duration::from_secs(60)),
                None
            );
            // A token signed with a secret is refused: the algorithm is the key's.
            let hs = Auth::new(public).issue("mallory", Some(ADMIN_ROLE), Duration::from_secs(60));
            assert!(auth.verify(&hs).is_err(), "{algorithm:?}");
        }
        assert!(refusal(&[("JWT_PUBLIC_KEY", "/nonexistent.pem")]).contains("read JWT_PUBLIC_KEY"));
        let garbage = "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n";
        let config = from(&[("JWT_PUBLIC_KEY", garbage)], false).unwrap();
        assert!(Auth::from_config(&config).is_err());
    }

    #[test]
    fn issuer_and_audience_when_configured_must_match() {
        let strong = "0123456789abcdef0123456789abcdef";
        let config = from(
            &[
                ("JWT_SECRET", strong),
                ("JWT_ISSUER", "https://id.example"),
                ("JWT_AUDIENCE", "tickets"),
            ],
            false,
        )
        .unwrap();
        let auth = Auth::from_config(&config).unwrap();
        let sign = |c: &Claims| {
            jsonwebtoken::encode(
                &Header::new(Algorithm::HS256),
                c,
                &EncodingKey::from_secret(strong.as_bytes()),
            )
            .unwrap()
        };
        assert!(
            auth.verify(&sign(&claims(Some("https://id.example"), Some("tickets"))))
                .is_ok()
        );
        assert!(
            auth.verify(&sign(&claims(
                Some("https://evil.example"),
                Some("tickets")
            )))
            .is_err()
        );
        assert!(
            auth.verify(&sign(&claims(Some("https://id.example"), Some("other"))))
                .is_err()
        );
        assert!(auth.verify(&sign(&claims(None, Some("tickets")))).is_err());
        assert!(
            auth.verify(&sign(&claims(Some("https://id.example"), None)))
                .is_err()
        );
        // What this verifier issues names both.
        let own = auth.issue("ann", None, Duration::from_secs(60));
        assert!(auth.verify(&own).is_ok());
    }
}
