//! Binance spot codec through the engine: the recorded capture per symbol, and fault scenarios.
mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use depthagg::book::Book;
use depthagg::capture::Record;
use depthagg::decimal::Dec;
use depthagg::engine::{BLOCKED_RETRY_MS, Counters, Engine, RATE_LIMITED_RETRY_MS};
use depthagg::types::Side;
use depthagg::venue::binance::BinanceCodec;
use depthagg::venue::{Action, Codec, CodecError, FeedState, Millis, Output, Protocol, VenueSpec};

/// Lets a test read the codec's own counters while the engine owns it.
struct Probe {
    inner: Arc<Mutex<BinanceCodec>>,
    spec: VenueSpec,
}

impl Probe {
    fn new(symbol: &str) -> (Probe, Arc<Mutex<BinanceCodec>>) {
        let spec = VenueSpec::new(Protocol::BinanceSpot, symbol);
        let inner = Arc::new(Mutex::new(BinanceCodec::new(spec.clone())));
        (
            Probe {
                inner: inner.clone(),
                spec,
            },
            inner,
        )
    }

    fn codec(&self) -> MutexGuard<'_, BinanceCodec> {
        self.inner.lock().expect("codec lock")
    }
}

impl Codec for Probe {
    fn protocol(&self) -> Protocol {
        self.spec.protocol
    }
    fn spec(&self) -> &VenueSpec {
        &self.spec
    }
    fn connect_url(&self) -> String {
        self.codec().connect_url()
    }
    fn on_open(&mut self, now: Millis, out: &mut Output) {
        self.codec().on_open(now, out)
    }
    fn on_text(&mut self, text: &str, now: Millis, out: &mut Output) -> Result<(), CodecError> {
        self.codec().on_text(text, now, out)
    }
    fn on_http(
        &mut self,
        status: u16,
        body: &str,
        now: Millis,
        out: &mut Output,
    ) -> Result<(), CodecError> {
        self.codec().on_http(status, body, now, out)
    }
    fn resync(&mut self, now: Millis, out: &mut Output) {
        self.codec().resync(now, out)
    }
    fn stale_after_ms(&self) -> Millis {
        self.codec().stale_after_ms()
    }
}

fn engine(symbol: &str) -> (Engine, Arc<Mutex<BinanceCodec>>) {
    let (probe, handle) = Probe::new(symbol);
    (Engine::standalone(Box::new(probe), "test", 0), handle)
}

fn d(s: &str) -> Dec {
    Dec::parse(s).expect("valid decimal")
}

fn levels(book: &Book, side: Side) -> Vec<(Dec, Dec)> {
    book.levels(side).map(|l| (l.price, l.qty)).collect()
}

struct Replay {
    engine: Engine,
    codec: Arc<Mutex<BinanceCodec>>,
    actions: Vec<Action>,
}

/// Replay the capture for one symbol: every frame goes to the codec, only this symbol's REST
/// answers do.
fn replay(records: &[Record], symbol: &str) -> Replay {
    let (mut engine, codec) = engine(symbol);
    let mut actions = Vec::new();
    let query = format!("symbol={symbol}&");
    for rec in records {
        match rec {
            Record::Connect { ts, url, .. } => {
                engine.on_connecting(url, common::ms(*ts));
                actions.extend_from_slice(engine.on_open(common::ms(*ts)));
            }
            Record::Recv { ts, data, .. } => {
                actions.extend_from_slice(engine.on_text(data, common::ms(*ts)));
            }
            Record::Http {
                ts,
                url,
                status,
                data,
                ..
            } if url.contains(&query) => {
                actions.extend_from_slice(engine.on_http(*status, data, common::ms(*ts)));
            }
            Record::Close { ts, .. } => engine.on_close("closed", common::ms(*ts)),
            _ => {}
        }
    }
    Replay {
        engine,
        codec,
        actions,
    }
}

