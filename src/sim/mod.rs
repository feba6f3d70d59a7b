//! Loopback exchange simulator: the four venues' protocols served locally, with fault injection.
//!
//! No machine here reaches an exchange, so the simulator plays all four, byte-compatible with the
//! real ones (protocols.md §1–§4), each on its own TCP port of the loopback interface. The live
//! client runs unchanged against it: it builds its URLs from [`Simulator::endpoint`] exactly as
//! from the real bases.
//!
//! | venue | WebSocket | what is served |
//! |---|---|---|
//! | Binance | `{ws_url}/stream?streams=btcusdt@depth@100ms` (or `/ws/btcusdt@depth@100ms`) | `depthUpdate` events with continuous `U`/`u`, ping frames every 20 s; `GET {rest_url}/api/v3/depth?symbol=BTCUSDT&limit=N` on the same port |
//! | Coinbase | `{ws_url}` | Advanced Trade `level2` (`l2_data` snapshot of the whole book, updates) and `heartbeats`, `sequence_num` per connection |
//! | Kraken | `{ws_url}` or `{ws_url}/v2` | v2 `status`, `book` snapshot + updates with CRC32 `checksum`, `heartbeat` when idle |
//! | Bitfinex | `{ws_url}` or `{ws_url}/ws/2` | `info`, `conf`, `subscribed`, P0 snapshot + updates, `cs` checksums, `hb` |
//!
//! Behind them runs one synthetic market ([`market`]): a seeded random-walk mid near 90,000 USD,
//! a book per venue with its tick size and depth. Everything is deterministic for a seed except
//! time stamps. [`Simulator::true_book`] is the truth a correct client must end up holding;
//! [`Simulator::pause`] stops the market so a test can let the client catch up and compare.
//!
//! # Fault spec (`--faults`)
//!
//! Comma-separated items `VENUE=FAULT[@WHEN][/EVERY]` or `VENUE=FAULT~P`:
//!
//! * `FAULT`: `drop` (skip one update: a `U` gap on Binance, a `sequence_num` gap on Coinbase),
//!   `checksum` (corrupt the next Kraken `checksum` / Bitfinex `cs`), `close` (close frame 1001),
//!   `stall` (stop sending, keep the socket open), `malformed` (one frame of truncated JSON),
//!   `reject` (refuse the next subscription with the venue's error; Binance: the next REST
//!   snapshot gets HTTP 400 `-1121`), `http451` / `http429` (refuse the next WebSocket
//!   handshake), `delay-snapshot[:DURATION]` (hold the next snapshot back, default 2 s).
//! * `@WHEN`: a market step number (`@50`, deterministic) or a time after start (`@5s`,
//!   `@250ms`); without it the fault fires at the first step.
//! * `/EVERY`: repeat every N steps (`/20`) or every duration (`/10s`).
//! * `~P`: instead of a schedule, fire at each step with probability `P` (seeded).
//!
//! Example: `binance=drop@30/100,kraken=checksum@5s,coinbase=http429,bitfinex=malformed~0.01`.
//!
//! # Scenario file (`--scenario FILE`, TOML)
//!
//! ```toml
//! seed = 7                        # optional, overrides --seed
//! rate = "max"                    # optional, overrides --rate
//! faults = "binance=drop@30"      # optional, same syntax as --faults
//! [[fault]]                       # any number of these
//! venue = "kraken"
//! kind = "checksum"               # a FAULT as above
//! at = "5s"                       # optional WHEN: "50" (step) or "5s"
//! every = "10s"                   # optional EVERY
//! probability = 0.01              # optional; replaces at/every
//! ```
//!
//! # Serving a capture (`--capture FILE`)
//!
//! Venues recorded in the capture are served from it instead of the synthetic market: every
//! WebSocket connection gets the venue's recorded `recv` frames in file order (frames recorded
//! after the client's first `send` wait until the client sends something), at the recorded pace
//! scaled by `--speed` or as fast as possible (`--speed max`); Binance REST requests get the
//! recorded `http` answers for that symbol in file order, each once the replay has reached it.

pub mod faults;
pub mod market;

mod binance;
mod bitfinex;
pub mod capture;
mod coinbase;
mod http;
mod hub;
mod kraken;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use faults::{Fault, FaultPlan, FaultRule};

