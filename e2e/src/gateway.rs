//! gateway: the front door in front of a running system, as a process of its own, and a
//! frontend whose four APIs are the gateway's one origin under `/api`.

use crate::frontend::Client;
use crate::process::ServiceProcess;
use harness::Api;
use nats::web::Auth;
use std::sync::Arc;

/// The gateway's binary.
pub const NAME: &str = "gateway";

/// A running gateway (see [`crate::System::gateway`]).
pub struct Gateway {
    pub process: ServiceProcess,
    pub(crate) auth: Arc<Auth>,
}

impl Gateway {
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
