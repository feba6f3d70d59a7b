//! Coinbase codecs: Advanced Trade `level2` ([`AdvancedCodec`]) and Exchange `level2_batch`
//! ([`ExchangeCodec`]) (protocols.md §2).
//!
//! **Advanced Trade** (`wss://advanced-trade-ws.coinbase.com`, recommended, §9). One subscribe per
//! channel: `level2` for the product and `heartbeats` (quiet subscriptions close within 60–90 s
//! without it, §2.5). Book messages arrive on channel `l2_data` as events `snapshot` (the entire
//! book) and `update`, each a list of `{side, price_level, new_quantity}` with absolute quantities;
//! asks are `"side": "offer"` (§2.3: a peer library filters on `ask` and loses the ask side).
//! `sequence_num` sits on the envelope and is shared by every channel of the connection, so it is
//! tracked per connection (§2.4): a jump of more than one is a [`Event::Gap`] (the engine resyncs
//! and this codec resubscribes `level2` for a new snapshot); a lower number is out of order and
//! ignored. Updates before the first snapshot are ignored. Snapshot `event_time` is epoch 0, so the
//! envelope `timestamp` is the exchange time.
//!
//! **Exchange** (`wss://ws-feed.exchange.coinbase.com`, fallback). `level2_batch` (same schema as
//! `level2`, which needs authentication since 2023-08-01, §2.1) plus `heartbeat`. Messages
//! `snapshot` (`bids`/`asks` as `[price, size]`) and `l2update` (`changes` as
//! `[buy|sell, price, size]`, `time`). There are no sequence numbers: a gap can only come from a
//! disconnect, after which the new subscription's snapshot rebuilds the book.
//!
//! Both decoders read a frame in one pass with borrowed strings, parse prices straight into
//! [`Dec`] and skip other products' levels without decoding them; the 5 MB BTC-USD snapshot never
//! goes through `serde_json::Value`.
//!
//! **Staleness.** Both feeds send a heartbeat per second (§2.5); three seconds of silence is
//! three missed heartbeats.

use std::borrow::Cow;
use std::fmt;
use std::ops::Range;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::decimal::Dec;
use crate::types::Side;
use crate::venue::wire::{PairsSeed, decimal};
use crate::venue::{Codec, CodecError, Event, FeedState, Millis, Output, VenueSpec};

/// Silence after which a Coinbase feed is stale: three missed one-second heartbeats.
pub const STALE_AFTER_MS: Millis = 3000;

