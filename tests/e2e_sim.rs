//! The real client (feed driver + codecs + engines) against the loopback simulator: clean starts
//! reach live with the client's book equal to the simulator's true book, every fault kind moves
//! the state where it should and transient faults come back to live with the book equal to the
//! truth, and the aggregate of all four venues equals the aggregate of the true books.

#[path = "sim_support/mod.rs"]
mod sim_support;

use std::time::Duration;

use depthagg::aggregate::{AggConfig, Window, aggregate, take_snapshot};
use depthagg::bins::BinSize;
use depthagg::engine::{Engine, SharedVenue, VenueState};
use depthagg::feed::{FeedOptions, run_feed};
use depthagg::sim::{Fault, Simulator};
use depthagg::types::Venue;
use depthagg::venue::{FeedState, Protocol, VenueSpec, codec_for};
use tokio::sync::watch;

const PATIENCE: Duration = Duration::from_secs(30);

struct Client {
    venue: SharedVenue,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Client {
    async fn stop(self) {
        self.stop.send_replace(true);
        tokio::time::timeout(Duration::from_secs(5), self.task)
            .await
            .expect("feed stops promptly")
            .expect("feed task did not panic");
    }
}

fn client(sim: &Simulator, venue: Venue) -> Client {
    let mut spec = VenueSpec::new(Protocol::default_for(venue), venue.default_symbol());
    let e = sim.endpoint(venue);
    spec.ws_url = e.ws_url;
    spec.rest_url = e.rest_url;
    let shared = SharedVenue::new(VenueState::new(spec.protocol, &spec.symbol, "demo", 0));
    let engine = Engine::new(codec_for(spec), shared.clone());
    let opts = FeedOptions {
        backoff_initial: Duration::from_millis(50),
        backoff_max: Duration::from_millis(500),
        watchdog_tick: Duration::from_millis(100),
        ..FeedOptions::default()
    };
    let (stop, rx) = watch::channel(false);
    let task = tokio::spawn(run_feed(engine, opts, rx));
    Client {
        venue: shared,
        stop,
        task,
    }
}

async fn wait_until(what: &str, v: &SharedVenue, f: impl Fn(&VenueState) -> bool) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        if f(&v.lock()) {
            return;
        }
        if tokio::time::Instant::now() > deadline {
            let st = v.lock();
            panic!(
                "{}: never {what}; state {} ({}), counters {:?}",
                st.venue, st.state, st.reason, st.counters
            );
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn wait_state(v: &SharedVenue, state: FeedState) -> String {
    wait_until(&format!("reached {state}"), v, |s| s.state == state).await;
    v.lock().reason.clone()
}

/// Stop the market, let the client catch up, and require its book to equal the truth.
async fn assert_book_is_truth(sim: &Simulator, c: &Client, venue: Venue) {
    sim.pause().await;
    let truth = sim.true_book(venue);
    wait_until("held the true book", &c.venue, |s| {
        s.state == FeedState::Live && s.book == truth
    })
    .await;
    sim.resume();
}

async fn sim() -> Simulator {
    sim_support::start(sim_support::config(7)).await
}

async fn clean_start(venue: Venue) {
    let sim = sim().await;
    let c = client(&sim, venue);
    wait_state(&c.venue, FeedState::Live).await;
    assert_book_is_truth(&sim, &c, venue).await;
    // And again after the market moved on.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_book_is_truth(&sim, &c, venue).await;
    let st = c.venue.lock().clone();
    assert_eq!(
        (
            st.counters.gaps,
            st.counters.checksums_failed,
            st.counters.resyncs,
            st.counters.malformed
        ),
        (0, 0, 0, 0)
    );
    c.stop().await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kraken_clean_start_matches_truth() {
    clean_start(Venue::Kraken).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bitfinex_clean_start_matches_truth() {
    clean_start(Venue::Bitfinex).await;
}

/// Inject a transient fault; the counter named by `counted` must move; then live with the truth.
async fn transient(venue: Venue, fault: Fault, counted: fn(&VenueState) -> u64) {
    let sim = sim().await;
    let c = client(&sim, venue);
    wait_state(&c.venue, FeedState::Live).await;
    let before = counted(&c.venue.lock());
    sim.inject(venue, fault);
    wait_until(&format!("counted {fault:?}"), &c.venue, |s| {
        counted(s) > before
    })
    .await;
    wait_state(&c.venue, FeedState::Live).await;
    assert_book_is_truth(&sim, &c, venue).await;
    c.stop().await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kraken_bad_checksum_resyncs_back_to_truth() {
    transient(Venue::Kraken, Fault::Checksum, |s| {
        s.counters.checksums_failed
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bitfinex_bad_checksum_resyncs_back_to_truth() {
    transient(Venue::Bitfinex, Fault::Checksum, |s| {
        s.counters.checksums_failed
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kraken_malformed_frame_resyncs_back_to_truth() {
    transient(Venue::Kraken, Fault::Malformed, |s| s.counters.malformed).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bitfinex_malformed_frame_resyncs_back_to_truth() {
    transient(Venue::Bitfinex, Fault::Malformed, |s| s.counters.malformed).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kraken_close_reconnects_back_to_truth() {
    transient(Venue::Kraken, Fault::Close, |s| s.counters.reconnects).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bitfinex_close_reconnects_back_to_truth() {
    transient(Venue::Bitfinex, Fault::Close, |s| s.counters.reconnects).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kraken_stall_goes_stale_then_reconnects_back_to_truth() {
    let sim = sim().await;
    let c = client(&sim, Venue::Kraken);
    wait_state(&c.venue, FeedState::Live).await;
    sim.inject(Venue::Kraken, Fault::Stall);
    let reason = wait_state(&c.venue, FeedState::Stale).await;
    assert!(reason.starts_with("no data for"), "{reason}");
    wait_until("reconnected", &c.venue, |s| s.counters.reconnects == 1).await;
    wait_state(&c.venue, FeedState::Live).await;
    assert_book_is_truth(&sim, &c, Venue::Kraken).await;
    c.stop().await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshake_451_blocks_and_429_rate_limits() {
    let sim = sim().await;
    sim.inject(Venue::Kraken, Fault::Http451);
    let c = client(&sim, Venue::Kraken);
    let reason = wait_state(&c.venue, FeedState::Blocked).await;
    assert_eq!(reason, "HTTP 451, restricted location");
    assert!(c.venue.lock().book.is_empty());
    c.stop().await;
    sim.inject(Venue::Bitfinex, Fault::Http429);
    let c = client(&sim, Venue::Bitfinex);
    let reason = wait_state(&c.venue, FeedState::Blocked).await;
    assert_eq!(reason, "HTTP 429, rate limited by the exchange");
    c.stop().await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_subscription_is_down_with_the_exchange_words() {
    let sim = sim().await;
    for venue in [Venue::Kraken, Venue::Bitfinex] {
        sim.inject(venue, Fault::Reject);
        let c = client(&sim, venue);
        let reason = wait_state(&c.venue, FeedState::Down).await;
        assert!(!reason.is_empty());
        assert!(
            c.venue.lock().book.is_empty(),
            "{venue}: a down venue holds no book"
        );
        c.stop().await;
    }
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delayed_snapshot_stays_syncing_then_goes_live() {
    let sim = sim().await;
    sim.inject(
        Venue::Kraken,
        Fault::DelaySnapshot(Duration::from_millis(800)),
    );
    let c = client(&sim, Venue::Kraken);
    wait_state(&c.venue, FeedState::Syncing).await;
    wait_state(&c.venue, FeedState::Live).await;
    assert_book_is_truth(&sim, &c, Venue::Kraken).await;
    c.stop().await;
    sim.shutdown().await;
}

/// All venues at once: the aggregated snapshot equals the aggregate of the true books.
pub async fn aggregate_equals_truth(venues: &[Venue]) {
    let sim = sim().await;
    let clients: Vec<Client> = venues.iter().map(|&v| client(&sim, v)).collect();
    for c in &clients {
        wait_state(&c.venue, FeedState::Live).await;
    }
    sim.pause().await;
    let truths: Vec<_> = venues.iter().map(|&v| sim.true_book(v)).collect();
    for (c, t) in clients.iter().zip(&truths) {
        wait_until("held the true book", &c.venue, |s| &s.book == t).await;
    }
    let mut cfg = AggConfig {
        bin_size: BinSize::parse("10").expect("size"),
        weights: [0.5, 0.2, 0.15, 0.15],
        enabled: [true; 4],
        window: Window::DEFAULT,
        renormalize: false,
    };
    let shared: Vec<SharedVenue> = clients.iter().map(|c| c.venue.clone()).collect();
    let true_states: Vec<VenueState> = venues
        .iter()
        .zip(&truths)
        .map(|(&v, t)| {
            let mut st = VenueState::new(Protocol::default_for(v), v.default_symbol(), "truth", 0);
            st.state = FeedState::Live;
            st.book = t.clone();
            st
        })
        .collect();
    let refs: Vec<&VenueState> = true_states.iter().collect();
    for (size, window) in [
        ("10", Window::DEFAULT),
        ("1", Window::All),
        ("0.5", Window::Percent(5_000)),
    ] {
        cfg.bin_size = BinSize::parse(size).expect("size");
        cfg.window = window;
        let got = take_snapshot(&shared, &cfg, 0);
        let want = aggregate(&refs, &cfg, 0);
        assert_eq!(got.bins, want.bins, "bin {size}, window {window}");
        assert_eq!(
            (got.mid, got.best_bid, got.best_ask),
            (want.mid, want.best_bid, want.best_ask)
        );
        assert!(!got.bins.is_empty());
    }
    sim.resume();
    for c in clients {
        c.stop().await;
    }
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aggregate_of_kraken_and_bitfinex_equals_truth() {
    aggregate_equals_truth(&[Venue::Kraken, Venue::Bitfinex]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binance_clean_start_matches_truth() {
    clean_start(Venue::Binance).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coinbase_clean_start_matches_truth() {
    clean_start(Venue::Coinbase).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binance_dropped_diff_is_a_gap_then_back_to_truth() {
    transient(Venue::Binance, Fault::Drop, |s| s.counters.gaps).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coinbase_dropped_message_is_a_gap_then_back_to_truth() {
    transient(Venue::Coinbase, Fault::Drop, |s| s.counters.gaps).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binance_and_coinbase_malformed_frames_resync_back_to_truth() {
    transient(Venue::Binance, Fault::Malformed, |s| s.counters.malformed).await;
    transient(Venue::Coinbase, Fault::Malformed, |s| s.counters.malformed).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binance_and_coinbase_close_reconnects_back_to_truth() {
    transient(Venue::Binance, Fault::Close, |s| s.counters.reconnects).await;
    transient(Venue::Coinbase, Fault::Close, |s| s.counters.reconnects).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coinbase_stall_goes_stale_then_reconnects_back_to_truth() {
    let sim = sim().await;
    let c = client(&sim, Venue::Coinbase);
    wait_state(&c.venue, FeedState::Live).await;
    sim.inject(Venue::Coinbase, Fault::Stall);
    wait_state(&c.venue, FeedState::Stale).await;
    wait_until("reconnected", &c.venue, |s| s.counters.reconnects == 1).await;
    wait_state(&c.venue, FeedState::Live).await;
    assert_book_is_truth(&sim, &c, Venue::Coinbase).await;
    c.stop().await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binance_handshake_451_is_blocked_naming_the_market_data_hosts() {
    let sim = sim().await;
    sim.inject(Venue::Binance, Fault::Http451);
    let c = client(&sim, Venue::Binance);
    let reason = wait_state(&c.venue, FeedState::Blocked).await;
    assert!(
        reason.starts_with(
            "HTTP 451, restricted location; the market-data-only hosts data-stream.binance.vision"
        ),
        "{reason}"
    );
    c.stop().await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binance_and_coinbase_rejections_are_visible() {
    let sim = sim().await;
    // Binance: the next REST snapshot is refused (HTTP 400, -1121); the client refetches with a
    // delay and goes live from the next one.
    sim.inject(Venue::Binance, Fault::Reject);
    let c = client(&sim, Venue::Binance);
    wait_state(&c.venue, FeedState::Live).await;
    assert_book_is_truth(&sim, &c, Venue::Binance).await;
    c.stop().await;
    // Coinbase: the subscription is refused with an error frame.
    sim.inject(Venue::Coinbase, Fault::Reject);
    let c = client(&sim, Venue::Coinbase);
    let reason = wait_state(&c.venue, FeedState::Down).await;
    assert!(!reason.is_empty());
    c.stop().await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aggregate_of_all_four_venues_equals_truth() {
    aggregate_equals_truth(&Venue::ALL).await;
}
