//! Every fixture in ../shared/fixtures reads as a valid capture.
mod common;

#[test]
fn every_fixture_reads() {
    for (name, records) in [
        ("binance-spot.capture.jsonl", 270),
        ("bitfinex-v2.capture.jsonl", 1716),
        ("coinbase-advanced.capture.jsonl", 1036),
        ("coinbase-exchange.capture.jsonl", 9950),
        ("kraken-v1.capture.jsonl", 4436),
    ] {
        let Some(path) = common::fixture(name) else {
            continue;
        };
        assert_eq!(common::records(&path).len(), records, "{name}");
    }
}
