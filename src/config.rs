//! Validated settings: command line, environment and `--config` file merged into one [`Config`].
//!
//! Precedence: flag, then environment variable (clap handles both), then the TOML file, then the
//! default. Every invalid value becomes a [`ConfigError`]: one line naming the flag or key, the value
//! and what is accepted; `main` prints it and exits with code 2 before anything is written.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use crate::aggregate::{AggConfig, Window};
use crate::bins::BinSize;
use crate::cli::RunArgs;
use crate::types::Venue;
use crate::venue::{Protocol, VenueSpec};

/// A setting that cannot be used, said in one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

/// Everything a run needs, validated.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// Bin size, weights, enabled venues, window, renormalisation.
    pub agg: AggConfig,
    /// Seconds between writes.
    pub interval_secs: u64,
    /// CSV path.
    pub out: PathBuf,
    /// Quantity decimals in the CSV.
    pub qty_decimals: u32,
    /// No dashboard.
    pub headless: bool,
    /// One snapshot, then exit.
    pub once: bool,
    /// `--once`: how long to wait for venues.
    pub sync_timeout_secs: u64,
    /// `--once`: fewest contributing venues.
    pub min_venues: usize,
    /// Log file.
    pub log: Option<PathBuf>,
    /// Run on the embedded simulator, with these settings.
    pub demo: Option<crate::demo::DemoOptions>,
    /// Capture file to record to.
    pub record: Option<PathBuf>,
    /// Per enabled venue: protocol, symbol, endpoints.
    pub venues: Vec<VenueSpec>,
}

/// The keys a `--config` file may hold (the long flag names).
pub const FILE_KEYS: &[&str] = &[
    "bin-size",
    "interval",
    "out",
    "weights",
    "renormalize",
    "venues",
    "window",
    "qty-decimals",
    "headless",
    "once",
    "sync-timeout",
    "min-venues",
    "log",
    "binance-symbol",
    "binance-ws",
    "binance-rest",
    "coinbase-symbol",
    "coinbase-protocol",
    "coinbase-ws",
    "kraken-symbol",
    "kraken-protocol",
    "kraken-ws",
    "bitfinex-symbol",
    "bitfinex-ws",
];

fn err(msg: impl Into<String>) -> ConfigError {
    ConfigError(msg.into())
}

/// Read a `--config` TOML file into key → text value. Unknown keys and malformed files are errors
/// naming the file.
pub fn read_config_file(path: &Path) -> Result<BTreeMap<String, String>, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        err(format!(
            "--config {}: cannot read the file: {e}",
            path.display()
        ))
    })?;
    parse_config_text(&text, &path.display().to_string())
}

/// Parse config file text (see [`read_config_file`]); `name` names the file in errors.
pub fn parse_config_text(text: &str, name: &str) -> Result<BTreeMap<String, String>, ConfigError> {
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
        let msg = e.message().replace('\n', " ");
        let at = e
            .span()
            .map(|s| {
                format!(
                    " (line {})",
                    text[..s.start.min(text.len())].lines().count().max(1)
                )
            })
            .unwrap_or_default();
        err(format!("--config {name}: not valid TOML{at}: {msg}"))
    })?;
    let mut out = BTreeMap::new();
    for (key, value) in table {
        if !FILE_KEYS.contains(&key.as_str()) {
            return Err(err(format!(
                "--config {name}: unknown key {key:?} (accepted: {})",
                FILE_KEYS.join(", ")
            )));
        }
        let text = match value {
            toml::Value::String(s) => s,
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Float(f) => f.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            toml::Value::Table(t) if key == "weights" => {
                let mut parts = Vec::new();
                for (venue, w) in t {
                    let w = match w {
                        toml::Value::Integer(i) => i.to_string(),
                        toml::Value::Float(f) => f.to_string(),
                        toml::Value::String(s) => s,
                        other => other.to_string(),
                    };
                    parts.push(format!("{venue}={w}"));
                }
                parts.join(",")
            }
            toml::Value::Array(a) if key == "venues" => a
                .iter()
                .map(|v| {
                    v.as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| v.to_string())
                })
                .collect::<Vec<_>>()
                .join(","),
            other => {
                return Err(err(format!(
                    "--config {name}: key {key:?} has a {} value; expected text, a number or true/false",
                    other.type_str()
                )));
            }
        };
        out.insert(key, text);
    }
    Ok(out)
}

