//! The headless modes of the binary on the embedded simulator: `--once` (all venues, the
//! workflow's exact command line, a blocked venue, too few venues), the interval loop with a clean
//! SIGTERM stop, and replay with `--out`.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

fn depthagg(dir: &Path, args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_depthagg"));
    cmd.args(args).current_dir(dir);
    for (k, _) in std::env::vars() {
        if k.starts_with("DEPTHAGG_") {
            cmd.env_remove(k);
        }
    }
    cmd.output().expect("binary runs")
}

fn sidecar(dir: &Path) -> Value {
    let text =
        std::fs::read_to_string(dir.join("agg_snapshot.meta.json")).expect("sidecar written");
    serde_json::from_str(&text).expect("sidecar is JSON")
}

fn included(meta: &Value) -> Vec<String> {
    meta["venues_included"]
        .as_array()
        .expect("venues_included")
        .iter()
        .map(|v| v.as_str().expect("name").to_string())
        .collect()
}

fn check_csv(dir: &Path, meta: &Value) {
    let csv = std::fs::read_to_string(dir.join("agg_snapshot.csv")).expect("csv written");
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("price,buy_qty,sell_qty"));
    let prices: Vec<f64> = lines
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            assert_eq!(f.len(), 3, "{l}");
            f[0].parse().expect("price")
        })
        .collect();
    assert!(!prices.is_empty());
    assert!(prices.windows(2).all(|w| w[0] < w[1]), "ascending");
    assert_eq!(meta["rows"].as_u64(), Some(prices.len() as u64));
    depthagg::output::verify_pair(&dir.join("agg_snapshot.csv")).expect("pair matches");
}

#[test]
fn demo_once_writes_all_four_venues() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = depthagg(dir.path(), &["--demo", "--headless", "--once"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let meta = sidecar(dir.path());
    assert_eq!(
        included(&meta),
        ["binance", "coinbase", "kraken", "bitfinex"]
    );
    for v in meta["venues"].as_array().expect("venues") {
        assert_eq!(v["source"], "demo");
        assert_eq!(v["state"], "live");
    }
    check_csv(dir.path(), &meta);
    for venue in ["binance", "coinbase", "kraken", "bitfinex"] {
        assert!(
            stderr
                .lines()
                .any(|l| l.starts_with(venue) && l.contains(" live ") && l.contains("included")),
            "{stderr}"
        );
    }
    assert!(stderr.contains("wrote agg_snapshot.csv ("), "{stderr}");
}

/// The depthagg command line of `.github/workflows/snapshot-once.yml`, exactly, plus `--demo`.
#[test]
fn the_workflow_command_line_works_on_the_demo() {
    let yml = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/.github/workflows/snapshot-once.yml"
    ))
    .expect("workflow");
    let line = yml
        .lines()
        .find_map(|l| l.trim().strip_prefix("run: ./target/release/depthagg "))
        .expect("the workflow runs ./target/release/depthagg");
    let mut args: Vec<&str> = line.split_whitespace().collect();
    assert!(
        args.contains(&"--once") && args.contains(&"--headless"),
        "{line}"
    );
    args.push("--demo");
    let dir = tempfile::tempdir().expect("temp dir");
    let out = depthagg(dir.path(), &args);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta = sidecar(dir.path());
    assert_eq!(included(&meta).len(), 4);
    check_csv(dir.path(), &meta);
}

