//! frontend: what a frontend has — the four services' APIs and a way to sign in.

use harness::Api;
use nats::web::auth::{ADMIN_ROLE, Auth};
use std::sync::Arc;
use std::time::Duration;

/// What a frontend has: the four services' APIs and a way to sign in. Implemented by the
/// running [`System`] and by a [`Client`] that user tasks can own.
pub trait Frontend: Sync {
    fn concert(&self) -> Api;
    fn seat(&self) -> Api;
    fn reservation(&self) -> Api;
    fn payment(&self) -> Api;
    fn auth(&self) -> &Auth;

    fn admin_token(&self) -> String {
        self.auth()
            .issue("admin", Some(ADMIN_ROLE), Duration::from_secs(3600))
    }

    fn user_token(&self, user: &str) -> String {
        self.auth().issue(user, None, Duration::from_secs(3600))
    }
}

/// The system's addresses and token issuer, cheap to clone into tasks.
#[derive(Clone)]
pub struct Client {
    pub concert: Api,
    pub seat: Api,
    pub reservation: Api,
    pub payment: Api,
    pub auth: Arc<Auth>,
}

impl Frontend for Client {
    fn concert(&self) -> Api {
        self.concert.clone()
    }
    fn seat(&self) -> Api {
        self.seat.clone()
    }
    fn reservation(&self) -> Api {
        self.reservation.clone()
    }
    fn payment(&self) -> Api {
        self.payment.clone()
    }
    fn auth(&self) -> &Auth {
        &self.auth
    }
}
