//! The command line. Doc comments are the help text; every flag can also come from an
//! environment variable `DEPTHAGG_*` or from the TOML file given with `--config` (same names).
//!
//! Values stay text here: `crate::config` validates them all into one [`crate::config::Config`] and
//! turns every bad value into one line naming the flag, the value and what is accepted.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// depthagg: one honest, live picture of Bitcoin market depth across Binance, Coinbase, Kraken
/// and Bitfinex.
///
/// Streams the four public order books over WebSocket, keeps an exact book per exchange, merges
/// them into weighted USD price bins, shows them in a terminal dashboard and writes
/// agg_snapshot.csv (price,buy_qty,sell_qty) plus agg_snapshot.meta.json every --interval seconds.
#[derive(Debug, Parser)]
#[command(name = "depthagg", version, max_term_width = 100)]
pub struct Cli {
    /// Run a subcommand instead of the live aggregator.
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Settings shared by live use, --demo and replay.
    #[command(flatten)]
    pub run: RunArgs,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Replay a capture file through the same codecs, with no network.
    Replay(ReplayArgs),
    /// Serve the four exchanges' protocols on loopback from a synthetic market (or a capture).
    Simulate(crate::sim::SimArgs),
}

/// `depthagg replay`.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// The capture file (JSON Lines, ../shared/capture-format.md).
    pub file: PathBuf,

    /// Pace: "max" (as fast as possible) or N (N times the recorded pace; 1 = as recorded).
    /// [default: max with --headless, 1 otherwise]
    #[arg(long, value_name = "max|N")]
    pub speed: Option<String>,

    /// Which symbol to follow for a venue, e.g. kraken=XBT/CHF (repeatable). Default: the venue's
    /// BTC symbol if recorded, else the first symbol in the capture header.
    #[arg(long = "symbol", value_name = "VENUE=SYMBOL")]
    pub symbols: Vec<String>,

    /// Write the final book of each venue as DIR/<venue>.book.csv (side,price,qty; bids high to
    /// low, then asks low to high; exact decimal text).
    #[arg(long, value_name = "DIR")]
    pub dump_books: Option<PathBuf>,
}

/// Settings of a run (live, --demo, replay).
#[derive(Debug, Args, Default)]
pub struct RunArgs {
    /// TOML file with any of these settings (keys as the long flag names, e.g. bin-size = 10).
    /// Flags and environment variables override it.
    #[arg(long, env = "DEPTHAGG_CONFIG", value_name = "FILE", global = true)]
    pub config: Option<PathBuf>,

