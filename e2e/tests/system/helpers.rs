//! helpers: what every scenario uses to run on a whole system.

use e2e::System;
use e2e::system::Options;

/// Starts a whole system with `opts`, runs `scenario` on it, and on failure shows the end of
/// every service's log with the error.
pub async fn on_system(
    opts: Options,
    scenario: impl AsyncFnOnce(&mut System) -> anyhow::Result<()>,
) {
    let mut sys = System::start_with(opts).await.expect("start the system");
    if let Err(e) = scenario(&mut sys).await {
        panic!("{e:#}\n{}", sys.logs_tail(30));
    }
}