/// Parse an RFC 3339 time stamp (`2023-02-09T20:32:50.714964855Z`, `2021-04-17T16:43:37.075Z`,
/// offsets `+hh:mm`) into Unix milliseconds. Digits beyond milliseconds are truncated.
pub fn parse_rfc3339_ms(text: &str) -> Option<Millis> {
    let b = text.as_bytes();
    let num = |r: Range<usize>| -> Option<i64> {
        let digits = b.get(r)?;
        digits.iter().try_fold(0i64, |acc, &c| {
            c.is_ascii_digit().then(|| acc * 10 + i64::from(c - b'0'))
        })
    };
    let sep = |i: usize, allowed: &[u8]| b.get(i).is_some_and(|c| allowed.contains(c));
    if !(sep(4, b"-") && sep(7, b"-") && sep(10, b"Tt ") && sep(13, b":") && sep(16, b":")) {
        return None;
    }
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let mut i = 19;
    let mut millis = 0;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            if i - start < 3 {
                millis = millis * 10 + i64::from(b[i] - b'0');
            }
            i += 1;
        }
        if i == start {
            return None;
        }
        for _ in (i - start)..3 {
            millis *= 10;
        }
    }
    let offset_s = match b.get(i) {
        Some(b'Z' | b'z') if i + 1 == b.len() => 0,
        Some(&sign @ (b'+' | b'-')) if i + 6 == b.len() && sep(i + 3, b":") => {
            let s = num(i + 1..i + 3)? * 3600 + num(i + 4..i + 6)? * 60;
            if sign == b'+' { s } else { -s }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset_s;
    Some(secs * 1000 + millis)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn json_str(s: &str) -> String {
    serde_json::Value::from(s).to_string()
}

fn error_reason(message: Option<&str>, reason: Option<&str>) -> String {
    match (message, reason) {
        (Some(m), Some(r)) => format!("Coinbase error: {m}: {r}"),
        (Some(m), None) | (None, Some(m)) => format!("Coinbase error: {m}"),
        (None, None) => "Coinbase error (no message)".to_string(),
    }
}

fn push_sets(levels: &[(Side, Dec, Dec)], out: &mut Output) {
    out.events.extend(
        levels
            .iter()
            .map(|&(side, price, qty)| Event::Set { side, price, qty }),
    );
}

fn snapshot_event(levels: &[(Side, Dec, Dec)]) -> Event {
    let bid_count = levels.iter().filter(|l| l.0 == Side::Bid).count();
    let mut bids = Vec::with_capacity(bid_count);
    let mut asks = Vec::with_capacity(levels.len() - bid_count);
    for &(side, price, qty) in levels {
        match side {
            Side::Bid => bids.push((price, qty)),
            Side::Ask => asks.push((price, qty)),
        }
    }
    Event::Snapshot { bids, asks }
}

// ------------------------------------------------------------------------------------------------
// Advanced Trade
// ------------------------------------------------------------------------------------------------

/// Codec for `coinbase-advanced`: Advanced Trade `level2` + `heartbeats`.
pub struct AdvancedCodec {
    spec: VenueSpec,
    /// Last `sequence_num` seen on this connection (any channel).
    last_seq: Option<u64>,
    /// A snapshot of the product was applied since the last (re)subscription.
    has_snapshot: bool,
    levels: Vec<(Side, Dec, Dec)>,
    events: Vec<L2Event>,
    updates_before_snapshot: u64,
    out_of_order: u64,
}

impl AdvancedCodec {
    /// A codec for a spec.
    pub fn new(spec: VenueSpec) -> Self {
        Self {
            spec,
            last_seq: None,
            has_snapshot: false,
            levels: Vec::new(),
            events: Vec::new(),
            updates_before_snapshot: 0,
            out_of_order: 0,
        }
    }

    /// `update` events of the product that came before its snapshot and were ignored.
    pub fn updates_before_snapshot(&self) -> u64 {
        self.updates_before_snapshot
    }

    /// Frames ignored because their `sequence_num` was not above the last one seen.
    pub fn out_of_order_frames(&self) -> u64 {
        self.out_of_order
    }

    fn subscribe_level2(&self, kind: &str) -> String {
        format!(
            r#"{{"type":"{kind}","product_ids":[{}],"channel":"level2"}}"#,
            json_str(&self.spec.symbol)
        )
    }
}

impl Codec for AdvancedCodec {
    fn spec(&self) -> &VenueSpec {
        &self.spec
    }

    fn on_open(&mut self, _now: Millis, out: &mut Output) {
        self.last_seq = None;
        self.has_snapshot = false;
        out.actions.push(crate::venue::Action::Send(
            self.subscribe_level2("subscribe"),
        ));
        out.actions.push(crate::venue::Action::Send(
            r#"{"type":"subscribe","channel":"heartbeats"}"#.to_string(),
        ));
    }

    fn on_text(&mut self, text: &str, _now: Millis, out: &mut Output) -> Result<(), CodecError> {
        self.levels.clear();
        self.events.clear();
        let mut de = serde_json::Deserializer::from_str(text);
        let frame = AdvancedSeed {
            symbol: &self.spec.symbol,
            levels: &mut self.levels,
            events: &mut self.events,
        }
        .deserialize(&mut de)?;
        de.end()?;

        if frame.kind == Some("error") {
            self.has_snapshot = false;
            out.events.push(Event::State {
                state: FeedState::Down,
                reason: error_reason(frame.message.as_deref(), frame.reason.as_deref()),
            });
            return Ok(());
        }
        if let Some(seq) = frame.sequence {
            match self.last_seq {
                Some(last) if seq <= last => {
                    // §2.4: "lower than previous: out-of-order, can be ignored".
                    self.out_of_order += 1;
                    return Ok(());
                }
                Some(last) if seq > last.saturating_add(1) => {
                    self.last_seq = Some(seq);
                    self.has_snapshot = false;
                    out.events.push(Event::Gap {
                        expected: last.saturating_add(1),
                        got: seq,
                    });
                    return Ok(());
                }
                _ => self.last_seq = Some(seq),
            }
        }
        match frame.channel {
            Some("l2_data") => {
                let mut touched = false;
                for ev in &self.events {
                    let levels = &self.levels[ev.levels.clone()];
                    match ev.kind {
                        L2Kind::Snapshot => {
                            out.events.push(snapshot_event(levels));
                            out.events.push(Event::Synced);
                            self.has_snapshot = true;
                            touched = true;
                        }
                        L2Kind::Update if self.has_snapshot => {
                            push_sets(levels, out);
                            touched = true;
                        }
                        L2Kind::Update => self.updates_before_snapshot += 1,
                    }
                }
                if touched && let Some(ms) = frame.timestamp.and_then(parse_rfc3339_ms) {
                    out.events.push(Event::ExchangeTime(ms));
                }
            }
            Some("heartbeats" | "subscriptions") => out.events.push(Event::Heartbeat),
            _ => {}
        }
        if let Some(message) = frame.event_error {
            self.has_snapshot = false;
            out.events.push(Event::State {
                state: FeedState::Down,
                reason: error_reason(Some(&message), None),
            });
        }
        Ok(())
    }

    fn resync(&mut self, _now: Millis, out: &mut Output) {
        // A fresh subscription sends a fresh snapshot; sequence tracking carries on (§2.4).
        self.has_snapshot = false;
        out.actions.push(crate::venue::Action::Send(
            self.subscribe_level2("unsubscribe"),
        ));
        out.actions.push(crate::venue::Action::Send(
            self.subscribe_level2("subscribe"),
        ));
    }

    fn stale_after_ms(&self) -> Millis {
        STALE_AFTER_MS
    }
}

/// One `l2_data` event of the followed product, its levels in the level buffer.
#[derive(Clone, Debug)]
struct L2Event {
    kind: L2Kind,
    levels: Range<usize>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum L2Kind {
    Snapshot,
    Update,
}

/// The envelope fields of an Advanced Trade frame.
#[derive(Default)]
struct AdvancedFrame<'de> {
    channel: Option<&'de str>,
    timestamp: Option<&'de str>,
    sequence: Option<u64>,
    kind: Option<&'de str>,
    message: Option<Cow<'de, str>>,
    reason: Option<Cow<'de, str>>,
    /// The message of an `{"type":"error"}` event inside `events`.
    event_error: Option<String>,
}

#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "snake_case")]
enum AdvancedKey {
    Channel,
    Timestamp,
    SequenceNum,
    Events,
    Type,
    Message,
    Reason,
    #[serde(other)]
    Other,
}

struct AdvancedSeed<'v> {
    symbol: &'v str,
    levels: &'v mut Vec<(Side, Dec, Dec)>,
    events: &'v mut Vec<L2Event>,
}

impl<'de> DeserializeSeed<'de> for AdvancedSeed<'_> {
    type Value = AdvancedFrame<'de>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for AdvancedSeed<'_> {
    type Value = AdvancedFrame<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a Coinbase Advanced Trade frame (JSON object)")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut f = AdvancedFrame::default();
        while let Some(key) = map.next_key::<AdvancedKey>()? {
            match key {
                AdvancedKey::Channel => f.channel = map.next_value()?,
                AdvancedKey::Timestamp => f.timestamp = map.next_value()?,
                AdvancedKey::SequenceNum => f.sequence = map.next_value()?,
                AdvancedKey::Type => f.kind = map.next_value()?,
                AdvancedKey::Message => f.message = map.next_value()?,
                AdvancedKey::Reason => f.reason = map.next_value()?,
                // Other channels' events (trades, tickers, candles) are skipped unread.
                AdvancedKey::Events if f.channel.is_some_and(|c| c != "l2_data") => {
                    map.next_value::<IgnoredAny>()?;
                }
                AdvancedKey::Events => {
                    f.event_error = map.next_value_seed(L2EventsSeed {
                        symbol: self.symbol,
                        levels: &mut *self.levels,
                        events: &mut *self.events,
                    })?;
                }
                AdvancedKey::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(f)
    }
}

/// `events: [...]` of an `l2_data` frame; returns the message of an error event, if any.
struct L2EventsSeed<'v> {
    symbol: &'v str,
    levels: &'v mut Vec<(Side, Dec, Dec)>,
    events: &'v mut Vec<L2Event>,
}

impl<'de> DeserializeSeed<'de> for L2EventsSeed<'_> {
    type Value = Option<String>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for L2EventsSeed<'_> {
    type Value = Option<String>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of level2 events")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut error = None;
        loop {
            let seed = L2EventSeed {
                symbol: self.symbol,
                levels: &mut *self.levels,
            };
            match seq.next_element_seed(seed)? {
                None => break,
                Some(L2EventOutcome::Error(message)) => error = Some(message),
                Some(L2EventOutcome::Ours(ev)) => self.events.push(ev),
                Some(L2EventOutcome::Skipped) => {}
            }
        }
        Ok(error)
    }
}

