//! Binance spot diff-depth codec (`binance-spot`, protocols.md §1).
//!
//! The client connects to the combined stream `{ws}/stream?streams=<symbol>@depth@100ms` and keeps
//! the book with a REST snapshot (`GET {rest}/api/v3/depth?symbol=<SYMBOL>&limit=<≤5000>`) and the
//! diffs. The sync procedure is Binance's own, as corrected on **2025-11-12**
//! (`web-socket-streams.md` "How to manage a local order book correctly", CHANGELOG 2025-11-12):
//!
//! > 1. Open a WebSocket connection to `wss://stream.binance.com:9443/ws/bnbbtc@depth`.
//! > 2. Buffer the events received from the stream. Note the `U` of the first event you received.
//! > 3. Get a depth snapshot from `https://api.binance.com/api/v3/depth?symbol=BNBBTC&limit=5000`.
//! > 4. If the `lastUpdateId` from the snapshot is strictly less than the `U` from step 2, go back
//! >    to step 3.
//! > 5. In the buffered events, discard any event where `u` is `<=` `lastUpdateId` of the
//! >    snapshot. The first buffered event should now have `lastUpdateId` within its `[U;u]` range.
//! > 6. Set your local order book to the snapshot. Its update ID is `lastUpdateId`.
//! > 7. Apply the update procedure below to all buffered events, and then to all subsequent
//! >    events received.
//! >
//! > To apply an event to your local order book, follow this update procedure:
//! > 1. If the event last update ID (`u`) is less than the update ID of your local order book,
//! >    ignore the event.
//! > 2. If the event first update ID (`U`) is greater than the update ID of your local order book
//! >    + 1, you have missed some events. Discard your local order book and restart the process
//! >    from the beginning.
//! > 3. Normally, `U` of the next event is equal to `u + 1` of the previous event.
//! > 4. For each price level in bids (`b`) and asks (`a`), set the new quantity in the order book:
//! >    if the price level does not exist in the order book, insert it with the new quantity; if the
//! >    quantity is zero, remove the price level from the order book.
//! > 5. Set the order book update ID to the last update ID (`u`) in the processed event.
//!
//! How this codec maps it onto events and actions:
//! - The first buffered diff asks for the snapshot ([`Action::Fetch`]). The buffer is bounded
//!   ([`MAX_BUFFERED_DIFFS`]): past it the buffer is dropped and the procedure starts over.
//! - A snapshot older than the first buffered `U` is fetched again after [`REFETCH_DELAY_MS`].
//! - On a good snapshot: [`Event::Snapshot`], the remaining buffered diffs as [`Event::Set`]s (each
//!   checked for continuity: `U > id + 1` is an [`Event::Gap`] and a restart), then
//!   [`Event::Synced`]. Afterwards every diff is checked the same way.
//! - A diff whose `u` is at or below the book's id is ignored and counted
//!   ([`BinanceCodec::stale_diffs_dropped`]). The documented rule says "less than"; a diff with
//!   `u` equal to the id is already in the book (step 5 discards it for the same reason).
//! - A snapshot body that arrives while not in sync is used even if this codec did not ask for it:
//!   capture replay serves the recorded answers at their place in the file. Any HTTP answer that
//!   arrives while in sync is ignored: the live book is newer than a snapshot.
//! - HTTP 451 (restricted location) and 429/418 (rate limit) put the venue in
//!   [`FeedState::Blocked`] and reconnect after the engine's long waits; any other failure refetches
//!   with a growing delay, never in a tight loop.
//!
//! **Depth is incomplete by design.** The snapshot holds at most 5000 levels per side; "you won't
//! learn the quantities for the levels outside of the initial snapshot unless they change"
//! (`web-socket-streams.md` NOTE, cryptofeed#604). Levels beyond the snapshot appear only when a
//! diff touches them, so the far book is partial.
//!
//! **Staleness.** Binance sends nothing while a book is idle, and its keepalive is a protocol-level
//! ping every 20 s that the transport answers without the codec seeing it (protocols.md §1.5, §5).
//! The silence limit is therefore a data limit: BTCUSDT at 100 ms changes in practically every
//! window, so 10 s without a single diff (100 windows) means the stream is broken, not quiet.
//! A quiet altcoin may show stale, which is honest: nothing is known to be current.

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::decimal::Dec;
use crate::engine::classify_http_failure;
use crate::types::{Side, Venue};
use crate::venue::wire::{PairsSeed, decimal};
use crate::venue::{
    Action, Codec, CodecError, Event, FeedState, Millis, Output, Protocol, VenueSpec,
};

