//! Property tests of the exact core: decimals, the bin rule and the aggregate against naive
//! reference computations.

use std::collections::BTreeMap;

use depthagg::aggregate::{AggConfig, Window, aggregate};
use depthagg::bins::BinSize;
use depthagg::decimal::Dec;
use depthagg::engine::VenueState;
use depthagg::types::Venue;
use depthagg::venue::{FeedState, Protocol};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn decimal_text_round_trips(raw in -(10i128.pow(30))..10i128.pow(30)) {
        let d = Dec::from_raw(raw);
        prop_assert_eq!(Dec::parse(&d.to_string()), Ok(d));
        prop_assert_eq!(Dec::parse(&d.to_js_string()), Ok(d));
        prop_assert_eq!(Dec::parse(&d.to_fixed(18)), Ok(d));
    }

    #[test]
    fn exponent_forms_parse_exactly(m in 1i64..1_000_000_000, e in -12i32..6) {
        let text = format!("{m}e{e}");
        let expected = if e >= 0 {
            Dec::from_raw(m as i128 * 10i128.pow(18 + e as u32))
        } else {
            Dec::from_raw(m as i128 * 10i128.pow((18 + e) as u32))
        };
        prop_assert_eq!(Dec::parse(&text), Ok(expected));
    }

    /// The bin rule against its definition: the nearest multiple of B, ties up.
    #[test]
    fn bin_is_nearest_multiple_ties_up(cents in 0i64..20_000_000, size_cents in 1i64..200_000) {
        let unit = 10_000_000_000_000_000i128; // one cent in Dec units
        let p = Dec::from_raw(cents as i128 * unit);
        let size = BinSize::new(Dec::from_raw(size_cents as i128 * unit)).expect("positive");
        let bin = size.bin_of(p).raw() / unit;
        let dist = (cents as i128 - bin).abs();
        prop_assert_eq!(bin % size_cents as i128, 0);
        // Nearest: no multiple is strictly closer; on a tie the upper one is chosen.
        prop_assert!(2 * dist <= size_cents as i128);
        if 2 * dist == size_cents as i128 {
            prop_assert!(bin > cents as i128);
        }
    }

    /// The aggregate equals a naive per-bin sum of weight × quantity over all live books.
    #[test]
    fn aggregate_matches_naive_sum(
        books in proptest::collection::vec(
            (proptest::collection::btree_map(1i64..2000, 1i64..1_000_000, 0..60),
             proptest::collection::btree_map(2000i64..4000, 1i64..1_000_000, 0..60)),
            4),
        size_units in 1i64..500,
        live in proptest::array::uniform4(proptest::bool::ANY),
    ) {
        let price = |u: i64| Dec::from_raw(u as i128 * 10i128.pow(17)); // units of 0.1
        let qty = |u: i64| Dec::from_raw(u as i128 * 10i128.pow(10)); // units of 1e-8
        let weights = [0.5, 0.2, 0.15, 0.15];
        let states: Vec<VenueState> = Venue::ALL.iter().zip(&books).zip(live).map(|((&v, (b, a)), is_live)| {
            let mut st = VenueState::new(Protocol::default_for(v), v.default_symbol(), "prop", 0);
            st.state = if is_live { FeedState::Live } else { FeedState::Resyncing };
            st.book.replace(b.iter().map(|(&p, &q)| (price(p), qty(q))), a.iter().map(|(&p, &q)| (price(p), qty(q))));
            st
        }).collect();
        let refs: Vec<&VenueState> = states.iter().collect();
        let size = BinSize::new(price(size_units)).expect("positive");
        let cfg = AggConfig { bin_size: size, weights, enabled: [true; 4], window: Window::All, renormalize: false };
        let snap = aggregate(&refs, &cfg, 0);

        let mut naive: BTreeMap<Dec, (f64, f64)> = BTreeMap::new();
        for (i, st) in states.iter().enumerate() {
            if !st.is_live() || st.book.is_empty() {
                continue;
            }
            let mut sums: BTreeMap<(Dec, bool), Dec> = BTreeMap::new();
            for (p, q) in &books[i].0 {
                let e = sums.entry((size.bin_of(price(*p)), true)).or_default();
                *e = e.saturating_add(qty(*q));
            }
            for (p, q) in &books[i].1 {
                let e = sums.entry((size.bin_of(price(*p)), false)).or_default();
                *e = e.saturating_add(qty(*q));
            }
            for ((bin, bid), sum) in sums {
                let e = naive.entry(bin).or_default();
                if bid { e.0 += weights[i] * sum.to_f64() } else { e.1 += weights[i] * sum.to_f64() }
            }
        }
        prop_assert_eq!(snap.bins.len(), naive.len());
        for (bin, (p, (buy, sell))) in snap.bins.iter().zip(naive) {
            prop_assert_eq!(bin.price, p);
            prop_assert!((bin.buy_qty - buy).abs() <= 1e-9 * buy.abs().max(1.0));
            prop_assert!((bin.sell_qty - sell).abs() <= 1e-9 * sell.abs().max(1.0));
        }
    }
}
