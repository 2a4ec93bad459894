//! The gateway binary: settings from the environment, then the front door until SIGTERM.

/// jemalloc, as the services use: glibc's allocator costs more CPU a request.
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> anyhow::Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(async {
            nats::runtime::telemetry::init_logging("gateway");
            gateway::serve(gateway::config::Config::from_env()?).await
        })
}
