//! One consistent, weighted, binned picture of all venue books at one moment.
//!
//! Books stay raw per venue; the bin size, the weights and the window are applied here, when a
//! snapshot is taken, so changing any of them is instant and exact.
//!
//! Rules (README "CSV semantics" repeats them):
//! - only **live** books of **enabled** venues with a **weight above zero** are included;
//! - consolidated best bid = highest best bid of the included books, best ask = lowest best ask,
//!   mid = their exact midpoint;
//! - the window keeps the levels whose price lies within ±`window` % of that mid (inclusive), or
//!   every level with [`Window::All`];
//! - each kept level goes to its bin ([`crate::bins`]); per venue and side the exact quantities of a
//!   bin are summed, then `buy_qty = Σ weight × bid sum` and `sell_qty = Σ weight × ask sum`;
//! - bins where both quantities are zero are left out; bins ascend by price.

use crate::bins::BinSize;
use crate::book::{Book, Coverage};
use crate::decimal::Dec;
use crate::engine::{Counters, SharedVenue, VenueState};
use crate::types::{Side, Venue};
use crate::venue::{FeedState, Millis, Protocol};

/// How far from the mid a snapshot reaches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Window {
    /// Levels within ± this percentage of the consolidated mid. The value is in units of
    /// 1/10,000 of a percent (2 % = 20,000), so the bound is exact.
    Percent(u32),
    /// Every level the venues hold.
    All,
}

impl Window {
    /// The default window: ±2 %.
    pub const DEFAULT: Window = Window::Percent(20_000);

    /// Parse `2`, `0.5`, `2%` or `all`. Percent must be above 0 and at most 100, with at most four
    /// decimals.
    pub fn parse(text: &str) -> Option<Window> {
        let t = text.trim();
        if t.eq_ignore_ascii_case("all") {
            return Some(Window::All);
        }
        let t = t.strip_suffix('%').unwrap_or(t);
        let d = Dec::parse(t).ok()?;
        if d.raw() <= 0 || d > Dec::from_int(100) || d.scale() > 4 {
            return None;
        }
        Some(Window::Percent((d.raw() / 100_000_000_000_000) as u32))
    }

    /// The price range `[lo, hi]` of the window around `mid`.
    pub fn range(self, mid: Dec) -> (Dec, Dec) {
        match self {
            Window::All => (Dec::from_raw(i128::MIN), Dec::from_raw(i128::MAX)),
            Window::Percent(units) => {
                // delta = mid × units / 1,000,000; mid.raw ≤ 1.7e38 would overflow only for prices
                // beyond 10¹⁴ USD.
                let delta = mid.raw().saturating_mul(units as i128) / 1_000_000;
                (
                    Dec::from_raw(mid.raw() - delta),
                    Dec::from_raw(mid.raw() + delta),
                )
            }
        }
    }
}

impl std::fmt::Display for Window {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Window::All => f.pad("all"),
            Window::Percent(units) => {
                let d = Dec::from_raw(*units as i128 * 100_000_000_000_000);
                f.pad(&format!("±{d}%"))
            }
        }
    }
}

/// What a snapshot is taken with.
#[derive(Clone, Debug, PartialEq)]
pub struct AggConfig {
    /// Bin size.
    pub bin_size: BinSize,
    /// Weight per venue, indexed by [`Venue::index`].
    pub weights: [f64; 4],
    /// Venues the user has switched on (flag `--venues`, keys `1`–`4`), by [`Venue::index`].
    pub enabled: [bool; 4],
    /// Window around the mid.
    pub window: Window,
    /// Scale the weights of the included venues so they sum to 1 (off: weights as given).
    pub renormalize: bool,
}

/// One price bin of the aggregate.
#[derive(Clone, Debug, PartialEq)]
pub struct Bin {
    /// Bin price (`k × bin size`).
    pub price: Dec,
    /// Weighted bid quantity.
    pub buy_qty: f64,
    /// Weighted ask quantity.
    pub sell_qty: f64,
    /// Weighted bid quantity per venue, by [`Venue::index`].
    pub buy_by_venue: [f64; 4],
    /// Weighted ask quantity per venue, by [`Venue::index`].
    pub sell_by_venue: [f64; 4],
    /// Which included venues' books reach this bin (its price lies within the covered range).
    pub covered: [bool; 4],
}

