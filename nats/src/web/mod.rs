//! web: the HTTP conventions every service shares — problem+json errors ([`problem`]), request
//! extractors that answer with problems ([`extract`]), and identity from a bearer JWT
//! ([`auth`]).

pub mod problem;

pub mod auth;
pub mod extract;

pub use auth::{Admin, Auth, Session, User};
pub use extract::{Body, Id, Query};
pub use problem::Problem;
