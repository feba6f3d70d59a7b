//! Whole-screen snapshots of the dashboard at several terminal sizes, from fixed books and a fixed
//! clock. The `.snap` files in `tests/snapshots/` are golden files: review every change by eye.

use std::path::PathBuf;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use depthagg::aggregate::{AggConfig, Window, aggregate};
use depthagg::bins::BinSize;
use depthagg::control::{Controls, Mode, WriteStatus};
use depthagg::decimal::Dec;
use depthagg::engine::{VenueState, classify_http_failure};
use depthagg::tui::app::App;
use depthagg::tui::render::{FrameInfo, render};
use depthagg::types::Venue;
use depthagg::venue::{FeedState, Millis, Protocol};
use ratatui::Terminal;
use ratatui::backend::TestBackend;

/// 2025-01-02 03:04:05 UTC.
const NOW: Millis = 1_735_787_045_000;

fn d(s: &str) -> Dec {
    Dec::parse(s).expect("valid decimal")
}

/// `n` levels from `start` stepping by `step` (down for bids, up for asks), with quantities from
/// 0.2 to 2.4 in a fixed pattern.
fn ladder(start: &str, step: &str, n: i64, down: bool, seed: i64) -> Vec<(Dec, Dec)> {
    let (start, step) = (d(start), d(step));
    (0..n)
        .map(|i| {
            let offset = Dec::from_raw(step.raw() * i as i128);
            let price = if down {
                start.saturating_sub(offset)
            } else {
                start.saturating_add(offset)
            };
            let q = (i * 37 + seed * 11) % 23 + 2;
            (price, d(&format!("{}.{}", q / 10, q % 10)))
        })
        .collect()
}

/// A live venue: books of different depth so the shallow ones end inside the window.
fn live(venue: Venue) -> VenueState {
    let (bid, ask, step, n, seed) = match venue {
        Venue::Binance => ("99999.5", "100000.5", "2.5", 60, 1),
        Venue::Coinbase => ("99998", "100002", "5", 30, 2),
        Venue::Kraken => ("99997", "100003", "10", 7, 3),
        Venue::Bitfinex => ("99996", "100004", "7", 20, 4),
    };
    let mut st = VenueState::new(
        Protocol::default_for(venue),
        venue.default_symbol(),
        "test",
        NOW - 60_000,
    );
    st.state = FeedState::Live;
    st.reason = "in sync".into();
    st.book.replace(
        ladder(bid, step, n, true, seed),
        ladder(ask, step, n, false, seed + 5),
    );
    st.last_message = Some(NOW - 40);
    st.last_update = Some(NOW - 120 - venue.index() as i64 * 100);
    st.latency_ms = Some(30 + venue.index() as i64 * 15);
    st.counters.messages = 1200 + venue.index() as u64;
    st.counters.msgs_per_sec = [10.0, 143.2, 25.5, 8.25][venue.index()];
    st
}

fn config() -> AggConfig {
    AggConfig {
        bin_size: BinSize::parse("10").expect("positive size"),
        weights: Venue::ALL.map(|v| v.default_weight()),
        enabled: [true; 4],
        window: Window::DEFAULT,
        renormalize: false,
    }
}

fn written() -> WriteStatus {
    WriteStatus {
        at: NOW - 3_000,
        path: PathBuf::from("agg_snapshot.csv"),
        rows: 31,
        venues: Venue::ALL.to_vec(),
        error: None,
    }
}

fn info(mode: Mode, last_write: Option<WriteStatus>, last_error: Option<String>) -> FrameInfo {
    FrameInfo {
        now_ms: NOW,
        utc_offset: None,
        mode,
        last_write,
        last_error,
    }
}

fn healthy_app() -> App {
    let states: Vec<VenueState> = Venue::ALL.into_iter().map(live).collect();
    let refs: Vec<&VenueState> = states.iter().collect();
    let mut app = App::new();
    app.offer_snapshot(aggregate(&refs, &config(), NOW));
    app
}

/// Binance blocked (HTTP 451), Kraken stale, Coinbase with counters after a resync.
fn degraded_app() -> App {
    let mut binance = live(Venue::Binance);
    let (state, reason, _) = classify_http_failure(Venue::Binance, Some(451), "");
    binance.state = state;
    binance.reason = reason;
    binance.book.clear();
    binance.last_update = None;
    binance.latency_ms = None;
    binance.counters.msgs_per_sec = 0.0;
    let mut kraken = live(Venue::Kraken);
    kraken.state = FeedState::Stale;
    kraken.reason = "no data for 3.2 s".into();
    kraken.last_update = Some(NOW - 3_200);
    kraken.counters.msgs_per_sec = 0.0;
    let mut coinbase = live(Venue::Coinbase);
    coinbase.counters.resyncs = 2;
    coinbase.counters.gaps = 1;
    coinbase.counters.checksums_failed = 0;
    let bitfinex = live(Venue::Bitfinex);
    let states = [&binance, &coinbase, &kraken, &bitfinex];
    let mut app = App::new();
    app.offer_snapshot(aggregate(&states, &config(), NOW));
    app
}