/// One venue's part of a snapshot.
#[derive(Clone, Debug, PartialEq)]
pub struct VenueSummary {
    /// Venue.
    pub venue: Venue,
    /// Protocol.
    pub protocol: Protocol,
    /// Exchange symbol.
    pub symbol: String,
    /// Data source (endpoint URL, `demo`, `replay FILE`).
    pub source: String,
    /// Feed state.
    pub state: FeedState,
    /// Reason for the state.
    pub reason: String,
    /// Whether the venue's book is in this snapshot.
    pub included: bool,
    /// Why it is not included, when it is not.
    pub excluded_because: Option<String>,
    /// The weight given by the user.
    pub weight: f64,
    /// The weight applied (differs with renormalisation; 0 when excluded).
    pub applied_weight: f64,
    /// Levels per side `(bids, asks)`.
    pub levels: (usize, usize),
    /// Covered price range.
    pub coverage: Coverage,
    /// Best bid and ask.
    pub best_bid: Option<Dec>,
    /// Best ask.
    pub best_ask: Option<Dec>,
    /// Milliseconds since the book last changed.
    pub last_update_age_ms: Option<i64>,
    /// Milliseconds since the last frame of any kind.
    pub last_message_age_ms: Option<i64>,
    /// Exchange-to-local latency of the last stamped message.
    pub latency_ms: Option<i64>,
    /// Counters.
    pub counters: Counters,
}

/// A consistent aggregate of all venue books at one moment.
#[derive(Clone, Debug, PartialEq)]
pub struct Snapshot {
    /// When it was taken (Unix ms).
    pub taken_at: Millis,
    /// Bin size used.
    pub bin_size: BinSize,
    /// Window used.
    pub window: Window,
    /// Whether the included venues' weights were scaled to sum to 1.
    pub renormalize: bool,
    /// Price range of the window (`None` without a mid).
    pub window_range: Option<(Dec, Dec)>,
    /// Consolidated best bid.
    pub best_bid: Option<Dec>,
    /// Consolidated best ask.
    pub best_ask: Option<Dec>,
    /// Consolidated mid.
    pub mid: Option<Dec>,
    /// Bins, ascending by price, none with both quantities zero.
    pub bins: Vec<Bin>,
    /// All four venues, in [`Venue::ALL`] order.
    pub venues: Vec<VenueSummary>,
}

impl Snapshot {
    /// Venues whose books are in the snapshot.
    pub fn included(&self) -> impl Iterator<Item = Venue> + '_ {
        self.venues.iter().filter(|v| v.included).map(|v| v.venue)
    }

    /// Total weighted bid and ask quantity over all bins.
    pub fn totals(&self) -> (f64, f64) {
        self.bins.iter().fold((0.0, 0.0), |(b, a), bin| {
            (b + bin.buy_qty, a + bin.sell_qty)
        })
    }
}

/// Lock every venue (in a fixed order) and aggregate them at one moment.
pub fn take_snapshot(venues: &[SharedVenue], cfg: &AggConfig, now: Millis) -> Snapshot {
    let guards: Vec<_> = venues.iter().map(|v| v.lock()).collect();
    let states: Vec<&VenueState> = guards.iter().map(|g| &**g).collect();
    aggregate(&states, cfg, now)
}