/// Diffs buffered while waiting for a snapshot before the buffer is dropped and sync restarts.
pub const MAX_BUFFERED_DIFFS: usize = 10_000;
/// Wait before fetching again a snapshot that was older than the first buffered diff.
pub const REFETCH_DELAY_MS: u64 = 500;
/// First wait before retrying a snapshot request that failed (doubles up to [`MAX_RETRY_DELAY_MS`]).
pub const FIRST_RETRY_DELAY_MS: u64 = 1000;
/// Longest wait between failed snapshot requests.
pub const MAX_RETRY_DELAY_MS: u64 = 30_000;
/// Deepest REST snapshot Binance serves (`rest-api.md` "Order book": limit ≤ 5000).
pub const MAX_SNAPSHOT_LIMIT: usize = 5000;
/// Silence after which the feed is stale (see the module doc).
pub const STALE_AFTER_MS: Millis = 10_000;

/// One buffered diff: its update-id range and where its levels sit in the level buffer.
#[derive(Clone, Copy, Debug)]
struct BufferedDiff {
    first_id: u64,
    last_id: u64,
    event_time: Option<Millis>,
    levels_end: usize,
}

/// Codec for `binance-spot`: diff depth stream plus REST snapshot.
pub struct BinanceCodec {
    spec: VenueSpec,
    /// The book's update id once in sync.
    book_id: Option<u64>,
    /// Diffs received before the snapshot, in order.
    buffer: Vec<BufferedDiff>,
    /// Levels of the buffered diffs (in order), or of the diff being decoded once in sync.
    levels: Vec<(Side, Dec, Dec)>,
    /// A snapshot request is out and not yet answered.
    fetch_pending: bool,
    /// Wait before the next retry of a failed snapshot request.
    retry_delay_ms: u64,
    stale_diffs_dropped: u64,
    snapshots_applied: u64,
}

impl BinanceCodec {
    /// A codec for a spec.
    pub fn new(spec: VenueSpec) -> Self {
        Self {
            spec,
            book_id: None,
            buffer: Vec::new(),
            levels: Vec::new(),
            fetch_pending: false,
            retry_delay_ms: FIRST_RETRY_DELAY_MS,
            stale_diffs_dropped: 0,
            snapshots_applied: 0,
        }
    }

    /// Diffs ignored because the book already held them (`u <= book update id`), whether
    /// discarded from the buffer when the snapshot came or received after it.
    pub fn stale_diffs_dropped(&self) -> u64 {
        self.stale_diffs_dropped
    }

    /// REST snapshots that were applied to the book.
    pub fn snapshots_applied(&self) -> u64 {
        self.snapshots_applied
    }

    /// The book's update id (`lastUpdateId` or the last applied `u`), once in sync.
    pub fn book_update_id(&self) -> Option<u64> {
        self.book_id
    }

    /// Diffs waiting for a snapshot.
    pub fn buffered_diffs(&self) -> usize {
        self.buffer.len()
    }

    /// The REST snapshot URL for this spec.
    pub fn snapshot_url(&self) -> String {
        let base = self
            .spec
            .rest_url
            .as_deref()
            .or(Protocol::BinanceSpot.default_rest_url())
            .unwrap_or_default()
            .trim_end_matches('/');
        format!(
            "{base}/api/v3/depth?symbol={}&limit={}",
            self.spec.symbol.to_ascii_uppercase(),
            self.spec.depth.clamp(1, MAX_SNAPSHOT_LIMIT)
        )
    }

    /// Forget the book and the buffer: back to step 1.
    fn restart(&mut self) {
        self.book_id = None;
        self.buffer.clear();
        self.levels.clear();
        self.fetch_pending = false;
    }

    fn fetch(&mut self, delay_ms: u64, out: &mut Output) {
        self.fetch_pending = true;
        out.actions.push(Action::Fetch {
            url: self.snapshot_url(),
            delay_ms,
        });
    }

