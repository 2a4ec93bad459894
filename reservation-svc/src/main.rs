//! reservation-svc binary: configuration from the environment, then the app until SIGTERM.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    platform::telemetry::init_logging();
    let app = reservation_svc::build(reservation_svc::Config::from_env()?).await?;
    app.run_until_stopped(platform::service::shutdown_on_signal())
        .await
}