/// Settings as text, each remembering whether it came from a flag/env or the file.
struct Sources<'a> {
    file: &'a BTreeMap<String, String>,
}

impl Sources<'_> {
    /// The value of a setting: flag/env first, then the file. Returns (value, how to name it).
    fn get(&self, flag: &Option<String>, key: &str) -> Option<(String, String)> {
        if let Some(v) = flag {
            return Some((v.clone(), format!("--{key}")));
        }
        self.file
            .get(key)
            .map(|v| (v.clone(), format!("config key {key:?}")))
    }

    fn flag(&self, flag: bool, key: &str) -> Result<bool, ConfigError> {
        if flag {
            return Ok(true);
        }
        match self.file.get(key).map(String::as_str) {
            None | Some("false") => Ok(false),
            Some("true") => Ok(true),
            Some(other) => Err(err(format!(
                "config key {key:?}: {other:?} is not a boolean (accepted: true, false)"
            ))),
        }
    }
}

/// Validate the run settings into a [`Config`].
pub fn build_config(args: &RunArgs) -> Result<Config, ConfigError> {
    let file = match &args.config {
        Some(path) => read_config_file(path)?,
        None => BTreeMap::new(),
    };
    let src = Sources { file: &file };

    let bin_size = match src.get(&args.bin_size, "bin-size") {
        None => BinSize::parse("10").ok_or_else(|| err("internal: default bin size"))?,
        Some((v, name)) => BinSize::parse(v.trim()).ok_or_else(|| {
            err(format!(
                "{name} {v:?}: not a valid bin size (accepted: a positive number of USD such as 10, 0.5 or 25)"
            ))
        })?,
    };

    let interval_secs = positive_int(
        src.get(&args.interval, "interval"),
        30,
        "a whole number of seconds, 1 or more",
    )?;
    let sync_timeout_secs = positive_int(
        src.get(&args.sync_timeout, "sync-timeout"),
        20,
        "a whole number of seconds, 1 or more",
    )?;

    let venues = match src.get(&args.venues, "venues") {
        None => Venue::ALL.to_vec(),
        Some((v, name)) => parse_venue_list(&v).map_err(|m| err(format!("{name} {v:?}: {m}")))?,
    };
    let mut enabled = [false; 4];
    for v in &venues {
        enabled[v.index()] = true;
    }

    let mut weights = Venue::ALL.map(Venue::default_weight);
    if let Some((v, name)) = src.get(&args.weights, "weights") {
        for (venue, w) in parse_weights(&v).map_err(|m| err(format!("{name} {v:?}: {m}")))? {
            weights[venue.index()] = w;
        }
    }
    if venues.iter().all(|v| weights[v.index()] == 0.0) {
        return Err(err(format!(
            "--weights: every selected venue has weight 0, so nothing would be aggregated (give at least one of {} a weight above 0)",
            venues
                .iter()
                .map(|v| v.name())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }

    let window = match src.get(&args.window, "window") {
        None => Window::DEFAULT,
        Some((v, name)) => Window::parse(&v).ok_or_else(|| {
            err(format!(
                "{name} {v:?}: not a valid window (accepted: a percentage above 0 and up to 100 with at most 4 decimals, e.g. 2 or 0.5, or \"all\")"
            ))
        })?,
    };

    let qty_decimals = match src.get(&args.qty_decimals, "qty-decimals") {
        None => 4,
        Some((v, name)) => v
            .trim()
            .parse::<u32>()
            .ok()
            .filter(|n| *n <= 12)
            .ok_or_else(|| {
                err(format!(
                    "{name} {v:?}: not valid (accepted: a whole number from 0 to 12)"
                ))
            })?,
    };

    let min_venues = match src.get(&args.min_venues, "min-venues") {
        None => 1,
        Some((v, name)) => v
            .trim()
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=4).contains(n))
            .ok_or_else(|| {
                err(format!(
                    "{name} {v:?}: not valid (accepted: a whole number from 1 to 4)"
                ))
            })?,
    };
    if min_venues > venues.len() {
        return Err(err(format!(
            "--min-venues {min_venues}: more than the {} venue(s) selected with --venues",
            venues.len()
        )));
    }

    let out = match src.get(&args.out, "out") {
        None => PathBuf::from("agg_snapshot.csv"),
        Some((v, name)) => {
            if v.trim().is_empty() {
                return Err(err(format!(
                    "{name} \"\": empty path (accepted: a file path such as agg_snapshot.csv)"
                )));
            }
            let p = PathBuf::from(v);
            if p.is_dir() {
                return Err(err(format!(
                    "{name} {:?}: is a directory (accepted: a file path such as {}/agg_snapshot.csv)",
                    p.display(),
                    p.display()
                )));
            }
            p
        }
    };
    check_output_dir(&out).map_err(|m| {
        let name = if args.out.is_some() {
            "--out".to_string()
        } else if file.contains_key("out") {
            "config key \"out\"".into()
        } else {
            "--out (default)".into()
        };
        err(format!("{name} {:?}: {m}", out.display()))
    })?;

    let headless = src.flag(args.headless, "headless")?;
    let once = src.flag(args.once, "once")?;
    let renormalize = src.flag(args.renormalize, "renormalize")?;
    let log = args
        .log
        .clone()
        .or_else(|| file.get("log").map(PathBuf::from));

    let mut specs = Vec::new();
    for venue in &venues {
        specs.push(venue_spec(*venue, args, &src)?);
    }

    Ok(Config {
        agg: AggConfig {
            bin_size,
            weights,
            enabled,
            window,
            renormalize,
        },
        interval_secs,
        out,
        qty_decimals,
        headless,
        once,
        sync_timeout_secs,
        min_venues,
        log,
        demo: demo_options(args)?,
        record: args.record.clone(),
        venues: specs,
    })
}

fn demo_options(args: &RunArgs) -> Result<Option<crate::demo::DemoOptions>, ConfigError> {
    if !args.demo {
        for (set, flag) in [
            (args.demo_faults.is_some(), "--demo-faults"),
            (args.demo_seed.is_some(), "--demo-seed"),
            (args.demo_rate.is_some(), "--demo-rate"),
        ] {
            if set {
                return Err(err(format!("{flag} is only used with --demo (add --demo)")));
            }
        }
        return Ok(None);
    }
    let faults = match &args.demo_faults {
        None => crate::sim::FaultPlan::none(),
        Some(spec) => crate::sim::FaultPlan::parse(spec)
            .map_err(|e| err(format!("--demo-faults {spec:?}: {e}")))?,
    };
    let rate = match &args.demo_rate {
        None => crate::sim::Rate::Realistic,
        Some(r) => r
            .parse()
            .map_err(|e| err(format!("--demo-rate {r:?}: {e}")))?,
    };
    Ok(Some(crate::demo::DemoOptions {
        seed: args.demo_seed.unwrap_or(1),
        rate,
        faults,
    }))
}

fn positive_int(
    v: Option<(String, String)>,
    default: u64,
    accepted: &str,
) -> Result<u64, ConfigError> {
    match v {
        None => Ok(default),
        Some((v, name)) => v
            .trim()
            .parse::<u64>()
            .ok()
            .filter(|n| *n >= 1 && *n <= 86_400 * 365)
            .ok_or_else(|| err(format!("{name} {v:?}: not valid (accepted: {accepted})"))),
    }
}

/// Parse `binance,kraken` into venues (no repeats, at least one).
pub fn parse_venue_list(text: &str) -> Result<Vec<Venue>, String> {
    let mut out = Vec::new();
    for part in text.split(',') {
        let v: Venue = part.parse()?;
        if out.contains(&v) {
            return Err(format!("venue {v} is named twice"));
        }
        out.push(v);
    }
    if out.is_empty() {
        return Err("no venue named (accepted: binance, coinbase, kraken, bitfinex)".into());
    }
    Ok(out)
}

/// Parse `binance=0.5,coinbase=0.2` (weights finite and non-negative, each venue once).
pub fn parse_weights(text: &str) -> Result<Vec<(Venue, f64)>, String> {
    let mut out: Vec<(Venue, f64)> = Vec::new();
    for part in text.split(',') {
        let Some((name, w)) = part.split_once('=') else {
            return Err(format!(
                "{:?} is not VENUE=WEIGHT (accepted: e.g. binance=0.5,coinbase=0.2)",
                part.trim()
            ));
        };
        let venue: Venue = name.parse()?;
        if out.iter().any(|(v, _)| *v == venue) {
            return Err(format!("venue {venue} is given twice"));
        }
        let weight: f64 = w
            .trim()
            .parse()
            .ok()
            .filter(|x: &f64| x.is_finite() && *x >= 0.0)
            .ok_or_else(|| {
                format!(
                    "weight {:?} for {venue} is not valid (accepted: a number 0 or above, e.g. 0.15)",
                    w.trim()
                )
            })?;
        out.push((venue, weight));
    }
    Ok(out)
}

/// Check that the output file's directory exists and is writable (by creating and removing a
/// file in it). Returns a plain-words reason otherwise.
pub fn check_output_dir(csv: &Path) -> Result<(), String> {
    let dir = match csv.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !dir.is_dir() {
        return Err(format!(
            "directory {} does not exist (create it first; depthagg does not create directories)",
            dir.display()
        ));
    }
    let probe = dir.join(format!(".depthagg-write-test-{}", std::process::id()));
    match std::fs::File::create(&probe) {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
            Ok(())
        }
        Err(e) => Err(format!("directory {} is not writable: {e}", dir.display())),
    }
}

