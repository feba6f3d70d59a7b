//! Kraken v1 and v2 codecs through the engine: the real v1 recording, the published checksum
//! vectors (protocols.md §7) and fault cases as data.
mod common;

use depthagg::capture::Record;
use depthagg::decimal::Dec;
use depthagg::engine::{Counters, Engine};
use depthagg::types::Side;
use depthagg::venue::kraken::{V1Codec, V2Codec};
use depthagg::venue::{Action, Codec, FeedState, Protocol, VenueSpec, codec_for};

fn d(s: &str) -> Dec {
    Dec::parse(s).expect("valid decimal")
}

fn send(s: &str) -> Action {
    Action::Send(s.to_string())
}

/// An engine around a codec, connected (subscribe frames sent) at t = 0.
fn open(codec: Box<dyn Codec>) -> (Engine, Vec<Action>) {
    let mut engine = Engine::standalone(codec, "test", 0);
    let actions = engine.on_open(0).to_vec();
    (engine, actions)
}

fn state(engine: &Engine) -> (FeedState, String) {
    let st = engine.shared().lock();
    (st.state, st.reason.clone())
}

fn counters(engine: &Engine) -> Counters {
    engine.shared().lock().counters.clone()
}

fn levels(engine: &Engine) -> (usize, usize) {
    engine.shared().lock().levels()
}

fn qty(engine: &Engine, side: Side, price: &str) -> Option<Dec> {
    engine.shared().lock().book.get(side, d(price))
}

// ---------------------------------------------------------------------------------------------
// Kraken v1: the real recording
// ---------------------------------------------------------------------------------------------

/// What replaying one pair of the recording ended with.
struct V1Replay {
    engine: Engine,
    /// Most levels either side held after any frame.
    max_levels: usize,
}

/// Replay the whole v1 recording (all three connections: trade, ticker and book frames) into one
/// engine following `symbol`, stopping after the first frame that contains `stop_at`.
fn replay_v1(symbol: &str, stop_at: Option<&str>) -> Option<V1Replay> {
    let path = common::fixture("kraken-v1.capture.jsonl")?;
    let spec = VenueSpec::new(Protocol::KrakenV1, symbol);
    assert_eq!(spec.depth, 1000, "the recording subscribed book-1000");
    let mut engine = Engine::standalone(codec_for(spec), "replay", 0);
    let mut opened = false;
    let mut max_levels = 0;
    for rec in common::records(&path) {
        match rec {
            // The three connections open before any data; one open is enough.
            Record::Connect { ts, .. } if !opened => {
                engine.on_open(common::ms(ts));
                opened = true;
            }
            Record::Recv { ts, data, .. } => {
                let actions = engine.on_text(&data, common::ms(ts));
                assert!(actions.is_empty(), "{symbol}: unexpected {actions:?}");
                let (b, a) = levels(&engine);
                max_levels = max_levels.max(b).max(a);
                if stop_at.is_some_and(|s| data.contains(s)) {
                    break;
                }
            }
            _ => {}
        }
    }
    Some(V1Replay { engine, max_levels })
}

#[test]
fn kraken_v1_capture_xbt_chf_verifies_every_checksum() {
    let Some(r) = replay_v1("XBT/CHF", None) else {
        return;
    };
    let c = counters(&r.engine);
    assert_eq!(c.checksums_ok, 289);
    assert_eq!(c.checksums_failed, 0);
    assert_eq!((c.resyncs, c.gaps, c.malformed), (0, 0, 0));
    assert_eq!(c.book_messages, 1 + 289);
    assert_eq!(c.messages, 4430, "every received frame of the three connections");
    assert_eq!(state(&r.engine), (FeedState::Live, "in sync".to_string()));
    assert_eq!(levels(&r.engine), (500, 315));
    let st = r.engine.shared().lock();
    let top = |side| st.book.levels(side).take(2).collect::<Vec<_>>();
    let bid = top(Side::Bid);
    let ask = top(Side::Ask);
    assert_eq!(
        (bid[0].price, bid[0].qty, bid[1].price, bid[1].qty),
        (d("56060.3"), d("0.05804973"), d("56060.2"), d("0.03938"))
    );
    assert_eq!(
        (ask[0].price, ask[0].qty, ask[1].price, ask[1].qty),
        (d("56194.2"), d("0.017"), d("56274.9"), d("0.04267101"))
    );
    assert!(r.max_levels <= 1000);
}

