//! tests: what each kind of key verifies and refuses, and which configurations fail closed.

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
    let hs384 = signed_with_secret(Algorithm::HS384, &claims);
    assert!(auth.verify(&hs384).is_err());
}

/// `claims` signed with the tests' shared secret by `algorithm`.
fn signed_with_secret(algorithm: Algorithm, claims: &Claims) -> String {
    jsonwebtoken::encode(
        &Header::new(algorithm),
        claims,
        &EncodingKey::from_secret(b"s3cret"),
    )
    .unwrap()
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
    let token = signed_with_secret(Algorithm::HS256, &claims);
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

/// A provider's key set (JWKS): each token is verified with the key its `kid` names and that
/// key's algorithm; a token naming no known key, or signed by another key, is refused; the
/// service cannot sign; a set holding a shared secret is refused at start.
#[test]
fn a_key_set_verifies_tokens_by_kid_and_cannot_sign() {
    let jwks = include_str!("test_keys/jwks.json");
    let auth = Auth::from_config(&from(&[("JWT_JWKS", jwks)], false).unwrap()).unwrap();
    let signed = |private: &str, algorithm, kid: Option<&str>| {
        let key = match algorithm {
            Algorithm::EdDSA => EncodingKey::from_ed_pem(private.as_bytes()),
            _ => EncodingKey::from_rsa_pem(private.as_bytes()),
        }
        .unwrap();
        let mut header = Header::new(algorithm);
        header.kid = kid.map(str::to_owned);
        jsonwebtoken::encode(&header, &claims(None, None), &key).unwrap()
    };
    let (ed, rsa) = (
        include_str!("test_keys/ed25519.pem"),
        include_str!("test_keys/rsa.pem"),
    );
    assert_eq!(
        auth.verify(&signed(ed, Algorithm::EdDSA, Some("ed-1")))
            .unwrap()
            .sub,
        "ann"
    );
    assert_eq!(
        auth.verify(&signed(rsa, Algorithm::RS256, Some("rsa-1")))
            .unwrap()
            .sub,
        "ann"
    );
    // The RSA key under the Ed25519 key's kid, an unknown kid, no kid: refused.
    assert!(
        auth.verify(&signed(rsa, Algorithm::RS256, Some("ed-1")))
            .is_err()
    );
    assert!(
        auth.verify(&signed(ed, Algorithm::EdDSA, Some("gone")))
            .is_err()
    );
    assert!(auth.verify(&signed(ed, Algorithm::EdDSA, None)).is_err());
    assert!(
        auth.try_issue("ann", Some(ADMIN_ROLE), Duration::from_secs(60))
            .is_none()
    );

    let secret = r#"{"keys":[{"kty":"oct","k":"c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA","kid":"s"}]}"#;
    let refused = Auth::from_config(&from(&[("JWT_JWKS", secret)], false).unwrap());
    assert!(refused.err().unwrap().to_string().contains("shared secret"));
    assert!(
        from(
            &[("JWT_JWKS", jwks), ("JWT_SECRET", &"x".repeat(40))],
            false
        )
        .is_err()
    );
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