fn venue_spec(venue: Venue, args: &RunArgs, src: &Sources<'_>) -> Result<VenueSpec, ConfigError> {
    let (symbol_flag, ws_flag, proto_flag, key) = match venue {
        Venue::Binance => (&args.binance_symbol, &args.binance_ws, &None, "binance"),
        Venue::Coinbase => (
            &args.coinbase_symbol,
            &args.coinbase_ws,
            &args.coinbase_protocol,
            "coinbase",
        ),
        Venue::Kraken => (
            &args.kraken_symbol,
            &args.kraken_ws,
            &args.kraken_protocol,
            "kraken",
        ),
        Venue::Bitfinex => (&args.bitfinex_symbol, &args.bitfinex_ws, &None, "bitfinex"),
    };
    let protocol = match src.get(proto_flag, &format!("{key}-protocol")) {
        None => Protocol::default_for(venue),
        Some((v, name)) => match (venue, v.trim()) {
            (Venue::Coinbase, "advanced") => Protocol::CoinbaseAdvanced,
            (Venue::Coinbase, "exchange") => Protocol::CoinbaseExchange,
            (Venue::Kraken, "v2") => Protocol::KrakenV2,
            (Venue::Kraken, "v1") => Protocol::KrakenV1,
            (Venue::Coinbase, _) => {
                return Err(err(format!(
                    "{name} {v:?}: unknown protocol (accepted: advanced, exchange)"
                )));
            }
            _ => {
                return Err(err(format!(
                    "{name} {v:?}: unknown protocol (accepted: v2, v1)"
                )));
            }
        },
    };
    let default_symbol = match protocol {
        Protocol::KrakenV1 => "XBT/USD",
        _ => venue.default_symbol(),
    };
    let symbol = match src.get(symbol_flag, &format!("{key}-symbol")) {
        None => default_symbol.to_string(),
        Some((v, name)) => {
            let t = v.trim();
            if t.is_empty() || t.len() > 40 || t.chars().any(|c| c.is_whitespace() || c == '"') {
                return Err(err(format!(
                    "{name} {v:?}: not a valid symbol (accepted: the exchange's symbol, e.g. {default_symbol})"
                )));
            }
            t.to_string()
        }
    };
    let mut spec = VenueSpec::new(protocol, &symbol);
    if let Some((v, name)) = src.get(ws_flag, &format!("{key}-ws")) {
        spec.ws_url = check_url(&v, &name, &["ws://", "wss://"])?;
    }
    if venue == Venue::Binance {
        if let Some((v, name)) = src.get(&args.binance_rest, "binance-rest") {
            spec.rest_url = Some(check_url(&v, &name, &["http://", "https://"])?);
        }
    }
    Ok(spec)
}

