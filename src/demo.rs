//! `--demo`: the embedded loopback simulator behind the normal live clients.

use crate::venue::VenueSpec;

/// The running simulator (dropped at the end of the run).
pub struct Demo;

/// Start the simulator on ephemeral loopback ports and point every venue spec at it.
pub async fn start(specs: &mut [VenueSpec]) -> color_eyre::Result<Demo> {
    let _ = specs;
    Err(color_eyre::eyre::eyre!(
        "--demo: the simulator is not built into this version"
    ))
}