use crate::book::Book;
use crate::types::Venue;
use hub::{Hub, bump};

/// How fast the synthetic market steps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Rate {
    /// Ten steps a second, each with the venue's usual number of level changes (Binance's
    /// `@100ms` cadence).
    #[default]
    Realistic,
    /// As fast as the slowest connected client reads (for load tests); idle without clients.
    Max,
    /// This many steps per second.
    PerSecond(u32),
}

impl FromStr for Rate {
    type Err = String;
    fn from_str(s: &str) -> Result<Rate, String> {
        match s.trim() {
            "realistic" => Ok(Rate::Realistic),
            "max" => Ok(Rate::Max),
            n => match n.parse::<u32>() {
                Ok(n) if n > 0 => Ok(Rate::PerSecond(n)),
                _ => Err(format!(
                    "bad rate {s:?} (accepted: realistic, max, or steps per second > 0)"
                )),
            },
        }
    }
}

/// How fast a capture is served.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub enum Speed {
    /// Recorded pace times this factor (1 = as recorded, 10 = ten times faster).
    Factor(f64),
    /// No pauses at all.
    #[default]
    Max,
}

impl FromStr for Speed {
    type Err = String;
    fn from_str(s: &str) -> Result<Speed, String> {
        match s.trim() {
            "max" => Ok(Speed::Max),
            n => match n.parse::<f64>() {
                Ok(f) if f > 0.0 && f.is_finite() => Ok(Speed::Factor(f)),
                _ => Err(format!("bad speed {s:?} (accepted: max, or a factor > 0)")),
            },
        }
    }
}

/// Keepalive periods (the exchanges' values by default; tests shorten them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timing {
    /// Binance ping frames (20 s, protocols.md §1.5).
    pub binance_ping: Duration,
    /// Coinbase `heartbeats` messages (1 s, §2.5).
    pub coinbase_heartbeat: Duration,
    /// Kraken `heartbeat` after this much silence (1 s, §3.5).
    pub kraken_heartbeat: Duration,
    /// Bitfinex `hb` after this much silence on a channel (15 s, §4.5).
    pub bitfinex_heartbeat: Duration,
}

impl Default for Timing {
    fn default() -> Timing {
        Timing {
            binance_ping: Duration::from_secs(20),
            coinbase_heartbeat: Duration::from_secs(1),
            kraken_heartbeat: Duration::from_secs(1),
            bitfinex_heartbeat: Duration::from_secs(15),
        }
    }
}

/// Everything the simulator needs to start.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// Address to listen on (127.0.0.1 by default).
    pub bind: IpAddr,
    /// Fixed ports: Binance on this port, Coinbase +1, Kraken +2, Bitfinex +3. `None`: ephemeral.
    pub base_port: Option<u16>,
    /// Seed of the market and of probabilistic faults.
    pub seed: u64,
    /// Market step rate.
    pub rate: Rate,
    /// Scheduled faults.
    pub faults: FaultPlan,
    /// Serve this capture for the venues it holds.
    pub capture: Option<PathBuf>,
    /// Pace of the capture.
    pub speed: Speed,
    /// Keepalive periods.
    pub timing: Timing,
    /// Start with the market paused (call [`Simulator::resume`]).
    pub start_paused: bool,
}

impl Default for SimConfig {
    fn default() -> SimConfig {
        SimConfig {
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            base_port: None,
            seed: 1,
            rate: Rate::Realistic,
            faults: FaultPlan::none(),
            capture: None,
            speed: Speed::Max,
            timing: Timing::default(),
            start_paused: false,
        }
    }
}

/// Where a venue is served.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// WebSocket base, e.g. `ws://127.0.0.1:40123`.
    pub ws_url: String,
    /// REST base (Binance only), e.g. `http://127.0.0.1:40123`.
    pub rest_url: Option<String>,
}

