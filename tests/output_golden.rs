//! Golden files of the snapshot writer: the exact bytes of `*.csv` and `*.meta.json` for fixed
//! snapshots, plus the pair check and quantity rounding seen from outside.
//!
//! To regenerate after an intended change: `UPDATE_GOLDEN=1 cargo test --test output_golden`,
//! then review every changed file under `tests/golden/` by eye (they are reviewed like code).

use std::path::{Path, PathBuf};

use depthagg::aggregate::{AggConfig, Snapshot, Window, aggregate};
use depthagg::bins::BinSize;
use depthagg::decimal::Dec;
use depthagg::engine::VenueState;
use depthagg::output::{OutputOptions, render_csv, sha256_hex, verify_pair, write_snapshot};
use depthagg::types::Venue;
use depthagg::venue::{FeedState, Protocol};

/// 2024-06-01T12:00:00.123Z
const NOW: i64 = 1_717_243_200_123;

fn d(s: &str) -> Dec {
    Dec::parse(s).expect("valid decimal")
}

fn venue(
    venue: Venue,
    source: &str,
    state: FeedState,
    reason: &str,
    bids: &[(&str, &str)],
    asks: &[(&str, &str)],
) -> VenueState {
    let mut st = VenueState::new(
        Protocol::default_for(venue),
        venue.default_symbol(),
        source,
        NOW - 60_000,
    );
    st.state = state;
    st.reason = reason.to_string();
    st.book.replace(
        bids.iter().map(|(p, q)| (d(p), d(q))),
        asks.iter().map(|(p, q)| (d(p), d(q))),
    );
    let i = venue.index() as u64;
    st.counters.messages = 1000 + i;
    st.counters.bytes = 250_000 + i;
    st.counters.book_messages = 900 + i;
    st.counters.reconnects = i;
    st.counters.checksums_ok = 10 * i;
    st.counters.msgs_per_sec = 9.5;
    st.last_message = Some(NOW - 40 - i as i64);
    st.last_update = Some(NOW - 120 - i as i64);
    st.latency_ms = Some(15 + i as i64);
    st
}

fn binance_live() -> VenueState {
    venue(
        Venue::Binance,
        "wss://stream.binance.com:9443",
        FeedState::Live,
        "in sync",
        &[
            ("61004.99", "0.5"),
            ("61000.6", "0.1"),
            ("61000", "1.25"),
            ("60990.5", "2"),
        ],
        &[("61005", "0.75"), ("61012.3", "1.1"), ("61020", "3")],
    )
}

fn others_live() -> [VenueState; 3] {
    [
        venue(
            Venue::Coinbase,
            "wss://advanced-trade-ws.coinbase.com",
            FeedState::Live,
            "in sync",
            &[("61003.51", "0.00031"), ("60995", "4")],
            &[("61005.5", "0.5"), ("61030", "1")],
        ),
        venue(
            Venue::Kraken,
            "demo",
            FeedState::Live,
            "in sync",
            &[("61001", "0.3")],
            &[("61006", "0.00005")],
        ),
        venue(
            Venue::Bitfinex,
            "replay captures/bitfinex.jsonl",
            FeedState::Live,
            "in sync",
            &[("61002.7", "1")],
            &[("61007.25", "2")],
        ),
    ]
}

fn cfg(bin: &str) -> AggConfig {
    AggConfig {
        bin_size: BinSize::parse(bin).expect("positive bin size"),
        weights: Venue::ALL.map(Venue::default_weight),
        enabled: [true; 4],
        window: Window::DEFAULT,
        renormalize: false,
    }
}

fn full_snapshot(bin: &str) -> Snapshot {
    let b = binance_live();
    let [c, k, f] = others_live();
    aggregate(&[&b, &c, &k, &f], &cfg(bin), NOW)
}

/// Binance refused for where we are, the other three live; weights renormalised.
fn partial_snapshot() -> Snapshot {
    let b = venue(
        Venue::Binance,
        "wss://stream.binance.com:9443",
        FeedState::Blocked,
        "HTTP 451, restricted location",
        &[],
        &[],
    );
    let [c, k, f] = others_live();
    let mut cf = cfg("10");
    cf.renormalize = true;
    aggregate(&[&b, &c, &k, &f], &cf, NOW)
}

/// No venue live: header only.
fn empty_snapshot() -> Snapshot {
    let b = venue(
        Venue::Binance,
        "wss://stream.binance.com:9443",
        FeedState::Blocked,
        "HTTP 451, restricted location",
        &[],
        &[],
    );
    let c = venue(
        Venue::Coinbase,
        "wss://advanced-trade-ws.coinbase.com",
        FeedState::Connecting,
        "starting",
        &[],
        &[],
    );
    let k = venue(
        Venue::Kraken,
        "wss://ws.kraken.com/v2",
        FeedState::Resyncing,
        "checksum mismatch",
        &[],
        &[],
    );
    aggregate(&[&b, &c, &k], &cfg("10"), NOW)
}

fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

