//! Snapshot budget: four books holding 60,000 levels in total, at any bin size, ≤ 1 ms.
//!
//! Run: `cargo bench --bench aggregate`

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use depthagg::aggregate::{AggConfig, Window, aggregate};
use depthagg::bins::BinSize;
use depthagg::decimal::Dec;
use depthagg::engine::VenueState;
use depthagg::types::Venue;
use depthagg::venue::{FeedState, Protocol};

/// A book of `per_side` levels per side around 90,000 with the venue's tick (cents), quantities
/// varying deterministically.
fn state(venue: Venue, per_side: usize, tick_cents: i64) -> VenueState {
    let mut st = VenueState::new(
        Protocol::default_for(venue),
        venue.default_symbol(),
        "bench",
        0,
    );
    st.state = FeedState::Live;
    let mid = 9_000_000i64; // cents
    let cents = |c: i64| Dec::from_raw(c as i128 * 10_000_000_000_000_000);
    let qty = |i: usize| Dec::from_raw(((i * 7919) % 100_000 + 1) as i128 * 10_000_000_000_000);
    let bids = (0..per_side).map(|i| (cents(mid - tick_cents * (i as i64 + 1)), qty(i)));
    let asks = (0..per_side).map(|i| (cents(mid + tick_cents * (i as i64 + 1)), qty(i + 1)));
    st.book.replace(bids, asks);
    st
}

fn bench(c: &mut Criterion) {
    // 60,000 levels: binance 2×5000 (tick $0.01), coinbase 2×17,000 ($0.01), kraken 2×1000 ($0.10),
    // bitfinex 2×250 ($1), plus kraken/bitfinex spread out to make the total 60,000.
    let states = [
        state(Venue::Binance, 5_000, 1),
        state(Venue::Coinbase, 22_750, 1),
        state(Venue::Kraken, 1_000, 10),
        state(Venue::Bitfinex, 1_250, 100),
    ];
    let total: usize = states.iter().map(|s| s.levels().0 + s.levels().1).sum();
    assert_eq!(total, 60_000);
    let refs: Vec<&VenueState> = states.iter().collect();
    let mut group = c.benchmark_group("snapshot_60k_levels");
    for (size, window) in [
        ("1", Window::All),
        ("10", Window::All),
        ("100", Window::All),
        ("0.5", Window::All),
        ("10", Window::DEFAULT),
    ] {
        let cfg = AggConfig {
            bin_size: BinSize::parse(size).expect("positive size"),
            weights: [0.5, 0.2, 0.15, 0.15],
            enabled: [true; 4],
            window,
            renormalize: false,
        };
        group.bench_with_input(
            BenchmarkId::new(format!("bin_{size}"), window.to_string()),
            &cfg,
            |b, cfg| b.iter(|| aggregate(&refs, cfg, 0)),
        );
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
