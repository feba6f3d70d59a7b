//! The engine's bounds against a hostile or broken server: levels beyond the depth kept are
//! dropped; a book past twice that is thrown away with a counted resync, never an abort.

use depthagg::decimal::Dec;
use depthagg::engine::Engine;
use depthagg::types::Side;
use depthagg::venue::{
    Action, Codec, CodecError, Event, FeedState, Millis, Output, Protocol, VenueSpec,
};

/// "N" is a snapshot of N bids and N asks.
struct Flood {
    spec: VenueSpec,
}

impl Codec for Flood {
    fn protocol(&self) -> Protocol {
        self.spec.protocol
    }
    fn spec(&self) -> &VenueSpec {
        &self.spec
    }
    fn connect_url(&self) -> String {
        String::new()
    }
    fn on_open(&mut self, _now: Millis, _out: &mut Output) {}
    fn on_text(&mut self, text: &str, _now: Millis, out: &mut Output) -> Result<(), CodecError> {
        let n: i64 = text.parse().map_err(CodecError::malformed)?;
        out.events.push(Event::Snapshot {
            bids: (1..=n)
                .map(|i| (Dec::from_int(100_000 - i), Dec::from_int(1)))
                .collect(),
            asks: (1..=n)
                .map(|i| (Dec::from_int(100_000 + i), Dec::from_int(1)))
                .collect(),
        });
        out.events.push(Event::Synced);
        Ok(())
    }
    fn resync(&mut self, _now: Millis, out: &mut Output) {
        out.actions.push(Action::Send("again".into()));
    }
    fn stale_after_ms(&self) -> Millis {
        1000
    }
}

fn engine() -> Engine {
    let mut spec = VenueSpec::new(Protocol::CoinbaseAdvanced, "BTC-USD");
    spec.depth = 100;
    let mut e = Engine::standalone(Box::new(Flood { spec }), "test", 0);
    e.on_open(0);
    e
}

#[test]
fn levels_beyond_the_depth_are_dropped() {
    let mut e = engine();
    e.on_text("150", 1);
    let st = e.shared().lock();
    assert_eq!(st.state, FeedState::Live);
    assert_eq!((st.book.len(Side::Bid), st.book.len(Side::Ask)), (100, 100));
    assert_eq!(
        st.book.best_bid().map(|l| l.price),
        Some(Dec::from_int(99_999))
    );
    assert_eq!(st.counters.resyncs, 0);
}

#[test]
fn a_book_past_twice_the_depth_is_a_counted_resync() {
    let mut e = engine();
    let actions = e.on_text("201", 1).to_vec();
    assert_eq!(actions, [Action::Send("again".into())]);
    let st = e.shared().lock();
    assert_eq!(st.state, FeedState::Resyncing);
    assert_eq!(
        st.reason,
        "book over the limit of 200 levels per side (201 bids, 201 asks)"
    );
    assert_eq!(st.counters.resyncs, 1);
    assert!(st.book.is_empty());
}
