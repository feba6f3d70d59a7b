//! The venue engine: glues a sans-IO [`Codec`] to its book and to an honest status.
//!
//! The engine is still sans-IO: the feed driver, the replayer and the tests call it with frames,
//! REST bodies, connection events and the time. It decodes a frame without holding any lock, then
//! applies the codec's events to the shared [`VenueState`] under its mutex, so readers (aggregate,
//! dashboard, CSV writer) always see a whole message applied or none of it.
//!
//! Status rules ("status never lies"):
//! - a book becomes **live** only on the codec's [`Event::Synced`], and only if it is not crossed;
//! - a gap, a checksum mismatch, a crossed book or a malformed frame clears the book at once and
//!   puts the venue in **resyncing** until the codec syncs again;
//! - a disconnect clears the book (**connecting**);
//! - silence longer than the codec's limit makes an in-sync book **stale**; twice that asks the
//!   driver to reconnect. Data on the same connection makes it live again (nothing was missed:
//!   sequence numbers or checksums would say otherwise).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::book::{Book, Coverage};
use crate::decimal::Dec;
use crate::types::{Side, Venue};
use crate::venue::{Action, Codec, Event, FeedState, Millis, Output, Protocol};

/// Resyncs in a row without reaching live after which the engine reconnects instead.
const MAX_RESYNCS_IN_PLACE: u32 = 3;
/// A book side may hold this many times the depth kept before the engine resyncs instead of
/// truncating.
const LIMIT_FACTOR: usize = 2;
/// How long a blocked (HTTP 451) venue waits before it tries again.
pub const BLOCKED_RETRY_MS: u64 = 5 * 60 * 1000;
/// How long a rate-limited (HTTP 429) venue waits before it tries again.
pub const RATE_LIMITED_RETRY_MS: u64 = 60 * 1000;

/// Counters of one venue, since the program started.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct Counters {
    /// Text frames received.
    pub messages: u64,
    /// Bytes of text received (frames and REST bodies).
    pub bytes: u64,
    /// Frames that changed the book.
    pub book_messages: u64,
    /// Connections opened after the first.
    pub reconnects: u64,
    /// Times the book was thrown away and rebuilt.
    pub resyncs: u64,
    /// Sequence gaps seen.
    pub gaps: u64,
    /// Checksums that matched.
    pub checksums_ok: u64,
    /// Checksums that did not match.
    pub checksums_failed: u64,
    /// Frames that could not be decoded.
    pub malformed: u64,
    /// Messages per second over the last full second.
    pub msgs_per_sec: f64,
}

/// What one venue publishes: its book, state and counters. Readers lock it briefly.
#[derive(Clone, Debug)]
pub struct VenueState {
    /// Venue.
    pub venue: Venue,
    /// Protocol spoken.
    pub protocol: Protocol,
    /// Exchange symbol.
    pub symbol: String,
    /// Where the data comes from: the live endpoint URL, `demo`, or `replay FILE`.
    pub source: String,
    /// Feed state.
    pub state: FeedState,
    /// Why the feed is in that state.
    pub reason: String,
    /// Since when (Unix ms) the feed is in that state.
    pub state_since: Millis,
    /// The book (empty unless synced).
    pub book: Book,
    /// Counters.
    pub counters: Counters,
    /// When the last frame of any kind arrived (Unix ms), if any.
    pub last_message: Option<Millis>,
    /// When the book last changed (Unix ms), if ever.
    pub last_update: Option<Millis>,
    /// Exchange-to-local latency of the last stamped message, in ms.
    pub latency_ms: Option<i64>,
}

impl VenueState {
    /// A fresh state for a venue that has not connected yet.
    pub fn new(protocol: Protocol, symbol: &str, source: &str, now: Millis) -> VenueState {
        VenueState {
            venue: protocol.venue(),
            protocol,
            symbol: symbol.to_string(),
            source: source.to_string(),
            state: FeedState::Connecting,
            reason: "starting".to_string(),
            state_since: now,
            book: Book::new(),
            counters: Counters::default(),
            last_message: None,
            last_update: None,
            latency_ms: None,
        }
    }

    /// True when the book may be shown and written.
    pub fn is_live(&self) -> bool {
        self.state == FeedState::Live
    }

    /// Levels per side `(bids, asks)`.
    pub fn levels(&self) -> (usize, usize) {
        (self.book.len(Side::Bid), self.book.len(Side::Ask))
    }

    /// Covered price range of the book.
    pub fn coverage(&self) -> Coverage {
        self.book.coverage()
    }
}

