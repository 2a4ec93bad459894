//! openapi: a service's OpenAPI 3.1 document, generated from its handlers' annotations (utoipa)
//! and completed here with what every service shares, so no route has to repeat it: bearer
//! identity, the problem+json shape, the answers any route may give (a malformed request, a
//! missing token, an overloaded or unavailable service, with `Retry-After`), and the health
//! routes. A command names its `Idempotency-Key` and `X-Request-Id` headers itself
//! (`params(Command)`). Served at `GET /openapi.json`; the
//! committed copies under `docs/openapi/` are checked against it by a test.

use super::command;
use super::problem::{Problem, ProblemType, kinds};
use utoipa::openapi::content::ContentBuilder;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::{HttpMethod, Operation, ParameterBuilder, ParameterIn};
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::schema::{ObjectBuilder, Schema, SchemaFormat, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ComponentsBuilder, InfoBuilder, OpenApi, Ref, RefOr, Required};
use utoipa::{PartialSchema, ToSchema};

/// The headers of a command: `params(nats::web::openapi::Command)` in its annotation.
pub struct Command;

impl utoipa::IntoParams for Command {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<utoipa::openapi::path::Parameter> {
        let key = ObjectBuilder::new()
            .schema_type(Type::String)
            .min_length(Some(1))
            .max_length(Some(command::MAX_KEY))
            .pattern(Some("^[\\x21-\\x7e]+$"));
        let header = |name: &str, description: &str, schema: ObjectBuilder| {
            ParameterBuilder::new()
                .name(name)
                .parameter_in(ParameterIn::Header)
                .required(Required::False)
                .description(Some(description))
                .schema(Some(schema))
                .build()
        };
        vec![
            header(
                command::HEADER,
                "Sent again with the same key, path and body, the command answers its first \
                 answer and takes no second effect (kept 24 h).",
                key,
            ),
            header(
                "X-Request-Id",
                "The request's id, returned in the answer (made when absent); the events the \
                 command emits name it as their cause.",
                ObjectBuilder::new().schema_type(Type::String),
            ),
        ]
    }
}

/// The security scheme every authenticated route names.
pub const BEARER: &str = "bearer";
/// The media type of every error answer.
pub const PROBLEM_JSON: &str = "application/problem+json";

impl PartialSchema for Problem {
    fn schema() -> RefOr<Schema> {
        let text = |description: &str| {
            ObjectBuilder::new()
                .schema_type(Type::String)
                .description(Some(description))
        };
        ObjectBuilder::new()
            .description(Some(
                "An RFC 9457 problem: the shape of every error answer.",
            ))
            .property(
                "type",
                text("The kind of error, `/problems/{slug}`: tell errors apart by it.")
                    .format(Some(SchemaFormat::Custom("uri-reference".into()))),
            )
            .property(
                "title",
                text("The kind's title (the same for every answer of it)."),
            )
            .property(
                "status",
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .description(Some("The HTTP status.")),
            )
            .property("detail", text("What went wrong this time, for a human."))
            .required("type")
            .required("title")
            .required("status")
            .required("detail")
            .into()
    }
}

impl ToSchema for Problem {}

/// The problem shape, its `type` one of `problems`' URIs.
fn problem_schema(problems: &[ProblemType]) -> RefOr<Schema> {
    let mut schema = Problem::schema();
    if let RefOr::T(Schema::Object(object)) = &mut schema
        && let Some(RefOr::T(Schema::Object(kind))) = object.properties.get_mut("type")
    {
        let uris: Vec<serde_json::Value> = problems.iter().map(|p| p.uri().into()).collect();
        kind.enum_values = Some(uris);
    }
    schema
}

/// A problem answer described as `description`.
fn problem(description: &str) -> Response {
    ResponseBuilder::new()
        .description(description)
        .content(
            PROBLEM_JSON,
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("Problem")))
                .build(),
        )
        .build()
}

/// A problem answer that says when to come back.
fn come_back(description: &str) -> Response {
    let mut response = problem(description);
    let seconds = ObjectBuilder::new()
        .schema_type(Type::Integer)
        .minimum(Some(0));
    response.headers.insert(
        "Retry-After".into(),
        HeaderBuilder::new()
            .schema(seconds)
            .description(Some("Seconds after which to ask again."))
            .build(),
    );
    response
}

/// What any route may answer, beside what its own annotation says.
fn common(method: &HttpMethod) -> Vec<(&'static str, Response)> {
    let mut answers = vec![
        (
            "400",
            problem("A malformed request: body, query or header."),
        ),
        ("401", problem("No valid bearer token.")),
        (
            "404",
            problem("No such route, or nothing known by that id."),
        ),
        ("429", come_back("Too many requests of this user at once.")),
        (
            "500",
            problem("A failure of the service's own; it has been logged."),
        ),
        (
            "503",
            come_back("Unavailable for a moment: the database, overload, or a timeout."),
        ),
    ];
    if *method == HttpMethod::Post {
        answers.extend([
            (
                "409",
                come_back("The first request with this Idempotency-Key is still being handled."),
            ),
            ("413", problem("The body is too large.")),
            ("415", problem("The body is not sent as application/json.")),
            (
                "422",
                problem("The body does not have the expected fields, or a key was reused."),
            ),
        ]);
    }
    answers
}