enum L2EventOutcome {
    Ours(L2Event),
    Error(String),
    Skipped,
}

#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "snake_case")]
enum L2EventKey {
    Type,
    ProductId,
    Updates,
    Message,
    #[serde(other)]
    Other,
}

/// One event object: `{type, product_id, updates}`. Updates of another product are skipped
/// unread when `product_id` comes first (it does on the wire) and dropped otherwise.
struct L2EventSeed<'v> {
    symbol: &'v str,
    levels: &'v mut Vec<(Side, Dec, Dec)>,
}

impl<'de> DeserializeSeed<'de> for L2EventSeed<'_> {
    type Value = L2EventOutcome;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for L2EventSeed<'_> {
    type Value = L2EventOutcome;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a level2 event object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let start = self.levels.len();
        let mut kind: Option<&'de str> = None;
        let mut ours: Option<bool> = None;
        let mut has_updates = false;
        let mut message: Option<Cow<'de, str>> = None;
        while let Some(key) = map.next_key::<L2EventKey>()? {
            match key {
                L2EventKey::Type => kind = Some(map.next_value()?),
                L2EventKey::ProductId => {
                    let product: &'de str = map.next_value()?;
                    ours = Some(product == self.symbol);
                }
                L2EventKey::Updates if ours == Some(false) => {
                    map.next_value::<IgnoredAny>()?;
                }
                L2EventKey::Updates => {
                    has_updates = true;
                    map.next_value_seed(UpdatesSeed {
                        levels: &mut *self.levels,
                    })?
                }
                L2EventKey::Message => message = map.next_value()?,
                L2EventKey::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        if kind == Some("error") {
            self.levels.truncate(start);
            let message = message.map_or_else(|| "error event".to_string(), Cow::into_owned);
            return Ok(L2EventOutcome::Error(message));
        }
        if ours != Some(true) {
            self.levels.truncate(start);
            return Ok(L2EventOutcome::Skipped);
        }
        // An event of our product always says what it is and carries its updates: one that does
        // not was damaged, and skipping it would lose an update while its sequence number counts.
        let kind = match (kind, has_updates) {
            (Some("snapshot"), true) => L2Kind::Snapshot,
            (Some("update"), true) => L2Kind::Update,
            _ => {
                self.levels.truncate(start);
                return Err(de::Error::custom(
                    "level2 event of our product without a known type or its updates",
                ));
            }
        };
        Ok(L2EventOutcome::Ours(L2Event {
            kind,
            levels: start..self.levels.len(),
        }))
    }
}

