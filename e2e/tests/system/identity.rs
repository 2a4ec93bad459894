//! Identity, unknown routes and health: every service answers the same way.

use e2e::{Frontend, System};
use serde_json::json;

#[tokio::test]
async fn identity_is_checked_and_errors_are_problem_json() {
    let sys = System::start().await.expect("start the system");
    let concert = sys.concert.api();
    let no_token = concert
        .post("/concerts", None, &json!({"title": "x"}))
        .await
        .unwrap();
    assert!(no_token.is(401));
    assert_eq!(no_token.content_type, "application/problem+json");
    let bad = concert
        .post("/concerts", Some("not-a-jwt"), &json!({"title": "x"}))
        .await
        .unwrap();
    assert!(bad.is(401));
    let user = concert
        .post(
            "/concerts",
            Some(&sys.user_token("bob")),
            &json!({"title": "x"}),
        )
        .await
        .unwrap();
    assert!(user.is(403), "{:?}", user);
    // Every service answers unknown routes and bad tokens the same way.
    for p in sys.services() {
        let r = p.api().get("/no/such/route", None).await.unwrap();
        assert!(
            r.is(404) && r.content_type == "application/problem+json",
            "{}: {r:?}",
            p.name
        );
        p.api().get("/healthz", None).await.unwrap().expect(200);
        let m = p.api().get("/metrics", None).await.unwrap().expect(200);
        let text = m.body.as_str().unwrap_or_default();
        assert!(text.contains("http_requests_total"), "{}: {text}", p.name);
    }
    let wallet = sys
        .payment
        .api()
        .get("/wallet", Some("Bearer-less"))
        .await
        .unwrap();
    assert!(wallet.is(401));
}

/// The identity provider's key pair of the tests; services are given the public half.
const PROVIDER_KEY: &str = include_str!("../../../nats/src/web/auth/test_keys/ed25519.pem");
const PROVIDER_PUBLIC_KEY: &str =
    include_str!("../../../nats/src/web/auth/test_keys/ed25519.pub.pem");

/// payment-svc's environment on `nats` with a database in `dir` and `auth` as its only token
/// settings.
fn payment_env(
    nats: &harness::NatsServer,
    dir: &std::path::Path,
    auth: &[(&str, &str)],
) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = vec![
        ("HTTP_ADDR".into(), "127.0.0.1:0".into()),
        ("NATS_URL".into(), nats.url()),
        (
            "DATABASE_URL".into(),
            format!("sqlite://{}/payment.db", dir.display()),
        ),
    ];
    env.extend(auth.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    env
}

/// Starts payment-svc with `env` and answers what it printed when it refused to start (exit
/// non-zero); an error if it started, or failed for another reason.
fn refusal(env: &[(String, String)]) -> anyhow::Result<String> {
    let mut child = std::process::Command::new(e2e::service_binary("payment-svc")?)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()?;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if std::time::Instant::now() > deadline {
            child.kill()?;
            anyhow::bail!("payment-svc started instead of refusing");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr)?;
    anyhow::ensure!(!status.success(), "payment-svc exited 0: {stderr}");
    Ok(stderr)
}

/// A service refuses to start (exit non-zero, saying why) without a key, or with a secret
/// anyone could sign with, unless DEV_MODE=true; given only its identity provider's public key
/// it accepts the provider's tokens and refuses one signed with anything else.
#[tokio::test]
async fn a_service_starts_only_with_a_key_nobody_else_can_sign_with() {
    let nats = harness::NatsServer::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let env = |auth: &[(&str, &str)]| payment_env(&nats, dir.path(), auth);
    for (auth, why) in [
        (&[][..], "JWT_SECRET or JWT_PUBLIC_KEY is required"),
        (
            &[("JWT_SECRET", "dev-secret-change-me")][..],
            "publicly known",
        ),
        (
            &[("JWT_SECRET", "change-me-in-production")][..],
            "publicly known",
        ),
        (
            &[("JWT_SECRET", "short-secret")][..],
            "shorter than 32 bytes",
        ),
    ] {
        let said = refusal(&env(auth)).unwrap();
        assert!(said.contains(why), "{auth:?}: {said}");
    }

    // Development may run on the defaults.
    let log = dir.path().join("dev.log");
    let dev = e2e::ServiceProcess::spawn("payment-svc", env(&[("DEV_MODE", "true")]), log).unwrap();
    drop(dev);

    let key = dir.path().join("provider.pub.pem");
    std::fs::write(&key, PROVIDER_PUBLIC_KEY).unwrap();
    let key = key.to_str().unwrap();
    let auth = [
        ("JWT_PUBLIC_KEY", key),
        ("JWT_ISSUER", "https://id.example"),
    ];
    let log = dir.path().join("pub.log");
    let svc = e2e::ServiceProcess::spawn("payment-svc", env(&auth), log).unwrap();
    let token = |key: &jsonwebtoken::EncodingKey, alg, iss: &str| {
        let claims = json!({"sub": "ann", "iss": iss, "exp": 4_102_444_800u64});
        jsonwebtoken::encode(&jsonwebtoken::Header::new(alg), &claims, key).unwrap()
    };
    let provider = jsonwebtoken::EncodingKey::from_ed_pem(PROVIDER_KEY.as_bytes()).unwrap();
    let ed = jsonwebtoken::Algorithm::EdDSA;
    let api = svc.api();
    let wallet = async |token: &str| api.get("/wallet", Some(token)).await.unwrap();
    wallet(&token(&provider, ed, "https://id.example"))
        .await
        .expect(200);
    let other_issuer = wallet(&token(&provider, ed, "https://other.example")).await;
    assert!(other_issuer.is(401), "{other_issuer:?}");
    // The public key as an HS256 secret: the classic key-confusion forgery.
    let confused = jsonwebtoken::EncodingKey::from_secret(PROVIDER_PUBLIC_KEY.as_bytes());
    let forged = token(
        &confused,
        jsonwebtoken::Algorithm::HS256,
        "https://id.example",
    );
    let forged = wallet(&forged).await;
    assert!(forged.is(401), "{forged:?}");
}