#[test]
fn a_blocked_venue_gives_a_partial_snapshot_that_names_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = depthagg(
        dir.path(),
        &[
            "--demo",
            "--headless",
            "--once",
            "--demo-faults",
            "binance=http451",
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let meta = sidecar(dir.path());
    assert_eq!(included(&meta), ["coinbase", "kraken", "bitfinex"]);
    let binance = &meta["venues"][0];
    assert_eq!(binance["venue"], "binance");
    assert_eq!(binance["included"], false);
    assert_eq!(binance["state"], "blocked");
    let why = binance["excluded_because"].as_str().expect("reason");
    assert!(
        why.starts_with("blocked: HTTP 451, restricted location"),
        "{why}"
    );
    check_csv(dir.path(), &meta);
    assert!(
        stderr
            .lines()
            .any(|l| l.starts_with("binance") && l.contains("blocked") && l.contains("excluded")),
        "{stderr}"
    );
}

#[test]
fn too_few_venues_exits_3_and_leaves_the_files_untouched() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("agg_snapshot.csv"), "previous csv\n").expect("write");
    std::fs::write(dir.path().join("agg_snapshot.meta.json"), "previous meta\n").expect("write");
    let out = depthagg(
        dir.path(),
        &[
            "--demo",
            "--headless",
            "--once",
            "--min-venues",
            "4",
            "--sync-timeout",
            "5",
            "--demo-faults",
            "binance=http451",
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("error: only 3 venue(s) live after 5 s, fewer than --min-venues 4; agg_snapshot.csv and its sidecar were left untouched"), "{stderr}");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("agg_snapshot.csv")).expect("csv"),
        "previous csv\n"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("agg_snapshot.meta.json")).expect("meta"),
        "previous meta\n"
    );
}

#[cfg(unix)]
#[test]
fn interval_loop_writes_and_sigterm_stops_cleanly() {
    let dir = tempfile::tempdir().expect("temp dir");
    let child = Command::new(env!("CARGO_BIN_EXE_depthagg"))
        .args([
            "--demo",
            "--headless",
            "--interval",
            "1",
            "--venues",
            "kraken,bitfinex",
        ])
        .current_dir(dir.path())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("starts");
    let csv = dir.path().join("agg_snapshot.csv");
    for _ in 0..300 {
        if csv.exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(csv.exists(), "a snapshot within 15 s");
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let out = child.wait_with_output().expect("exits");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("wrote agg_snapshot.csv: "), "{stderr}");
    let meta = sidecar(dir.path());
    assert_eq!(included(&meta), ["kraken", "bitfinex"]);
    check_csv(dir.path(), &meta);
}

#[test]
fn replay_with_out_writes_a_snapshot_of_the_recording() {
    let Some(fixture) = common::fixture("kraken-v1.capture.jsonl") else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let out = depthagg(
        dir.path(),
        &[
            "replay",
            fixture.to_str().expect("utf8"),
            "--headless",
            "--out",
            "agg_snapshot.csv",
            "--bin-size",
            "50",
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("kraken") && l.contains("XBT/CHF") && l.contains("live")),
        "{stdout}"
    );
    let meta = sidecar(dir.path());
    assert_eq!(included(&meta), ["kraken"]);
    assert_eq!(meta["bin_size"], "50");
    let source = meta["venues"][2]["source"].as_str().expect("source");
    assert!(
        source.starts_with("replay ") && source.ends_with("kraken-v1.capture.jsonl"),
        "{source}"
    );
    check_csv(dir.path(), &meta);
}

