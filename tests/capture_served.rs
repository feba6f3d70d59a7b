//! Serving each recorded fixture through the simulator (`simulate --capture`) to the live client
//! over real loopback sockets gives the same final book as `depthagg replay` of the same file.

mod common;

use std::time::Duration;

use depthagg::capture::Record;
use depthagg::engine::{Engine, SharedVenue, VenueState};
use depthagg::feed::{FeedOptions, run_feed};
use depthagg::replay::{Replayer, plan};
use depthagg::sim::{SimConfig, Simulator, Speed};
use depthagg::venue::codec_for;

async fn served_equals_replayed(fixture: &str, choice: &str) {
    let Some(path) = common::fixture(fixture) else {
        return;
    };
    let p = plan(&path, &[choice.to_string()]).expect("plan");
    let spec = p.venues[0].clone();
    let venue = spec.venue();

    // Reference: replay.
    let mut replayer = Replayer::new(&p, 0);
    replayer.feed_file(&path).expect("replays");
    let replayed = replayer.venues()[0].lock().clone();

    // Served over loopback.
    let frames = common::records(&path)
        .iter()
        .filter(|r| matches!(r, Record::Recv { venue: v, .. } if v == venue.name()))
        .count() as u64;
    let sim = Simulator::start(SimConfig {
        capture: Some(path.clone()),
        speed: Speed::Max,
        ..SimConfig::default()
    })
    .await
    .expect("simulator serves the capture");
    let mut live = spec.clone();
    let e = sim.endpoint(venue);
    live.ws_url = e.ws_url;
    live.rest_url = e.rest_url;
    let shared = SharedVenue::new(VenueState::new(live.protocol, &live.symbol, "capture", 0));
    let engine = Engine::new(codec_for(live), shared.clone());
    let (stop, rx) = tokio::sync::watch::channel(false);
    let opts = FeedOptions {
        watchdog_tick: Duration::from_secs(3600),
        ..FeedOptions::default()
    };
    let task = tokio::spawn(run_feed(engine, opts, rx));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while shared.lock().counters.messages < frames {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{fixture}: {} of {frames} frames",
            shared.lock().counters.messages
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The frames are all in; a REST snapshot (Binance) may still be on its way.
    while {
        let st = shared.lock();
        st.state != replayed.state || st.book != replayed.book
    } && tokio::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let served = shared.lock().clone();
    stop.send_replace(true);
    let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
    sim.shutdown().await;

    assert_eq!(served.state, replayed.state, "{fixture}: {}", served.reason);
    assert_eq!(served.book, replayed.book, "{fixture} {choice}");
    assert!(!served.book.is_empty(), "{fixture}");
    let c = (&served.counters, &replayed.counters);
    assert_eq!(
        (
            c.0.gaps,
            c.0.checksums_ok,
            c.0.checksums_failed,
            c.0.resyncs
        ),
        (
            c.1.gaps,
            c.1.checksums_ok,
            c.1.checksums_failed,
            c.1.resyncs
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kraken_v1_capture() {
    served_equals_replayed("kraken-v1.capture.jsonl", "kraken=XBT/CHF").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bitfinex_capture() {
    served_equals_replayed("bitfinex-v2.capture.jsonl", "bitfinex=tTESTBTC:TESTUSD").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coinbase_advanced_capture() {
    served_equals_replayed("coinbase-advanced.capture.jsonl", "coinbase=BTC-USD").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coinbase_exchange_capture() {
    served_equals_replayed("coinbase-exchange.capture.jsonl", "coinbase=SKL-USD").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binance_capture() {
    served_equals_replayed("binance-spot.capture.jsonl", "binance=LRCBTC").await;
}
