//! web: the HTTP conventions every service shares — problem+json errors ([`problem`]), request
//! extractors that answer with problems ([`extract`]), identity from a bearer JWT ([`auth`]),
//! and how long a request may take ([`deadline`]).

pub mod problem;

pub mod auth;
pub mod deadline;
pub mod extract;

pub use auth::{Admin, Auth, Session, User};
pub use extract::{Body, Id, Page, Query};
pub use problem::Problem;
