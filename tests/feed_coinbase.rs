//! Coinbase codecs (Advanced Trade and Exchange) through the engine: recorded captures and fault
//! scenarios.
mod common;

use std::collections::BTreeMap;

use depthagg::book::Book;
use depthagg::capture::Record;
use depthagg::decimal::Dec;
use depthagg::engine::{Counters, Engine};
use depthagg::types::Side;
use depthagg::venue::{Action, FeedState, Millis, Protocol, VenueSpec, codec_for};

fn engine(protocol: Protocol, symbol: &str) -> Engine {
    Engine::standalone(codec_for(VenueSpec::new(protocol, symbol)), "test", 0)
}

fn d(s: &str) -> Dec {
    Dec::parse(s).expect("valid decimal")
}

fn levels(book: &Book, side: Side) -> Vec<(Dec, Dec)> {
    book.levels(side).map(|l| (l.price, l.qty)).collect()
}

fn send(text: &str) -> Action {
    Action::Send(text.to_string())
}

/// What a replay saw: the actions of the open, the book right after it first went live, and all
/// later actions.
struct Replay {
    engine: Engine,
    open_actions: Vec<Action>,
    first_live_levels: Option<(usize, usize)>,
    actions: Vec<Action>,
}

/// Replay every record of a capture (optionally leaving out some `recv` records by index).
fn replay(records: &[Record], engine: Engine, skip: &[usize]) -> Replay {
    let mut r = Replay {
        engine,
        open_actions: Vec::new(),
        first_live_levels: None,
        actions: Vec::new(),
    };
    for (i, rec) in records.iter().enumerate() {
        match rec {
            Record::Connect { ts, url, .. } => {
                r.engine.on_connecting(url, common::ms(*ts));
                r.open_actions = r.engine.on_open(common::ms(*ts)).to_vec();
            }
            Record::Recv { ts, data, .. } if !skip.contains(&i) => {
                let actions = r.engine.on_text(data, common::ms(*ts)).to_vec();
                r.actions.extend(actions);
                if r.first_live_levels.is_none() {
                    let st = r.engine.shared().lock();
                    if st.state == FeedState::Live {
                        r.first_live_levels = Some(st.levels());
                    }
                }
            }
            Record::Close { ts, .. } => r.engine.on_close("closed", common::ms(*ts)),
            _ => {}
        }
    }
    r
}

type Levels = [BTreeMap<Dec, Dec>; 2];

fn put(book: &mut Levels, side: usize, price: &serde_json::Value, qty: &serde_json::Value) {
    let price = d(price.as_str().expect("price string"));
    let qty = d(qty.as_str().expect("qty string"));
    if qty == Dec::ZERO {
        book[side].remove(&price);
    } else {
        book[side].insert(price, qty);
    }
}

/// The Advanced Trade book of a product computed from the JSON alone: its snapshot, then its
/// updates in file order.
fn advanced_expected(records: &[Record], product: &str) -> Levels {
    let mut book: Levels = [BTreeMap::new(), BTreeMap::new()];
    let mut have_snapshot = false;
    for rec in records {
        let Record::Recv { data, .. } = rec else {
            continue;
        };
        let v: serde_json::Value = serde_json::from_str(data).expect("frame JSON");
        if v["channel"] != "l2_data" {
            continue;
        }
        for ev in v["events"].as_array().expect("events") {
            if ev["product_id"] != product {
                continue;
            }
            if ev["type"] == "snapshot" {
                book = [BTreeMap::new(), BTreeMap::new()];
                have_snapshot = true;
            } else if !have_snapshot {
                continue;
            }
            for u in ev["updates"].as_array().expect("updates") {
                let side = match u["side"].as_str() {
                    Some("bid") => 0,
                    Some("offer") => 1,
                    other => panic!("side {other:?}"),
                };
                put(&mut book, side, &u["price_level"], &u["new_quantity"]);
            }
        }
    }
    book
}

/// The Exchange book of a product computed from the JSON alone.
fn exchange_expected(records: &[Record], product: &str) -> Levels {
    let mut book: Levels = [BTreeMap::new(), BTreeMap::new()];
    let mut have_snapshot = false;
    for rec in records {
        let Record::Recv { data, .. } = rec else {
            continue;
        };
        let v: serde_json::Value = serde_json::from_str(data).expect("frame JSON");
        if v["product_id"] != product {
            continue;
        }
        if v["type"] == "snapshot" {
            book = [BTreeMap::new(), BTreeMap::new()];
            have_snapshot = true;
            for (side, key) in ["bids", "asks"].into_iter().enumerate() {
                for l in v[key].as_array().expect("levels") {
                    put(&mut book, side, &l[0], &l[1]);
                }
            }
        } else if v["type"] == "l2update" && have_snapshot {
            for c in v["changes"].as_array().expect("changes") {
                let side = match c[0].as_str() {
                    Some("buy") => 0,
                    Some("sell") => 1,
                    other => panic!("side {other:?}"),
                };
                put(&mut book, side, &c[1], &c[2]);
            }
        }
    }
    book
}