/// The book the capture implies for a symbol, computed from the JSON alone: the REST snapshot,
/// then every diff of the symbol whose `u` is above its `lastUpdateId`, in file order.
fn expected_book(records: &[Record], symbol: &str) -> [BTreeMap<Dec, Dec>; 2] {
    let mut book = [BTreeMap::new(), BTreeMap::new()];
    let mut last_update_id: Option<u64> = None;
    let put = |map: &mut BTreeMap<Dec, Dec>, level: &serde_json::Value| {
        let price = d(level[0].as_str().expect("price string"));
        let qty = d(level[1].as_str().expect("qty string"));
        if qty == Dec::ZERO {
            map.remove(&price);
        } else {
            map.insert(price, qty);
        }
    };
    for rec in records {
        match rec {
            Record::Http { url, data, .. } if url.contains(&format!("symbol={symbol}&")) => {
                let v: serde_json::Value = serde_json::from_str(data).expect("snapshot JSON");
                for (i, key) in ["bids", "asks"].into_iter().enumerate() {
                    for level in v[key].as_array().expect("levels") {
                        put(&mut book[i], level);
                    }
                }
                last_update_id = v["lastUpdateId"].as_u64();
            }
            Record::Recv { data, .. } => {
                let v: serde_json::Value = serde_json::from_str(data).expect("frame JSON");
                let ev = &v["data"];
                if ev["e"] != "depthUpdate" || ev["s"] != symbol {
                    continue;
                }
                let Some(snapshot_id) = last_update_id else {
                    continue;
                };
                if ev["u"].as_u64().expect("u") <= snapshot_id {
                    continue;
                }
                for (i, key) in ["b", "a"].into_iter().enumerate() {
                    for level in ev[key].as_array().expect("levels") {
                        put(&mut book[i], level);
                    }
                }
            }
            _ => {}
        }
    }
    book
}

#[test]
fn recorded_capture_syncs_every_symbol() {
    let Some(path) = common::fixture("binance-spot.capture.jsonl") else {
        return;
    };
    let records = common::records(&path);
    // (symbol, diffs dropped as already in the snapshot, final update id, bids, asks)
    for (symbol, dropped, final_id, bids, asks) in [
        ("NKNUSDT", 1, 499_870_179, 614, 994),
        ("BLZETH", 1, 281_916_638, 173, 999),
        ("LRCBTC", 2, 259_345_563, 176, 1000),
        ("RUNEEUR", 1, 15_602_513, 222, 468),
    ] {
        let r = replay(&records, symbol);
        let st = r.engine.shared().lock().clone();
        let codec = r.codec.lock().expect("codec lock");
        assert_eq!(codec.stale_diffs_dropped(), dropped, "{symbol} dropped");
        assert_eq!(codec.snapshots_applied(), 1, "{symbol} snapshots");
        assert_eq!(codec.book_update_id(), Some(final_id), "{symbol} book id");
        assert_eq!(st.state, FeedState::Live, "{symbol}: {}", st.reason);
        assert_eq!(
            (st.counters.gaps, st.counters.resyncs, st.counters.malformed),
            (0, 0, 0),
            "{symbol}"
        );
        assert_eq!(st.levels(), (bids, asks), "{symbol} levels");
        assert_eq!(
            r.actions,
            [Action::Fetch {
                url: format!("https://api.binance.com/api/v3/depth?symbol={symbol}&limit=5000"),
                delay_ms: 0
            }],
            "{symbol}: one snapshot request, on the first diff"
        );
        let [exp_bids, exp_asks] = expected_book(&records, symbol);
        let exp_bids: Vec<_> = exp_bids.into_iter().rev().collect();
        let exp_asks: Vec<_> = exp_asks.into_iter().collect();
        assert_eq!(levels(&st.book, Side::Bid), exp_bids, "{symbol} bids");
        assert_eq!(levels(&st.book, Side::Ask), exp_asks, "{symbol} asks");
    }
}

