//! Frames that stay valid JSON but lost a part that carries book data are malformed (a counted
//! resync), not silently skipped while their sequence number counts (found by the property tests).

use depthagg::engine::Engine;
use depthagg::venue::{FeedState, Protocol, VenueSpec, codec_for};

fn live(protocol: Protocol, symbol: &str, frames: &[&str]) -> Engine {
    let mut e = Engine::standalone(codec_for(VenueSpec::new(protocol, symbol)), "test", 0);
    e.on_open(0);
    for f in frames {
        e.on_text(f, 1);
    }
    e
}

#[test]
fn binance_diff_without_its_ask_list_is_malformed() {
    let mut e = live(
        Protocol::BinanceSpot,
        "BTCUSDT",
        &[r#"{"e":"depthUpdate","E":1,"s":"BTCUSDT","U":10,"u":11,"b":[],"a":[]}"#],
    );
    e.on_http(
        200,
        r#"{"lastUpdateId":10,"bids":[["100","1"]],"asks":[["101","1"]]}"#,
        2,
    );
    assert_eq!(e.shared().lock().state, FeedState::Live);
    // "a" renamed by damage: the update's ids would count, its asks would be lost.
    e.on_text(
        r#"{"e":"depthUpdate","E":3,"s":"BTCUSDT","U":12,"u":12,"b":[],"\u00e1":[["101","0"]]}"#,
        3,
    );
    let st = e.shared().lock();
    assert_eq!(st.state, FeedState::Resyncing);
    assert_eq!(st.reason, "malformed frame: depthUpdate without b or a");
    assert_eq!((st.counters.malformed, st.counters.resyncs), (1, 1));
}

#[test]
fn coinbase_event_without_its_updates_is_malformed() {
    let snap = r#"{"channel":"l2_data","timestamp":"2026-01-01T00:00:00Z","sequence_num":0,"events":[{"type":"snapshot","product_id":"BTC-USD","updates":[{"side":"bid","price_level":"100","new_quantity":"1"},{"side":"offer","price_level":"101","new_quantity":"1"}]}]}"#;
    let mut e = live(Protocol::CoinbaseAdvanced, "BTC-USD", &[snap]);
    assert_eq!(e.shared().lock().state, FeedState::Live);
    e.on_text(r#"{"channel":"l2_data","timestamp":"2026-01-01T00:00:01Z","sequence_num":1,"events":[{"type":"update","product_id":"BTC-USD","upd\u00e1tes":[{"side":"bid","price_level":"100","new_quantity":"0"}]}]}"#, 2);
    let st = e.shared().lock();
    assert_eq!(st.state, FeedState::Resyncing);
    assert!(
        st.reason.starts_with(
            "malformed frame: level2 event of our product without a known type or its updates"
        ),
        "{}",
        st.reason
    );
    assert_eq!(st.counters.malformed, 1);
}