    fn on_diff(&mut self, diff: DiffHead, levels_start: usize, out: &mut Output) {
        if let Some(ms) = diff.event_time {
            out.events.push(Event::ExchangeTime(ms));
        }
        match self.book_id {
            Some(id) => {
                if diff.last_id <= id {
                    self.stale_diffs_dropped += 1;
                } else if diff.first_id > id.saturating_add(1) {
                    out.events.push(Event::Gap {
                        expected: id.saturating_add(1),
                        got: diff.first_id,
                    });
                    self.restart();
                } else {
                    push_sets(&self.levels[levels_start..], out);
                    self.book_id = Some(diff.last_id);
                }
                self.levels.truncate(levels_start);
            }
            None => {
                if self.buffer.len() >= MAX_BUFFERED_DIFFS {
                    // The snapshot never came (or never fits): start over from this diff rather
                    // than grow without bound.
                    let kept: Vec<_> = self.levels.drain(levels_start..).collect();
                    self.restart();
                    self.levels.extend(kept);
                }
                self.buffer.push(BufferedDiff {
                    first_id: diff.first_id,
                    last_id: diff.last_id,
                    event_time: diff.event_time,
                    levels_end: self.levels.len(),
                });
                if !self.fetch_pending {
                    self.fetch(0, out);
                }
            }
        }
    }

    fn on_snapshot(&mut self, body: &str, out: &mut Output) -> Result<(), CodecError> {
        self.fetch_pending = false;
        let snap = parse_snapshot(body)?;
        self.retry_delay_ms = FIRST_RETRY_DELAY_MS;
        if let Some(first) = self.buffer.first()
            && snap.last_update_id < first.first_id
        {
            // Step 4: the snapshot predates the first buffered event.
            self.fetch(REFETCH_DELAY_MS, out);
            return Ok(());
        }
        out.events.push(Event::Snapshot {
            bids: snap.bids,
            asks: snap.asks,
        });
        self.snapshots_applied += 1;
        let mut id = snap.last_update_id;
        let mut start = 0;
        let buffer = std::mem::take(&mut self.buffer);
        for diff in &buffer {
            let levels = &self.levels[start..diff.levels_end];
            start = diff.levels_end;
            if diff.last_id <= id {
                self.stale_diffs_dropped += 1;
                continue;
            }
            if diff.first_id > id.saturating_add(1) {
                out.events.push(Event::Gap {
                    expected: id.saturating_add(1),
                    got: diff.first_id,
                });
                self.restart();
                return Ok(());
            }
            push_sets(levels, out);
            if let Some(ms) = diff.event_time {
                out.events.push(Event::ExchangeTime(ms));
            }
            id = diff.last_id;
        }
        self.buffer = buffer;
        self.buffer.clear();
        self.levels.clear();
        self.book_id = Some(id);
        out.events.push(Event::Synced);
        Ok(())
    }
}

fn push_sets(levels: &[(Side, Dec, Dec)], out: &mut Output) {
    out.events.extend(
        levels
            .iter()
            .map(|&(side, price, qty)| Event::Set { side, price, qty }),
    );
}

impl Codec for BinanceCodec {
    fn spec(&self) -> &VenueSpec {
        &self.spec
    }

    fn connect_url(&self) -> String {
        format!(
            "{}/stream?streams={}@depth@100ms",
            self.spec.ws_url.trim_end_matches('/'),
            self.spec.symbol.to_ascii_lowercase()
        )
    }

    fn on_open(&mut self, _now: Millis, _out: &mut Output) {
        // The stream is named in the URL: nothing to send (§1.2).
        self.restart();
        self.retry_delay_ms = FIRST_RETRY_DELAY_MS;
    }