/// `updates: [{side, event_time, price_level, new_quantity}, ...]`.
struct UpdatesSeed<'v> {
    levels: &'v mut Vec<(Side, Dec, Dec)>,
}

#[derive(Deserialize)]
struct UpdateRow<'a> {
    #[serde(borrow)]
    side: &'a str,
    #[serde(borrow)]
    price_level: &'a str,
    #[serde(borrow)]
    new_quantity: &'a str,
}

impl<'de> DeserializeSeed<'de> for UpdatesSeed<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for UpdatesSeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of level2 updates")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(row) = seq.next_element::<UpdateRow<'de>>()? {
            let side = match row.side {
                "bid" => Side::Bid,
                // §2.3: asks are "offer" on the wire.
                "offer" | "ask" => Side::Ask,
                other => {
                    return Err(de::Error::custom(format_args!(
                        "unknown level2 side {other:?}"
                    )));
                }
            };
            self.levels.push((
                side,
                decimal::<A::Error>(row.price_level)?,
                decimal::<A::Error>(row.new_quantity)?,
            ));
        }
        Ok(())
    }
}

// ------------------------------------------------------------------------------------------------
// Exchange
// ------------------------------------------------------------------------------------------------

/// Codec for `coinbase-exchange`: Exchange `level2_batch` + `heartbeat`.
pub struct ExchangeCodec {
    spec: VenueSpec,
    has_snapshot: bool,
    levels: Vec<(Side, Dec, Dec)>,
    updates_before_snapshot: u64,
}

