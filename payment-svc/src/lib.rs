//! payment-svc: point wallets, the append-only ledger, and the payment of each reservation:
//! debits on request, refunds on cancel or a refused sale.
//!
//! # Layout
//! - [`wallet`]: charging points, the balance and the ledger (`/wallet…`).
//! - [`payments`]: one payment per reservation, decided by the consumer of reservation and
//!   seat events ([`payments::cashier`]).
//! - [`audit`]: wallets and the ledger, for the whole-system checks.
//!
//! Each has its `domain` (pure rules) and `store` (SQL); every state change runs as a unit of
//! work (`nats::unit_of_work`).

pub mod audit;
pub mod payments;
pub mod wallet;

use axum::Router;
use contracts::{ReservationEvent, SeatEvent};
use nats::runtime::{Runtime, Service};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

pub struct PaymentSvc;

impl Service for PaymentSvc {
    const NAME: &'static str = "payment-svc";
    const DEFAULT_PORT: u16 = 8084;
    type Settings = ();

    fn migrator() -> &'static sqlx::migrate::Migrator {
        &MIGRATOR
    }

    fn consumes() -> Vec<nats::messaging::topology::Consumes> {
        use payments::cashier::{REFUSED_SALES, RESERVATIONS};
        vec![RESERVATIONS.into(), REFUSED_SALES.into()]
    }

    fn problems() -> Vec<nats::web::ProblemType> {
        vec![wallet::http::INVALID_CHARGE]
    }

    fn api() -> utoipa::openapi::OpenApi {
        use utoipa::OpenApi as _;
        wallet::http::Api::openapi()
    }

    fn wire(rt: &mut Runtime, _: ()) -> Router {
        use payments::cashier::{Cashier, REFUSED_SALES, RESERVATIONS};
        rt.consume::<ReservationEvent, _>(RESERVATIONS, Cashier);
        rt.consume::<SeatEvent, _>(REFUSED_SALES, Cashier);
        wallet::http::routes().with_state(rt.state(()))
    }
}