    fn on_text(&mut self, text: &str, _now: Millis, out: &mut Output) -> Result<(), CodecError> {
        let start = self.levels.len();
        let mut de = serde_json::Deserializer::from_str(text);
        let parsed = FrameSeed {
            levels: &mut self.levels,
        }
        .deserialize(&mut de)
        .and_then(|frame| de.end().map(|()| frame));
        let frame = match parsed {
            Ok(frame) => frame,
            Err(e) => {
                self.levels.truncate(start);
                return Err(e.into());
            }
        };
        let error = match (frame.error_code, &frame.error_msg) {
            (Some(code), Some(msg)) => Some(format!("Binance error {code}: {msg}")),
            (None, Some(msg)) => Some(format!("Binance error: {msg}")),
            (Some(code), None) => Some(format!("Binance error {code}")),
            (None, None) => None,
        };
        if let Some(reason) = error {
            self.levels.truncate(start);
            self.restart();
            out.events.push(Event::State {
                state: FeedState::Down,
                reason,
            });
            return Ok(());
        }
        match frame.event {
            Some("depthUpdate")
                if frame
                    .symbol
                    .is_some_and(|s| s.eq_ignore_ascii_case(&self.spec.symbol)) =>
            {
                let (Some(first_id), Some(last_id)) = (frame.first_id, frame.last_id) else {
                    self.levels.truncate(start);
                    return Err(CodecError::malformed("depthUpdate without U/u"));
                };
                // Binance always sends both lists (empty when a side did not change); a missing one
                // means the frame was damaged, and applying the rest would lose an update while
                // its ids still count.
                if !(frame.has_bids && frame.has_asks) {
                    self.levels.truncate(start);
                    return Err(CodecError::malformed("depthUpdate without b or a"));
                }
                let head = DiffHead {
                    first_id,
                    last_id,
                    event_time: frame.event_time,
                };
                self.on_diff(head, start, out);
            }
            Some("serverShutdown") => {
                self.levels.truncate(start);
                out.actions.push(Action::Reconnect {
                    reason: "Binance serverShutdown: the server is about to close".into(),
                    min_delay_ms: 0,
                });
            }
            _ => {
                // Other streams, other symbols, the subscribe ack: nothing for this book.
                self.levels.truncate(start);
                if frame.is_ack {
                    out.events.push(Event::Heartbeat);
                }
            }
        }
        Ok(())
    }

    fn on_http(
        &mut self,
        status: u16,
        body: &str,
        _now: Millis,
        out: &mut Output,
    ) -> Result<(), CodecError> {
        if self.book_id.is_some() {
            // A late or duplicate answer (or, in replay, a recorded one) while in sync: the live
            // book is newer than any snapshot, and a failed request no longer matters.
            self.fetch_pending = false;
            return Ok(());
        }
        match status {
            200 => self.on_snapshot(body, out),
            451 | 429 | 418 => {
                let (state, mut reason, delay) =
                    classify_http_failure(Venue::Binance, Some(status), "");
                if let Some(msg) = error_message(body) {
                    reason.push_str(&format!(" (exchange: {msg})"));
                }
                self.restart();
                out.events.push(Event::State { state, reason });
                // `delay` is the engine's BLOCKED_RETRY_MS (451) or RATE_LIMITED_RETRY_MS.
                out.actions.push(Action::Reconnect {
                    reason: format!("HTTP {status} on the depth snapshot"),
                    min_delay_ms: delay,
                });
                Ok(())
            }
            _ => {
                // A server error or an odd answer: try again later, backing off.
                let delay = self.retry_delay_ms;
                self.retry_delay_ms = (delay * 2).min(MAX_RETRY_DELAY_MS);
                self.fetch(delay, out);
                Ok(())
            }
        }
    }

    fn resync(&mut self, _now: Millis, _out: &mut Output) {
        // Back to step 1: the next diff is buffered and asks for a new snapshot.
        self.restart();
    }

    fn stale_after_ms(&self) -> Millis {
        STALE_AFTER_MS
    }
}

/// The REST answer's `msg`, if the body is a Binance error object.
fn error_message(body: &str) -> Option<String> {
    #[derive(Deserialize)]
    struct ErrorBody<'a> {
        #[serde(borrow)]
        msg: Option<Cow<'a, str>>,
    }
    serde_json::from_str::<ErrorBody>(body)
        .ok()
        .and_then(|b| b.msg)
        .map(Cow::into_owned)
}

struct Snapshot {
    last_update_id: u64,
    bids: Vec<(Dec, Dec)>,
    asks: Vec<(Dec, Dec)>,
}

fn parse_snapshot(body: &str) -> Result<Snapshot, CodecError> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Body {
        last_update_id: u64,
        bids: Pairs,
        asks: Pairs,
    }
    let b: Body = serde_json::from_str(body)?;
    Ok(Snapshot {
        last_update_id: b.last_update_id,
        bids: b.bids.0,
        asks: b.asks.0,
    })
}

/// `[[price, qty], ...]` as exact decimals, parsed from borrowed text.
struct Pairs(Vec<(Dec, Dec)>);

