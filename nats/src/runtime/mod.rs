//! runtime: what makes a crate a running service. A service says what it is ([`Service`]: name,
//! port, settings, migrations, and its consumers, tasks and routes); [`build`] gives the
//! [`App`] that `main` and the tests both run; [`main`] is a service binary's whole `main`.

pub mod config;
pub mod shutdown;
pub mod telemetry;

mod app;
mod health;

pub use app::{App, AppState, Runtime};
pub use config::{Config, FromEnv, ServiceConfig, env_or, env_parse};

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
    let routes = S::wire(&mut runtime, config.settings);
    Ok(runtime.with_routes(routes))
}

/// A service binary: logs, configuration from the environment, then the service until SIGTERM.
pub fn main<S: Service>() -> anyhow::Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(async {
            telemetry::init_logging();
            let app = build::<S>(config_from_env::<S>()?).await?;
            app.run_until_stopped(shutdown::on_signal()).await
        })
}