fn assert_book_equals(book: &Book, expected: Levels, what: &str) {
    let [bids, asks] = expected;
    let bids: Vec<_> = bids.into_iter().rev().collect();
    let asks: Vec<_> = asks.into_iter().collect();
    assert_eq!(levels(book, Side::Bid), bids, "{what} bids");
    assert_eq!(levels(book, Side::Ask), asks, "{what} asks");
}

fn counters(e: &Engine) -> (u64, u64, u64) {
    let c: Counters = e.shared().lock().counters.clone();
    (c.gaps, c.resyncs, c.malformed)
}

#[test]
fn advanced_capture_btc_usd_full_book() {
    let Some(path) = common::fixture("coinbase-advanced.capture.jsonl") else {
        return;
    };
    let records = common::records(&path);
    let r = replay(&records, engine(Protocol::CoinbaseAdvanced, "BTC-USD"), &[]);
    assert_eq!(
        r.open_actions,
        [
            send(r#"{"type":"subscribe","product_ids":["BTC-USD"],"channel":"level2"}"#),
            send(r#"{"type":"subscribe","channel":"heartbeats"}"#),
        ]
    );
    // The snapshot alone: every bid and every ask ("offer") of the 5.1 MB frame.
    assert_eq!(r.first_live_levels, Some((18_764, 27_236)));
    let st = r.engine.shared().lock().clone();
    assert_eq!(st.state, FeedState::Live, "{}", st.reason);
    assert_eq!(counters(&r.engine), (0, 0, 0));
    // One snapshot frame plus all 399 BTC-USD update frames changed the book.
    assert_eq!(st.counters.book_messages, 400);
    assert_eq!(st.levels(), (18_769, 27_238));
    assert_eq!(st.book.best_bid().map(|l| l.price), Some(d("65083.66")));
    assert_eq!(st.book.best_ask().map(|l| l.price), Some(d("65083.67")));
    assert!(r.actions.is_empty(), "no resubscription: {:?}", r.actions);
    assert_book_equals(&st.book, advanced_expected(&records, "BTC-USD"), "BTC-USD");
}

#[test]
fn advanced_capture_eth_usd() {
    let Some(path) = common::fixture("coinbase-advanced.capture.jsonl") else {
        return;
    };
    let records = common::records(&path);
    let r = replay(&records, engine(Protocol::CoinbaseAdvanced, "ETH-USD"), &[]);
    assert_eq!(r.first_live_levels, Some((6_935, 16_399)));
    let st = r.engine.shared().lock().clone();
    assert_eq!(st.state, FeedState::Live, "{}", st.reason);
    assert_eq!(counters(&r.engine), (0, 0, 0));
    assert_eq!(st.counters.book_messages, 375);
    assert_eq!(st.levels(), (6_925, 16_403));
    assert_book_equals(&st.book, advanced_expected(&records, "ETH-USD"), "ETH-USD");
}

#[test]
fn advanced_capture_with_a_dropped_frame_is_a_gap() {
    let Some(path) = common::fixture("coinbase-advanced.capture.jsonl") else {
        return;
    };
    let records = common::records(&path);
    // Leave out the first heartbeat (sequence_num 35), after the BTC-USD snapshot (13): the
    // sequence is per connection across channels, so losing a heartbeat is a gap too.
    let dropped = records
        .iter()
        .position(
            |r| matches!(r, Record::Recv { data, .. } if data.contains(r#""sequence_num":35,"#)),
        )
        .expect("frame 35");
    let r = replay(
        &records,
        engine(Protocol::CoinbaseAdvanced, "BTC-USD"),
        &[dropped],
    );
    assert_eq!(
        r.actions,
        [
            send(r#"{"type":"unsubscribe","product_ids":["BTC-USD"],"channel":"level2"}"#),
            send(r#"{"type":"subscribe","product_ids":["BTC-USD"],"channel":"level2"}"#),
        ]
    );
    let st = r.engine.shared().lock().clone();
    // The capture holds no second snapshot, so the book stays down to the end.
    assert_eq!(st.state, FeedState::Resyncing);
    assert_eq!(st.reason, "sequence gap (expected 35, got 36)");
    assert_eq!(counters(&r.engine), (1, 1, 0));
    assert!(st.book.is_empty());
    // The snapshot and the 10 BTC-USD updates before the gap; none after.
    assert_eq!(st.counters.book_messages, 11);
}

/// One step of a scripted scenario.
enum Step<'a> {
    Open,
    Recv(&'a str),
}

/// Run a scenario; returns the actions of the last step.
fn run(engine: &mut Engine, steps: &[Step]) -> Vec<Action> {
    let mut last = Vec::new();
    for (i, step) in steps.iter().enumerate() {
        let now = 1_700_000_000_000 + i as Millis * 100;
        last = match step {
            Step::Open => engine.on_open(now).to_vec(),
            Step::Recv(text) => engine.on_text(text, now).to_vec(),
        };
    }
    last
}

const ADV_SNAPSHOT: &str = r#"{"channel":"l2_data","client_id":"","timestamp":"2026-08-09T21:05:48.483587501Z","sequence_num":0,"events":[{"type":"snapshot","product_id":"BTC-USD","updates":[{"side":"bid","event_time":"1970-01-01T00:00:00Z","price_level":"100.00","new_quantity":"1"},{"side":"offer","event_time":"1970-01-01T00:00:00Z","price_level":"101.00","new_quantity":"2"}]}]}"#;

#[test]
fn advanced_malformed_frame_resubscribes() {
    let mut e = engine(Protocol::CoinbaseAdvanced, "BTC-USD");
    run(&mut e, &[Step::Open, Step::Recv(ADV_SNAPSHOT)]);
    assert_eq!(e.shared().lock().state, FeedState::Live);
    let actions = run(
        &mut e,
        &[Step::Recv(
            r#"{"channel":"l2_data","sequence_num":1,"events":[{"#,
        )],
    );
    assert_eq!(
        actions,
        [
            send(r#"{"type":"unsubscribe","product_ids":["BTC-USD"],"channel":"level2"}"#),
            send(r#"{"type":"subscribe","product_ids":["BTC-USD"],"channel":"level2"}"#),
        ]
    );
    let st = e.shared().lock().clone();
    assert_eq!(st.state, FeedState::Resyncing);
    assert!(
        st.reason.starts_with("malformed frame: EOF while parsing"),
        "{}",
        st.reason
    );
    assert_eq!(counters(&e), (0, 1, 1));
    assert!(st.book.is_empty());
}

#[test]
fn advanced_crossed_update_resyncs_and_new_snapshot_recovers() {
    let mut e = engine(Protocol::CoinbaseAdvanced, "BTC-USD");
    let crossing = r#"{"channel":"l2_data","timestamp":"2026-08-09T21:05:49Z","sequence_num":1,"events":[{"type":"update","product_id":"BTC-USD","updates":[{"side":"bid","event_time":"2026-08-09T21:05:49Z","price_level":"101.50","new_quantity":"3"}]}]}"#;
    let actions = run(
        &mut e,
        &[Step::Open, Step::Recv(ADV_SNAPSHOT), Step::Recv(crossing)],
    );
    assert_eq!(actions.len(), 2, "unsubscribe + subscribe: {actions:?}");
    let st = e.shared().lock().clone();
    assert_eq!(st.state, FeedState::Resyncing);
    assert_eq!(st.reason, "crossed book (bid 101.5 >= ask 101)");
    assert_eq!(counters(&e), (0, 1, 0));
    // An update still in flight is ignored; the new subscription's snapshot brings it back.
    let late = crossing.replace(r#""sequence_num":1"#, r#""sequence_num":2"#);
    let fresh = ADV_SNAPSHOT.replace(r#""sequence_num":0"#, r#""sequence_num":3"#);
    run(&mut e, &[Step::Recv(&late), Step::Recv(&fresh)]);
    let st = e.shared().lock().clone();
    assert_eq!(st.state, FeedState::Live);
    assert_eq!(levels(&st.book, Side::Bid), [(d("100"), d("1"))]);
    assert_eq!(levels(&st.book, Side::Ask), [(d("101"), d("2"))]);
}

#[test]
fn advanced_error_frame_puts_the_feed_down() {
    let mut e = engine(Protocol::CoinbaseAdvanced, "BTC-USD");
    run(
        &mut e,
        &[
            Step::Open,
            Step::Recv(ADV_SNAPSHOT),
            Step::Recv(r#"{"type":"error","message":"failure to subscribe"}"#),
        ],
    );
    let st = e.shared().lock().clone();
    assert_eq!(st.state, FeedState::Down);
    assert_eq!(st.reason, "Coinbase error: failure to subscribe");
    assert!(st.book.is_empty());
}

#[test]
fn exchange_capture_all_products() {
    let Some(path) = common::fixture("coinbase-exchange.capture.jsonl") else {
        return;
    };
    let records = common::records(&path);
    for (product, bids, asks) in [
        ("BAND-BTC", 323, 825),
        ("BAND-GBP", 148, 162),
        ("CRV-EUR", 389, 297),
        ("DASH-BTC", 436, 541),
        ("NMR-EUR", 633, 310),
        ("NU-GBP", 118, 450),
        ("SKL-BTC", 225, 407),
        ("SKL-GBP", 102, 175),
        ("SKL-USD", 816, 1341),
        ("YFI-BTC", 203, 458),
    ] {
        let r = replay(&records, engine(Protocol::CoinbaseExchange, product), &[]);
        let st = r.engine.shared().lock().clone();
        assert_eq!(st.state, FeedState::Live, "{product}: {}", st.reason);
        assert_eq!(counters(&r.engine), (0, 0, 0), "{product}");
        assert_eq!(st.levels(), (bids, asks), "{product}");
        assert!(r.actions.is_empty(), "{product}: {:?}", r.actions);
        if product == "SKL-USD" {
            assert_eq!(st.counters.book_messages, 1 + 2592);
            assert_book_equals(&st.book, exchange_expected(&records, product), product);
        }
    }
}

const EX_SNAPSHOT: &str = r#"{"type":"snapshot","product_id":"BTC-USD","bids":[["100.00","1.5"]],"asks":[["101.00","2.5"]]}"#;

#[test]
fn exchange_auth_error_puts_the_feed_down_with_the_exchange_words() {
    let mut e = engine(Protocol::CoinbaseExchange, "BTC-USD");
    let actions = run(&mut e, &[Step::Open]);
    assert_eq!(
        actions,
        [send(
            r#"{"type":"subscribe","product_ids":["BTC-USD"],"channels":["level2_batch","heartbeat"]}"#
        )]
    );
    run(
        &mut e,
        &[Step::Recv(
            r#"{"type":"error","message":"Failed to subscribe","reason":"level2, level3, and full channels now require authentication."}"#,
        )],
    );
    let st = e.shared().lock().clone();
    assert_eq!(st.state, FeedState::Down);
    assert_eq!(
        st.reason,
        "Coinbase error: Failed to subscribe: level2, level3, and full channels now require \
         authentication."
    );
    assert_eq!(counters(&e), (0, 0, 0));
    assert!(st.book.is_empty());
}

#[test]
fn exchange_crossed_update_resyncs() {
    let mut e = engine(Protocol::CoinbaseExchange, "BTC-USD");
    let crossing = r#"{"type":"l2update","product_id":"BTC-USD","changes":[["sell","99.50","0.1"]],"time":"2021-04-17T16:43:37.075687Z"}"#;
    let actions = run(
        &mut e,
        &[Step::Open, Step::Recv(EX_SNAPSHOT), Step::Recv(crossing)],
    );
    assert_eq!(
        actions,
        [
            send(r#"{"type":"unsubscribe","product_ids":["BTC-USD"],"channels":["level2_batch"]}"#),
            send(r#"{"type":"subscribe","product_ids":["BTC-USD"],"channels":["level2_batch"]}"#),
        ]
    );
    let st = e.shared().lock().clone();
    assert_eq!(st.state, FeedState::Resyncing);
    assert_eq!(st.reason, "crossed book (bid 100 >= ask 99.5)");
    assert_eq!(counters(&e), (0, 1, 0));
    assert!(st.book.is_empty());
}

#[test]
fn exchange_malformed_frame_resyncs() {
    let mut e = engine(Protocol::CoinbaseExchange, "BTC-USD");
    run(&mut e, &[Step::Open, Step::Recv(EX_SNAPSHOT)]);
    assert_eq!(e.shared().lock().state, FeedState::Live);
    let actions = run(
        &mut e,
        &[Step::Recv(
            r#"{"type":"l2update","product_id":"BTC-USD","changes":[["buy","1e","1"]]}"#,
        )],
    );
    assert_eq!(actions.len(), 2);
    let st = e.shared().lock().clone();
    assert_eq!(st.state, FeedState::Resyncing);
    assert!(
        st.reason
            .starts_with("malformed frame: not a decimal number: \"1e\""),
        "{}",
        st.reason
    );
    assert_eq!(counters(&e), (0, 1, 1));
}