impl<'de> Deserialize<'de> for Pairs {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct PairsVisitor;
        impl<'de> Visitor<'de> for PairsVisitor {
            type Value = Pairs;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list of [price, quantity] string pairs")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Pairs, A::Error> {
                let mut v = Vec::with_capacity(seq.size_hint().unwrap_or(1024));
                while let Some((p, q)) = seq.next_element::<(&'de str, &'de str)>()? {
                    v.push((decimal::<A::Error>(p)?, decimal::<A::Error>(q)?));
                }
                Ok(Pairs(v))
            }
        }
        d.deserialize_seq(PairsVisitor)
    }
}

/// What the decoder keeps of a `depthUpdate` besides its levels.
#[derive(Clone, Copy, Debug)]
struct DiffHead {
    first_id: u64,
    last_id: u64,
    event_time: Option<Millis>,
}

/// The fields of a frame (raw event, combined-stream envelope, ack or error) this codec reads.
#[derive(Default)]
struct Frame<'de> {
    event: Option<&'de str>,
    event_time: Option<Millis>,
    symbol: Option<&'de str>,
    first_id: Option<u64>,
    last_id: Option<u64>,
    error_code: Option<i64>,
    error_msg: Option<Cow<'de, str>>,
    is_ack: bool,
    has_bids: bool,
    has_asks: bool,
}

#[derive(Deserialize)]
#[serde(field_identifier)]
enum Key {
    #[serde(rename = "e")]
    Event,
    #[serde(rename = "E")]
    EventTime,
    #[serde(rename = "s")]
    Symbol,
    #[serde(rename = "U")]
    FirstId,
    #[serde(rename = "u")]
    LastId,
    #[serde(rename = "b")]
    Bids,
    #[serde(rename = "a")]
    Asks,
    #[serde(rename = "data")]
    Data,
    #[serde(rename = "code")]
    Code,
    #[serde(rename = "msg")]
    Msg,
    #[serde(rename = "error")]
    Error,
    #[serde(rename = "result")]
    Result,
    #[serde(other)]
    Other,
}

/// Decodes a frame in one pass, appending `b`/`a` levels to `levels` (the caller keeps or drops
/// them once it knows the event type and symbol).
struct FrameSeed<'v> {
    levels: &'v mut Vec<(Side, Dec, Dec)>,
}

impl<'de> DeserializeSeed<'de> for FrameSeed<'_> {
    type Value = Frame<'de>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Frame<'de>, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for FrameSeed<'_> {
    type Value = Frame<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a Binance stream frame (JSON object)")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Frame<'de>, A::Error> {
        let levels = self.levels;
        let mut f = Frame::default();
        while let Some(key) = map.next_key::<Key>()? {
            match key {
                Key::Event => f.event = Some(map.next_value()?),
                Key::EventTime => f.event_time = map.next_value()?,
                Key::Symbol => f.symbol = map.next_value()?,
                Key::FirstId => f.first_id = map.next_value()?,
                Key::LastId => f.last_id = map.next_value()?,
                Key::Bids | Key::Asks if f.event.is_some_and(|e| e != "depthUpdate") => {
                    map.next_value::<IgnoredAny>()?;
                }
                Key::Bids => {
                    f.has_bids = true;
                    map.next_value_seed(PairsSeed {
                        side: Side::Bid,
                        levels: &mut *levels,
                        skip_other_types: true,
                    })?
                }
                Key::Asks => {
                    f.has_asks = true;
                    map.next_value_seed(PairsSeed {
                        side: Side::Ask,
                        levels: &mut *levels,
                        skip_other_types: true,
                    })?
                }
                Key::Data => {
                    let inner = map.next_value_seed(FrameSeed {
                        levels: &mut *levels,
                    })?;
                    f = Frame {
                        is_ack: f.is_ack || inner.is_ack,
                        error_code: inner.error_code.or(f.error_code),
                        error_msg: inner.error_msg.or(f.error_msg),
                        ..inner
                    };
                }
                Key::Code => f.error_code = map.next_value()?,
                Key::Msg => f.error_msg = map.next_value()?,
                Key::Error => {
                    let e: Option<ErrorObject> = map.next_value()?;
                    if let Some(e) = e {
                        f.error_code = e.code.or(f.error_code);
                        f.error_msg = e.msg.or(f.error_msg);
                    }
                }
                Key::Result => {
                    f.is_ack = true;
                    map.next_value::<IgnoredAny>()?;
                }
                Key::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(f)
    }
}

