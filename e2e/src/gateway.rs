//! gateway: the front door in front of a running system, as a process of its own, and a
//! frontend whose four APIs are the gateway's one origin under `/api`.

use crate::frontend::Client;
use crate::process::{GATEWAY, ServiceProcess};
use crate::system::System;
use anyhow::Context as _;
use harness::{Api, eventually};
use nats::web::Auth;
use std::sync::Arc;
use std::time::Duration;

/// A running gateway.
pub struct Gateway {
    pub process: ServiceProcess,
    auth: Arc<Auth>,
}

impl Gateway {
    /// The gateway in front of `sys`, with `extra` in its environment (e.g. a lower rate
    /// limit); development login on. Answers once its `/readyz` does.
    pub async fn start(sys: &System, extra: &[(&str, &str)]) -> anyhow::Result<Gateway> {
        let [concert, seat, reservation, payment] = sys.services().map(|p| p.url().to_owned());
        let mut env: Vec<(String, String)> = [
            ("HTTP_ADDR", "127.0.0.1:0".to_owned()),
            ("CONCERT_URL", concert),
            ("SEAT_URL", seat),
            ("RESERVATION_URL", reservation),
            ("PAYMENT_URL", payment),
            ("JWT_SECRET", sys.secret().to_owned()),
            ("DEV_LOGIN", "true".to_owned()),
            (
                "RUST_LOG",
                std::env::var("E2E_SERVICE_LOG").unwrap_or_else(|_| "info".into()),
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let process = ServiceProcess::spawn(GATEWAY, env, sys.dir().join("gateway.log"))?;
        let gateway = Gateway {
            process,
            auth: sys.client().auth,
        };
        eventually(
            "the gateway to be ready",
            Duration::from_secs(30),
            async || {
                Ok(gateway
                    .api()
                    .get("/readyz", None)
                    .await?
                    .is(200)
                    .then_some(()))
            },
        )
        .await
        .with_context(|| gateway.process.log_tail(20))?;
        Ok(gateway)
    }

    /// The gateway's origin (the page, health).
    pub fn url(&self) -> &str {
        self.process.url()
    }

    pub fn api(&self) -> Api {
        Api::new(self.url())
    }

    /// A frontend that reaches every service through the gateway's one port.
    pub fn client(&self) -> Client {
        let api = Api::new(format!("{}/api", self.url()));
        Client {
            concert: api.clone(),
            seat: api.clone(),
            reservation: api.clone(),
            payment: api,
            auth: self.auth.clone(),
        }
    }
}
