//! `--demo`: the embedded loopback simulator behind the normal live clients.
//!
//! The simulator starts in-process on ephemeral loopback ports and every venue spec is pointed at
//! it; the feeds, engines, dashboard and writer are exactly those of live use.

use crate::sim::{FaultPlan, Rate, SimConfig, Simulator};
use crate::venue::{Protocol, VenueSpec};

/// Simulator settings for `--demo`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DemoOptions {
    /// Market seed.
    pub seed: u64,
    /// Market rate.
    pub rate: Rate,
    /// Faults to inject (`--demo-faults`, same syntax as `depthagg simulate --faults`).
    pub faults: FaultPlan,
}

/// The running simulator (shut down when the run ends).
pub struct Demo {
    /// The simulator.
    pub sim: Simulator,
}

/// Start the simulator and point every venue spec at it. The simulator speaks the recommended
/// protocols (Binance spot, Coinbase Advanced Trade, Kraken v2, Bitfinex v2) for the default
/// symbols; other choices are refused with a clear message.
pub async fn start(specs: &mut [VenueSpec], opts: &DemoOptions) -> color_eyre::Result<Demo> {
    for spec in specs.iter() {
        let venue = spec.venue();
        if spec.protocol != Protocol::default_for(venue) {
            return Err(color_eyre::eyre::eyre!(
                "--demo: the simulator speaks {} for {venue}, not {}",
                Protocol::default_for(venue),
                spec.protocol
            ));
        }
    }
    let cfg = SimConfig {
        seed: opts.seed,
        rate: opts.rate,
        faults: opts.faults.clone(),
        ..SimConfig::default()
    };
    let sim = Simulator::start(cfg)
        .await
        .map_err(|e| color_eyre::eyre::eyre!("--demo: cannot start the simulator: {e}"))?;
    for spec in specs.iter_mut() {
        let e = sim.endpoint(spec.venue());
        spec.ws_url = e.ws_url;
        spec.rest_url = e.rest_url;
    }
    Ok(Demo { sim })
}