/// `{"error": {"code": .., "msg": ..}}` of a rejected request.
#[derive(Deserialize)]
struct ErrorObject<'a> {
    code: Option<i64>,
    #[serde(borrow)]
    msg: Option<Cow<'a, str>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codec() -> BinanceCodec {
        BinanceCodec::new(VenueSpec::new(Protocol::BinanceSpot, "BTCUSDT"))
    }

    fn d(s: &str) -> Dec {
        Dec::parse(s).expect("valid decimal")
    }

    fn diff(u0: u64, u1: u64, bid: &str) -> String {
        format!(
            r#"{{"stream":"btcusdt@depth@100ms","data":{{"e":"depthUpdate","E":1700000000123,"s":"BTCUSDT","U":{u0},"u":{u1},"b":[["{bid}","1.5"]],"a":[]}}}}"#
        )
    }

    #[test]
    fn urls_follow_the_spec() {
        let mut spec = VenueSpec::new(Protocol::BinanceSpot, "BTCUSDT");
        assert_eq!(
            BinanceCodec::new(spec.clone()).connect_url(),
            "wss://stream.binance.com:9443/stream?streams=btcusdt@depth@100ms"
        );
        assert_eq!(
            BinanceCodec::new(spec.clone()).snapshot_url(),
            "https://api.binance.com/api/v3/depth?symbol=BTCUSDT&limit=5000"
        );
        spec.depth = 200_000;
        spec.rest_url = Some("https://data-api.binance.vision/".into());
        assert_eq!(
            BinanceCodec::new(spec).snapshot_url(),
            "https://data-api.binance.vision/api/v3/depth?symbol=BTCUSDT&limit=5000"
        );
    }

    #[test]
    fn buffers_fetches_once_and_applies_remaining_diffs() {
        let mut c = codec();
        let mut out = Output::default();
        c.on_text(&diff(10, 12, "100"), 0, &mut out)
            .expect("decodes");
        assert_eq!(
            out.actions,
            [Action::Fetch {
                url: c.snapshot_url(),
                delay_ms: 0
            }]
        );
        out.clear();
        c.on_text(&diff(13, 15, "101"), 0, &mut out)
            .expect("decodes");
        assert!(out.actions.is_empty(), "one fetch at a time");
        out.clear();
        let body = r#"{"lastUpdateId":12,"bids":[["99","1"]],"asks":[["102","2"]]}"#;
        c.on_http(200, body, 0, &mut out).expect("decodes");
        assert_eq!(
            out.events,
            [
                Event::Snapshot {
                    bids: vec![(d("99"), d("1"))],
                    asks: vec![(d("102"), d("2"))]
                },
                Event::Set {
                    side: Side::Bid,
                    price: d("101"),
                    qty: d("1.5")
                },
                Event::ExchangeTime(1700000000123),
                Event::Synced,
            ]
        );
        assert_eq!(c.stale_diffs_dropped(), 1);
        assert_eq!(c.book_update_id(), Some(15));
    }

    #[test]
    fn old_snapshot_is_fetched_again_with_a_delay() {
        let mut c = codec();
        let mut out = Output::default();
        c.on_text(&diff(10, 12, "100"), 0, &mut out)
            .expect("decodes");
        out.clear();
        c.on_http(
            200,
            r#"{"lastUpdateId":9,"bids":[],"asks":[]}"#,
            0,
            &mut out,
        )
        .expect("decodes");
        assert!(out.events.is_empty());
        assert_eq!(
            out.actions,
            [Action::Fetch {
                url: c.snapshot_url(),
                delay_ms: REFETCH_DELAY_MS
            }]
        );
    }

    #[test]
    fn failed_fetch_backs_off() {
        let mut c = codec();
        let mut out = Output::default();
        c.on_text(&diff(10, 12, "100"), 0, &mut out)
            .expect("decodes");
        let delays: Vec<u64> = (0..7)
            .map(|_| {
                out.clear();
                c.on_http(503, "", 0, &mut out).expect("no error");
                match out.actions.as_slice() {
                    [Action::Fetch { delay_ms, .. }] => *delay_ms,
                    other => panic!("unexpected {other:?}"),
                }
            })
            .collect();
        assert_eq!(delays, [1000, 2000, 4000, 8000, 16000, 30000, 30000]);
    }

    #[test]
    fn gap_after_sync_restarts() {
        let mut c = codec();
        let mut out = Output::default();
        c.on_http(
            200,
            r#"{"lastUpdateId":12,"bids":[],"asks":[]}"#,
            0,
            &mut out,
        )
        .expect("decodes");
        assert_eq!(out.events.last(), Some(&Event::Synced));
        out.clear();
        c.on_text(&diff(13, 14, "100"), 0, &mut out)
            .expect("decodes");
        c.on_text(&diff(16, 17, "100"), 0, &mut out)
            .expect("decodes");
        assert_eq!(
            out.events.last(),
            Some(&Event::Gap {
                expected: 15,
                got: 16
            })
        );
        assert_eq!(c.book_update_id(), None);
        out.clear();
        c.on_http(
            200,
            r#"{"lastUpdateId":30,"bids":[],"asks":[]}"#,
            0,
            &mut out,
        )
        .expect("decodes");
        assert_eq!(out.events.last(), Some(&Event::Synced));
        out.clear();
        for (status, body) in [(200, "{}"), (503, ""), (451, "")] {
            c.on_http(status, body, 0, &mut out).expect("ignored");
        }
        assert!(
            out.events.is_empty() && out.actions.is_empty(),
            "answers while in sync"
        );
        c.resync(0, &mut out);
        out.clear();
        c.on_text(&diff(18, 19, "100"), 0, &mut out)
            .expect("decodes");
        assert_eq!(out.actions.len(), 1, "a new snapshot is fetched");
    }

    #[test]
    fn buffer_is_bounded() {
        let mut c = codec();
        let mut out = Output::default();
        for i in 0..MAX_BUFFERED_DIFFS as u64 + 5 {
            c.on_text(&diff(10 + i, 10 + i, "100"), 0, &mut out)
                .expect("decodes");
        }
        assert_eq!(c.buffered_diffs(), 5);
        let fetches = out
            .actions
            .iter()
            .filter(|a| matches!(a, Action::Fetch { .. }))
            .count();
        assert_eq!(fetches, 2);
    }

    #[test]
    fn control_frames() {
        let mut c = codec();
        let mut out = Output::default();
        c.on_text(r#"{"result":null,"id":1}"#, 0, &mut out)
            .expect("decodes");
        assert_eq!(out.events, [Event::Heartbeat]);
        out.clear();
        c.on_text(r#"{"e":"serverShutdown","E":1700000000000}"#, 0, &mut out)
            .expect("decodes");
        assert!(matches!(
            out.actions.as_slice(),
            [Action::Reconnect {
                min_delay_ms: 0,
                ..
            }]
        ));
        out.clear();
        c.on_text(
            r#"{"code":2,"msg":"Invalid request: unknown variant"}"#,
            0,
            &mut out,
        )
        .expect("decodes");
        assert_eq!(
            out.events,
            [Event::State {
                state: FeedState::Down,
                reason: "Binance error 2: Invalid request: unknown variant".into()
            }]
        );
        out.clear();
        // Raw (not combined) events, other symbols and other event types.
        c.on_text(
            r#"{"e":"depthUpdate","E":1,"s":"ETHUSDT","U":1,"u":2,"b":[["1","1"]],"a":[]}"#,
            0,
            &mut out,
        )
        .expect("decodes");
        c.on_text(
            r#"{"u":400900217,"s":"BTCUSDT","b":"25.35","B":"31.2","a":"25.36","A":"40.6"}"#,
            0,
            &mut out,
        )
        .expect("decodes");
        assert!(out.events.is_empty() && out.actions.is_empty());
        c.on_text(
            r#"{"e":"depthUpdate","E":1,"s":"btcusdt","U":1,"u":2,"b":[["1","1"]],"a":[]}"#,
            0,
            &mut out,
        )
        .expect("decodes");
        assert_eq!(c.buffered_diffs(), 1);
        assert!(
            c.on_text(r#"{"e":"depthUpdate","s":"BTCUSDT""#, 0, &mut out)
                .is_err()
        );
        assert!(
            c.on_text(
                r#"{"e":"depthUpdate","s":"BTCUSDT","U":1,"u":2,"b":[["x","1"]]}"#,
                0,
                &mut out
            )
            .is_err()
        );
        assert_eq!(c.buffered_diffs(), 1);
    }
}