fn check_url(v: &str, name: &str, schemes: &[&str]) -> Result<String, ConfigError> {
    let t = v.trim().trim_end_matches('/');
    let ok = schemes
        .iter()
        .any(|s| t.len() > s.len() && t.to_ascii_lowercase().starts_with(s));
    if !ok || t.contains(char::is_whitespace) {
        return Err(err(format!(
            "{name} {v:?}: not a valid URL (accepted: a URL starting with {})",
            schemes.join(" or ")
        )));
    }
    Ok(t.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args() -> RunArgs {
        RunArgs::default()
    }

    fn fails(a: RunArgs) -> String {
        build_config(&a).expect_err("should be refused").0
    }

    #[test]
    fn defaults() {
        let c = build_config(&args()).expect("defaults are valid");
        assert_eq!(c.agg.bin_size.to_string(), "10");
        assert_eq!(c.agg.weights, [0.5, 0.2, 0.15, 0.15]);
        assert_eq!(c.agg.window, Window::DEFAULT);
        assert_eq!(c.interval_secs, 30);
        assert_eq!(c.qty_decimals, 4);
        assert_eq!(c.out, PathBuf::from("agg_snapshot.csv"));
        assert_eq!(c.venues.len(), 4);
        assert_eq!(c.venues[2].symbol, "BTC/USD");
        assert_eq!(c.venues[2].ws_url, "wss://ws.kraken.com/v2");
    }

    #[test]
    fn weights_and_venues() {
        let mut a = args();
        a.weights = Some("kraken=0.3, binance=0".into());
        a.venues = Some("kraken,binance".into());
        let c = build_config(&a).expect("valid");
        assert_eq!(c.agg.weights, [0.0, 0.2, 0.3, 0.15]);
        assert_eq!(c.agg.enabled, [true, false, true, false]);
        assert_eq!(
            c.venues.iter().map(|s| s.venue()).collect::<Vec<_>>(),
            [Venue::Kraken, Venue::Binance]
        );
    }

    #[test]
    fn bad_values_get_one_clear_line() {
        type Case = (fn(&mut RunArgs), &'static str);
        let cases: Vec<Case> = vec![
            (
                |a| a.bin_size = Some("0".into()),
                "--bin-size \"0\": not a valid bin size (accepted: a positive number of USD such as 10, 0.5 or 25)",
            ),
            (
                |a| a.bin_size = Some("-5".into()),
                "--bin-size \"-5\": not a valid bin size",
            ),
            (
                |a| a.bin_size = Some("NaN".into()),
                "--bin-size \"NaN\": not a valid bin size",
            ),
            (
                |a| a.bin_size = Some("ten".into()),
                "--bin-size \"ten\": not a valid bin size",
            ),
            (
                |a| a.interval = Some("0".into()),
                "--interval \"0\": not valid (accepted: a whole number of seconds, 1 or more)",
            ),
            (
                |a| a.weights = Some("binance=-1".into()),
                "--weights \"binance=-1\": weight \"-1\" for binance is not valid (accepted: a number 0 or above, e.g. 0.15)",
            ),
            (
                |a| a.weights = Some("binance=NaN".into()),
                "weight \"NaN\" for binance is not valid",
            ),
            (
                |a| a.weights = Some("bybit=1".into()),
                "--weights \"bybit=1\": unknown venue \"bybit\" (accepted: binance, coinbase, kraken, bitfinex)",
            ),
            (
                |a| a.weights = Some("kraken=1,kraken=2".into()),
                "venue kraken is given twice",
            ),
            (
                |a| a.weights = Some("binance=0,coinbase=0,kraken=0,bitfinex=0".into()),
                "--weights: every selected venue has weight 0",
            ),
            (
                |a| a.venues = Some("kraken,kraken".into()),
                "--venues \"kraken,kraken\": venue kraken is named twice",
            ),
            (
                |a| a.window = Some("0".into()),
                "--window \"0\": not a valid window",
            ),
            (
                |a| a.qty_decimals = Some("13".into()),
                "--qty-decimals \"13\": not valid (accepted: a whole number from 0 to 12)",
            ),
            (
                |a| a.out = Some("/nonexistent-dir/x.csv".into()),
                "--out \"/nonexistent-dir/x.csv\": directory /nonexistent-dir does not exist",
            ),
            (
                |a| a.kraken_protocol = Some("v3".into()),
                "--kraken-protocol \"v3\": unknown protocol (accepted: v2, v1)",
            ),
            (
                |a| a.binance_ws = Some("http://x".into()),
                "--binance-ws \"http://x\": not a valid URL (accepted: a URL starting with ws:// or wss://)",
            ),
            (
                |a| a.min_venues = Some("5".into()),
                "--min-venues \"5\": not valid (accepted: a whole number from 1 to 4)",
            ),
        ];
        for (set, want) in cases {
            let mut a = args();
            set(&mut a);
            let got = fails(a);
            assert!(got.contains(want), "got: {got}\nwant: {want}");
            assert!(!got.contains('\n'), "one line: {got}");
        }
    }

    #[test]
    fn config_file_keys_and_errors() {
        let m = parse_config_text(
            "bin-size = 25\nwindow = \"all\"\n[weights]\nbinance = 0.4\nkraken = 1\n",
            "c.toml",
        )
        .expect("valid file");
        assert_eq!(m["bin-size"], "25");
        assert_eq!(m["window"], "all");
        assert_eq!(m["weights"], "binance=0.4,kraken=1");
        let e = parse_config_text("bin_size = 25\n", "c.toml").expect_err("unknown key");
        assert!(
            e.0.starts_with("--config c.toml: unknown key \"bin_size\" (accepted: bin-size,"),
            "{e}"
        );
        let e = parse_config_text("bin-size = \n", "c.toml").expect_err("malformed");
        assert!(
            e.0.starts_with("--config c.toml: not valid TOML (line 1):"),
            "{e}"
        );
    }

    #[test]
    fn flags_override_the_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "bin-size = 25\ninterval = 5\n").expect("write");
        let mut a = args();
        a.config = Some(path.clone());
        a.bin_size = Some("50".into());
        let c = build_config(&a).expect("valid");
        assert_eq!(c.agg.bin_size.to_string(), "50");
        assert_eq!(c.interval_secs, 5);
        std::fs::write(&path, "interval = 0\n").expect("write");
        a.bin_size = None;
        assert_eq!(
            fails(a),
            "config key \"interval\" \"0\": not valid (accepted: a whole number of seconds, 1 or more)"
        );
    }
}
