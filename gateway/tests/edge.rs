//! The gateway binary on its own, with no service behind it: what the edge answers itself —
//! health and readiness, identity and the development login, the session cookie, the page,
//! problems for unknown routes and for upstreams that cannot be reached. (The saga through the
//! gateway, its breakers, limits and CORS run against the whole system in e2e.)

use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const SECRET: &str = "a-secret-for-the-edge-tests-of-the-gateway";

struct Running {
    child: Child,
    url: String,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback address nothing listens on.
fn closed_port() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    format!("http://{}", listener.local_addr().expect("its address"))
}

fn gateway(extra: &[(&str, &str)]) -> Running {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gateway"));
    cmd.env("HTTP_ADDR", "127.0.0.1:0")
        .env("JWT_SECRET", SECRET)
        .env("UPSTREAM_TIMEOUT_MS", "500")
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    for var in ["CONCERT_URL", "SEAT_URL", "RESERVATION_URL", "PAYMENT_URL"] {
        cmd.env(var, closed_port());
    }
    for (k, v) in extra {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("start the gateway");
    let stdout = child.stdout.take().expect("piped");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(url) = line.split("listening on ").nth(1) {
                let _ = tx.send(url.trim().to_owned());
            }
        }
    });
    let url = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the gateway says where it listens");
    Running { child, url }
}

fn token(user: &str) -> String {
    nats::web::Auth::new(SECRET).issue(user, None, Duration::from_secs(600))
}

async fn problem(resp: reqwest::Response, status: u16, slug: &str) -> Value {
    assert_eq!(resp.status(), status, "{resp:?}");
    assert_eq!(resp.headers()["content-type"], "application/problem+json");
    let body: Value = resp.json().await.expect("a problem is JSON");
    assert_eq!(body["type"], format!("/problems/{slug}"), "{body}");
    body
}

#[tokio::test]
async fn the_edge_answers_for_itself_with_nothing_behind_it() {
    let gw = gateway(&[]);
    let http = reqwest::Client::new();
    let get = |path: &str| http.get(format!("{}{path}", gw.url));

    assert_eq!(get("/healthz").send().await.unwrap().status(), 200);
    let ready = problem(get("/readyz").send().await.unwrap(), 503, "not-ready").await;
    let detail = ready["detail"].as_str().unwrap();
    for name in ["concert-svc", "seat-svc", "reservation-svc", "payment-svc"] {
        assert!(detail.contains(name), "{detail}");
    }

    // Identity is checked before any service is asked.
    problem(
        get("/api/wallet").send().await.unwrap(),
        401,
        "unauthorized",
    )
    .await;
    let forged = nats::web::Auth::new("some-other-secret-some-other-secret!").issue(
        "alice",
        None,
        Duration::from_secs(60),
    );
    problem(
        get("/api/wallet").bearer_auth(forged).send().await.unwrap(),
        401,
        "unauthorized",
    )
    .await;
    // Signed in, the call goes out and finds nobody: a problem that says when to come back.
    let resp = get("/api/wallet")
        .bearer_auth(token("alice"))
        .send()
        .await
        .unwrap();
    assert!(resp.headers().contains_key("retry-after"));
    let down = problem(resp, 503, "upstream-unavailable").await;
    assert!(
        down["detail"].as_str().unwrap().contains("payment-svc"),
        "{down}"
    );
    // The catalog has never answered, so there is nothing stale to give.
    problem(
        get("/api/concerts").send().await.unwrap(),
        503,
        "upstream-unavailable",
    )
    .await;

    // Development login is off unless asked for.
    let resp = http
        .post(format!("{}/api/dev/login", gw.url))
        .json(&json!({"user_id": "alice"}))
        .send()
        .await
        .unwrap();
    problem(resp, 404, "dev-login-off").await;

    problem(
        get("/api/nothing-here").send().await.unwrap(),
        404,
        "no-such-route",
    )
    .await;
    let kind: Value = get("/problems/upstream-unavailable")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(kind["status"], 503);

    // The page and its script, under a strict Content-Security-Policy.
    let page = get("/").send().await.unwrap();
    assert_eq!(page.status(), 200);
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("default-src 'self'"), "{csp}");
    assert!(
        page.text()
            .await
            .unwrap()
            .contains("data-testid=\"login-user\"")
    );
    assert_eq!(get("/app.js").send().await.unwrap().status(), 200);
    assert_eq!(get("/api/docs").send().await.unwrap().status(), 200);
}

#[tokio::test]
async fn a_development_login_is_a_session_cookie_the_edge_accepts_alone() {
    let gw = gateway(&[("DEV_LOGIN", "true")]);
    let http = reqwest::Client::new();
    let login = |body: Value| {
        http.post(format!("{}/api/dev/login", gw.url))
            .json(&body)
            .send()
    };

    for (body, slug) in [
        (json!({"user_id": " "}), "invalid-login"),
        (json!({"user_id": "a\u{7}b"}), "invalid-login"),
        (json!({"user_id": "eve", "role": "root"}), "invalid-login"),
        (json!({"name": "alice"}), "invalid-body"),
    ] {
        problem(login(body).await.unwrap(), 422, slug).await;
    }

    let resp = login(json!({"user_id": "alice"})).await.unwrap();
    assert_eq!(resp.status(), 200);
    let set_cookie = resp.headers()["set-cookie"].to_str().unwrap().to_owned();
    for attribute in [
        "ticketing_session=",
        "HttpOnly",
        "SameSite=Strict",
        "Path=/",
    ] {
        assert!(set_cookie.contains(attribute), "{set_cookie}");
    }
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["user_id"], "alice");
    let verified = nats::web::Auth::new(SECRET)
        .verify(body["token"].as_str().unwrap())
        .unwrap();
    assert_eq!(verified.sub, "alice");
    assert_eq!(verified.role, None);

    // The cookie alone signs the caller in.
    let cookie = set_cookie.split(';').next().unwrap().to_owned();
    let who: Value = http
        .get(format!("{}/api/session", gw.url))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(who["user_id"], "alice", "{who}");
    // A cookie with a token that is not valid is refused, not ignored.
    let resp = http
        .get(format!("{}/api/session", gw.url))
        .header("cookie", "ticketing_session=not.a.token")
        .send()
        .await
        .unwrap();
    problem(resp, 401, "unauthorized").await;
    // Signing out clears it.
    let out = http
        .delete(format!("{}/api/session", gw.url))
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 204);
    assert!(
        out.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    // A token from the identity provider can be kept as the cookie too.
    let resp = http
        .post(format!("{}/api/session", gw.url))
        .bearer_auth(token("bob"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .contains("HttpOnly")
    );
}
