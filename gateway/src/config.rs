//! config: the gateway's settings from the environment, with defaults that run on a laptop
//! beside the four services on their default ports.

use nats::runtime::{env_or, env_parse};
use nats::web::auth::AuthConfig;
use std::time::Duration;

/// The four services behind the gateway, by the part of the API each owns.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Upstream {
    Concert,
    Seat,
    Reservation,
    Payment,
}

impl Upstream {
    pub const ALL: [Upstream; 4] = [
        Upstream::Concert,
        Upstream::Seat,
        Upstream::Reservation,
        Upstream::Payment,
    ];

    /// The service's name, as `/readyz` and problems name it.
    pub fn name(self) -> &'static str {
        match self {
            Upstream::Concert => "concert-svc",
            Upstream::Seat => "seat-svc",
            Upstream::Reservation => "reservation-svc",
            Upstream::Payment => "payment-svc",
        }
    }

    /// The variable that sets its base URL, and its default (the service's default port).
    fn url_var(self) -> (&'static str, &'static str) {
        match self {
            Upstream::Concert => ("CONCERT_URL", "http://127.0.0.1:8081"),
            Upstream::Seat => ("SEAT_URL", "http://127.0.0.1:8082"),
            Upstream::Reservation => ("RESERVATION_URL", "http://127.0.0.1:8083"),
            Upstream::Payment => ("PAYMENT_URL", "http://127.0.0.1:8084"),
        }
    }
}

#[derive(Clone, Debug)]
pub struct Config {
    /// `HTTP_ADDR`, default `127.0.0.1:8080`.
    pub http_addr: String,
    /// Each upstream's base URL, in the order of [`Upstream::ALL`].
    pub upstreams: Vec<(Upstream, String)>,
    /// Browser origins allowed to call the API cross-origin (`CORS_ORIGINS`, comma-separated);
    /// none: same origin only.
    pub cors_origins: Vec<String>,
    /// Requests a second per user, or per IP when anonymous (`RATE_LIMIT_PER_SEC`, default
    /// 50), with bursts of twice that.
    pub rate_limit_per_sec: u32,
    /// How long an upstream may take to start answering (`UPSTREAM_TIMEOUT_MS`, default 3,000).
    pub upstream_timeout: Duration,
    /// Consecutive failures or timeouts that open an upstream's breaker (`BREAKER_FAILURES`,
    /// default 5), and how long it stays open before a probe (`BREAKER_OPEN_MS`, default 5,000).
    pub breaker_failures: u32,
    pub breaker_open: Duration,
    /// How tokens are verified: the services' own settings (`JWT_SECRET`, `JWT_PUBLIC_KEY` or
    /// `JWT_JWKS`, `JWT_ISSUER`, `JWT_AUDIENCE`; `DEV_MODE`).
    pub auth: AuthConfig,
    /// `POST /api/dev/login` mints tokens (`DEV_LOGIN=true`; development and the demo only).
    pub dev_login: bool,
    /// The session cookie is `Secure` (`COOKIE_SECURE`; default: unless `DEV_LOGIN`).
    pub cookie_secure: bool,
}

impl Config {
    pub fn from_env() -> anyhow::Result<Config> {
        let dev_mode = env_parse("DEV_MODE", false)?;
        let dev_login = env_parse("DEV_LOGIN", false)?;
        let rate_limit_per_sec = env_parse("RATE_LIMIT_PER_SEC", 50u32)?;
        anyhow::ensure!(
            rate_limit_per_sec > 0,
            "RATE_LIMIT_PER_SEC must be at least 1"
        );
        let breaker_failures = env_parse("BREAKER_FAILURES", 5u32)?;
        anyhow::ensure!(breaker_failures > 0, "BREAKER_FAILURES must be at least 1");
        Ok(Config {
            http_addr: env_or("HTTP_ADDR", "127.0.0.1:8080"),
            upstreams: Upstream::ALL
                .into_iter()
                .map(|u| {
                    let (var, default) = u.url_var();
                    (u, env_or(var, default).trim_end_matches('/').to_owned())
                })
                .collect(),
            cors_origins: env_or("CORS_ORIGINS", "")
                .split(',')
                .map(str::trim)
                .filter(|o| !o.is_empty())
                .map(str::to_owned)
                .collect(),
            rate_limit_per_sec,
            upstream_timeout: Duration::from_millis(env_parse("UPSTREAM_TIMEOUT_MS", 3_000)?),
            breaker_failures,
            breaker_open: Duration::from_millis(env_parse("BREAKER_OPEN_MS", 5_000)?),
            auth: AuthConfig::from_vars(|k| std::env::var(k).ok(), dev_mode)?,
            dev_login,
            cookie_secure: env_parse("COOKIE_SECURE", !dev_login)?,
        })
    }
}
