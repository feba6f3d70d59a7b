//! Loopback exchange simulator: the four venues' protocols served locally, with fault injection.

/// Arguments of `depthagg simulate` (placeholder until the simulator lands).
#[derive(Debug, clap::Args)]
pub struct SimArgs {}

/// Run `depthagg simulate` (placeholder until the simulator lands).
pub async fn run_simulate(args: SimArgs) -> color_eyre::Result<u8> {
    let _ = args;
    Err(color_eyre::eyre::eyre!(
        "the simulator is not built into this version"
    ))
}
