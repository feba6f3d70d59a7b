//! Kraken v1 and v2 codecs through the engine: the real v1 recording, the published checksum
//! vectors (protocols.md §7) and fault cases as data.
mod common;

use common::{counters, levels, state};

use depthagg::capture::Record;
use depthagg::decimal::Dec;
use depthagg::engine::Engine;
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
    assert_eq!(
        c.messages, 4430,
        "every received frame of the three connections"
    );
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
    assert_eq!(
        qty(&prior, Side::Bid, "0.042990"),
        Some(d("15979.71727919"))
    );
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

#[test]
fn kraken_v1_truncates_to_channel_depth_after_every_message() {
    // book-10: inserting a better bid pushes the 11th bid out unannounced (§3.4). When the new
    // best bid is deleted again, Kraken's top 10 holds 9 bids; an untruncated book would still
    // hold 99.0 and hash to 1898094476 instead (checksums computed with Python's zlib).
    let (mut engine, _) = open(codec_for(VenueSpec::new(Protocol::KrakenV1, "XBT/USD")));
    let level = |p: f64| format!(r#"["{p:.1}","1.00000000","1618678100.000000"]"#);
    let asks: Vec<String> = (1..=10).map(|i| level(100.0 + i as f64 / 10.0)).collect();
    let bids: Vec<String> = (1..=10).map(|i| level(100.0 - i as f64 / 10.0)).collect();
    let snapshot = format!(
        r#"[7,{{"as":[{}],"bs":[{}]}},"book-10","XBT/USD"]"#,
        asks.join(","),
        bids.join(",")
    );
    engine.on_text(&snapshot, 1);
    assert_eq!(levels(&engine), (10, 10));
    engine.on_text(
        r#"[7,{"b":[["100.0","2.00000000","1618678101.000000"]],"c":"1953386361"},"book-10","XBT/USD"]"#,
        2,
    );
    assert_eq!(levels(&engine), (10, 10));
    assert_eq!(qty(&engine, Side::Bid, "99.0"), None);
    engine.on_text(
        r#"[7,{"b":[["100.0","0.00000000","1618678102.000000"]],"c":"3432098548"},"book-10","XBT/USD"]"#,
        3,
    );
    let c = counters(&engine);
    assert_eq!((c.checksums_ok, c.checksums_failed), (2, 0));
    assert_eq!(levels(&engine), (9, 10));
    assert_eq!(state(&engine).0, FeedState::Live);
}

#[test]
fn kraken_v1_published_checksum_vectors() {
    // Each state is sent as a snapshot (v1 snapshots carry no checksum), then as an update that
    // re-sends the best ask unchanged with the published checksum as "c".
    let Some(path) = common::fixture("checksum/kraken_v1_checksum_vectors.json") else {
        return;
    };
    let text = std::fs::read_to_string(path).expect("vectors read");
    let doc: serde_json::Value = serde_json::from_str(&text).expect("vectors parse");
    let vectors = doc["vectors"].as_array().expect("vectors list");
    assert_eq!(vectors.len(), 4);
    let mut seen = Vec::new();
    for v in vectors {
        let expected = v["expected_checksum"].as_u64().expect("checksum");
        let (asks, bids) = (&v["asks"], &v["bids"]);
        let (mut engine, _) = open(codec_for(VenueSpec::new(Protocol::KrakenV1, "XBT/USD")));
        engine.on_text(
            &format!(r#"[1,{{"as":{asks},"bs":{bids}}},"book-25","XBT/USD"]"#),
            1,
        );
        let best_ask = &asks[0];
        engine.on_text(
            &format!(r#"[1,{{"a":[{best_ask}],"c":"{expected}"}},"book-25","XBT/USD"]"#),
            2,
        );
        let c = counters(&engine);
        assert_eq!(
            (c.checksums_ok, c.checksums_failed),
            (1, 0),
            "{}",
            v["name"]
        );
        assert_eq!(state(&engine).0, FeedState::Live, "{}", v["name"]);
        seen.push(expected);
    }
    assert_eq!(seen, [974947235, 577149452, 2369158246, 1611253991]);
}

#[test]
fn kraken_v1_learns_checksum_precision_from_the_wire_strings() {
    let mut codec = V1Codec::new(VenueSpec::new(Protocol::KrakenV1, "XBT/USD"));
    let mut out = depthagg::venue::Output::default();
    codec.on_open(0, &mut out);
    codec
        .on_text(
            r#"[1,{"as":[["0.000017680","38663.54992198","1.0"]],"bs":[["0.000017670","0.00000048","1.0"]]},"book-10","XBT/USD"]"#,
            1,
            &mut out,
        )
        .expect("snapshot decodes");
    assert_eq!(codec.precision(), (9, 8));
    assert_eq!(codec.depth(), 1000);
}

// ---------------------------------------------------------------------------------------------
// Kraken v2: the documented MATIC/USD snapshot and update (protocols.md §3.3, §7)
// ---------------------------------------------------------------------------------------------

const MATIC_BIDS: &str = r#"[{"price":0.5666,"qty":4831.75496356},{"price":0.5665,"qty":6658.22734739},{"price":0.5664,"qty":18724.91513344},{"price":0.5663,"qty":11563.92544914},{"price":0.5662,"qty":14006.65365711},{"price":0.5661,"qty":17454.85679807},{"price":0.566,"qty":18097.1547},{"price":0.5659,"qty":33644.89175666},{"price":0.5658,"qty":148.3464},{"price":0.5657,"qty":606.70854372}]"#;
const MATIC_ASKS: &str = r#"[{"price":0.5668,"qty":4410.79769741},{"price":0.5669,"qty":4655.40412487},{"price":0.567,"qty":49844.89424998},{"price":0.5671,"qty":24306.41678},{"price":0.5672,"qty":29783.25223475},{"price":0.5673,"qty":57234.71239278},{"price":0.5674,"qty":45065.04744},{"price":0.5675,"qty":5912.76380354},{"price":0.5676,"qty":42514.92434778},{"price":0.5677,"qty":36304.0847022}]"#;

fn matic_snapshot(symbol: &str, checksum: u32) -> String {
    format!(
        r#"{{"channel":"book","type":"snapshot","data":[{{"symbol":"{symbol}","bids":{MATIC_BIDS},"asks":{MATIC_ASKS},"checksum":{checksum},"timestamp":"2023-10-06T17:35:55.440295Z"}}]}}"#
    )
}

fn matic_update(symbol: &str) -> String {
    format!(
        r#"{{"channel":"book","type":"update","data":[{{"symbol":"{symbol}","bids":[{{"price":0.5657,"qty":1098.3947558}}],"asks":[],"checksum":2114181697,"timestamp":"2023-10-06T17:35:55.440295Z"}}]}}"#
    )
}

fn v2_spec(symbol: &str, depth: usize) -> VenueSpec {
    let mut spec = VenueSpec::new(Protocol::KrakenV2, symbol);
    spec.depth = depth;
    spec
}

const MATIC_ACK: &str = r#"{"method":"subscribe","result":{"channel":"book","depth":10,"snapshot":true,"symbol":"MATIC/USD"},"success":true,"time_in":"2023-10-06T17:35:55.219022Z","time_out":"2023-10-06T17:35:55.219067Z"}"#;

#[test]
fn kraken_v2_matic_snapshot_then_update_verify() {
    let codec = V2Codec::with_precision(v2_spec("MATIC/USD", 10), 4, 8);
    let (mut engine, actions) = open(Box::new(codec));
    assert_eq!(
        actions,
        [send(
            r#"{"method":"subscribe","params":{"channel":"book","symbol":["MATIC/USD"],"depth":10,"snapshot":true},"req_id":1}"#
        )]
    );
    assert!(engine.on_text(r#"{"channel":"status","type":"update","data":[{"api_version":"v2","connection_id":12393906104898154338,"system":"online","version":"2.0.0"}]}"#, 1).is_empty());
    assert!(engine.on_text(MATIC_ACK, 2).is_empty());
    assert_eq!(state(&engine).0, FeedState::Syncing);
    assert!(
        engine
            .on_text(&matic_snapshot("MATIC/USD", 2439117997), 3)
            .is_empty()
    );
    assert_eq!(state(&engine).0, FeedState::Live);
    assert_eq!(counters(&engine).checksums_ok, 1);
    assert_eq!(qty(&engine, Side::Bid, "0.566"), Some(d("18097.1547")));
    assert!(engine.on_text(&matic_update("MATIC/USD"), 4).is_empty());
    assert!(engine.on_text(r#"{"channel":"heartbeat"}"#, 5).is_empty());
    let c = counters(&engine);
    assert_eq!((c.checksums_ok, c.checksums_failed, c.resyncs), (2, 0, 0));
    assert_eq!(c.book_messages, 2);
    assert_eq!(state(&engine), (FeedState::Live, "in sync".to_string()));
    assert_eq!(levels(&engine), (10, 10));
    assert_eq!(qty(&engine, Side::Bid, "0.5657"), Some(d("1098.3947558")));
    // The exchange stamped the update 2023-10-06T17:35:55.440Z; "now" was 4 ms after 1970.
    assert_eq!(
        engine.shared().lock().latency_ms,
        Some(4 - 1_696_613_755_440)
    );
}

#[test]
fn kraken_v2_precision_table_and_learning() {
    let btc = V2Codec::new(VenueSpec::new(Protocol::KrakenV2, "BTC/USD"));
    assert_eq!((btc.precision(), btc.depth()), ((1, 8), 1000));
    assert_eq!(V2Codec::new(v2_spec("MATIC/USD", 10)).precision(), (4, 8));
    // A symbol outside the table learns 4/8 from the MATIC snapshot's tokens, so the documented
    // checksums still verify.
    let (mut engine, _) = open(codec_for(v2_spec("POL/USD", 10)));
    engine.on_text(&matic_snapshot("POL/USD", 2439117997), 1);
    engine.on_text(&matic_update("POL/USD"), 2);
    let c = counters(&engine);
    assert_eq!((c.checksums_ok, c.checksums_failed), (2, 0));
    assert_eq!(state(&engine).0, FeedState::Live);
}

#[test]
fn kraken_v2_float_text_precision_fails_the_checksum() {
    // §7: naive float text (0.566 instead of 0.5660) does not reproduce Kraken's checksum.
    let (mut engine, _) = open(Box::new(V2Codec::with_precision(
        v2_spec("MATIC/USD", 10),
        3,
        8,
    )));
    engine.on_text(&matic_snapshot("MATIC/USD", 2439117997), 1);
    let c = counters(&engine);
    assert_eq!((c.checksums_ok, c.checksums_failed), (0, 1));
}

#[test]
fn kraken_v2_ignores_other_symbols_in_book_data() {
    let (mut engine, _) = open(Box::new(V2Codec::with_precision(
        v2_spec("MATIC/USD", 10),
        4,
        8,
    )));
    engine.on_text(&matic_snapshot("ALGO/USD", 1), 1);
    assert_eq!(state(&engine).0, FeedState::Syncing);
    assert_eq!(levels(&engine), (0, 0));
    assert_eq!(counters(&engine).checksums_failed, 0);
}

// ---------------------------------------------------------------------------------------------
// Fault cases
// ---------------------------------------------------------------------------------------------

#[test]
fn kraken_v2_checksum_mismatch_resubscribes_and_drops_deltas_until_the_snapshot() {
    let (mut engine, _) = open(Box::new(V2Codec::with_precision(
        v2_spec("MATIC/USD", 10),
        4,
        8,
    )));
    let actions = engine
        .on_text(&matic_snapshot("MATIC/USD", 2439117998), 1)
        .to_vec();
    assert_eq!(
        actions,
        [
            send(
                r#"{"method":"unsubscribe","params":{"channel":"book","symbol":["MATIC/USD"],"depth":10},"req_id":2}"#
            ),
            send(
                r#"{"method":"subscribe","params":{"channel":"book","symbol":["MATIC/USD"],"depth":10,"snapshot":true},"req_id":3}"#
            ),
        ]
    );
    let c = counters(&engine);
    assert_eq!((c.checksums_ok, c.checksums_failed, c.resyncs), (0, 1, 1));
    assert_eq!(
        state(&engine),
        (
            FeedState::Resyncing,
            "checksum mismatch (exchange 2439117998, local 2439117997)".to_string()
        )
    );
    assert_eq!(levels(&engine), (0, 0));
    // The unsubscribe ack, then a delta of the old subscription: dropped.
    engine.on_text(r#"{"method":"unsubscribe","result":{"channel":"book","depth":10,"symbol":"MATIC/USD"},"success":true,"time_in":"2023-10-06T17:35:56.0Z","time_out":"2023-10-06T17:35:56.0Z"}"#, 2);
    engine.on_text(&matic_update("MATIC/USD"), 3);
    assert_eq!(levels(&engine), (0, 0));
    assert_eq!(state(&engine).0, FeedState::Resyncing);
    engine.on_text(MATIC_ACK, 4);
    engine.on_text(&matic_snapshot("MATIC/USD", 2439117997), 5);
    engine.on_text(&matic_update("MATIC/USD"), 6);
    let c = counters(&engine);
    assert_eq!((c.checksums_ok, c.checksums_failed, c.resyncs), (2, 1, 1));
    assert_eq!(state(&engine).0, FeedState::Live);
}

#[test]
fn kraken_v1_checksum_mismatch_resubscribes() {
    let (mut engine, actions) = open(codec_for(VenueSpec::new(Protocol::KrakenV1, "XBT/USD")));
    let subscribe =
        r#"{"event":"subscribe","pair":["XBT/USD"],"subscription":{"name":"book","depth":1000}}"#;
    assert_eq!(actions, [send(subscribe)]);
    engine.on_text(
        r#"[1,{"as":[["100.1","1.00000000","1.0"]],"bs":[["99.9","1.00000000","1.0"]]},"book-1000","XBT/USD"]"#,
        1,
    );
    assert_eq!(state(&engine).0, FeedState::Live);
    let actions = engine
        .on_text(
            r#"[1,{"a":[["100.2","1.00000000","2.0"]],"c":"12345"},"book-1000","XBT/USD"]"#,
            2,
        )
        .to_vec();
    assert_eq!(
        actions,
        [
            send(
                r#"{"event":"unsubscribe","pair":["XBT/USD"],"subscription":{"name":"book","depth":1000}}"#
            ),
            send(subscribe),
        ]
    );
    let c = counters(&engine);
    assert_eq!((c.checksums_ok, c.checksums_failed, c.resyncs), (0, 1, 1));
    assert_eq!(state(&engine).0, FeedState::Resyncing);
    // "Subscription Not Found" answering the resync's unsubscribe is not a failure.
    engine.on_text(r#"{"errorMessage":"Subscription Not Found","event":"subscriptionStatus","pair":"XBT/USD","status":"error","subscription":{"depth":1000,"name":"book"}}"#, 3);
    assert_eq!(state(&engine).0, FeedState::Resyncing);
}

#[test]
fn kraken_v2_unsupported_pair_goes_down_with_the_exchange_text() {
    let (mut engine, actions) = open(codec_for(VenueSpec::new(Protocol::KrakenV2, "XBT/USD")));
    assert_eq!(
        actions,
        [send(
            r#"{"method":"subscribe","params":{"channel":"book","symbol":["XBT/USD"],"depth":1000,"snapshot":true},"req_id":1}"#
        )]
    );
    let actions = engine.on_text(
        r#"{"error":"Currency pair not supported XBT/USD","method":"subscribe","req_id":1,"success":false,"symbol":"XBT/USD","time_in":"2024-01-01T00:00:00.000000Z","time_out":"2024-01-01T00:00:00.000100Z"}"#,
        1,
    );
    assert!(actions.is_empty());
    assert_eq!(
        state(&engine),
        (
            FeedState::Down,
            "Currency pair not supported XBT/USD".to_string()
        )
    );
    let c = counters(&engine);
    assert_eq!((c.resyncs, c.malformed, c.checksums_failed), (0, 0, 0));
}

#[test]
fn kraken_v1_rejected_subscription_goes_down_with_the_exchange_text() {
    let (mut engine, _) = open(codec_for(VenueSpec::new(Protocol::KrakenV1, "XBTUSD")));
    engine.on_text(r#"{"errorMessage":"Currency pair not in ISO 4217-A3 format XBTUSD","event":"subscriptionStatus","pair":"XBTUSD","status":"error","subscription":{"depth":1000,"name":"book"}}"#, 1);
    assert_eq!(
        state(&engine),
        (
            FeedState::Down,
            "Currency pair not in ISO 4217-A3 format XBTUSD".to_string()
        )
    );
}

#[test]
fn kraken_malformed_frames_resync() {
    let (mut engine, _) = open(Box::new(V2Codec::with_precision(
        v2_spec("MATIC/USD", 10),
        4,
        8,
    )));
    engine.on_text(&matic_snapshot("MATIC/USD", 2439117997), 1);
    let actions = engine
        .on_text(r#"{"channel":"book","type":"update","data":[{"symbol":"#, 2)
        .to_vec();
    assert_eq!(actions.len(), 2, "unsubscribe + subscribe: {actions:?}");
    let c = counters(&engine);
    assert_eq!((c.malformed, c.resyncs), (1, 1));
    assert_eq!(state(&engine).0, FeedState::Resyncing);
    assert_eq!(levels(&engine), (0, 0));

    // A price that is no number at all (v1 sends strings; this one is not decimal).
    let (mut engine, _) = open(codec_for(VenueSpec::new(Protocol::KrakenV1, "XBT/USD")));
    engine.on_text(
        r#"[1,{"as":[["1e","1.0","1.0"]],"bs":[]},"book-10","XBT/USD"]"#,
        1,
    );
    let c = counters(&engine);
    assert_eq!((c.malformed, c.resyncs), (1, 1));
    assert_eq!(state(&engine).0, FeedState::Resyncing);
}

#[test]
fn kraken_crossed_book_resyncs() {
    // v1 snapshots carry no checksum: a crossed one is caught by the engine's crossed check.
    let (mut engine, _) = open(codec_for(VenueSpec::new(Protocol::KrakenV1, "XBT/USD")));
    let actions = engine
        .on_text(
            r#"[1,{"as":[["100.0","1.00000000","1.0"]],"bs":[["101.0","1.00000000","1.0"]]},"book-10","XBT/USD"]"#,
            1,
        )
        .to_vec();
    assert_eq!(actions.len(), 2, "unsubscribe + subscribe: {actions:?}");
    assert_eq!(
        state(&engine),
        (
            FeedState::Resyncing,
            "crossed book (bid 101 >= ask 100)".to_string()
        )
    );
    assert_eq!(counters(&engine).resyncs, 1);
    assert_eq!(levels(&engine), (0, 0));
}

#[test]
fn kraken_maintenance_status_goes_down() {
    let (mut engine, _) = open(codec_for(VenueSpec::new(Protocol::KrakenV2, "BTC/USD")));
    engine.on_text(
        r#"{"channel":"status","type":"update","data":[{"api_version":"v2","connection_id":1,"system":"maintenance","version":"2.0.0"}]}"#,
        1,
    );
    assert_eq!(
        state(&engine),
        (
            FeedState::Down,
            "kraken system status: maintenance".to_string()
        )
    );
    let (mut engine, _) = open(codec_for(VenueSpec::new(Protocol::KrakenV1, "XBT/USD")));
    engine.on_text(
        r#"{"connectionID":1,"event":"systemStatus","status":"maintenance","version":"1.8.3"}"#,
        1,
    );
    assert_eq!(state(&engine).0, FeedState::Down);
}

#[test]
fn kraken_stale_limits_follow_the_heartbeat() {
    // §3.5: a heartbeat after ~1 s of silence; §5: stale after about twice that.
    for p in [Protocol::KrakenV1, Protocol::KrakenV2] {
        assert_eq!(
            codec_for(VenueSpec::new(p, "BTC/USD")).stale_after_ms(),
            2000
        );
    }
}
