//! view: the live availability view (a CQRS read model): per seat, the status seat-svc's events
//! say it has. Kept by [`updater`] from the `SEAT` stream, rebuilt from it by [`rebuild`].

pub mod domain;
pub mod http;
pub mod rebuild;
pub mod store;
pub mod updater;
