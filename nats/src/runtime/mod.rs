//! runtime: what makes a crate a running service. A service says what it is ([`Service`]: name,
//! port, settings, migrations, and its consumers, tasks and routes); [`build`] gives the
//! [`App`] that `main` and the tests both run; [`main`] is a service binary's whole `main`.

pub mod config;
pub mod gauges;
pub mod housekeeping;
pub mod shutdown;
pub mod telemetry;

mod app;
mod health;
mod state;

pub use app::{App, Runtime, own_tables};
pub use config::{Config, FromEnv, ServiceConfig, env_or, env_parse};
pub use state::{AppState, Shared};

use anyhow::Context as _;
use axum::Router;
use sqlx::migrate::Migrator;

/// One of the services, as the runtime sees it.
pub trait Service: 'static {
    /// Its binary, NATS user, durable consumers, `ce-source` and default database file.
    const NAME: &'static str;
    /// Where it listens unless `HTTP_ADDR` says otherwise.
    const DEFAULT_PORT: u16;
    /// Its own settings, beside the shared [`ServiceConfig`].
    type Settings: FromEnv + Clone + Send + Sync + std::fmt::Debug + 'static;

    fn migrator() -> &'static Migrator;

    /// Adds its consumers and periodic tasks to the started runtime; answers its routes.
    fn wire(runtime: &mut Runtime, settings: Self::Settings) -> Router;

    /// What it consumes: the subscriptions `wire` subscribes to, for the published contract
    /// (AsyncAPI); a test checks them against the durables it creates.
    fn consumes() -> Vec<crate::messaging::topology::Consumes>;

    /// Its routes' OpenAPI description, from its handlers' annotations (see [`api_document`]
    /// for the whole document).
    fn api() -> utoipa::openapi::OpenApi;

    /// The problem types its routes answer, beside the platform's (documented as the only
    /// values of a problem's `type`).
    fn problems() -> Vec<crate::web::ProblemType>;
}

/// The service's OpenAPI document, as `GET /openapi.json` serves it and `docs/openapi/` keeps
/// it: its routes with what every service shares ([`crate::web::openapi`]).
pub fn api_document<S: Service>() -> utoipa::openapi::OpenApi {
    let problems = crate::web::openapi::problem_types(&S::problems());
    crate::web::openapi::document(S::NAME, S::api(), &problems)
}

/// The service's configuration from the environment.
pub fn config_from_env<S: Service>() -> anyhow::Result<Config<S::Settings>> {
    Ok(Config {
        service: ServiceConfig::from_env(S::NAME, S::DEFAULT_PORT)?,
        settings: S::Settings::from_env()?,
    })
}

/// Connects, migrates, subscribes and routes: the service ready to run.
pub async fn build<S: Service>(config: Config<S::Settings>) -> anyhow::Result<App> {
    let mut runtime = Runtime::start(&config.service, S::migrator()).await?;
    let document = api_document::<S>()
        .to_pretty_json()
        .context("write the OpenAPI document")?;
    let problems = crate::web::openapi::problem_types(&S::problems());
    let routes = S::wire(&mut runtime, config.settings)
        .route(
            "/openapi.json",
            axum::routing::get(move || {
                let document = document.clone();
                async move {
                    (
                        [(axum::http::header::CONTENT_TYPE, "application/json")],
                        document,
                    )
                }
            }),
        )
        // A problem's `type` is a link a client can follow.
        .route(
            "/problems/{slug}",
            axum::routing::get(move |slug| crate::web::problem::describe(problems.clone(), slug)),
        );
    Ok(runtime.with_routes(routes))
}

/// What a service binary is asked to do: serve (no arguments), or an operator's one-off task on
/// its database.
#[derive(clap::Parser)]
struct Cli {
    #[command(subcommand)]
    task: Option<Task>,
}

#[derive(clap::Subcommand)]
enum Task {
    /// Publish again the events this service committed in a time range (after the broker lost
    /// acknowledged events). The running service's relay publishes them, in order, with their
    /// original ids; consumers recognise those they already handled.
    Republish {
        /// Start of the range, RFC 3339 (e.g. 2026-11-24T10:00:00Z), included.
        #[arg(long, value_parser = rfc3339)]
        from: time::OffsetDateTime,
        /// End of the range, RFC 3339, excluded.
        #[arg(long, value_parser = rfc3339)]
        to: time::OffsetDateTime,
    },
}

fn rfc3339(s: &str) -> Result<time::OffsetDateTime, String> {
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .map_err(|e| format!("not an RFC 3339 time ({e})"))
}

/// A service binary: logs, configuration from the environment, then the service until SIGTERM,
/// or the operator task its arguments name.
pub fn main<S: Service>() -> anyhow::Result<()> {
    let cli = <Cli as clap::Parser>::parse();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(async {
            telemetry::init_logging(S::NAME);
            let config = config_from_env::<S>()?;
            match cli.task {
                None => {
                    let app = build::<S>(config).await?;
                    app.run_until_stopped(shutdown::on_signal()).await
                }
                Some(Task::Republish { from, to }) => {
                    let uow = Runtime::database(&config.service, S::migrator()).await?;
                    let rows = housekeeping::republish(&uow, from, to).await?;
                    println!(
                        "{rows} events of {} committed from {from} to {to} will be published again",
                        S::NAME
                    );
                    Ok(())
                }
            }
        })
}