/// A venue's published state, shared between its engine and the readers, with a version counter
/// that readers poll to learn that something changed (notify-then-pull: no queue).
#[derive(Clone, Debug)]
pub struct SharedVenue {
    state: Arc<Mutex<VenueState>>,
    version: Arc<AtomicU64>,
}

impl SharedVenue {
    /// Wrap a state.
    pub fn new(state: VenueState) -> SharedVenue {
        SharedVenue {
            state: Arc::new(Mutex::new(state)),
            version: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Lock the state (a poisoned lock is recovered: the state is plain data).
    pub fn lock(&self) -> MutexGuard<'_, VenueState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Bumped on every change.
    pub fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }

    fn bump(&self) {
        self.version.fetch_add(1, Ordering::Release);
    }
}

/// Drives one codec and keeps its venue's published state honest.
pub struct Engine {
    codec: Box<dyn Codec>,
    shared: SharedVenue,
    out: Output,
    actions: Vec<Action>,
    synced: bool,
    resyncs_in_a_row: u32,
    connected_once: bool,
    rate_window_start: Millis,
    rate_window_count: u64,
    depth_cap: usize,
}

impl Engine {
    /// An engine for a codec, publishing into `shared`.
    pub fn new(codec: Box<dyn Codec>, shared: SharedVenue) -> Engine {
        let depth_cap = codec.spec().depth.max(1);
        Engine {
            codec,
            shared,
            out: Output::default(),
            actions: Vec::new(),
            synced: false,
            resyncs_in_a_row: 0,
            connected_once: false,
            rate_window_start: 0,
            rate_window_count: 0,
            depth_cap,
        }
    }

    /// An engine with its own fresh shared state (tests, replay).
    pub fn standalone(codec: Box<dyn Codec>, source: &str, now: Millis) -> Engine {
        let st = VenueState::new(codec.protocol(), &codec.spec().symbol.clone(), source, now);
        Engine::new(codec, SharedVenue::new(st))
    }

    /// The shared state this engine publishes.
    pub fn shared(&self) -> &SharedVenue {
        &self.shared
    }

    /// The codec.
    pub fn codec(&self) -> &dyn Codec {
        self.codec.as_ref()
    }

    /// The URL the driver should connect to.
    pub fn connect_url(&self) -> String {
        self.codec.connect_url()
    }

    /// The driver is about to connect.
    pub fn on_connecting(&mut self, url: &str, now: Millis) {
        let mut st = self.shared.lock();
        // Blocked and down keep their reason visible until something better happens.
        if !matches!(st.state, FeedState::Blocked | FeedState::Down) {
            set_state(
                &mut st,
                FeedState::Connecting,
                format!("connecting to {url}"),
                now,
            );
        }
        drop(st);
        self.shared.bump();
    }

    /// The connection is open. Returns the frames to send and fetches to make.
    pub fn on_open(&mut self, now: Millis) -> &[Action] {
        self.out.clear();
        self.synced = false;
        self.codec.on_open(now, &mut self.out);
        {
            let mut st = self.shared.lock();
            if self.connected_once {
                st.counters.reconnects += 1;
            }
            st.book.clear();
            st.last_message = Some(now);
            set_state(
                &mut st,
                FeedState::Syncing,
                "subscribed, waiting for snapshot".into(),
                now,
            );
        }
        self.connected_once = true;
        self.shared.bump();
        self.actions.clear();
        self.actions.append(&mut self.out.actions);
        self.apply_events_from_out(now);
        &self.actions
    }

    /// A text frame arrived. Returns actions for the driver.
    pub fn on_text(&mut self, text: &str, now: Millis) -> &[Action] {
        self.out.clear();
        self.actions.clear();
        let res = self.codec.on_text(text, now, &mut self.out);
        match res {
            Ok(()) => {
                self.actions.append(&mut self.out.actions);
                self.apply_events_from_out(now);
            }
            Err(e) => {
                self.shared.lock().counters.malformed += 1;
                self.resync(&e.to_string(), now);
            }
        }
        // Counted once the frame's effect is published, so a reader that sees N messages sees the
        // book after N frames.
        self.count_message(text.len(), now);
        &self.actions
    }

    /// An HTTP response to a fetch arrived.
    pub fn on_http(&mut self, status: u16, body: &str, now: Millis) -> &[Action] {
        self.out.clear();
        self.actions.clear();
        {
            let mut st = self.shared.lock();
            st.counters.bytes += body.len() as u64;
            st.last_message = Some(now);
        }
        match self.codec.on_http(status, body, now, &mut self.out) {
            Ok(()) => {
                self.actions.append(&mut self.out.actions);
                self.apply_events_from_out(now);
            }
            Err(e) => {
                self.shared.lock().counters.malformed += 1;
                self.resync(&format!("snapshot: {e}"), now);
            }
        }
        &self.actions
    }