impl ExchangeCodec {
    /// A codec for a spec.
    pub fn new(spec: VenueSpec) -> Self {
        Self {
            spec,
            has_snapshot: false,
            levels: Vec::new(),
            updates_before_snapshot: 0,
        }
    }

    /// `l2update` messages of the product that came before its snapshot and were ignored.
    pub fn updates_before_snapshot(&self) -> u64 {
        self.updates_before_snapshot
    }

    fn level2_frame(&self, kind: &str, channels: &str) -> String {
        format!(
            r#"{{"type":"{kind}","product_ids":[{}],"channels":[{channels}]}}"#,
            json_str(&self.spec.symbol)
        )
    }
}

impl Codec for ExchangeCodec {
    fn spec(&self) -> &VenueSpec {
        &self.spec
    }

    fn on_open(&mut self, _now: Millis, out: &mut Output) {
        self.has_snapshot = false;
        // level2_batch, not level2: level2 needs authentication since 2023-08-01 (§2.1).
        out.actions.push(crate::venue::Action::Send(
            self.level2_frame("subscribe", r#""level2_batch","heartbeat""#),
        ));
    }

    fn on_text(&mut self, text: &str, _now: Millis, out: &mut Output) -> Result<(), CodecError> {
        self.levels.clear();
        let mut de = serde_json::Deserializer::from_str(text);
        let frame = ExchangeSeed {
            symbol: &self.spec.symbol,
            levels: &mut self.levels,
        }
        .deserialize(&mut de)?;
        de.end()?;
        let ours = frame.product == Some(self.spec.symbol.as_str());
        match frame.kind {
            Some("snapshot") if ours => {
                out.events.push(snapshot_event(&self.levels));
                out.events.push(Event::Synced);
                self.has_snapshot = true;
            }
            Some("l2update") if ours => {
                if self.has_snapshot {
                    push_sets(&self.levels, out);
                    if let Some(ms) = frame.time.and_then(parse_rfc3339_ms) {
                        out.events.push(Event::ExchangeTime(ms));
                    }
                } else {
                    self.updates_before_snapshot += 1;
                }
            }
            Some("heartbeat" | "subscriptions") => out.events.push(Event::Heartbeat),
            Some("error") => {
                self.has_snapshot = false;
                out.events.push(Event::State {
                    state: FeedState::Down,
                    reason: error_reason(frame.message.as_deref(), frame.reason.as_deref()),
                });
            }
            _ => {}
        }
        Ok(())
    }

    fn resync(&mut self, _now: Millis, out: &mut Output) {
        // No sequence numbers and no REST call needed: a new subscription starts with a snapshot.
        self.has_snapshot = false;
        out.actions.push(crate::venue::Action::Send(
            self.level2_frame("unsubscribe", r#""level2_batch""#),
        ));
        out.actions.push(crate::venue::Action::Send(
            self.level2_frame("subscribe", r#""level2_batch""#),
        ));
    }

    fn stale_after_ms(&self) -> Millis {
        STALE_AFTER_MS
    }
}

/// The fields of an Exchange frame this codec reads.
#[derive(Default)]
struct ExchangeFrame<'de> {
    kind: Option<&'de str>,
    product: Option<&'de str>,
    time: Option<&'de str>,
    message: Option<Cow<'de, str>>,
    reason: Option<Cow<'de, str>>,
}

#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "snake_case")]
enum ExchangeKey {
    Type,
    ProductId,
    Bids,
    Asks,
    Changes,
    Time,
    Message,
    Reason,
    #[serde(other)]
    Other,
}

struct ExchangeSeed<'v> {
    symbol: &'v str,
    levels: &'v mut Vec<(Side, Dec, Dec)>,
}

impl<'de> DeserializeSeed<'de> for ExchangeSeed<'_> {
    type Value = ExchangeFrame<'de>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for ExchangeSeed<'_> {
    type Value = ExchangeFrame<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a Coinbase Exchange frame (JSON object)")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut f = ExchangeFrame::default();
        let mut skip_levels = false;
        while let Some(key) = map.next_key::<ExchangeKey>()? {
            match key {
                ExchangeKey::Type => {
                    let kind: &'de str = map.next_value()?;
                    skip_levels |= !matches!(kind, "snapshot" | "l2update");
                    f.kind = Some(kind);
                }
                ExchangeKey::ProductId => {
                    let product: &'de str = map.next_value()?;
                    if product != self.symbol {
                        skip_levels = true;
                        self.levels.clear();
                    }
                    f.product = Some(product);
                }
                ExchangeKey::Bids | ExchangeKey::Asks | ExchangeKey::Changes if skip_levels => {
                    map.next_value::<IgnoredAny>()?;
                }
                ExchangeKey::Bids => map.next_value_seed(PairsSeed {
                    side: Side::Bid,
                    levels: &mut *self.levels,
                    skip_other_types: false,
                })?,
                ExchangeKey::Asks => map.next_value_seed(PairsSeed {
                    side: Side::Ask,
                    levels: &mut *self.levels,
                    skip_other_types: false,
                })?,
                ExchangeKey::Changes => map.next_value_seed(ChangesSeed {
                    levels: &mut *self.levels,
                })?,
                ExchangeKey::Time => f.time = map.next_value()?,
                ExchangeKey::Message => f.message = map.next_value()?,
                ExchangeKey::Reason => f.reason = map.next_value()?,
                ExchangeKey::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        if skip_levels {
            self.levels.clear();
        }
        Ok(f)
    }
}

/// `changes`: `[[buy|sell, price, size], ...]`.
struct ChangesSeed<'v> {
    levels: &'v mut Vec<(Side, Dec, Dec)>,
}

impl<'de> DeserializeSeed<'de> for ChangesSeed<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for ChangesSeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of [side, price, size] changes")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some((side, p, q)) = seq.next_element::<(&'de str, &'de str, &'de str)>()? {
            let side = match side {
                "buy" => Side::Bid,
                "sell" => Side::Ask,
                other => {
                    return Err(de::Error::custom(format_args!(
                        "unknown l2update side {other:?}"
                    )));
                }
            };
            self.levels
                .push((side, decimal::<A::Error>(p)?, decimal::<A::Error>(q)?));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::venue::Action;
    use crate::venue::Protocol;

