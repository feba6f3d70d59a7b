//! The sidecar `<csv stem>.meta.json`: everything a reader needs to trust or distrust the CSV
//! beside it — when it was taken, with which bin size, window and weights, which venues are in it
//! and why the others are not, and the SHA-256 of the CSV bytes so the pair can be checked.
//!
//! Prices are exact decimal strings (`"61000.5"`), never JSON floats; weights and counters' rates
//! are the only floats. Keys come out in a fixed order (the order of the fields below) and the
//! text is pretty-printed with two-space indents and a final `\n`, so the file diffs and
//! golden-tests well.

use std::path::{Path, PathBuf};

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::aggregate::{Snapshot, VenueSummary, Window};
use crate::book::Coverage;
use crate::decimal::Dec;
use crate::engine::Counters;
use crate::types::Venue;
use crate::venue::FeedState;

/// The `format` value of the sidecar; bumped when a key changes meaning or disappears.
pub const SIDECAR_FORMAT: &str = "depthagg-snapshot-meta/1";

/// How quantities are rounded, as written in the sidecar's `qty_rounding`.
pub const QTY_ROUNDING: &str = "half away from zero";

/// The sidecar path of a CSV path: `dir/agg_snapshot.csv` → `dir/agg_snapshot.meta.json`.
/// `None` when the path does not name a file.
pub fn sidecar_path(csv_path: &Path) -> Option<PathBuf> {
    let stem = csv_path.file_stem()?;
    let mut name = stem.to_os_string();
    name.push(".meta.json");
    Some(csv_path.with_file_name(name))
}

/// Lowercase hex SHA-256 of some bytes (the `csv_sha256` of the sidecar).
pub fn sha256_hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let digest = Sha256::digest(bytes);
    let mut out = String::with_capacity(64);
    for b in digest {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// A Unix-ms time as RFC 3339 UTC with milliseconds (`2024-06-01T12:00:00.123Z`); `None` beyond the
/// years `time` can represent.
pub fn rfc3339_utc_ms(unix_ms: i64) -> Option<String> {
    let fmt = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    time::OffsetDateTime::from_unix_timestamp_nanos(unix_ms as i128 * 1_000_000)
        .ok()?
        .format(&fmt)
        .ok()
}

/// Render the sidecar text for a snapshot whose CSV text (`csv`) is written as `csv_file_name`.
pub fn render_sidecar(
    snap: &Snapshot,
    csv_file_name: &str,
    csv: &str,
    qty_decimals: u32,
) -> String {
    let included: Vec<&VenueSummary> = snap.venues.iter().filter(|v| v.included).collect();
    let meta = Meta {
        format: SIDECAR_FORMAT,
        csv_file: csv_file_name,
        csv_sha256: sha256_hex(csv.as_bytes()),
        csv_bytes: csv.len(),
        rows: snap.bins.len(),
        qty_decimals,
        qty_rounding: QTY_ROUNDING,
        taken_at_utc: rfc3339_utc_ms(snap.taken_at),
        taken_at_unix_ms: snap.taken_at,
        bin_size: snap.bin_size.get(),
        window: WindowMeta {
            text: snap.window.to_string(),
            percent: match snap.window {
                Window::Percent(units) => Some(Dec::from_raw(units as i128 * 100_000_000_000_000)),
                Window::All => None,
            },
            // `Window::All` spans the whole Dec range; its bounds mean nothing to a reader.
            low: snap
                .window_range
                .filter(|_| snap.window != Window::All)
                .map(|r| r.0),
            high: snap
                .window_range
                .filter(|_| snap.window != Window::All)
                .map(|r| r.1),
        },
        mid: snap.mid,
        best_bid: snap.best_bid,
        best_ask: snap.best_ask,
        weights_given: PerVenue::from_fn(|v| weight_of(snap, v, |s| s.weight)),
        weights_applied: PerVenue::from_fn(|v| weight_of(snap, v, |s| s.applied_weight)),
        weights_renormalised: snap.renormalize,
        venues_included: included.iter().map(|s| s.venue).collect(),
        venues: snap.venues.iter().map(VenueMeta::from).collect(),
    };
    // Serialising plain structs of strings, integers, bools and finite-or-null floats cannot fail.
    let mut text = serde_json::to_string_pretty(&meta).unwrap_or_default();
    text.push('\n');
    text
}

fn weight_of(snap: &Snapshot, venue: Venue, f: impl Fn(&VenueSummary) -> f64) -> f64 {
    snap.venues.iter().find(|s| s.venue == venue).map_or(0.0, f)
}

/// The whole sidecar, in key order.
#[derive(Serialize)]
struct Meta<'a> {
    /// [`SIDECAR_FORMAT`].
    format: &'static str,
    /// File name of the CSV this sidecar describes.
    csv_file: &'a str,
    /// SHA-256 of the CSV bytes: a reader that finds another hash read the pair mid-write.
    csv_sha256: String,
    csv_bytes: usize,
    /// Data rows (bins) in the CSV, header excluded.
    rows: usize,
    qty_decimals: u32,
    qty_rounding: &'static str,
    taken_at_utc: Option<String>,
    taken_at_unix_ms: i64,
    bin_size: Dec,
    window: WindowMeta,
    mid: Option<Dec>,
    best_bid: Option<Dec>,
    best_ask: Option<Dec>,
    weights_given: PerVenue<f64>,
    weights_applied: PerVenue<f64>,
    /// True when `--renormalize` scaled the included venues' weights to sum to 1.
    weights_renormalised: bool,
    venues_included: Vec<Venue>,
    venues: Vec<VenueMeta<'a>>,
}

