//! One run of the matrix, measured: link applied, guest prepared, probes around
//! the migration (NIC counters, outside ping, host CPU), the driver's migration,
//! the guest's first answer on the destination (re-announced if needed), clean-up.

use super::driver::{Driver, RunContext};
use super::result::{MigrationResult, Sample};

/// Run `ctx.scenario` once with `driver`. Never fails: whatever goes wrong is the
/// row's `outcome` and `error` (a run that fails is recorded, never dropped).
pub async fn run_one(ctx: &RunContext<'_>, driver: &dyn Driver) -> (MigrationResult, Vec<Sample>) {
    let _ = (ctx, driver);
    todo!("issue 11: drivers and probes")
}
