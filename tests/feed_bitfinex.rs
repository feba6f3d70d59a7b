//! Bitfinex v2 codec through the engine: the real recording (SEQ_ALL, len 100), the published
//! checksum vectors (protocols.md §7) and fault cases as data.
mod common;

use common::{counters, levels, state};

use depthagg::capture::Record;
use depthagg::decimal::Dec;
use depthagg::engine::Engine;
use depthagg::types::Side;
use depthagg::venue::bitfinex::BitfinexCodec;
use depthagg::venue::{Action, FeedState, Protocol, VenueSpec, codec_for};
use serde_json::value::RawValue;

fn d(s: &str) -> Dec {
    Dec::parse(s).expect("valid decimal")
}

fn send(s: &str) -> Action {
    Action::Send(s.to_string())
}

fn spec(symbol: &str, depth: usize) -> VenueSpec {
    let mut spec = VenueSpec::new(Protocol::BitfinexV2, symbol);
    spec.depth = depth;
    spec
}

const SUBSCRIBE_TBTCUSD: &str = r#"{"event":"subscribe","channel":"book","symbol":"tBTCUSD","prec":"P0","freq":"F0","len":"250"}"#;

#[test]
fn bitfinex_open_sends_conf_then_subscribe() {
    let mut engine = Engine::standalone(
        codec_for(VenueSpec::new(Protocol::BitfinexV2, "tBTCUSD")),
        "test",
        0,
    );
    assert_eq!(
        engine.on_open(0),
        [
            send(r#"{"event":"conf","flags":196608}"#),
            send(SUBSCRIBE_TBTCUSD)
        ]
    );
    assert_eq!(engine.codec().stale_after_ms(), 30_000);
    assert_eq!(
        BitfinexCodec::new(VenueSpec::new(Protocol::BitfinexV2, "tBTCUSD")).book_len(),
        250
    );
}

// ---------------------------------------------------------------------------------------------
// The real recording: 7 book channels (plus ticker and trades) on one SEQ_ALL connection
// ---------------------------------------------------------------------------------------------

struct Replay {
    engine: Engine,
    max_levels: usize,
}

/// Replay the recording into one engine following `symbol` (len 100 as recorded), skipping the
/// received frame whose text is `drop` if given.
fn replay(symbol: &str, drop: Option<&str>) -> Option<Replay> {
    let path = common::fixture("bitfinex-v2.capture.jsonl")?;
    let mut engine = Engine::standalone(codec_for(spec(symbol, 100)), "replay", 0);
    let mut max_levels = 0;
    for rec in common::records(&path) {
        match rec {
            Record::Connect { ts, .. } => {
                engine.on_open(common::ms(ts));
            }
            Record::Recv { ts, data, .. } if drop != Some(data.as_str()) => {
                engine.on_text(&data, common::ms(ts));
                let (b, a) = levels(&engine);
                max_levels = max_levels.max(b).max(a);
            }
            _ => {}
        }
    }
    Some(Replay { engine, max_levels })
}

#[test]
fn bitfinex_capture_every_symbol_in_sequence_within_len_and_live() {
    // (symbol, updates applied, final bids, final asks): counted independently in Python.
    let symbols = [
        ("tTESTBTC:TESTUSD", 79, 100, 100),
        ("tDOGUSD", 384, 100, 100),
        ("tODEUSD", 17, 100, 100),
        ("tIOTETH", 783, 99, 100),
        ("tMNABTC", 321, 51, 88),
        ("tBFTUSD", 0, 96, 100),
        ("tSNGUSD", 9, 100, 100),
    ];
    for (symbol, updates, bids, asks) in symbols {
        let Some(r) = replay(symbol, None) else {
            return;
        };
        let c = counters(&r.engine);
        assert_eq!(c.gaps, 0, "{symbol}: SEQ_ALL numbers are continuous");
        assert_eq!((c.resyncs, c.malformed), (0, 0), "{symbol}");
        // The recording did not set OB_CHECKSUM: no cs frames.
        assert_eq!((c.checksums_ok, c.checksums_failed), (0, 0), "{symbol}");
        assert_eq!(c.book_messages, 1 + updates, "{symbol}");
        assert_eq!(c.messages, 1693, "{symbol}");
        assert_eq!(
            state(&r.engine),
            (FeedState::Live, "in sync".to_string()),
            "{symbol}"
        );
        assert_eq!(levels(&r.engine), (bids, asks), "{symbol}");
        assert!(r.max_levels <= 100, "{symbol}: {} levels", r.max_levels);
    }
}

#[test]
fn bitfinex_capture_test_pair_top_of_book() {
    let Some(r) = replay("tTESTBTC:TESTUSD", None) else {
        return;
    };
    let st = r.engine.shared().lock();
    let bid = st.book.best_bid().expect("bid");
    let ask = st.book.best_ask().expect("ask");
    assert_eq!((bid.price, ask.price), (d("60417"), d("60423")));
}

#[test]
fn bitfinex_capture_missing_frame_is_a_sequence_gap() {
    // Frame 100 of the connection belongs to another channel (tIOTETH); losing it still means
    // the connection lost data, and SEQ_ALL counts per connection.
    let Some(r) = replay("tTESTBTC:TESTUSD", Some("[232955,[0.0010276,0,-1],100]")) else {
        return;
    };
    let c = counters(&r.engine);
    assert_eq!((c.gaps, c.resyncs), (1, 1));
    // The resubscribe was sent, but the recording never answers it.
    let st = state(&r.engine);
    assert_eq!(st.0, FeedState::Resyncing);
    assert_eq!(st.1, "sequence gap (expected 100, got 101)");
}

#[test]
fn bitfinex_capture_numbers_round_trip_as_javascript_text() {
    // Every price and amount token of every book frame equals Dec's JS text of itself: the
    // checksum, which is built from that text, uses the exchange's own number text.
    let Some(path) = common::fixture("bitfinex-v2.capture.jsonl") else {
        return;
    };
    let mut book_channels = Vec::new();
    let mut tokens = 0;
    let mut exponent_tokens = 0;
    for rec in common::records(&path) {
        let Record::Recv { data, .. } = rec else {
            continue;
        };
        if data.starts_with('{') {
            let ev: serde_json::Value = serde_json::from_str(&data).expect("event");
            if ev["event"] == "subscribed" && ev["channel"] == "book" {
                book_channels.push(ev["chanId"].as_u64().expect("chanId"));
            }
            continue;
        }
        let frame: Vec<&RawValue> = serde_json::from_str(&data).expect("frame");
        let chan: u64 = frame[0].get().parse().expect("chan");
        if !book_channels.contains(&chan) || frame[1].get().starts_with('"') {
            continue;
        }
        let entries: Vec<Vec<&RawValue>> = if frame[1].get().starts_with("[[") {
            serde_json::from_str(frame[1].get()).expect("snapshot")
        } else {
            vec![serde_json::from_str(frame[1].get()).expect("update")]
        };
        for entry in entries {
            for tok in [entry[0].get(), entry[2].get()] {
                assert_eq!(d(tok).to_js_string(), tok);
                tokens += 1;
                exponent_tokens += usize::from(tok.contains('e'));
            }
        }
    }
    assert_eq!(book_channels.len(), 7);
    assert_eq!(tokens, 5852);
    assert!(exponent_tokens > 0, "the recording has tokens such as 2e-8");
}

// ---------------------------------------------------------------------------------------------
// Published checksum vectors
// ---------------------------------------------------------------------------------------------

/// An engine subscribed to `symbol` on channel `chan`, with OB_CHECKSUM confirmed (no SEQ_ALL).
fn subscribed(symbol: &str, chan: u64) -> Engine {
    let mut engine = Engine::standalone(codec_for(spec(symbol, 25)), "test", 0);
    engine.on_open(0);
    engine.on_text(
        r#"{"event":"info","version":2,"serverId":"x","platform":{"status":1}}"#,
        1,
    );
    engine.on_text(r#"{"event":"conf","status":"OK","flags":131072}"#, 2);
    engine.on_text(
        &format!(
            r#"{{"event":"subscribed","channel":"book","chanId":{chan},"symbol":"{symbol}","prec":"P0","freq":"F0","len":"25","pair":"{}"}}"#,
            &symbol[1..]
        ),
        3,
    );
    engine
}

const GO_SNAPSHOT: &str = "[81757,[[0.0000011,13,271510.49],[0.00000109,4,500793.10790141],[0.00000108,5,776367.43],[0.00000107,1,23329.54842056],[0.00000106,3,116868.87735849],[0.00000105,3,205000],[0.00000103,3,227308.25386407],[0.00000102,2,105000],[0.00000101,1,2970],[0.000001,2,21000],[7e-7,1,10000],[6.6e-7,1,10000],[6e-7,1,100000],[4.9e-7,1,10000],[2.5e-7,1,2000],[6e-8,1,100000],[5e-8,1,200000],[1e-8,4,640000],[0.00000111,1,-4847.13],[0.00000112,7,-528102.69042633],[0.00000113,5,-302397.07],[0.00000114,3,-339088.93],[0.00000126,4,-245944.06],[0.00000127,1,-5000],[0.0000013,1,-5000],[0.00000134,1,-8249.18938656],[0.00000136,1,-13161.25184766],[0.00000145,1,-2914],[0.0000015,3,-54448.5],[0.00000152,2,-5538.54849594],[0.00000153,1,-62691.75475079],[0.00000159,1,-2914],[0.0000016,1,-52631.10296831],[0.00000164,1,-4000],[0.00000166,1,-3831.46784605],[0.00000171,1,-14575.17730379],[0.00000174,1,-3124.81815395],[0.0000018,1,-18000],[0.00000182,1,-16000],[0.00000186,1,-4000],[0.00000189,1,-10000.686624],[0.00000191,1,-14500],[0.00000193,1,-2422]]]";

#[test]
fn bitfinex_go_client_vector_with_js_exponent_text() {
    // protocols.md §7: 18 bids (down to 1e-8), 25 asks; update; cs -1175357890.
    let mut engine = subscribed("tXRPBTC", 81757);
    engine.on_text(GO_SNAPSHOT, 4);
    assert_eq!(levels(&engine), (18, 25));
    assert_eq!(state(&engine).0, FeedState::Live);
    engine.on_text("[81757,[0.0000011,12,266122.94]]", 5);
    assert!(engine.on_text(r#"[81757,"cs",-1175357890]"#, 6).is_empty());
    engine.on_text(r#"[81757,"hb"]"#, 7);
    let c = counters(&engine);
    assert_eq!((c.checksums_ok, c.checksums_failed, c.resyncs), (1, 0, 0));
    assert_eq!(state(&engine).0, FeedState::Live);
    assert_eq!(
        engine.shared().lock().book.get(Side::Bid, d("7e-7")),
        Some(d("10000"))
    );
}

#[test]
fn bitfinex_python_client_vectors() {
    let Some(path) = common::fixture("checksum/bitfinex_checksum_vectors.json") else {
        return;
    };
    let text = std::fs::read_to_string(path).expect("vectors read");
    let doc: serde_json::Value = serde_json::from_str(&text).expect("vectors parse");
    let vectors = doc["vectors"].as_array().expect("vectors list");
    let mut seen = Vec::new();
    for v in vectors {
        let expected = v["expected_checksum"].as_i64().expect("checksum");
        let mut engine = subscribed("tXRPBTC", 123);
        engine.on_text(v["snapshot_json"].as_str().expect("snapshot"), 4);
        for u in v["update_jsons"].as_array().expect("updates") {
            engine.on_text(u.as_str().expect("update"), 5);
        }
        engine.on_text(&format!(r#"[123,"cs",{expected}]"#), 6);
        let c = counters(&engine);
        assert_eq!(
            (c.checksums_ok, c.checksums_failed, c.resyncs),
            (1, 0, 0),
            "{}",
            v["name"]
        );
        assert_eq!(state(&engine).0, FeedState::Live, "{}", v["name"]);
        seen.push(expected);
    }
    assert_eq!(seen, [30026640, 1770440002]);
}

// ---------------------------------------------------------------------------------------------
// Fault cases
// ---------------------------------------------------------------------------------------------

#[test]
fn bitfinex_checksum_mismatch_resubscribes() {
    let mut engine = subscribed("tXRPBTC", 81757);
    engine.on_text(GO_SNAPSHOT, 4);
    // The Go vector's checksum without its update: wrong for the snapshot alone.
    let actions = engine.on_text(r#"[81757,"cs",-1175357890]"#, 5).to_vec();
    assert_eq!(
        actions,
        [
            send(r#"{"event":"unsubscribe","chanId":81757}"#),
            send(
                r#"{"event":"subscribe","channel":"book","symbol":"tXRPBTC","prec":"P0","freq":"F0","len":"25"}"#
            ),
        ]
    );
    let c = counters(&engine);
    assert_eq!((c.checksums_ok, c.checksums_failed, c.resyncs), (0, 1, 1));
    assert_eq!(
        state(&engine),
        (
            FeedState::Resyncing,
            "checksum mismatch (exchange 3119609406, local 1311645903)".to_string()
        )
    );
    // Frames of the old channel are ignored; the new subscription brings a fresh book.
    engine.on_text("[81757,[0.0000011,12,266122.94]]", 6);
    engine.on_text(
        r#"{"event":"unsubscribed","status":"OK","chanId":81757}"#,
        7,
    );
    engine.on_text(r#"{"event":"subscribed","channel":"book","chanId":90000,"symbol":"tXRPBTC","prec":"P0","freq":"F0","len":"25","pair":"XRPBTC"}"#, 8);
    assert_eq!(levels(&engine), (0, 0));
    engine.on_text(&GO_SNAPSHOT.replace("81757", "90000"), 9);
    engine.on_text(r#"[90000,"cs",1311645903]"#, 10);
    let c = counters(&engine);
    assert_eq!((c.checksums_ok, c.checksums_failed), (1, 1));
    assert_eq!(state(&engine).0, FeedState::Live);
}

#[test]
fn bitfinex_sequence_gap_resyncs() {
    let mut engine = Engine::standalone(codec_for(spec("tBTCUSD", 250)), "test", 0);
    engine.on_open(0);
    engine.on_text(r#"{"event":"conf","status":"OK","flags":196608}"#, 1);
    engine.on_text(r#"{"event":"subscribed","channel":"book","chanId":7,"symbol":"tBTCUSD","prec":"P0","freq":"F0","len":"250","pair":"BTCUSD"}"#, 2);
    engine.on_text("[7,[[60000,1,0.5],[60010,2,-1.25]],1]", 3);
    engine.on_text(r#"[7,"hb",2]"#, 4);
    engine.on_text("[7,[60001,1,0.1],3]", 5);
    assert_eq!(state(&engine).0, FeedState::Live);
    assert_eq!(levels(&engine), (2, 1));
    let actions = engine.on_text("[7,[60002,1,0.1],5]", 6).to_vec();
    assert_eq!(
        actions,
        [
            send(r#"{"event":"unsubscribe","chanId":7}"#),
            send(SUBSCRIBE_TBTCUSD)
        ]
    );
    let c = counters(&engine);
    assert_eq!((c.gaps, c.resyncs), (1, 1));
    assert_eq!(
        state(&engine),
        (
            FeedState::Resyncing,
            "sequence gap (expected 4, got 5)".to_string()
        )
    );
    assert_eq!(levels(&engine), (0, 0));
}

#[test]
fn bitfinex_malformed_json_resyncs() {
    let mut engine = subscribed("tXRPBTC", 81757);
    engine.on_text(GO_SNAPSHOT, 4);
    let actions = engine.on_text("[81757,[0.0000011,12", 5).to_vec();
    assert_eq!(actions.len(), 2, "unsubscribe + subscribe: {actions:?}");
    let c = counters(&engine);
    assert_eq!((c.malformed, c.resyncs), (1, 1));
    assert_eq!(state(&engine).0, FeedState::Resyncing);
    assert_eq!(levels(&engine), (0, 0));
}

#[test]
fn bitfinex_server_restart_info_reconnects() {
    let mut engine = subscribed("tBTCUSD", 7);
    let actions = engine
        .on_text(
            r#"{"event":"info","code":20051,"msg":"Stop/Restart Websocket Server (please reconnect)"}"#,
            4,
        )
        .to_vec();
    assert_eq!(
        actions,
        [Action::Reconnect {
            reason: "bitfinex info 20051: Stop/Restart Websocket Server (please reconnect)"
                .to_string(),
            min_delay_ms: 1000
        }]
    );
}

#[test]
fn bitfinex_maintenance_pauses_then_resubscribes() {
    let mut engine = subscribed("tBTCUSD", 7);
    engine.on_text("[7,[[60000,1,0.5],[60010,2,-1.25]]]", 4);
    assert_eq!(state(&engine).0, FeedState::Live);
    engine.on_text(r#"{"event":"info","code":20060,"msg":"Entering in Maintenance mode. Please pause any activity and resume after receiving the info message 20061 (it should take 120 seconds at most)."}"#, 5);
    let (st, reason) = state(&engine);
    assert_eq!(st, FeedState::Down);
    assert!(reason.starts_with("maintenance (info 20060): Entering in Maintenance mode"));
    engine.on_text("[7,[60001,1,0.1]]", 6);
    assert_eq!(levels(&engine), (0, 0));
    let actions = engine
        .on_text(r#"{"event":"info","code":20061,"msg":"Maintenance ended. You can resume normal activity. It is advised to unsubscribe/subscribe again all channels."}"#, 7)
        .to_vec();
    assert_eq!(
        actions,
        [
            send(r#"{"event":"unsubscribe","chanId":7}"#),
            send(
                r#"{"event":"subscribe","channel":"book","symbol":"tBTCUSD","prec":"P0","freq":"F0","len":"25"}"#
            )
        ]
    );
    assert_eq!(state(&engine).0, FeedState::Syncing);
    engine.on_text(r#"{"event":"unsubscribed","status":"OK","chanId":7}"#, 8);
    engine.on_text(r#"{"event":"subscribed","channel":"book","chanId":8,"symbol":"tBTCUSD","prec":"P0","freq":"F0","len":"25","pair":"BTCUSD"}"#, 9);
    engine.on_text("[8,[[60000,1,0.5],[60010,2,-1.25]]]", 10);
    assert_eq!(state(&engine).0, FeedState::Live);
    assert_eq!(levels(&engine), (1, 1));
}

#[test]
fn bitfinex_error_event_goes_down_with_the_message() {
    let mut engine = Engine::standalone(codec_for(spec("tBTCUSD", 250)), "test", 0);
    engine.on_open(0);
    engine.on_text(r#"{"event":"error","msg":"book: unknown length","code":10012,"channel":"book","symbol":"tBTCUSD","prec":"P0","freq":"F0","len":"42"}"#, 1);
    assert_eq!(
        state(&engine),
        (
            FeedState::Down,
            "book: unknown length (code 10012)".to_string()
        )
    );
}

#[test]
fn bitfinex_crossed_book_resyncs() {
    let mut engine = subscribed("tBTCUSD", 7);
    let actions = engine
        .on_text("[7,[[60010,1,0.5],[60000,2,-1.25]]]", 4)
        .to_vec();
    assert_eq!(actions.len(), 2, "unsubscribe + subscribe: {actions:?}");
    assert_eq!(
        state(&engine),
        (
            FeedState::Resyncing,
            "crossed book (bid 60010 >= ask 60000)".to_string()
        )
    );
    assert_eq!(counters(&engine).resyncs, 1);
}

#[test]
fn bitfinex_count_zero_deletes_on_the_side_of_the_amount_sign() {
    let mut engine = subscribed("tBTCUSD", 7);
    engine.on_text(
        "[7,[[60000,1,0.5],[59990,1,0.25],[60010,2,-1.25],[60020,1,-2]]]",
        4,
    );
    engine.on_text("[7,[60010,0,-1]]", 5);
    engine.on_text("[7,[59990,0,1]]", 6);
    engine.on_text("[7,[60000,3,0.75]]", 7);
    let st = engine.shared().lock();
    let bids: Vec<_> = st
        .book
        .levels(Side::Bid)
        .map(|l| (l.price, l.qty))
        .collect();
    let asks: Vec<_> = st
        .book
        .levels(Side::Ask)
        .map(|l| (l.price, l.qty))
        .collect();
    assert_eq!(bids, [(d("60000"), d("0.75"))]);
    assert_eq!(asks, [(d("60020"), d("2"))]);
}