/// Aggregate venue states (any subset of the four, each at most once).
pub fn aggregate(states: &[&VenueState], cfg: &AggConfig, now: Millis) -> Snapshot {
    let mut summaries: Vec<VenueSummary> =
        Venue::ALL.iter().map(|&v| absent_summary(v, cfg)).collect();
    let mut books: [Option<&Book>; 4] = [None; 4];
    for st in states {
        let i = st.venue.index();
        let weight = cfg.weights[i];
        let excluded_because = if !cfg.enabled[i] {
            Some("switched off".to_string())
        } else if weight <= 0.0 {
            Some("weight 0".to_string())
        } else if !st.is_live() {
            Some(format!("{}: {}", st.state, st.reason))
        } else if st.book.is_empty() {
            Some("book empty".to_string())
        } else {
            None
        };
        let included = excluded_because.is_none();
        if included {
            books[i] = Some(&st.book);
        }
        summaries[i] = VenueSummary {
            venue: st.venue,
            protocol: st.protocol,
            symbol: st.symbol.clone(),
            source: st.source.clone(),
            state: st.state,
            reason: st.reason.clone(),
            included,
            excluded_because,
            weight,
            applied_weight: 0.0,
            levels: st.levels(),
            coverage: st.coverage(),
            best_bid: st.book.best_bid().map(|l| l.price),
            best_ask: st.book.best_ask().map(|l| l.price),
            last_update_age_ms: st.last_update.map(|t| now - t),
            last_message_age_ms: st.last_message.map(|t| now - t),
            latency_ms: st.latency_ms,
            counters: st.counters.clone(),
        };
    }
    let weight_sum: f64 = summaries
        .iter()
        .filter(|s| s.included)
        .map(|s| s.weight)
        .sum();
    let mut applied = [0.0f64; 4];
    for s in summaries.iter_mut().filter(|s| s.included) {
        s.applied_weight = if cfg.renormalize && weight_sum > 0.0 {
            s.weight / weight_sum
        } else {
            s.weight
        };
        applied[s.venue.index()] = s.applied_weight;
    }

    let best_bid = books
        .iter()
        .flatten()
        .filter_map(|b| b.best_bid())
        .map(|l| l.price)
        .max();
    let best_ask = books
        .iter()
        .flatten()
        .filter_map(|b| b.best_ask())
        .map(|l| l.price)
        .min();
    let mid = match (best_bid, best_ask) {
        (Some(b), Some(a)) => Some(Dec::from_raw((b.raw() + a.raw()) / 2)),
        (Some(p), None) | (None, Some(p)) => Some(p),
        (None, None) => None,
    };
    let window_range = mid.map(|m| cfg.window.range(m));
    let bins = match window_range {
        Some((lo, hi)) => bin_books(&books, &applied, cfg.bin_size, lo, hi),
        None => Vec::new(),
    };
    Snapshot {
        taken_at: now,
        bin_size: cfg.bin_size,
        window: cfg.window,
        renormalize: cfg.renormalize,
        window_range,
        best_bid,
        best_ask,
        mid,
        bins,
        venues: summaries,
    }
}

fn absent_summary(venue: Venue, cfg: &AggConfig) -> VenueSummary {
    VenueSummary {
        venue,
        protocol: Protocol::default_for(venue),
        symbol: venue.default_symbol().to_string(),
        source: String::new(),
        state: FeedState::Down,
        reason: "not running".to_string(),
        included: false,
        excluded_because: Some("not running".to_string()),
        weight: cfg.weights[venue.index()],
        applied_weight: 0.0,
        levels: (0, 0),
        coverage: Coverage {
            low: None,
            high: None,
        },
        best_bid: None,
        best_ask: None,
        last_update_age_ms: None,
        last_message_age_ms: None,
        latency_ms: None,
        counters: Counters::default(),
    }
}

/// Summed exact quantity per bin index, ascending.
type BinRuns = Vec<(i64, Dec)>;

/// One run of summed exact quantity per bin, for one venue and side, ascending by bin.
fn runs(book: &Book, side: Side, size: BinSize, lo: Dec, hi: Dec, out: &mut BinRuns) {
    out.clear();
    let b = size.get().raw();
    // Levels ascend, so the bin of the next level is almost always the current one or the next:
    // compare with the current bin's upper edge instead of dividing (i128 division is the cost
    // of a snapshot otherwise).
    let mut edge = i128::MIN; // the first price of the bin after the current one
    for level in book.side_in(side, lo, hi) {
        let p = level.price.raw();
        if p < edge {
            if let Some((_, sum)) = out.last_mut() {
                *sum = sum.saturating_add(level.qty);
            }
            continue;
        }
        let k = match out.last() {
            Some(&(k, _)) if p < edge.saturating_add(b) => k + 1,
            _ => size.index_of(level.price),
        };
        edge = size.price_of(k).raw().saturating_add(b - b / 2);
        out.push((k, level.qty));
    }
}