    fn d(s: &str) -> Dec {
        Dec::parse(s).expect("valid decimal")
    }

    #[test]
    fn rfc3339_times() {
        assert_eq!(
            parse_rfc3339_ms("2026-08-09T21:05:48.483587501Z"),
            Some(1_786_309_548_483)
        );
        assert_eq!(
            parse_rfc3339_ms("2021-04-17T16:43:37.075Z"),
            Some(1_618_677_817_075)
        );
        assert_eq!(parse_rfc3339_ms("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_rfc3339_ms("2000-02-29T00:00:00.5Z"),
            Some(951_782_400_500)
        );
        assert_eq!(
            parse_rfc3339_ms("2021-04-17T18:43:37.075+02:00"),
            Some(1_618_677_817_075)
        );
        for bad in [
            "",
            "2021-04-17",
            "2021-04-17T16:43:37",
            "2021-13-17T16:43:37Z",
            "2021-04-17T16:43:37.Z",
            "2021-04-17T16:43:37Zjunk",
            "2026-08-09 21:05:48.854840045 +0000 UTC",
        ] {
            assert_eq!(parse_rfc3339_ms(bad), None, "{bad}");
        }
    }

    #[test]
    fn advanced_subscribes_and_resubscribes() {
        let mut c = AdvancedCodec::new(VenueSpec::new(Protocol::CoinbaseAdvanced, "BTC-USD"));
        let mut out = Output::default();
        c.on_open(0, &mut out);
        assert_eq!(
            out.actions,
            [
                Action::Send(
                    r#"{"type":"subscribe","product_ids":["BTC-USD"],"channel":"level2"}"#.into()
                ),
                Action::Send(r#"{"type":"subscribe","channel":"heartbeats"}"#.into()),
            ]
        );
        out.clear();
        c.resync(0, &mut out);
        assert_eq!(
            out.actions,
            [
                Action::Send(
                    r#"{"type":"unsubscribe","product_ids":["BTC-USD"],"channel":"level2"}"#.into()
                ),
                Action::Send(
                    r#"{"type":"subscribe","product_ids":["BTC-USD"],"channel":"level2"}"#.into()
                ),
            ]
        );
    }

    #[test]
    fn advanced_snapshot_update_and_sequence() {
        let mut c = AdvancedCodec::new(VenueSpec::new(Protocol::CoinbaseAdvanced, "BTC-USD"));
        let mut out = Output::default();
        c.on_open(0, &mut out);
        out.clear();
        let upd = |seq: u64, product: &str| {
            format!(
                r#"{{"channel":"l2_data","client_id":"","timestamp":"1970-01-01T00:00:01.5Z","sequence_num":{seq},"events":[{{"type":"update","product_id":"{product}","updates":[{{"side":"offer","event_time":"x","price_level":"101","new_quantity":"0"}}]}}]}}"#
            )
        };
        c.on_text(&upd(0, "BTC-USD"), 0, &mut out).expect("decodes");
        assert!(out.events.is_empty(), "update before the snapshot");
        assert_eq!(c.updates_before_snapshot(), 1);
        let snap = r#"{"channel":"l2_data","timestamp":"1970-01-01T00:00:02Z","sequence_num":1,"events":[{"updates":[{"side":"bid","price_level":"100","new_quantity":"1"},{"side":"offer","price_level":"101","new_quantity":"2"}],"product_id":"BTC-USD","type":"snapshot"},{"type":"snapshot","product_id":"ETH-USD","updates":[{"side":"bid","price_level":"1","new_quantity":"1"}]}]}"#;
        c.on_text(snap, 0, &mut out).expect("decodes");
        assert_eq!(
            out.events,
            [
                Event::Snapshot {
                    bids: vec![(d("100"), d("1"))],
                    asks: vec![(d("101"), d("2"))]
                },
                Event::Synced,
                Event::ExchangeTime(2000),
            ]
        );
        out.clear();
        c.on_text(&upd(2, "ETH-USD"), 0, &mut out).expect("decodes");
        assert!(out.events.is_empty());
        c.on_text(&upd(3, "BTC-USD"), 0, &mut out).expect("decodes");
        assert_eq!(
            out.events,
            [
                Event::Set {
                    side: Side::Ask,
                    price: d("101"),
                    qty: d("0")
                },
                Event::ExchangeTime(1500),
            ]
        );
        out.clear();
        c.on_text(&upd(3, "BTC-USD"), 0, &mut out).expect("decodes");
        assert!(out.events.is_empty(), "repeated sequence number ignored");
        assert_eq!(c.out_of_order_frames(), 1);
        c.on_text(&upd(6, "BTC-USD"), 0, &mut out).expect("decodes");
        assert_eq!(
            out.events,
            [Event::Gap {
                expected: 4,
                got: 6
            }]
        );
        out.clear();
        c.on_text(&upd(7, "BTC-USD"), 0, &mut out).expect("decodes");
        assert!(out.events.is_empty(), "no book until a new snapshot");
        let bad_side = r#"{"channel":"l2_data","sequence_num":8,"events":[{"type":"update","product_id":"BTC-USD","updates":[{"side":"sell","price_level":"1","new_quantity":"1"}]}]}"#;
        assert!(c.on_text(bad_side, 0, &mut out).is_err());
    }

    #[test]
    fn advanced_errors() {
        let mut c = AdvancedCodec::new(VenueSpec::new(Protocol::CoinbaseAdvanced, "BTC-USD"));
        let mut out = Output::default();
        c.on_text(
            r#"{"type":"error","message":"failure to subscribe"}"#,
            0,
            &mut out,
        )
        .expect("decodes");
        assert_eq!(
            out.events,
            [Event::State {
                state: FeedState::Down,
                reason: "Coinbase error: failure to subscribe".into()
            }]
        );
        out.clear();
        c.on_text(
            r#"{"channel":"l2_data","sequence_num":0,"events":[{"type":"error","message":"product not found"}]}"#,
            0,
            &mut out,
        )
        .expect("decodes");
        assert_eq!(
            out.events,
            [Event::State {
                state: FeedState::Down,
                reason: "Coinbase error: product not found".into()
            }]
        );
    }

    #[test]
    fn exchange_messages() {
        let mut c = ExchangeCodec::new(VenueSpec::new(Protocol::CoinbaseExchange, "BTC-USD"));
        let mut out = Output::default();
        c.on_open(0, &mut out);
        assert_eq!(
            out.actions,
            [Action::Send(
                r#"{"type":"subscribe","product_ids":["BTC-USD"],"channels":["level2_batch","heartbeat"]}"#
                    .into()
            )]
        );
        out.clear();
        let upd = r#"{"type":"l2update","product_id":"BTC-USD","changes":[["buy","10101.80000000","0.162567"],["sell","10102","0"]],"time":"2019-08-14T20:42:27.265Z"}"#;
        c.on_text(upd, 0, &mut out).expect("decodes");
        assert!(out.events.is_empty());
        assert_eq!(c.updates_before_snapshot(), 1);
        c.on_text(
            r#"{"type":"snapshot","bids":[["1","2"]],"asks":[["3","4"]],"product_id":"ETH-USD"}"#,
            0,
            &mut out,
        )
        .expect("decodes");
        assert!(out.events.is_empty());
        c.on_text(
            r#"{"type":"snapshot","product_id":"BTC-USD","bids":[["10101.10","0.45054140"]],"asks":[["10102.55","0.57753524"]]}"#,
            0,
            &mut out,
        )
        .expect("decodes");
        c.on_text(upd, 0, &mut out).expect("decodes");
        assert_eq!(
            out.events,
            [
                Event::Snapshot {
                    bids: vec![(d("10101.1"), d("0.4505414"))],
                    asks: vec![(d("10102.55"), d("0.57753524"))]
                },
                Event::Synced,
                Event::Set {
                    side: Side::Bid,
                    price: d("10101.8"),
                    qty: d("0.162567")
                },
                Event::Set {
                    side: Side::Ask,
                    price: d("10102"),
                    qty: d("0")
                },
                Event::ExchangeTime(1_565_815_347_265),
            ]
        );
        out.clear();
        c.resync(0, &mut out);
        assert_eq!(
            out.actions,
            [
                Action::Send(
                    r#"{"type":"unsubscribe","product_ids":["BTC-USD"],"channels":["level2_batch"]}"#
                        .into()
                ),
                Action::Send(
                    r#"{"type":"subscribe","product_ids":["BTC-USD"],"channels":["level2_batch"]}"#
                        .into()
                ),
            ]
        );
        out.clear();
        c.on_text(upd, 0, &mut out).expect("decodes");
        assert!(out.events.is_empty(), "after resync, wait for the snapshot");
        c.on_text(
            r#"{"type":"heartbeat","last_trade_id":1,"product_id":"BTC-USD","sequence":2,"time":"2019-08-14T20:42:27.265Z"}"#,
            0,
            &mut out,
        )
        .expect("decodes");
        assert_eq!(out.events, [Event::Heartbeat]);
        assert!(
            c.on_text(
                r#"{"type":"l2update","product_id":"BTC-USD","changes":[["hold","1","1"]]}"#,
                0,
                &mut out
            )
            .is_err()
        );
    }
}
