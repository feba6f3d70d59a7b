//! Any bytes through any protocol's codec and the engine: never a panic, never a live book that
//! is crossed or over its depth cap.
//! Input: first byte picks the protocol; the rest is split into frames at '\n'; a frame that
//! starts with "HTTP" is handed over as a REST body.
#![no_main]

use depthagg::engine::Engine;
use depthagg::types::Side;
use depthagg::venue::{Protocol, VenueSpec, codec_for};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let protocol = Protocol::ALL[pick as usize % Protocol::ALL.len()];
    let symbol = match protocol {
        Protocol::BinanceSpot => "BTCUSDT",
        Protocol::CoinbaseAdvanced | Protocol::CoinbaseExchange => "BTC-USD",
        Protocol::KrakenV2 => "BTC/USD",
        // A pair of the kraken-v1 recording, which seeds the corpus.
        Protocol::KrakenV1 => "XMR/USD",
        Protocol::BitfinexV2 => "tBTCUSD",
    };
    let spec = VenueSpec::new(protocol, symbol);
    let depth = spec.depth;
    let mut engine = Engine::standalone(codec_for(spec), "fuzz", 0);
    engine.on_open(0);
    for (i, frame) in rest.split(|&b| b == b'\n').enumerate() {
        let text = String::from_utf8_lossy(frame);
        let now = i as i64 * 10;
        if let Some(body) = text.strip_prefix("HTTP") {
            engine.on_http(200, body, now);
        } else {
            engine.on_text(&text, now);
        }
        engine.on_tick(now);
        let st = engine.shared().lock();
        if st.is_live() {
            assert!(!st.book.is_crossed(), "live and crossed");
        }
        assert!(st.book.len(Side::Bid) <= depth && st.book.len(Side::Ask) <= depth);
    }
});