/// What a venue has sent and suffered so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SimStats {
    /// WebSocket connections accepted.
    pub connections: u64,
    /// Handshakes answered with HTTP 451/429.
    pub handshakes_refused: u64,
    /// Successful subscriptions (Binance: depth streams opened).
    pub subscriptions: u64,
    /// Subscriptions or REST requests refused with an error message.
    pub rejections: u64,
    /// Snapshots sent (Binance: REST snapshots answered).
    pub snapshots: u64,
    /// Update messages sent.
    pub updates: u64,
    /// Text frames sent.
    pub frames: u64,
    /// Bytes of text frames sent.
    pub bytes: u64,
    /// Heartbeat messages sent.
    pub heartbeats: u64,
    /// Ping frames sent.
    pub pings: u64,
    /// REST requests received.
    pub rest_requests: u64,
    /// Market steps taken.
    pub steps: u64,
    /// Faults fired (scheduled or injected).
    pub faults: u64,
    /// Update messages dropped by the `drop` fault (per connection).
    pub dropped: u64,
    /// Checksums corrupted (per connection).
    pub corrupted: u64,
    /// Malformed frames sent.
    pub malformed: u64,
    /// Connections closed by the `close` fault.
    pub closed: u64,
    /// Connections stalled.
    pub stalled: u64,
    /// Connections cut off for reading too slowly.
    pub slow_consumers: u64,
}

/// Why the simulator could not start.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// A listener could not bind.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// Address.
        addr: SocketAddr,
        /// Cause.
        source: std::io::Error,
    },
    /// The capture cannot be served.
    #[error(transparent)]
    Capture(#[from] crate::capture::CaptureError),
    /// The capture names no venue this simulator serves.
    #[error("capture: {0}")]
    CaptureContent(String),
}