    /// Opening the connection failed, with the HTTP status of the handshake when there was one.
    /// Returns the minimum delay before the next attempt.
    pub fn on_connect_error(&mut self, http_status: Option<u16>, error: &str, now: Millis) -> u64 {
        let venue = self.codec.protocol().venue();
        let (state, reason, delay) = classify_http_failure(venue, http_status, error);
        let mut st = self.shared.lock();
        self.synced = false;
        st.book.clear();
        set_state(&mut st, state, reason, now);
        drop(st);
        self.shared.bump();
        delay
    }

    /// The connection closed or failed.
    pub fn on_close(&mut self, reason: &str, now: Millis) {
        self.synced = false;
        let mut st = self.shared.lock();
        st.book.clear();
        if !matches!(st.state, FeedState::Blocked | FeedState::Down) {
            set_state(
                &mut st,
                FeedState::Connecting,
                format!("disconnected ({reason}); reconnecting"),
                now,
            );
        }
        drop(st);
        self.shared.bump();
    }

    /// Periodic check (the driver calls it about once a second): staleness watchdog and the
    /// messages-per-second figure. Returns a reconnect action when the feed is silent for twice its
    /// limit.
    pub fn on_tick(&mut self, now: Millis) -> Option<Action> {
        self.roll_rate(now);
        let limit = self.codec.stale_after_ms();
        let mut st = self.shared.lock();
        let silent = now - st.last_message.unwrap_or(st.state_since);
        let mut action = None;
        if matches!(st.state, FeedState::Live) && silent > limit {
            set_state(
                &mut st,
                FeedState::Stale,
                format!("no data for {:.1} s", silent as f64 / 1000.0),
                now,
            );
            self.shared.bump();
        }
        if matches!(
            st.state,
            FeedState::Live | FeedState::Stale | FeedState::Syncing | FeedState::Resyncing
        ) && silent > 2 * limit
        {
            action = Some(Action::Reconnect {
                reason: format!("no data for {:.1} s", silent as f64 / 1000.0),
                min_delay_ms: 0,
            });
        }
        action
    }

    /// Decode error or integrity failure: clear the book, count, and ask the codec for a new
    /// snapshot (or reconnect after too many in a row).
    fn resync(&mut self, reason: &str, now: Millis) {
        self.synced = false;
        self.resyncs_in_a_row += 1;
        {
            let mut st = self.shared.lock();
            st.counters.resyncs += 1;
            st.book.clear();
            set_state(&mut st, FeedState::Resyncing, reason.to_string(), now);
        }
        self.shared.bump();
        let mut out = Output::default();
        if self.resyncs_in_a_row > MAX_RESYNCS_IN_PLACE {
            self.resyncs_in_a_row = 0;
            self.actions.push(Action::Reconnect {
                reason: format!("{reason} (repeated)"),
                min_delay_ms: 1000,
            });
        } else {
            self.codec.resync(now, &mut out);
            self.actions.append(&mut out.actions);
        }
    }

    fn count_message(&mut self, bytes: usize, now: Millis) {
        self.rate_window_count += 1;
        let mut st = self.shared.lock();
        st.counters.messages += 1;
        st.counters.bytes += bytes as u64;
        st.last_message = Some(now);
        if st.state == FeedState::Stale && self.synced {
            set_state(&mut st, FeedState::Live, "data resumed".into(), now);
        }
    }

    fn roll_rate(&mut self, now: Millis) {
        if self.rate_window_start == 0 {
            self.rate_window_start = now;
            return;
        }
        let span = now - self.rate_window_start;
        if span >= 1000 {
            let rate = self.rate_window_count as f64 * 1000.0 / span as f64;
            self.shared.lock().counters.msgs_per_sec = rate;
            self.rate_window_count = 0;
            self.rate_window_start = now;
        }
    }