fn bin_books(
    books: &[Option<&Book>; 4],
    weights: &[f64; 4],
    size: BinSize,
    lo: Dec,
    hi: Dec,
) -> Vec<Bin> {
    // 8 ascending streams (venue × side), merged by bin index.
    let mut streams: Vec<(usize, Side, BinRuns)> = Vec::with_capacity(8);
    for (i, book) in books.iter().enumerate() {
        let Some(book) = book else { continue };
        for side in [Side::Bid, Side::Ask] {
            let mut v = Vec::new();
            runs(book, side, size, lo, hi, &mut v);
            if !v.is_empty() {
                streams.push((i, side, v));
            }
        }
    }
    let coverage: [Option<(i64, i64)>; 4] = std::array::from_fn(|i| {
        books[i].map(|b| {
            let c = b.coverage();
            let low = c
                .low
                .or(c.high)
                .map(|p| size.index_of(p))
                .unwrap_or(i64::MAX);
            let high = c
                .high
                .or(c.low)
                .map(|p| size.index_of(p))
                .unwrap_or(i64::MIN);
            (low, high)
        })
    });
    let mut pos = vec![0usize; streams.len()];
    let mut bins = Vec::new();
    loop {
        let mut next: Option<i64> = None;
        for (s, (_, _, v)) in streams.iter().enumerate() {
            if let Some(&(k, _)) = v.get(pos[s]) {
                next = Some(next.map_or(k, |n: i64| n.min(k)));
            }
        }
        let Some(k) = next else { break };
        let mut bin = Bin {
            price: size.price_of(k),
            buy_qty: 0.0,
            sell_qty: 0.0,
            buy_by_venue: [0.0; 4],
            sell_by_venue: [0.0; 4],
            covered: std::array::from_fn(|i| {
                coverage[i].is_some_and(|(low, high)| low <= k && k <= high)
            }),
        };
        for (s, (i, side, v)) in streams.iter().enumerate() {
            if let Some(&(kk, qty)) = v.get(pos[s]) {
                if kk == k {
                    pos[s] += 1;
                    let w = weights[*i] * qty.to_f64();
                    match side {
                        Side::Bid => bin.buy_by_venue[*i] += w,
                        Side::Ask => bin.sell_by_venue[*i] += w,
                    }
                }
            }
        }
        bin.buy_qty = bin.buy_by_venue.iter().sum();
        bin.sell_qty = bin.sell_by_venue.iter().sum();
        if bin.buy_qty != 0.0 || bin.sell_qty != 0.0 {
            bins.push(bin);
        }
    }
    bins
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Dec {
        Dec::parse(s).expect("valid decimal")
    }

    fn live(venue: Venue, bids: &[(&str, &str)], asks: &[(&str, &str)]) -> VenueState {
        let mut st = VenueState::new(
            Protocol::default_for(venue),
            venue.default_symbol(),
            "test",
            0,
        );
        st.state = FeedState::Live;
        st.book.replace(
            bids.iter().map(|(p, q)| (d(p), d(q))),
            asks.iter().map(|(p, q)| (d(p), d(q))),
        );
        st
    }

    fn cfg(size: &str) -> AggConfig {
        AggConfig {
            bin_size: BinSize::parse(size).expect("positive size"),
            weights: [0.5, 0.2, 0.15, 0.15],
            enabled: [true; 4],
            window: Window::DEFAULT,
            renormalize: false,
        }
    }

    fn rows(s: &Snapshot) -> Vec<(String, f64, f64)> {
        s.bins
            .iter()
            .map(|b| (b.price.to_string(), b.buy_qty, b.sell_qty))
            .collect()
    }

    #[test]
    fn weights_sum_per_bin_and_ties_go_up() {
        let b = live(
            Venue::Binance,
            &[("100004.99", "2"), ("99995", "1"), ("99990", "4")],
            &[("100005", "1"), ("100010", "3")],
        );
        let c = live(Venue::Coinbase, &[("100000", "10")], &[("100006", "5")]);
        let snap = aggregate(&[&b, &c], &cfg("10"), 1000);
        assert_eq!(snap.best_bid, Some(d("100004.99")));
        assert_eq!(snap.best_ask, Some(d("100005")));
        assert_eq!(snap.mid, Some(d("100004.995")));
        assert_eq!(
            rows(&snap),
            vec![
                ("99990".into(), 0.5 * 4.0, 0.0),
                ("100000".into(), 0.5 * 2.0 + 0.5 * 1.0 + 0.2 * 10.0, 0.0),
                ("100010".into(), 0.0, 0.5 * 1.0 + 0.5 * 3.0 + 0.2 * 5.0),
            ]
        );
        let bin = &snap.bins[1];
        assert_eq!(bin.buy_by_venue, [1.5, 2.0, 0.0, 0.0]);
        assert_eq!(bin.covered, [true, true, false, false]);
        assert_eq!(
            snap.included().collect::<Vec<_>>(),
            [Venue::Binance, Venue::Coinbase]
        );
    }

    #[test]
    fn non_live_switched_off_and_zero_weight_venues_are_left_out() {
        let b = live(Venue::Binance, &[("100", "1")], &[("101", "1")]);
        let mut k = live(Venue::Kraken, &[("100", "7")], &[("101", "7")]);
        k.state = FeedState::Stale;
        k.reason = "no data for 3.0 s".into();
        let c = live(Venue::Coinbase, &[("100", "3")], &[("101", "3")]);
        let f = live(Venue::Bitfinex, &[("100", "9")], &[("101", "9")]);
        let mut cf = cfg("1");
        cf.enabled[Venue::Coinbase.index()] = false;
        cf.weights[Venue::Bitfinex.index()] = 0.0;
        let snap = aggregate(&[&b, &k, &c, &f], &cf, 0);
        assert_eq!(snap.included().collect::<Vec<_>>(), [Venue::Binance]);
        assert_eq!(
            rows(&snap),
            vec![("100".into(), 0.5, 0.0), ("101".into(), 0.0, 0.5)]
        );
        let why: Vec<_> = snap
            .venues
            .iter()
            .map(|v| v.excluded_because.clone().unwrap_or_default())
            .collect();
        assert_eq!(
            why,
            ["", "switched off", "stale: no data for 3.0 s", "weight 0"]
        );
    }

    #[test]
    fn renormalised_weights_sum_to_one() {
        let b = live(Venue::Kraken, &[("100", "1")], &[("101", "1")]);
        let c = live(Venue::Bitfinex, &[("100", "1")], &[("101", "1")]);
        let mut cf = cfg("1");
        cf.renormalize = true;
        let snap = aggregate(&[&b, &c], &cf, 0);
        assert_eq!(
            rows(&snap),
            vec![("100".into(), 1.0, 0.0), ("101".into(), 0.0, 1.0)]
        );
        assert_eq!(snap.venues[Venue::Kraken.index()].applied_weight, 0.5);
    }

    #[test]
    fn window_keeps_levels_within_percent_of_mid() {
        // mid 1000; ±2 % = [980, 1020], inclusive.
        let b = live(
            Venue::Binance,
            &[("999", "1"), ("980", "1"), ("979.99", "1")],
            &[("1001", "1"), ("1020", "1"), ("1020.01", "1")],
        );
        let snap = aggregate(&[&b], &cfg("0.01"), 0);
        assert_eq!(snap.window_range, Some((d("980"), d("1020"))));
        let prices: Vec<_> = snap.bins.iter().map(|b| b.price.to_string()).collect();
        assert_eq!(prices, ["980", "999", "1001", "1020"]);
        let mut all = cfg("0.01");
        all.window = Window::All;
        assert_eq!(aggregate(&[&b], &all, 0).bins.len(), 6);
    }

    #[test]
    fn window_parsing() {
        assert_eq!(Window::parse("2"), Some(Window::Percent(20_000)));
        assert_eq!(Window::parse("0.5%"), Some(Window::Percent(5_000)));
        assert_eq!(Window::parse("ALL"), Some(Window::All));
        assert_eq!(Window::parse("100"), Some(Window::Percent(1_000_000)));
        assert_eq!(Window::parse("0"), None);
        assert_eq!(Window::parse("101"), None);
        assert_eq!(Window::parse("-1"), None);
        assert_eq!(Window::parse("0.00001"), None);
        assert_eq!(Window::Percent(20_000).to_string(), "±2%");
        assert_eq!(Window::Percent(5).to_string(), "±0.0005%");
    }

    #[test]
    fn empty_snapshot_without_live_books() {
        let snap = aggregate(&[], &cfg("10"), 0);
        assert!(snap.bins.is_empty());
        assert_eq!(snap.mid, None);
        assert_eq!(snap.venues.len(), 4);
    }
}