#[test]
fn kraken_v1_capture_every_pair_verifies_every_checksum() {
    // (pair, checksums, final bids, final asks): counted independently with Python's zlib.
    let pairs = [
        ("XBT/CHF", 289, 500, 315),
        ("XMR/USD", 846, 657, 426),
        ("ETH/CHF", 317, 278, 148),
        ("OMG/USD", 573, 226, 298),
        ("GRT/ETH", 20, 60, 73),
        ("WAVES/EUR", 576, 384, 272),
        ("ADA/XBT", 347, 707, 840),
        ("SC/EUR", 818, 847, 588),
        ("KSM/XBT", 335, 189, 243),
        ("OCEAN/XBT", 148, 153, 248),
    ];
    let mut verified = 0;
    let mut failed = 0;
    for (pair, checksums, bids, asks) in pairs {
        let Some(r) = replay_v1(pair, None) else {
            return;
        };
        let c = counters(&r.engine);
        assert_eq!(c.checksums_ok, checksums, "{pair}");
        assert_eq!((c.resyncs, c.malformed), (0, 0), "{pair}");
        assert_eq!(state(&r.engine).0, FeedState::Live, "{pair}");
        assert_eq!(levels(&r.engine), (bids, asks), "{pair}");
        assert!(r.max_levels <= 1000, "{pair}: {} levels", r.max_levels);
        verified += c.checksums_ok;
        failed += c.checksums_failed;
    }
    assert_eq!((verified, failed), (4269, 0));
}

#[test]
fn kraken_v1_update_with_both_a_and_b_is_applied_in_full() {
    // SC/EUR: the ask at 0.042990 is set and the bid at the same price removed in one frame.
    // Applying only the first dict would leave a crossed book.
    let marker = r#"[1920,{"a":[["0.042990","364630.28272081""#;
    let Some(after) = replay_v1("SC/EUR", Some(marker)) else {
        return;
    };
    let Some(prior) = replay_until_before(marker) else {
        return;
    };
    assert_eq!(qty(&prior, Side::Bid, "0.042990"), Some(d("15979.71727919")));
    assert_eq!(qty(&prior, Side::Ask, "0.042990"), None);
    assert_eq!(qty(&after.engine, Side::Bid, "0.042990"), None);
    assert_eq!(
        qty(&after.engine, Side::Ask, "0.042990"),
        Some(d("364630.28272081"))
    );
    let (c0, c1) = (counters(&prior), counters(&after.engine));
    assert_eq!(c1.checksums_ok, c0.checksums_ok + 1);
    assert_eq!((c1.checksums_failed, c1.resyncs), (0, 0));
    assert_eq!(state(&after.engine).0, FeedState::Live);
}

/// SC/EUR replayed up to (not including) the first frame containing `marker`.
fn replay_until_before(marker: &str) -> Option<Engine> {
    let path = common::fixture("kraken-v1.capture.jsonl")?;
    let mut engine = Engine::standalone(
        codec_for(VenueSpec::new(Protocol::KrakenV1, "SC/EUR")),
        "replay",
        0,
    );
    engine.on_open(0);
    for rec in common::records(&path) {
        if let Record::Recv { ts, data, .. } = rec {
            if data.contains(marker) {
                return Some(engine);
            }
            engine.on_text(&data, common::ms(ts));
        }
    }
    panic!("marker frame not found");
}