    /// Apply `self.out.events` to the shared state, in order.
    fn apply_events_from_out(&mut self, now: Millis) {
        if self.out.events.is_empty() {
            return;
        }
        let events = std::mem::take(&mut self.out.events);
        let mut failure: Option<String> = None;
        {
            let mut st = self.shared.lock();
            let mut changed = false;
            for ev in &events {
                match ev {
                    Event::Snapshot { bids, asks } => {
                        if let Some(&(price, qty)) = bids
                            .iter()
                            .chain(asks.iter())
                            .find(|(p, q)| !is_valid_level(*p, *q))
                        {
                            st.counters.malformed += 1;
                            failure = Some(format!("invalid level (price {price}, qty {qty})"));
                            break;
                        }
                        st.book.replace(bids.iter().copied(), asks.iter().copied());
                        changed = true;
                    }
                    Event::Set { side, price, qty } => {
                        if !is_valid_level(*price, *qty) {
                            st.counters.malformed += 1;
                            failure = Some(format!("invalid level (price {price}, qty {qty})"));
                            break;
                        }
                        st.book.set(*side, *price, *qty);
                        changed = true;
                    }
                    Event::Truncate { depth } => st.book.truncate(*depth),
                    Event::Checksum { expected } => {
                        let got = self.codec.checksum(&st.book);
                        if got == *expected {
                            st.counters.checksums_ok += 1;
                        } else {
                            st.counters.checksums_failed += 1;
                            failure = Some(format!(
                                "checksum mismatch (exchange {expected}, local {got})"
                            ));
                            break;
                        }
                    }
                    Event::Synced => {
                        self.synced = true;
                    }
                    Event::Gap { expected, got } => {
                        st.counters.gaps += 1;
                        failure = Some(format!("sequence gap (expected {expected}, got {got})"));
                        break;
                    }
                    Event::ExchangeTime(ts) => st.latency_ms = Some(now - ts),
                    Event::State { state, reason } => {
                        if *state != FeedState::Live {
                            self.synced = false;
                            st.book.clear();
                        }
                        set_state(&mut st, *state, reason.clone(), now);
                    }
                    Event::Heartbeat => {}
                }
            }
            if failure.is_none() {
                if changed {
                    st.counters.book_messages += 1;
                    st.last_update = Some(now);
                }
                // Levels beyond the depth kept are dropped (Binance's diffs outside the snapshot
                // range, Kraken's levels that fall out of the subscription). A book that grows past
                // twice that is not an exchange's book any more but a hostile or broken server:
                // throw it away and count a resync rather than grow without bound.
                let cap = self.depth_cap;
                let (bids, asks) = (st.book.len(Side::Bid), st.book.len(Side::Ask));
                if bids.max(asks) > cap.saturating_mul(LIMIT_FACTOR) {
                    failure = Some(format!(
                        "book over the limit of {} levels per side ({bids} bids, {asks} asks)",
                        cap.saturating_mul(LIMIT_FACTOR)
                    ));
                } else if bids > cap || asks > cap {
                    st.book.truncate(cap);
                }
                if failure.is_none() && self.synced && st.book.is_crossed() {
                    let (b, a) = (st.book.best_bid(), st.book.best_ask());
                    failure = Some(format!(
                        "crossed book (bid {} >= ask {})",
                        b.map(|l| l.price.to_string()).unwrap_or_default(),
                        a.map(|l| l.price.to_string()).unwrap_or_default()
                    ));
                } else if failure.is_none() && self.synced && st.state != FeedState::Live {
                    self.resyncs_in_a_row = 0;
                    set_state(&mut st, FeedState::Live, "in sync".into(), now);
                }
            }
        }
        self.out.events = events;
        self.out.events.clear();
        self.shared.bump();
        if let Some(reason) = failure {
            self.resync(&reason, now);
        }
    }
}

/// A level any exchange could send: a positive price and a quantity that is not negative. A
/// codec reads whatever number the frame holds; a negative or zero price (a corrupted frame) would
/// otherwise land deep in the book, where no checksum looks.
fn is_valid_level(price: Dec, qty: Dec) -> bool {
    !price.is_negative() && !price.is_zero() && !qty.is_negative()
}

fn set_state(st: &mut VenueState, state: FeedState, reason: String, now: Millis) {
    if st.state != state {
        st.state_since = now;
        tracing::info!(venue = %st.venue, "{} -> {}: {}", st.state, state, reason);
    }
    st.state = state;
    st.reason = reason;
}

/// Map a failed handshake or REST call to a state, a reason a person understands, and the minimum
/// wait before trying again.
pub fn classify_http_failure(
    venue: Venue,
    http_status: Option<u16>,
    error: &str,
) -> (FeedState, String, u64) {
    match http_status {
        Some(451) => {
            let hint = if venue == Venue::Binance {
                "; the market-data-only hosts data-stream.binance.vision (WS) and \
                 data-api.binance.vision (REST) may work: --binance-ws / --binance-rest"
            } else {
                ""
            };
            (
                FeedState::Blocked,
                format!("HTTP 451, restricted location{hint}"),
                BLOCKED_RETRY_MS,
            )
        }
        Some(429) | Some(418) => (
            FeedState::Blocked,
            format!(
                "HTTP {}, rate limited by the exchange",
                http_status.unwrap_or(429)
            ),
            RATE_LIMITED_RETRY_MS,
        ),
        Some(code) => (FeedState::Down, format!("HTTP {code}: {error}"), 0),
        None => (FeedState::Down, error.to_string(), 0),
    }
}
