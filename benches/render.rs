//! One full dashboard frame at 200×60 from a four-venue snapshot (±2 % window, $10 bins, books of
//! 3,000 levels a side). Budget: ≤ 1 ms per frame.

use criterion::{Criterion, black_box, criterion_group, criterion_main};
use depthagg::aggregate::{AggConfig, Window, aggregate};
use depthagg::bins::BinSize;
use depthagg::control::{Mode, WriteStatus};
use depthagg::decimal::Dec;
use depthagg::engine::VenueState;
use depthagg::tui::app::{App, BarScale, DepthMode};
use depthagg::tui::render::{FrameInfo, render};
use depthagg::types::Venue;
use depthagg::venue::{FeedState, Protocol};
use ratatui::Terminal;
use ratatui::backend::TestBackend;

const NOW: i64 = 1_735_787_045_000;
const LEVELS: i64 = 3_000;

/// A live book of `LEVELS` levels a side around 100,000 USD, with a venue-specific tick so the
/// levels of different venues fall on different prices.
fn venue_state(venue: Venue) -> VenueState {
    let tick_cents = [50, 61, 70, 83][venue.index()];
    let mut st = VenueState::new(
        Protocol::default_for(venue),
        venue.default_symbol(),
        "bench",
        NOW,
    );
    st.state = FeedState::Live;
    let cents = |c: i64| Dec::from_raw(c as i128 * 10_000_000_000_000_000);
    let qty = |i: i64| Dec::from_raw(((i * 7919) % 5000 + 10) as i128 * 1_000_000_000_000_000);
    st.book.replace(
        (0..LEVELS).map(|i| (cents(9_999_990 - i * tick_cents), qty(i))),
        (0..LEVELS).map(|i| (cents(10_000_010 + i * tick_cents), qty(i + 1))),
    );
    st.last_update = Some(NOW - 50);
    st.counters.msgs_per_sec = 42.0;
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

fn info() -> FrameInfo {
    FrameInfo {
        now_ms: NOW,
        utc_offset: None,
        mode: Mode::Demo,
        last_write: Some(WriteStatus {
            at: NOW - 2_000,
            path: "agg_snapshot.csv".into(),
            rows: 400,
            venues: Venue::ALL.to_vec(),
            error: None,
        }),
        last_error: None,
    }
}

fn bench_render(c: &mut Criterion) {
    let states: Vec<VenueState> = Venue::ALL.into_iter().map(venue_state).collect();
    let refs: Vec<&VenueState> = states.iter().collect();
    let cfg = config();
    let snapshot = aggregate(&refs, &cfg, NOW);
    assert!(snapshot.bins.len() > 300, "{} bins", snapshot.bins.len());
    let info = info();
    let mut terminal = Terminal::new(TestBackend::new(200, 60)).expect("test terminal");

    let mut app = App::new();
    app.offer_snapshot(snapshot.clone());
    c.bench_function("frame_200x60_per_bin_linear", |b| {
        b.iter(|| {
            terminal
                .draw(|f| render(f, black_box(&app), &info))
                .expect("draw");
        })
    });

    // The same frame into a plain buffer: the render functions alone, without the terminal's
    // diff and flush.
    let area = ratatui::layout::Rect::new(0, 0, 200, 60);
    let mut buffer = ratatui::buffer::Buffer::empty(area);
    c.bench_function("render_only_200x60_per_bin_linear", |b| {
        b.iter(|| {
            buffer.reset();
            depthagg::tui::render::render_to_buffer(&mut buffer, area, black_box(&app), &info);
        })
    });

    let mut cumulative = App::new();
    cumulative.offer_snapshot(snapshot);
    cumulative.depth_mode = DepthMode::Cumulative;
    cumulative.bar_scale = BarScale::Log;
    c.bench_function("frame_200x60_cumulative_log", |b| {
        b.iter(|| {
            terminal
                .draw(|f| render(f, black_box(&cumulative), &info))
                .expect("draw");
        })
    });

    c.bench_function("snapshot_and_frame_200x60", |b| {
        b.iter(|| {
            let mut app = App::new();
            app.offer_snapshot(aggregate(&refs, &cfg, NOW));
            terminal.draw(|f| render(f, &app, &info)).expect("draw");
        })
    });
}

criterion_group!(benches, bench_render);
criterion_main!(benches);