fn draw(app: &App, info: &FrameInfo, width: u16, height: u16) -> String {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).expect("test terminal");
    terminal
        .draw(|frame| render(frame, app, info))
        .expect("draw");
    terminal.backend().to_string()
}

fn press(app: &mut App, controls: &Controls, c: char) {
    app.on_key(
        KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE),
        controls,
    );
}

fn controls() -> std::sync::Arc<Controls> {
    Controls::new(config(), Mode::Live)
}

#[test]
fn healthy_demo_80x24() {
    let info = info(Mode::Demo, Some(written()), None);
    insta::assert_snapshot!(draw(&healthy_app(), &info, 80, 24));
}

#[test]
fn healthy_demo_120x40() {
    let info = info(Mode::Demo, Some(written()), None);
    insta::assert_snapshot!(draw(&healthy_app(), &info, 120, 40));
}

#[test]
fn healthy_demo_200x60() {
    let info = info(Mode::Demo, Some(written()), None);
    insta::assert_snapshot!(draw(&healthy_app(), &info, 200, 60));
}

fn degraded_info() -> FrameInfo {
    let mut failed = written();
    failed.error = Some("permission denied (os error 13)".into());
    failed.rows = 0;
    info(
        Mode::Live,
        Some(failed),
        Some("binance: HTTP 451, restricted location".into()),
    )
}

#[test]
fn stale_and_blocked_80x24() {
    insta::assert_snapshot!(draw(&degraded_app(), &degraded_info(), 80, 24));
}

#[test]
fn stale_and_blocked_120x40() {
    insta::assert_snapshot!(draw(&degraded_app(), &degraded_info(), 120, 40));
}

#[test]
fn stale_and_blocked_200x60() {
    insta::assert_snapshot!(draw(&degraded_app(), &degraded_info(), 200, 60));
}

#[test]
fn cumulative_120x40() {
    let controls = controls();
    let mut app = healthy_app();
    press(&mut app, &controls, 'm');
    let info = info(Mode::Live, Some(written()), None);
    insta::assert_snapshot!(draw(&app, &info, 120, 40));
}

#[test]
fn cumulative_log_frozen_replay_200x60() {
    let controls = controls();
    let mut app = healthy_app();
    press(&mut app, &controls, 'm');
    press(&mut app, &controls, 'l');
    press(&mut app, &controls, 'p');
    let info = info(
        Mode::Replay(PathBuf::from("/data/captures/2025-01-02.capture.jsonl")),
        None,
        None,
    );
    insta::assert_snapshot!(draw(&app, &info, 200, 60));
}

#[test]
fn venue_switched_off_80x24() {
    // Key 2 switches Coinbase off; the new snapshot leaves it out and the panel says so.
    let controls = controls();
    let mut app = App::new();
    press(&mut app, &controls, '2');
    let states: Vec<VenueState> = Venue::ALL.into_iter().map(live).collect();
    let refs: Vec<&VenueState> = states.iter().collect();
    app.offer_snapshot(aggregate(&refs, &controls.agg_config(), NOW));
    let info = info(Mode::Live, Some(written()), None);
    insta::assert_snapshot!(draw(&app, &info, 80, 24));
}

#[test]
fn help_overlay_80x24() {
    let controls = controls();
    let mut app = healthy_app();
    press(&mut app, &controls, '?');
    let info = info(Mode::Demo, Some(written()), None);
    insta::assert_snapshot!(draw(&app, &info, 80, 24));
}

#[test]
fn help_overlay_120x40() {
    let controls = controls();
    let mut app = healthy_app();
    press(&mut app, &controls, '?');
    let info = info(Mode::Demo, Some(written()), None);
    insta::assert_snapshot!(draw(&app, &info, 120, 40));
}

#[test]
fn minimum_size_60x16() {
    let info = info(
        Mode::Demo,
        Some(written()),
        Some("kraken: reconnecting".into()),
    );
    insta::assert_snapshot!(draw(&healthy_app(), &info, 60, 16));
}

#[test]
fn too_small_59x16() {
    let info = info(Mode::Demo, None, None);
    insta::assert_snapshot!(draw(&healthy_app(), &info, 59, 16));
}

#[test]
fn too_small_50x12() {
    let info = info(Mode::Demo, None, None);
    insta::assert_snapshot!(draw(&healthy_app(), &info, 50, 12));
}

#[test]
fn waiting_for_first_snapshot_80x24() {
    let info = info(Mode::Live, None, None);
    insta::assert_snapshot!(draw(&App::new(), &info, 80, 24));
}