    /// Bin size in USD, a positive decimal such as 10, 0.5 or 25. [default: 10]
    #[arg(
        long,
        env = "DEPTHAGG_BIN_SIZE",
        allow_hyphen_values = true,
        value_name = "USD",
        global = true
    )]
    pub bin_size: Option<String>,

    /// Seconds between CSV snapshots, a positive whole number. [default: 30]
    #[arg(
        long,
        env = "DEPTHAGG_INTERVAL",
        allow_hyphen_values = true,
        value_name = "SECS",
        global = true
    )]
    pub interval: Option<String>,

    /// CSV output path; the sidecar goes beside it as <stem>.meta.json. The directory must exist.
    /// [default: agg_snapshot.csv]
    #[arg(long, env = "DEPTHAGG_OUT", value_name = "PATH", global = true)]
    pub out: Option<String>,

    /// Weight per venue, e.g. binance=0.5,coinbase=0.2 (non-negative; 0 leaves a venue out;
    /// unnamed venues keep their default). [default: binance=0.5,coinbase=0.2,kraken=0.15,bitfinex=0.15]
    #[arg(long, env = "DEPTHAGG_WEIGHTS", value_name = "LIST", global = true)]
    pub weights: Option<String>,

    /// Scale the weights of the venues that are live at snapshot time so they sum to 1 (default:
    /// weights as given, so a missing venue lowers the totals).
    #[arg(long, env = "DEPTHAGG_RENORMALIZE", global = true)]
    pub renormalize: bool,

    /// Venues to connect, comma-separated. [default: binance,coinbase,kraken,bitfinex]
    #[arg(long, env = "DEPTHAGG_VENUES", value_name = "LIST", global = true)]
    pub venues: Option<String>,

    /// Window around the consolidated mid: a percentage above 0 and up to 100 (e.g. 2 or 0.5), or
    /// "all" for every level the venues hold. [default: 2]
    #[arg(
        long,
        env = "DEPTHAGG_WINDOW",
        allow_hyphen_values = true,
        value_name = "PCT|all",
        global = true
    )]
    pub window: Option<String>,

    /// Decimals of buy_qty and sell_qty in the CSV, 0 to 12. [default: 4]
    #[arg(
        long,
        env = "DEPTHAGG_QTY_DECIMALS",
        allow_hyphen_values = true,
        value_name = "N",
        global = true
    )]
    pub qty_decimals: Option<String>,

    /// Run without the dashboard (implied when stdout is not a terminal).
    #[arg(long, env = "DEPTHAGG_HEADLESS", global = true)]
    pub headless: bool,

    /// Write one snapshot and exit (with --headless): wait until every venue is live or
    /// --sync-timeout passes, then write from the live ones.
    #[arg(long, env = "DEPTHAGG_ONCE", global = true)]
    pub once: bool,

    /// With --once: seconds to wait for the venues to go live. [default: 20]
    #[arg(
        long,
        env = "DEPTHAGG_SYNC_TIMEOUT",
        allow_hyphen_values = true,
        value_name = "SECS",
        global = true
    )]
    pub sync_timeout: Option<String>,

    /// With --once: the fewest venues that must contribute for the snapshot to be written.
    /// [default: 1]
    #[arg(
        long,
        env = "DEPTHAGG_MIN_VENUES",
        allow_hyphen_values = true,
        value_name = "N",
        global = true
    )]
    pub min_venues: Option<String>,

    /// Write logs to this file. Without it, headless runs log to stderr and the dashboard logs
    /// nothing (it never prints over the screen; its footer shows the last error). Level:
    /// DEPTHAGG_LOG_LEVEL (default info).
    #[arg(long, env = "DEPTHAGG_LOG", value_name = "FILE", global = true)]
    pub log: Option<PathBuf>,

    /// Run on the embedded loopback simulator instead of the exchanges (no network needed).
    #[arg(long, env = "DEPTHAGG_DEMO")]
    pub demo: bool,

    /// With --demo: faults to inject, e.g. kraken=checksum@5s/30s,binance=drop~0.001 (syntax of
    /// `depthagg simulate --faults`).
    #[arg(long, env = "DEPTHAGG_DEMO_FAULTS", value_name = "SPEC")]
    pub demo_faults: Option<String>,

    /// With --demo: seed of the simulated market and its faults. [default: 1]
    #[arg(long, env = "DEPTHAGG_DEMO_SEED", value_name = "N")]
    pub demo_seed: Option<u64>,

    /// With --demo: market rate: realistic, max, or steps per second. [default: realistic]
    #[arg(long, env = "DEPTHAGG_DEMO_RATE", value_name = "RATE")]
    pub demo_rate: Option<String>,

    /// Record every frame, REST response, connect and close of all venues to this capture file.
    #[arg(long, env = "DEPTHAGG_RECORD", value_name = "FILE")]
    pub record: Option<PathBuf>,

    /// Binance symbol. [default: BTCUSDT]
    #[arg(long, env = "DEPTHAGG_BINANCE_SYMBOL", value_name = "SYMBOL")]
    pub binance_symbol: Option<String>,
    /// Binance WebSocket base URL (e.g. wss://data-stream.binance.vision:443).
    /// [default: wss://stream.binance.com:9443]
    #[arg(long, env = "DEPTHAGG_BINANCE_WS", value_name = "URL")]
    pub binance_ws: Option<String>,
    /// Binance REST base URL (e.g. https://data-api.binance.vision). [default: https://api.binance.com]
    #[arg(long, env = "DEPTHAGG_BINANCE_REST", value_name = "URL")]
    pub binance_rest: Option<String>,

    /// Coinbase product. [default: BTC-USD]
    #[arg(long, env = "DEPTHAGG_COINBASE_SYMBOL", value_name = "SYMBOL")]
    pub coinbase_symbol: Option<String>,
    /// Coinbase protocol: advanced (Advanced Trade level2) or exchange (Exchange level2_batch).
    /// [default: advanced]
    #[arg(
        long,
        env = "DEPTHAGG_COINBASE_PROTOCOL",
        value_name = "advanced|exchange"
    )]
    pub coinbase_protocol: Option<String>,
    /// Coinbase WebSocket URL. [default: per protocol]
    #[arg(long, env = "DEPTHAGG_COINBASE_WS", value_name = "URL")]
    pub coinbase_ws: Option<String>,

    /// Kraken symbol. [default: BTC/USD (v2), XBT/USD (v1)]
    #[arg(long, env = "DEPTHAGG_KRAKEN_SYMBOL", value_name = "SYMBOL")]
    pub kraken_symbol: Option<String>,
    /// Kraken protocol: v2 or v1. [default: v2]
    #[arg(long, env = "DEPTHAGG_KRAKEN_PROTOCOL", value_name = "v2|v1")]
    pub kraken_protocol: Option<String>,
    /// Kraken WebSocket URL. [default: wss://ws.kraken.com/v2]
    #[arg(long, env = "DEPTHAGG_KRAKEN_WS", value_name = "URL")]
    pub kraken_ws: Option<String>,

    /// Bitfinex symbol. [default: tBTCUSD]
    #[arg(long, env = "DEPTHAGG_BITFINEX_SYMBOL", value_name = "SYMBOL")]
    pub bitfinex_symbol: Option<String>,
    /// Bitfinex WebSocket URL. [default: wss://api-pub.bitfinex.com/ws/2]
    #[arg(long, env = "DEPTHAGG_BITFINEX_WS", value_name = "URL")]
    pub bitfinex_ws: Option<String>,
}