/// One step of a scripted scenario.
enum Step<'a> {
    Open,
    Recv(&'a str),
    Http(u16, &'a str),
}

/// Run a scenario; returns the actions of the last step.
fn run(engine: &mut Engine, steps: &[Step]) -> Vec<Action> {
    let mut last = Vec::new();
    for (i, step) in steps.iter().enumerate() {
        let now = 1_700_000_000_000 + i as Millis * 100;
        last = match step {
            Step::Open => engine.on_open(now).to_vec(),
            Step::Recv(text) => engine.on_text(text, now).to_vec(),
            Step::Http(status, body) => engine.on_http(*status, body, now).to_vec(),
        };
    }
    last
}

fn diff(first: u64, last: u64, bids: &str, asks: &str) -> String {
    format!(
        r#"{{"stream":"btcusdt@depth@100ms","data":{{"e":"depthUpdate","E":1700000000000,"s":"BTCUSDT","U":{first},"u":{last},"b":[{bids}],"a":[{asks}]}}}}"#
    )
}

const SNAPSHOT_12: &str = r#"{"lastUpdateId":12,"bids":[["100.00","1.0"],["99.00","2.0"]],"asks":[["101.00","3.0"],["102.00","4.0"]]}"#;
const SNAPSHOT_URL: &str = "https://api.binance.com/api/v3/depth?symbol=BTCUSDT&limit=5000";

fn state(engine: &Engine) -> (FeedState, String, Counters) {
    let st = engine.shared().lock();
    (st.state, st.reason.clone(), st.counters.clone())
}

#[test]
fn update_id_gap_resyncs_and_refetches() {
    let (mut e, codec) = engine("BTCUSDT");
    let d1 = diff(10, 12, r#"["100.00","5.0"]"#, "");
    let d2 = diff(13, 14, r#"["100.00","6.0"]"#, "");
    let d3 = diff(16, 17, r#"["99.00","0"]"#, "");
    let actions = run(&mut e, &[Step::Open, Step::Recv(&d1)]);
    assert_eq!(
        actions,
        [Action::Fetch {
            url: SNAPSHOT_URL.into(),
            delay_ms: 0
        }]
    );
    run(&mut e, &[Step::Http(200, SNAPSHOT_12), Step::Recv(&d2)]);
    assert_eq!(state(&e).0, FeedState::Live);
    assert_eq!(
        e.shared().lock().book.get(Side::Bid, d("100")),
        Some(d("6"))
    );

    let actions = run(&mut e, &[Step::Recv(&d3)]);
    assert!(actions.is_empty(), "the next diff starts the new sync");
    let (st, reason, c) = state(&e);
    assert_eq!(st, FeedState::Resyncing);
    assert_eq!(reason, "sequence gap (expected 15, got 16)");
    assert_eq!((c.gaps, c.resyncs, c.malformed), (1, 1, 0));
    assert!(e.shared().lock().book.is_empty());

    let d4 = diff(18, 19, r#"["98.50","1.5"]"#, "");
    let actions = run(&mut e, &[Step::Recv(&d4)]);
    assert_eq!(
        actions,
        [Action::Fetch {
            url: SNAPSHOT_URL.into(),
            delay_ms: 0
        }]
    );
    let snap = r#"{"lastUpdateId":18,"bids":[["99.00","2.0"]],"asks":[["101.00","3.0"]]}"#;
    run(&mut e, &[Step::Http(200, snap)]);
    let st = e.shared().lock().clone();
    assert_eq!(st.state, FeedState::Live);
    assert_eq!(
        levels(&st.book, Side::Bid),
        [(d("99"), d("2")), (d("98.5"), d("1.5"))]
    );
    assert_eq!(levels(&st.book, Side::Ask), [(d("101"), d("3"))]);
    assert_eq!(codec.lock().expect("lock").book_update_id(), Some(19));
}

#[test]
fn snapshot_older_than_first_diff_is_refetched() {
    let (mut e, _) = engine("BTCUSDT");
    let d1 = diff(20, 22, r#"["100.00","5.0"]"#, "");
    let actions = run(
        &mut e,
        &[Step::Open, Step::Recv(&d1), Step::Http(200, SNAPSHOT_12)],
    );
    assert_eq!(
        actions,
        [Action::Fetch {
            url: SNAPSHOT_URL.into(),
            delay_ms: 500
        }]
    );
    assert_eq!(state(&e).0, FeedState::Syncing);
    assert!(e.shared().lock().book.is_empty());
}

#[test]
fn http_451_on_snapshot_blocks_and_names_market_data_hosts() {
    let (mut e, _) = engine("BTCUSDT");
    let d1 = diff(10, 12, r#"["100.00","5.0"]"#, "");
    let body = r#"{"code":0,"msg":"Service unavailable from a restricted location according to 'b. Eligibility' in https://www.binance.com/en/terms. Please contact customer service if you believe you received this message in error."}"#;
    let actions = run(
        &mut e,
        &[Step::Open, Step::Recv(&d1), Step::Http(451, body)],
    );
    assert_eq!(
        actions,
        [Action::Reconnect {
            reason: "HTTP 451 on the depth snapshot".into(),
            min_delay_ms: BLOCKED_RETRY_MS
        }]
    );
    let (st, reason, c) = state(&e);
    assert_eq!(st, FeedState::Blocked);
    assert_eq!(
        reason,
        "HTTP 451, restricted location; the market-data-only hosts data-stream.binance.vision (WS) \
         and data-api.binance.vision (REST) may work: --binance-ws / --binance-rest (exchange: \
         Service unavailable from a restricted location according to 'b. Eligibility' in \
         https://www.binance.com/en/terms. Please contact customer service if you believe you \
         received this message in error.)"
    );
    assert_eq!((c.gaps, c.resyncs, c.malformed), (0, 0, 0));
    assert!(e.shared().lock().book.is_empty());
}

#[test]
fn http_429_on_snapshot_blocks_as_rate_limited() {
    let (mut e, _) = engine("BTCUSDT");
    let d1 = diff(10, 12, r#"["100.00","5.0"]"#, "");
    let actions = run(&mut e, &[Step::Open, Step::Recv(&d1), Step::Http(429, "")]);
    assert_eq!(
        actions,
        [Action::Reconnect {
            reason: "HTTP 429 on the depth snapshot".into(),
            min_delay_ms: RATE_LIMITED_RETRY_MS
        }]
    );
    let (st, reason, _) = state(&e);
    assert_eq!(st, FeedState::Blocked);
    assert_eq!(reason, "HTTP 429, rate limited by the exchange");
}

#[test]
fn malformed_frame_resyncs() {
    let (mut e, codec) = engine("BTCUSDT");
    let d1 = diff(10, 12, r#"["100.00","5.0"]"#, "");
    run(
        &mut e,
        &[Step::Open, Step::Recv(&d1), Step::Http(200, SNAPSHOT_12)],
    );
    assert_eq!(state(&e).0, FeedState::Live);
    let actions = run(
        &mut e,
        &[Step::Recv(
            r#"{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","#,
        )],
    );
    assert!(actions.is_empty());
    let (st, reason, c) = state(&e);
    assert_eq!(st, FeedState::Resyncing);
    assert!(
        reason.starts_with("malformed frame: EOF while parsing"),
        "{reason}"
    );
    assert_eq!((c.gaps, c.resyncs, c.malformed), (0, 1, 1));
    assert_eq!(codec.lock().expect("lock").book_update_id(), None);
}

#[test]
fn crossed_snapshot_is_never_live() {
    let (mut e, _) = engine("BTCUSDT");
    let d1 = diff(10, 12, r#"["100.00","5.0"]"#, "");
    let crossed = r#"{"lastUpdateId":12,"bids":[["101.00","1.0"]],"asks":[["100.50","3.0"]]}"#;
    run(
        &mut e,
        &[Step::Open, Step::Recv(&d1), Step::Http(200, crossed)],
    );
    let (st, reason, c) = state(&e);
    assert_eq!(st, FeedState::Resyncing);
    assert_eq!(reason, "crossed book (bid 101 >= ask 100.5)");
    assert_eq!((c.gaps, c.resyncs, c.malformed), (0, 1, 0));
    assert!(e.shared().lock().book.is_empty());
}

#[test]
fn error_frame_puts_the_feed_down() {
    let (mut e, _) = engine("BTCUSDT");
    run(
        &mut e,
        &[
            Step::Open,
            Step::Recv(
                r#"{"code":1,"msg":"Invalid value 'btcusdt@depth@7ms' for parameter 'streams'"}"#,
            ),
        ],
    );
    let (st, reason, _) = state(&e);
    assert_eq!(st, FeedState::Down);
    assert_eq!(
        reason,
        "Binance error 1: Invalid value 'btcusdt@depth@7ms' for parameter 'streams'"
    );
}