/// A running simulator.
pub struct Simulator {
    hubs: Vec<Arc<Hub>>,
    endpoints: Vec<Endpoint>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Simulator {
    /// Bind one listener per venue and start the market.
    pub async fn start(cfg: SimConfig) -> Result<Simulator, SimError> {
        let (shutdown, shutdown_rx) = watch::channel(false);
        let captures = match &cfg.capture {
            Some(path) => capture::load(path, cfg.speed)?,
            None => Default::default(),
        };
        let mut hubs = Vec::new();
        let mut endpoints = Vec::new();
        let mut tasks = Vec::new();
        for venue in Venue::ALL {
            let port = cfg.base_port.map_or(0, |p| p + venue.index() as u16);
            let addr = SocketAddr::new(cfg.bind, port);
            let listener = TcpListener::bind(addr)
                .await
                .map_err(|source| SimError::Bind { addr, source })?;
            let local = listener
                .local_addr()
                .map_err(|source| SimError::Bind { addr, source })?;
            let hub = Arc::new(Hub::new(
                venue,
                cfg.seed,
                cfg.timing,
                shutdown_rx.clone(),
                captures.get(&venue).cloned(),
            ));
            if cfg.start_paused {
                hub.pause().await;
            }
            endpoints.push(Endpoint {
                ws_url: format!("ws://{local}"),
                rest_url: (venue == Venue::Binance).then(|| format!("http://{local}")),
            });
            // A connection fault due "at the start" (no @WHEN, no /EVERY, no ~P) must meet the
            // very first handshake or subscription, which can come before the first market step.
            let (at_start, rules): (Vec<FaultRule>, Vec<FaultRule>) =
                cfg.faults.for_venue(venue).into_iter().partition(|r| {
                    r.fault.is_connection_fault()
                        && r.when == faults::When::Start
                        && r.every.is_none()
                        && r.probability.is_none()
                });
            for r in at_start {
                hub.inject(r.fault);
            }
            tasks.push(tokio::spawn(hub::run_market(hub.clone(), cfg.rate, rules)));
            tasks.push(tokio::spawn(accept_loop(hub.clone(), listener)));
            hubs.push(hub);
        }
        Ok(Simulator {
            hubs,
            endpoints,
            shutdown,
            tasks,
        })
    }

    /// Where a venue is served.
    pub fn endpoint(&self, venue: Venue) -> Endpoint {
        self.endpoints[venue.index()].clone()
    }

    /// The venue's true book, consistent with the last step broadcast (a client that has read
    /// everything sent holds exactly this book).
    pub fn true_book(&self, venue: Venue) -> Book {
        self.hubs[venue.index()].true_book()
    }

    /// Binance's current update id (the `lastUpdateId` a snapshot now would carry).
    pub fn binance_update_id(&self) -> u64 {
        self.hubs[Venue::Binance.index()].last_update_id()
    }

    /// Stop all market updates; returns once no step is in flight. Heartbeats go on.
    pub async fn pause(&self) {
        for h in &self.hubs {
            h.pause().await;
        }
    }

    /// Restart market updates.
    pub fn resume(&self) {
        for h in &self.hubs {
            h.resume();
        }
    }

    /// Inject a one-shot fault into a venue (see [`Fault`] for when it takes effect).
    pub fn inject(&self, venue: Venue, fault: Fault) {
        self.hubs[venue.index()].inject(fault);
    }

    /// What a venue has sent and suffered so far.
    pub fn stats(&self, venue: Venue) -> SimStats {
        self.hubs[venue.index()].stats()
    }

    /// Stop everything: listeners, market tasks and connections (sessions send close frames).
    pub async fn shutdown(self) {
        self.shutdown.send_replace(true);
        for t in self.tasks {
            let _ = tokio::time::timeout(Duration::from_secs(2), t).await;
        }
    }
}

async fn accept_loop(hub: Arc<Hub>, listener: TcpListener) {
    let mut shutdown = hub.shutdown.clone();
    loop {
        tokio::select! {
            _ = shutdown.changed() => return,
            r = listener.accept() => {
                if let Ok((tcp, _)) = r {
                    let _ = tcp.set_nodelay(true);
                    tokio::spawn(serve(hub.clone(), tcp));
                }
            }
        }
    }
}

const BINANCE_451: &str = "{\"code\":0,\"msg\":\"Service unavailable from a restricted location according to 'b. Eligibility' in https://www.binance.com/en/terms. Please contact customer service if you believe you received this message in error.\"}";

async fn serve(hub: Arc<Hub>, mut tcp: TcpStream) {
    let Ok(req) = http::read_request(&mut tcp).await else {
        return;
    };
    if req.is_websocket() {
        if let Some(f) = hub.take_conn_fault(|f| matches!(f, Fault::Http451 | Fault::Http429)) {
            bump(&hub.counters.handshakes_refused);
            let binance = hub.venue == Venue::Binance;
            // Binance refuses geo-blocked upgrades with its JSON body (protocols.md §1.1).
            let (status, ctype, body) = match (f, binance) {
                (Fault::Http451, true) => (451, "application/json", BINANCE_451),
                (Fault::Http451, false) => (451, "text/plain", "Unavailable For Legal Reasons"),
                (_, true) => (
                    429,
                    "application/json",
                    "{\"code\":-1003,\"msg\":\"Too many requests.\"}",
                ),
                (_, false) => (429, "text/plain", "Too Many Requests"),
            };
            let _ = http::respond(&mut tcp, status, ctype, body).await;
            return;
        }
        bump(&hub.counters.connections);
        let Ok(ws) = http::upgrade(tcp, &req).await else {
            return;
        };
        if let Some(cap) = hub.capture.clone() {
            capture::session(hub, ws, cap).await;
            return;
        }
        match hub.venue {
            Venue::Binance => binance::session(hub, ws, &req).await,
            Venue::Coinbase => coinbase::session(hub, ws).await,
            Venue::Kraken => kraken::session(hub, ws).await,
            Venue::Bitfinex => bitfinex::session(hub, ws).await,
        }
        return;
    }
    if hub.venue == Venue::Binance && req.method == "GET" {
        let (status, body) = match hub.capture.clone() {
            Some(cap) => capture::rest(&hub, &req, cap).await,
            None => binance::rest(&hub, &req).await,
        };
        let _ = http::respond(&mut tcp, status, "application/json;charset=UTF-8", &body).await;
        return;
    }
    let _ = http::respond(&mut tcp, 404, "text/plain", "Not Found").await;
}

/// `depthagg simulate`: serve the four venues on loopback until Ctrl-C.
#[derive(clap::Args, Clone, Debug)]
pub struct SimArgs {
    /// Address to listen on.
    #[arg(long, env = "DEPTHAGG_SIM_BIND", default_value = "127.0.0.1")]
    pub bind: IpAddr,
    /// Fixed ports: Binance on PORT, Coinbase PORT+1, Kraken PORT+2, Bitfinex PORT+3
    /// (default: free ports chosen by the system).
    #[arg(long, env = "DEPTHAGG_SIM_PORT")]
    pub port: Option<u16>,
    /// Seed of the synthetic market and of probabilistic faults.
    #[arg(long, env = "DEPTHAGG_SIM_SEED", default_value_t = 1)]
    pub seed: u64,
    /// Market update rate: realistic (10 steps/s), max (as fast as clients read), or steps/s.
    #[arg(long, env = "DEPTHAGG_SIM_RATE", default_value = "realistic")]
    pub rate: Rate,
    /// Faults, e.g. `binance=drop@30/100,kraken=checksum@5s,coinbase=http429` (see the docs of
    /// `depthagg::sim`).
    #[arg(long, env = "DEPTHAGG_SIM_FAULTS")]
    pub faults: Option<String>,
    /// TOML scenario with seed, rate and faults.
    #[arg(long, env = "DEPTHAGG_SIM_SCENARIO")]
    pub scenario: Option<PathBuf>,
    /// Serve this capture file for the venues it holds.
    #[arg(long, env = "DEPTHAGG_SIM_CAPTURE")]
    pub capture: Option<PathBuf>,
    /// Pace of the capture: max, or a factor of the recorded pace.
    #[arg(long, env = "DEPTHAGG_SIM_SPEED", default_value = "1")]
    pub speed: Speed,
}

impl SimArgs {
    /// The simulator configuration these arguments describe.
    pub fn config(&self) -> color_eyre::Result<SimConfig> {
        use color_eyre::eyre::{WrapErr, eyre};
        let mut cfg = SimConfig {
            bind: self.bind,
            base_port: self.port,
            seed: self.seed,
            rate: self.rate,
            capture: self.capture.clone(),
            speed: self.speed,
            ..SimConfig::default()
        };
        if let Some(path) = &self.scenario {
            let text = std::fs::read_to_string(path)
                .wrap_err_with(|| format!("reading scenario {}", path.display()))?;
            let sc = FaultPlan::from_toml(&text)
                .map_err(|e| eyre!("scenario {}: {e}", path.display()))?;
            if let Some(seed) = sc.seed {
                cfg.seed = seed;
            }
            if let Some(rate) = &sc.rate {
                cfg.rate = rate
                    .parse()
                    .map_err(|e| eyre!("scenario {}: {e}", path.display()))?;
            }
            cfg.faults.rules.extend(sc.plan.rules);
        }
        if let Some(spec) = &self.faults {
            let plan = FaultPlan::parse(spec).map_err(|e| eyre!("--faults: {e}"))?;
            cfg.faults.rules.extend(plan.rules);
        }
        Ok(cfg)
    }
}

/// Run `depthagg simulate`: start, print one line per venue with its endpoints, run until
/// Ctrl-C.
pub async fn run_simulate(args: SimArgs) -> color_eyre::Result<u8> {
    let cfg = args.config()?;
    let sim = Simulator::start(cfg).await?;
    for venue in Venue::ALL {
        let e = sim.endpoint(venue);
        match &e.rest_url {
            Some(rest) => println!("{venue:<8} ws={} rest={rest}", e.ws_url),
            None => println!("{venue:<8} ws={}", e.ws_url),
        }
    }
    tokio::signal::ctrl_c().await?;
    sim.shutdown().await;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        sim: SimArgs,
    }

    #[test]
    fn args_build_a_config() {
        let cli = Cli::try_parse_from([
            "simulate",
            "--seed",
            "9",
            "--rate",
            "250",
            "--faults",
            "kraken=checksum@5s,binance=http451",
            "--speed",
            "max",
        ])
        .expect("valid arguments");
        let cfg = cli.sim.config().expect("valid config");
        assert_eq!(cfg.seed, 9);
        assert_eq!(cfg.rate, Rate::PerSecond(250));
        assert_eq!(cfg.speed, Speed::Max);
        assert_eq!(cfg.faults.rules.len(), 2);
        assert_eq!(cfg.faults.rules[1].fault, Fault::Http451);
        assert_eq!("max".parse::<Rate>(), Ok(Rate::Max));
        assert_eq!("realistic".parse::<Rate>(), Ok(Rate::Realistic));
        assert!("0".parse::<Rate>().is_err());
        assert_eq!("2".parse::<Speed>(), Ok(Speed::Factor(2.0)));
        assert!("-1".parse::<Speed>().is_err());
        assert!(
            Cli::try_parse_from(["simulate", "--faults", "kraken=boom"])
                .expect("clap accepts the text")
                .sim
                .config()
                .is_err()
        );
    }
}