#[derive(Serialize)]
struct WindowMeta {
    /// `±2%` or `all`.
    text: String,
    /// The percentage as a decimal string (`"2"`), `null` for `all`.
    percent: Option<Dec>,
    /// Lowest price kept (`null` without a mid or for `all`).
    low: Option<Dec>,
    /// Highest price kept.
    high: Option<Dec>,
}

/// One value per venue, keyed by venue name in display order.
#[derive(Serialize)]
struct PerVenue<T> {
    binance: T,
    coinbase: T,
    kraken: T,
    bitfinex: T,
}

impl<T> PerVenue<T> {
    fn from_fn(f: impl Fn(Venue) -> T) -> PerVenue<T> {
        PerVenue {
            binance: f(Venue::Binance),
            coinbase: f(Venue::Coinbase),
            kraken: f(Venue::Kraken),
            bitfinex: f(Venue::Bitfinex),
        }
    }
}

#[derive(Serialize)]
struct Levels {
    bids: usize,
    asks: usize,
}

#[derive(Serialize)]
struct VenueMeta<'a> {
    venue: Venue,
    symbol: &'a str,
    protocol: &'static str,
    /// Live endpoint URL, `demo` or `replay FILE`; `null` for a venue that is not running.
    source: Option<&'a str>,
    state: FeedState,
    reason: &'a str,
    included: bool,
    excluded_because: Option<&'a str>,
    weight_given: f64,
    weight_applied: f64,
    levels: Levels,
    coverage: &'a Coverage,
    best_bid: Option<Dec>,
    best_ask: Option<Dec>,
    last_update_age_ms: Option<i64>,
    last_message_age_ms: Option<i64>,
    latency_ms: Option<i64>,
    counters: &'a Counters,
}

impl<'a> From<&'a VenueSummary> for VenueMeta<'a> {
    fn from(s: &'a VenueSummary) -> VenueMeta<'a> {
        VenueMeta {
            venue: s.venue,
            symbol: &s.symbol,
            protocol: s.protocol.name(),
            source: (!s.source.is_empty()).then_some(s.source.as_str()),
            state: s.state,
            reason: &s.reason,
            included: s.included,
            excluded_because: s.excluded_because.as_deref(),
            weight_given: s.weight,
            weight_applied: s.applied_weight,
            levels: Levels {
                bids: s.levels.0,
                asks: s.levels.1,
            },
            coverage: &s.coverage,
            best_bid: s.best_bid,
            best_ask: s.best_ask,
            last_update_age_ms: s.last_update_age_ms,
            last_message_age_ms: s.last_message_age_ms,
            latency_ms: s.latency_ms,
            counters: &s.counters,
        }
    }
}

/// Read the `csv_sha256` a sidecar text records.
pub(crate) fn recorded_csv_sha256(sidecar: &str) -> Result<String, String> {
    let value: serde_json::Value =
        serde_json::from_str(sidecar).map_err(|e| format!("not valid JSON ({e})"))?;
    value
        .get("csv_sha256")
        .and_then(|v| v.as_str())
        .map(str::to_string)
        .ok_or_else(|| "has no \"csv_sha256\" string".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sidecar_path_replaces_the_extension() {
        let p = |s: &str| sidecar_path(Path::new(s)).map(|p| p.display().to_string());
        assert_eq!(
            p("agg_snapshot.csv").as_deref(),
            Some("agg_snapshot.meta.json")
        );
        assert_eq!(
            p("/out/x/depth.csv").as_deref(),
            Some("/out/x/depth.meta.json")
        );
        assert_eq!(p("/out/plain").as_deref(), Some("/out/plain.meta.json"));
        assert_eq!(p("/"), None);
    }

    #[test]
    fn sha256_of_known_text() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn utc_time_has_three_fraction_digits() {
        assert_eq!(
            rfc3339_utc_ms(1_717_243_200_007).as_deref(),
            Some("2024-06-01T12:00:00.007Z")
        );
        assert_eq!(
            rfc3339_utc_ms(0).as_deref(),
            Some("1970-01-01T00:00:00.000Z")
        );
    }
}