/// Write `snap` as `<case>.csv` in a fresh directory and compare both files with the goldens.
fn assert_golden(case: &str, snap: &Snapshot, qty_decimals: u32) {
    let dir = tempfile::tempdir().expect("temp dir");
    let csv_path = dir.path().join(format!("{case}.csv"));
    let opts = OutputOptions {
        csv_path: csv_path.clone(),
        qty_decimals,
    };
    let report = write_snapshot(snap, &opts).expect("write succeeds");
    assert_eq!(report.rows, snap.bins.len());
    verify_pair(&csv_path).expect("fresh pair matches");
    for name in [format!("{case}.csv"), format!("{case}.meta.json")] {
        let got = std::fs::read_to_string(dir.path().join(&name)).expect("written file");
        let golden = golden_dir().join(&name);
        if std::env::var_os("UPDATE_GOLDEN").is_some() {
            std::fs::write(&golden, &got).expect("update golden");
            continue;
        }
        let want = std::fs::read_to_string(&golden)
            .unwrap_or_else(|e| panic!("golden {} missing: {e}", golden.display()));
        assert_eq!(got, want, "{name} differs from its golden file");
    }
    // Only the pair is left: no temporary or backup file.
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .expect("list dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, [format!("{case}.csv"), format!("{case}.meta.json")]);
}

#[test]
fn golden_bin10_dp4() {
    assert_golden("bin10_dp4", &full_snapshot("10"), 4);
}

#[test]
fn golden_bin10_dp2() {
    assert_golden("bin10_dp2", &full_snapshot("10"), 2);
}

#[test]
fn golden_bin0_5_dp4() {
    assert_golden("bin0_5_dp4", &full_snapshot("0.5"), 4);
}

#[test]
fn golden_partial_binance_blocked() {
    let snap = partial_snapshot();
    let binance = &snap.venues[Venue::Binance.index()];
    assert_eq!(
        binance.excluded_because.as_deref(),
        Some("blocked: HTTP 451, restricted location")
    );
    assert_golden("partial_binance_blocked", &snap, 4);
}

#[test]
fn golden_empty_header_only() {
    let snap = empty_snapshot();
    assert!(snap.bins.is_empty());
    assert_golden("empty", &snap, 4);
}

#[test]
fn golden_csv_hash_matches_golden_sidecar() {
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        return;
    }
    for case in [
        "bin10_dp4",
        "bin10_dp2",
        "bin0_5_dp4",
        "partial_binance_blocked",
        "empty",
    ] {
        let csv = golden_dir().join(format!("{case}.csv"));
        verify_pair(&csv).unwrap_or_else(|e| panic!("{case}: {e}"));
    }
}

fn write_case(dir: &Path, snap: &Snapshot) -> PathBuf {
    let csv = dir.join("agg_snapshot.csv");
    write_snapshot(snap, &OutputOptions::new(&csv)).expect("write succeeds");
    csv
}

#[test]
fn verify_pair_detects_a_mismatched_pair() {
    let dir = tempfile::tempdir().expect("temp dir");
    let csv = write_case(dir.path(), &full_snapshot("10"));
    let meta = dir.path().join("agg_snapshot.meta.json");
    let old_meta = std::fs::read(&meta).expect("sidecar");
    let old_csv = std::fs::read(&csv).expect("csv");
    verify_pair(&csv).expect("fresh pair matches");

    // A newer CSV beside the older sidecar: what a reader sees between the two renames.
    write_case(dir.path(), &partial_snapshot());
    std::fs::write(&meta, &old_meta).expect("put old sidecar back");
    let new_csv = std::fs::read(&csv).expect("csv");
    let err = verify_pair(&csv).expect_err("mismatch detected");
    assert_eq!(
        err,
        format!(
            "{} does not match {}: its SHA-256 is {}, the sidecar records {} (a write was in flight or was interrupted; read again)",
            csv.display(),
            meta.display(),
            sha256_hex(&new_csv),
            sha256_hex(&old_csv)
        )
    );

    // A CSV cut short (what a non-atomic writer could leave) is caught too.
    std::fs::write(&csv, &old_csv[..old_csv.len() - 5]).expect("truncate");
    assert!(verify_pair(&csv).is_err());
    std::fs::write(&csv, &old_csv).expect("restore");
    verify_pair(&csv).expect("matching again");
}

#[test]
fn verify_pair_names_a_missing_sidecar() {
    let dir = tempfile::tempdir().expect("temp dir");
    let csv = dir.path().join("agg_snapshot.csv");
    std::fs::write(&csv, "price,buy_qty,sell_qty\n").expect("csv");
    let err = verify_pair(&csv).expect_err("no sidecar");
    assert_eq!(
        err,
        format!(
            "cannot read {}: no such file or directory (os error 2)",
            dir.path().join("agg_snapshot.meta.json").display()
        )
    );
}

#[test]
fn csv_rounding_half_away_from_zero_and_no_negative_zero() {
    let mut snap = full_snapshot("10");
    snap.bins.truncate(3);
    snap.bins[0].buy_qty = 0.00005;
    snap.bins[0].sell_qty = -0.00004;
    snap.bins[1].buy_qty = -1e-12;
    snap.bins[1].sell_qty = 0.00015;
    snap.bins[2].buy_qty = -0.0;
    snap.bins[2].sell_qty = 2.00004999;
    let prices: Vec<String> = snap.bins.iter().map(|b| b.price.to_string()).collect();
    assert_eq!(
        render_csv(&snap, 4).expect("finite"),
        format!(
            "price,buy_qty,sell_qty\n{},0.0001,0.0000\n{},0.0000,0.0002\n{},0.0000,2.0000\n",
            prices[0], prices[1], prices[2]
        )
    );
    snap.bins[0].buy_qty = f64::NAN;
    assert_eq!(
        render_csv(&snap, 4).expect_err("NaN refused").to_string(),
        format!("bin {}: buy_qty quantity is not a finite number", prices[0])
    );
}
