//! web: the HTTP conventions every service shares — problem+json errors ([`problem`]), request
//! extractors that answer with problems ([`extract`]), identity from a bearer JWT ([`auth`]),
//! how long a request may take ([`deadline`]), new arrivals refused early under overload
//! ([`shed`]), and commands run at most once per `Idempotency-Key` ([`idempotency`]).

pub mod problem;

pub mod auth;
pub mod command;
pub mod deadline;
pub mod extract;
pub mod openapi;
pub mod shed;

pub use auth::{Admin, Auth, Session, User};
pub use command::{Answer, CommandRequest};
pub use extract::{Body, Id, Page, Query, Sent};
pub use problem::{Problem, ProblemType, kinds};