#[test]
fn record_then_replay_gives_the_recorded_books() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = depthagg(
        dir.path(),
        &[
            "--demo",
            "--headless",
            "--once",
            "--record",
            "session.jsonl",
            "--venues",
            "kraken,bitfinex",
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(dir.path().join("session.jsonl")).expect("capture written");
    let header: Value = serde_json::from_str(text.lines().next().expect("header")).expect("json");
    assert_eq!(header["t"], "header");
    assert_eq!(header["venue"], "mixed");
    assert_eq!(header["protocols"]["kraken"], "kraken-v2");
    assert_eq!(header["protocols"]["bitfinex"], "bitfinex-v2");
    for kind in ["connect", "send", "recv"] {
        assert!(
            text.contains(&format!("{{\"t\":\"{kind}\"")),
            "{kind} recorded"
        );
    }
    std::fs::create_dir(dir.path().join("books")).expect("mkdir");
    let out = depthagg(
        dir.path(),
        &[
            "replay",
            "session.jsonl",
            "--headless",
            "--dump-books",
            "books",
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for venue in ["kraken", "bitfinex"] {
        assert!(
            stdout
                .lines()
                .any(|l| l.starts_with(venue) && l.contains(" live ")),
            "{stdout}"
        );
        let book = std::fs::read_to_string(dir.path().join(format!("books/{venue}.book.csv")))
            .expect("book dumped");
        let mut lines = book.lines();
        assert_eq!(lines.next(), Some("side,price,qty"));
        let rows: Vec<(String, f64)> = lines
            .map(|l| {
                let f: Vec<&str> = l.split(',').collect();
                (f[0].to_string(), f[1].parse().expect("price"))
            })
            .collect();
        let bids: Vec<f64> = rows.iter().filter(|r| r.0 == "bid").map(|r| r.1).collect();
        let asks: Vec<f64> = rows.iter().filter(|r| r.0 == "ask").map(|r| r.1).collect();
        assert!(!bids.is_empty() && !asks.is_empty());
        assert!(bids.windows(2).all(|w| w[0] > w[1]), "bids high to low");
        assert!(asks.windows(2).all(|w| w[0] < w[1]), "asks low to high");
        assert!(
            rows.iter().position(|r| r.0 == "ask") > rows.iter().rposition(|r| r.0 == "bid"),
            "bids first"
        );
        assert!(bids[0] < asks[0]);
    }
}

#[test]
fn replay_works_on_every_fixture() {
    for (file, symbol) in [
        ("binance-spot.capture.jsonl", "binance=LRCBTC"),
        ("coinbase-advanced.capture.jsonl", "coinbase=BTC-USD"),
        ("coinbase-exchange.capture.jsonl", "coinbase=SKL-USD"),
        ("kraken-v1.capture.jsonl", "kraken=XBT/CHF"),
        ("bitfinex-v2.capture.jsonl", "bitfinex=tTESTBTC:TESTUSD"),
    ] {
        let Some(path) = common::fixture(file) else {
            continue;
        };
        let dir = tempfile::tempdir().expect("temp dir");
        let out = depthagg(
            dir.path(),
            &[
                "replay",
                path.to_str().expect("utf8"),
                "--headless",
                "--symbol",
                symbol,
            ],
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{file}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let sym = symbol.split_once('=').expect("pair").1;
        let row = stdout
            .lines()
            .find(|l| l.contains(sym))
            .unwrap_or_else(|| panic!("{file}: {stdout}"));
        let cols: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(cols[2], "live", "{file}: {row}");
        // frames, book messages, checksums ok, failed, gaps, resyncs
        assert_eq!(
            (cols[6], cols[7], cols[8]),
            ("0", "0", "0"),
            "{file}: no failure, gap or resync: {row}"
        );
    }
}

#[cfg(unix)]
#[test]
fn a_vanished_output_directory_is_reported_and_writing_resumes_when_it_returns() {
    let dir = tempfile::tempdir().expect("temp dir");
    let sub = dir.path().join("out");
    std::fs::create_dir(&sub).expect("mkdir");
    let mut child = Command::new(env!("CARGO_BIN_EXE_depthagg"))
        .args([
            "--demo",
            "--headless",
            "--interval",
            "1",
            "--venues",
            "kraken",
            "--out",
            "out/agg_snapshot.csv",
        ])
        .current_dir(dir.path())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("starts");
    let csv = sub.join("agg_snapshot.csv");
    let wait_for = |what: &str, f: &dyn Fn() -> bool| {
        for _ in 0..400 {
            if f() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!("never {what}");
    };
    wait_for("wrote a first snapshot", &|| csv.exists());
    let kept = dir.path().join("kept");
    std::fs::rename(&sub, &kept).expect("directory goes away");
    std::thread::sleep(std::time::Duration::from_millis(2500));
    assert!(!sub.exists(), "depthagg never creates the directory");
    assert_eq!(child.try_wait().expect("status"), None, "still running");
    std::fs::create_dir(&sub).expect("directory comes back");
    wait_for("wrote again", &|| csv.exists());
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    let out = child.wait_with_output().expect("exits");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains(
            "write failed: cannot write out/agg_snapshot.csv: directory out does not exist"
        ),
        "{stderr}"
    );
    depthagg::output::verify_pair(&csv).expect("a matching pair once the directory is back");
}