/// Every problem type a service may answer: the platform's, the commands', and `own`.
pub fn problem_types(own: &[ProblemType]) -> Vec<ProblemType> {
    let commands = [
        command::INVALID_KEY,
        command::KEY_REUSED,
        command::KEY_IN_USE,
    ];
    let mut all: Vec<ProblemType> = kinds::ALL.iter().chain(&commands).copied().collect();
    for kind in own {
        if !all.contains(kind) {
            all.push(*kind);
        }
    }
    all
}

/// `name`'s document: `api` (its routes) with what every service shares; its problems' `type`
/// is one of `problems` (see [`problem_types`]).
pub fn document(name: &str, api: OpenApi, problems: &[ProblemType]) -> OpenApi {
    let mut doc = OpenApi::new(
        InfoBuilder::new()
            .title(name)
            .version(env!("CARGO_PKG_VERSION"))
            .description(Some(
                "Errors are RFC 9457 problem+json with a stable `type` per kind; every 503 and \
                 429 carries Retry-After; every command takes an optional Idempotency-Key.",
            ))
            .build(),
        utoipa::openapi::Paths::new(),
    );
    doc.merge(api);
    doc.merge(shared_routes());
    let components = doc
        .components
        .get_or_insert_with(|| ComponentsBuilder::new().build());
    components
        .schemas
        .insert("Problem".into(), problem_schema(problems));
    // The ids and amounts routes name in their paths as well as their bodies.
    for (name, schema) in [
        ("ConcertId", contracts::ConcertId::schema()),
        ("ScheduleId", contracts::ScheduleId::schema()),
        ("SeatId", contracts::SeatId::schema()),
        ("ReservationId", contracts::ReservationId::schema()),
        ("UserId", contracts::UserId::schema()),
        ("Points", contracts::Points::schema()),
    ] {
        components.schemas.insert(name.into(), schema);
    }
    components.security_schemes.insert(
        BEARER.into(),
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .bearer_format("JWT")
                .build(),
        ),
    );
    for item in doc.paths.paths.values_mut() {
        for (method, operation) in [
            (HttpMethod::Get, &mut item.get),
            (HttpMethod::Post, &mut item.post),
        ] {
            if let Some(operation) = operation {
                complete(method, operation);
            }
        }
    }
    doc
}

/// Adds what any route may answer.
fn complete(method: HttpMethod, operation: &mut Operation) {
    for (status, response) in common(&method) {
        let answer = operation
            .responses
            .responses
            .entry(status.into())
            .or_insert(RefOr::T(response.clone()));
        // A route's own 503 or 429 says when to come back too.
        if let (RefOr::T(own), Some(retry)) = (answer, response.headers.get("Retry-After")) {
            own.headers
                .entry("Retry-After".into())
                .or_insert_with(|| retry.clone());
        }
    }
}

/// `GET /problems/{slug}`: what a problem's `type` names.
fn problem_type() -> utoipa::openapi::PathItem {
    let kind = ObjectBuilder::new()
        .property("type", ObjectBuilder::new().schema_type(Type::String))
        .property("title", ObjectBuilder::new().schema_type(Type::String))
        .property("status", ObjectBuilder::new().schema_type(Type::Integer))
        .required("type")
        .required("title")
        .required("status");
    let mut operation = Operation::new();
    operation.summary = Some("The kind of error a problem's type names".into());
    operation.tags = Some(vec!["problems".into()]);
    operation.parameters = Some(vec![
        ParameterBuilder::new()
            .name("slug")
            .parameter_in(ParameterIn::Path)
            .required(Required::True)
            .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
            .build(),
    ]);
    let found = ResponseBuilder::new()
        .description("The kind: its type, title and status.")
        .content(
            "application/json",
            ContentBuilder::new().schema(Some(kind)).build(),
        )
        .build();
    operation
        .responses
        .responses
        .insert("200".into(), RefOr::T(found));
    utoipa::openapi::PathItem::new(HttpMethod::Get, operation)
}

/// The routes every service has: health, metrics, and this document.
fn shared_routes() -> OpenApi {
    let text = |description: &str| {
        ResponseBuilder::new()
            .description(description)
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(ObjectBuilder::new().schema_type(Type::Object)))
                    .build(),
            )
            .build()
    };
    let get = |summary: &str, ok: Response| {
        let mut operation = Operation::new();
        operation.summary = Some(summary.into());
        operation.tags = Some(vec!["health".into()]);
        operation
            .responses
            .responses
            .insert("200".into(), RefOr::T(ok));
        utoipa::openapi::PathItem::new(HttpMethod::Get, operation)
    };
    let mut ready = get(
        "Ready: database, NATS and topology up, consumers running",
        text("Ready."),
    );
    if let Some(op) = ready.get.as_mut() {
        op.responses.responses.insert(
            "503".into(),
            RefOr::T(come_back("Not ready; the detail names what is down.")),
        );
    }
    let metrics = ResponseBuilder::new()
        .description("Prometheus text.")
        .content(
            "text/plain",
            ContentBuilder::new()
                .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
                .build(),
        )
        .build();
    let paths = utoipa::openapi::Paths::builder()
        .path(
            "/openapi.json",
            get("This document", text("The service's OpenAPI 3.1 document.")),
        )
        .path("/problems/{slug}", problem_type())
        .path("/healthz", get("Alive", text("Alive.")))
        .path("/readyz", ready)
        .path("/metrics", get("Prometheus metrics", metrics))
        .build();
    OpenApi::new(
        InfoBuilder::new().title("health").version("1").build(),
        paths,
    )
}
