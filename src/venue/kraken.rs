//! Kraken codecs: WS v2 `book` ([`V2Codec`], the recommended feed) and WS v1 `book-N`
//! ([`V1Codec`], the protocol of the real recording in `../shared/fixtures`).
//!
//! Sync rules (protocols.md §3.3–§3.5):
//! - The book starts from the snapshot the subscription sends; every later message is applied
//!   level by level, in order (`qty == 0` removes the level; several changes to one price in a
//!   message are applied in sequence).
//! - "Truncate each side to the subscribed depth after every message": Kraken does not announce
//!   levels that fall out of scope, so a book that is not truncated shows stale levels later.
//! - There are no sequence numbers. The CRC32 of the top 10 asks and bids (price and quantity
//!   written at the instrument's precision, decimal point and leading zeros removed) is the only
//!   integrity check: v2 sends it on snapshots and updates, v1 on updates only (`"c"`).
//! - On a mismatch, unsubscribe (repeating the depth) and subscribe again; drop deltas until the
//!   new snapshot (Kraken SDK `docs/guides/order-book.md`).
//! - v2 sends prices and quantities as JSON floats: they are read from the raw token, never
//!   through `f64`, and the checksum rebuilds their text at the instrument precision
//!   (BTC/USD: price 1, qty 8 decimals). v1 sends strings with fixed decimals per pair; the codec
//!   learns those decimals from the strings and formats the checksum text at them.

use std::fmt;
use std::marker::PhantomData;

use serde::Deserialize;
use serde::de::{self, IgnoredAny, SeqAccess, Visitor};
use serde_json::value::RawValue;

use crate::book::Book;
use crate::decimal::Dec;
use crate::types::Side;
use crate::venue::wire::{Cursor, RawArray, Text, for_each, json_string};
use crate::venue::{Codec, CodecError, Event, FeedState, Millis, Output, VenueSpec, checksum};

/// The symbol depthagg follows on Kraken WS v2 (v1 calls it `XBT/USD`).
pub const DEFAULT_SYMBOL_V2: &str = "BTC/USD";

/// Book depths Kraken accepts on v1 and v2 (protocols.md §3.2).
pub const DEPTHS: [usize; 5] = [10, 25, 100, 500, 1000];

/// The depth to subscribe with for a wanted depth: the smallest one Kraken offers that covers
/// it (1000 at most). The book is truncated to this depth after every message (§3.4).
pub fn subscribe_depth(wanted: usize) -> usize {
    DEPTHS.into_iter().find(|&d| d >= wanted).unwrap_or(1000)
}

/// Decimals of price and quantity Kraken uses for a v2 symbol's checksum, for the symbols we
/// know: BTC/USD is 1/8 (REST `pair_decimals` 1, `lot_decimals` 8; protocols.md §3.4, §3.6) and
/// MATIC/USD is 4/8 (the only precision that reproduces the v2 book page example, §7).
pub fn known_precision(symbol: &str) -> Option<(u32, u32)> {
    match symbol {
        "BTC/USD" | "XBT/USD" => Some((1, 8)),
        "MATIC/USD" => Some((4, 8)),
        _ => None,
    }
}

/// Kraken sends a heartbeat after about 1 s without other traffic (§3.5); protocols.md §5
/// advises calling a feed stale after about twice its heartbeat period.
const STALE_AFTER_MS: Millis = 2_000;

/// Kraken's lot precision for nearly every pair; the floor for a learned v2 quantity precision.
const USUAL_QTY_DECIMALS: u32 = 8;

// ---------------------------------------------------------------------------------------------
// Kraken WS v2
// ---------------------------------------------------------------------------------------------

/// Codec for `kraken-v2`: `wss://ws.kraken.com/v2`, channel `book` with checksums.
///
/// The checksum precision comes from [`V2Codec::with_precision`], else from
/// [`known_precision`], else it is learned from the snapshot: the most decimals any snapshot
/// price has, and the most any quantity has but at least 8. Learning is a fallback: a float
/// token drops trailing zeros, so a snapshot whose prices all end in zero would under-count.
/// Pass the `instrument` channel's `price_precision` / `qty_precision` when in doubt.
pub struct V2Codec {
    spec: VenueSpec,
    depth: usize,
    price_dp: u32,
    qty_dp: u32,
    learn_precision: bool,
    req_id: u64,
    awaiting_snapshot: bool,
    unsubscribing: bool,
    memo: checksum::KrakenMemo,
}

impl V2Codec {
    /// A codec for a spec, with the checksum precision of [`known_precision`] (learned from the
    /// snapshot for other symbols).
    pub fn new(spec: VenueSpec) -> Self {
        let known = known_precision(&spec.symbol);
        let (price_dp, qty_dp) = known.unwrap_or((0, USUAL_QTY_DECIMALS));
        let mut codec = Self::with_precision(spec, price_dp, qty_dp);
        codec.learn_precision = known.is_none();
        codec
    }

    /// A codec whose checksum writes prices with `price_dp` and quantities with `qty_dp`
    /// decimals (the `instrument` channel's `price_precision` and `qty_precision`).
    pub fn with_precision(spec: VenueSpec, price_dp: u32, qty_dp: u32) -> Self {
        let depth = subscribe_depth(spec.depth);
        V2Codec {
            spec,
            depth,
            price_dp,
            qty_dp,
            learn_precision: false,
            req_id: 0,
            awaiting_snapshot: true,
            unsubscribing: false,
            memo: checksum::KrakenMemo::default(),
        }
    }

    /// The checksum precision in use: `(price decimals, quantity decimals)`.
    pub fn precision(&self) -> (u32, u32) {
        (self.price_dp, self.qty_dp)
    }

    /// The depth subscribed to and truncated at.
    pub fn depth(&self) -> usize {
        self.depth
    }

    fn request(&mut self, method: &str) -> String {
        self.req_id += 1;
        format!(
            r#"{{"method":"{method}","params":{{"channel":"book","symbol":[{}],"depth":{},"snapshot":true}},"req_id":{}}}"#,
            json_string(&self.spec.symbol),
            self.depth,
            self.req_id
        )
    }

    fn unsubscribe_frame(&mut self) -> String {
        self.req_id += 1;
        format!(
            r#"{{"method":"unsubscribe","params":{{"channel":"book","symbol":[{}],"depth":{}}},"req_id":{}}}"#,
            json_string(&self.spec.symbol),
            self.depth,
            self.req_id
        )
    }

    fn on_book(
        &mut self,
        data: &RawValue,
        snapshot: bool,
        out: &mut Output,
    ) -> Result<(), CodecError> {
        for_each::<V2BookEntry, _>(data, |entry| self.on_book_entry(entry, snapshot, out))
    }

    fn on_book_entry(
        &mut self,
        entry: V2BookEntry<'_>,
        snapshot: bool,
        out: &mut Output,
    ) -> Result<(), CodecError> {
        if entry.symbol.0 != self.spec.symbol {
            return Ok(());
        }
        if snapshot {
            let mut bids = Vec::new();
            let mut asks = Vec::new();
            if let Some(raw) = entry.bids {
                for_each::<V2Level, _>(raw, |l| {
                    bids.push(l.parse()?);
                    Ok(())
                })?;
            }
            if let Some(raw) = entry.asks {
                for_each::<V2Level, _>(raw, |l| {
                    asks.push(l.parse()?);
                    Ok(())
                })?;
            }
            if self.learn_precision {
                let levels = || bids.iter().chain(asks.iter());
                self.price_dp = levels().map(|l| l.0.scale()).max().unwrap_or(0);
                self.qty_dp = levels()
                    .map(|l| l.1.scale())
                    .max()
                    .unwrap_or(0)
                    .max(USUAL_QTY_DECIMALS);
            }
            out.events.push(Event::Snapshot { bids, asks });
            self.awaiting_snapshot = false;
        } else {
            if self.awaiting_snapshot {
                // Deltas of a book we do not hold (before the first or during a resync).
                return Ok(());
            }
            for (raw, side) in [(entry.bids, Side::Bid), (entry.asks, Side::Ask)] {
                if let Some(raw) = raw {
                    for_each::<V2Level, _>(raw, |l| {
                        let (price, qty) = l.parse()?;
                        out.events.push(Event::Set { side, price, qty });
                        Ok(())
                    })?;
                }
            }
        }
        out.events.push(Event::Truncate { depth: self.depth });
        if let Some(cs) = entry.checksum {
            let expected = u32::try_from(cs)
                .map_err(|_| CodecError::malformed(format!("checksum {cs} is not a u32")))?;
            out.events.push(Event::Checksum { expected });
        }
        if let Some(ts) = entry.timestamp.and_then(rfc3339_millis) {
            out.events.push(Event::ExchangeTime(ts));
        }
        if snapshot {
            out.events.push(Event::Synced);
        }
        Ok(())
    }

    fn on_method(&mut self, msg: &V2Message<'_>, out: &mut Output) {
        let method = msg.method.as_ref().map(|m| m.0.as_ref());
        let failed = msg.success == Some(false);
        match method {
            Some("unsubscribe") => {
                // A failed unsubscribe during a resync ("Subscription Not Found") is harmless.
                self.unsubscribing = false;
                out.events.push(Event::Heartbeat);
            }
            Some("subscribe") if failed => out.events.push(Event::State {
                state: FeedState::Down,
                reason: error_text(msg.error.as_ref(), "subscribe failed"),
            }),
            _ if failed || msg.error.is_some() => out.events.push(Event::State {
                state: FeedState::Down,
                reason: error_text(msg.error.as_ref(), "request failed"),
            }),
            _ => out.events.push(Event::Heartbeat),
        }
    }
}

impl Codec for V2Codec {
    fn spec(&self) -> &VenueSpec {
        &self.spec
    }

    fn on_open(&mut self, _now: Millis, out: &mut Output) {
        self.awaiting_snapshot = true;
        self.unsubscribing = false;
        let frame = self.request("subscribe");
        out.actions.push(crate::venue::Action::Send(frame));
    }

    fn on_text(&mut self, text: &str, _now: Millis, out: &mut Output) -> Result<(), CodecError> {
        let msg: V2Message = serde_json::from_str(text)?;
        match msg.channel.as_ref().map(|c| c.0.as_ref()) {
            Some("book") => {
                let data = msg
                    .data
                    .ok_or_else(|| CodecError::malformed("book message without data"))?;
                match msg.kind.as_ref().map(|k| k.0.as_ref()) {
                    Some("snapshot") => self.on_book(data, true, out)?,
                    Some("update") => self.on_book(data, false, out)?,
                    _ => {}
                }
            }
            Some("heartbeat") => out.events.push(Event::Heartbeat),
            Some("status") => {
                let mut maintenance = false;
                if let Some(data) = msg.data {
                    for_each::<V2Status, _>(data, |s| {
                        maintenance |= s.system.is_some_and(|s| s.0 == "maintenance");
                        Ok(())
                    })?;
                }
                out.events.push(if maintenance {
                    Event::State {
                        state: FeedState::Down,
                        reason: "kraken system status: maintenance".into(),
                    }
                } else {
                    Event::Heartbeat
                });
            }
            Some(_) => {}
            None => self.on_method(&msg, out),
        }
        Ok(())
    }

    fn resync(&mut self, _now: Millis, out: &mut Output) {
        self.awaiting_snapshot = true;
        self.unsubscribing = true;
        let unsubscribe = self.unsubscribe_frame();
        let subscribe = self.request("subscribe");
        out.actions.push(crate::venue::Action::Send(unsubscribe));
        out.actions.push(crate::venue::Action::Send(subscribe));
    }

    fn checksum(&self, book: &Book) -> u32 {
        self.memo.checksum(book, self.price_dp, self.qty_dp)
    }

    fn stale_after_ms(&self) -> Millis {
        STALE_AFTER_MS
    }
}

/// Any v2 frame: a channel message (`book`, `heartbeat`, `status`) or a method response.
#[derive(Deserialize)]
struct V2Message<'a> {
    #[serde(borrow, default)]
    channel: Option<Text<'a>>,
    #[serde(borrow, default, rename = "type")]
    kind: Option<Text<'a>>,
    #[serde(borrow, default)]
    data: Option<&'a RawValue>,
    #[serde(borrow, default)]
    method: Option<Text<'a>>,
    #[serde(default)]
    success: Option<bool>,
    #[serde(borrow, default)]
    error: Option<Text<'a>>,
}

#[derive(Deserialize)]
struct V2BookEntry<'a> {
    #[serde(borrow)]
    symbol: Text<'a>,
    #[serde(borrow, default)]
    bids: Option<&'a RawValue>,
    #[serde(borrow, default)]
    asks: Option<&'a RawValue>,
    #[serde(default)]
    checksum: Option<u64>,
    #[serde(borrow, default)]
    timestamp: Option<&'a str>,
}

#[derive(Deserialize)]
struct V2Level<'a> {
    #[serde(borrow)]
    price: &'a RawValue,
    #[serde(borrow)]
    qty: &'a RawValue,
}

impl V2Level<'_> {
    fn parse(&self) -> Result<(Dec, Dec), CodecError> {
        Ok((Dec::parse(self.price.get())?, Dec::parse(self.qty.get())?))
    }
}

#[derive(Deserialize)]
struct V2Status<'a> {
    #[serde(borrow, default)]
    system: Option<Text<'a>>,
}

// ---------------------------------------------------------------------------------------------
// Kraken WS v1
// ---------------------------------------------------------------------------------------------

/// Codec for `kraken-v1`: `wss://ws.kraken.com`, channel `book-N` with `"c"` checksums.
///
/// One connection may carry many pairs and channels (the recording has 10 pairs on its book
/// connection): only `book-*` frames whose pair is the spec's symbol are applied. The checksum
/// precision is learned from the wire strings, which carry each pair's fixed decimals.
pub struct V1Codec {
    spec: VenueSpec,
    depth: usize,
    /// `"SYMBOL"` as JSON text: every frame of our pair ends with it followed by `]`.
    quoted_symbol: String,
    price_dp: u32,
    qty_dp: u32,
    awaiting_snapshot: bool,
    unsubscribing: bool,
    memo: checksum::KrakenMemo,
    fast_path: bool,
}

impl V1Codec {
    /// A codec for a spec (`spec.symbol` is a v1 pair name such as `XBT/USD`).
    pub fn new(spec: VenueSpec) -> Self {
        let depth = subscribe_depth(spec.depth);
        let quoted_symbol = json_string(&spec.symbol);
        V1Codec {
            spec,
            depth,
            quoted_symbol,
            price_dp: 0,
            qty_dp: 0,
            awaiting_snapshot: true,
            unsubscribing: false,
            memo: checksum::KrakenMemo::default(),
            fast_path: true,
        }
    }

    /// This codec decoding every frame through its serde path only: the reference its one-pass
    /// reader of book frames is tested against (`tests/fast_paths.rs`).
    pub fn without_fast_path(mut self) -> Self {
        self.fast_path = false;
        self
    }

    /// The checksum precision learned from the wire: `(price decimals, quantity decimals)`.
    pub fn precision(&self) -> (u32, u32) {
        (self.price_dp, self.qty_dp)
    }

    /// The depth subscribed to (and truncated at, unless the channel name says otherwise).
    pub fn depth(&self) -> usize {
        self.depth
    }

    fn frame(&self, event: &str) -> String {
        format!(
            r#"{{"event":"{event}","pair":[{}],"subscription":{{"name":"book","depth":{}}}}}"#,
            self.quoted_symbol, self.depth
        )
    }

    /// True when a channel frame ends with our pair, i.e. `…,"XBT/USD"]`. Frames of other pairs
    /// and channels are skipped without being parsed.
    fn is_our_pair(&self, text: &str) -> bool {
        text.trim_end()
            .strip_suffix(']')
            .is_some_and(|t| t.trim_end().ends_with(&self.quoted_symbol))
    }

    fn on_event(&mut self, text: &str, out: &mut Output) -> Result<(), CodecError> {
        let ev: V1Event = serde_json::from_str(text)?;
        match ev.event.0.as_ref() {
            "heartbeat" | "pong" => out.events.push(Event::Heartbeat),
            "systemStatus" => {
                let status = ev.status.as_ref().map(|s| s.0.as_ref());
                out.events.push(if status == Some("maintenance") {
                    Event::State {
                        state: FeedState::Down,
                        reason: "kraken system status: maintenance".into(),
                    }
                } else {
                    Event::Heartbeat
                });
            }
            "subscriptionStatus" => {
                let other_pair = ev.pair.as_ref().is_some_and(|p| p.0 != self.spec.symbol);
                let other_channel = ev
                    .subscription
                    .as_ref()
                    .and_then(|s| s.name.as_ref())
                    .is_some_and(|n| n.0 != "book");
                if other_pair || other_channel {
                    out.events.push(Event::Heartbeat);
                    return Ok(());
                }
                match ev.status.as_ref().map(|s| s.0.as_ref()) {
                    Some("error") if !self.unsubscribing => out.events.push(Event::State {
                        state: FeedState::Down,
                        reason: error_text(ev.error_message.as_ref(), "subscription failed"),
                    }),
                    Some("error") | Some("unsubscribed") => {
                        // The answer to a resync's unsubscribe; an error there
                        // ("Subscription Not Found") is harmless.
                        self.unsubscribing = false;
                        out.events.push(Event::Heartbeat);
                    }
                    _ => out.events.push(Event::Heartbeat),
                }
            }
            "error" => out.events.push(Event::State {
                state: FeedState::Down,
                reason: error_text(ev.error_message.as_ref(), "request failed"),
            }),
            _ => {}
        }
        Ok(())
    }

    /// The end of a snapshot frame (either path): the precision is the one of its strings.
    fn end_snapshot(
        &mut self,
        bids: Vec<(Dec, Dec)>,
        asks: Vec<(Dec, Dec)>,
        depth: usize,
        (price_dp, qty_dp): (u32, u32),
        latest: Option<Millis>,
        out: &mut Output,
    ) {
        self.price_dp = price_dp;
        self.qty_dp = qty_dp;
        self.awaiting_snapshot = false;
        out.events.push(Event::Snapshot { bids, asks });
        out.events.push(Event::Truncate { depth });
        if let Some(ts) = latest {
            out.events.push(Event::ExchangeTime(ts));
        }
        out.events.push(Event::Synced);
    }

    /// The end of an update frame whose levels are in `out` (either path): its strings can only
    /// widen the precision.
    fn end_update(
        &mut self,
        depth: usize,
        (price_dp, qty_dp): (u32, u32),
        expected: Option<u32>,
        latest: Option<Millis>,
        out: &mut Output,
    ) {
        self.price_dp = self.price_dp.max(price_dp);
        self.qty_dp = self.qty_dp.max(qty_dp);
        out.events.push(Event::Truncate { depth });
        if let Some(expected) = expected {
            out.events.push(Event::Checksum { expected });
        }
        if let Some(ts) = latest {
            out.events.push(Event::ExchangeTime(ts));
        }
    }

    /// One pass over a book frame of the plain shape every v1 book frame has:
    /// `[id,{dict}(,{dict}),"book-N","PAIR"]`, dict keys `as`/`bs` (snapshot) or `a`/`b`/`c`
    /// (update, `a` before `b`), levels of plain strings. Gives what [`V1Codec::on_channel`] gives
    /// for such a frame, or `None`, having changed nothing, for any other text (which then takes
    /// the serde path and its errors).
    fn fast_channel(&mut self, text: &str, out: &mut Output) -> Option<()> {
        let mark = out.events.len();
        let done = self.fast_channel_inner(text, out);
        if done.is_none() {
            out.events.truncate(mark);
        }
        done
    }

    fn fast_channel_inner(&mut self, text: &str, out: &mut Output) -> Option<()> {
        let mut c = Cursor::new(text);
        c.eat(b'[')?;
        c.uint()?;
        let mark = out.events.len();
        // The decimals of this frame's strings: a snapshot sets the precision, an update can
        // only widen it.
        let (mut price_dp, mut qty_dp) = (0, 0);
        let mut latest: Option<Millis> = None;
        let mut snapshot: Option<bool> = None;
        let (mut bids, mut asks) = (Vec::new(), Vec::new());
        let mut expected = None;
        let mut dicts = 0;
        c.eat(b',')?;
        while c.peek()? == b'{' {
            dicts += 1;
            if dicts > 2 {
                return None;
            }
            c.eat(b'{')?;
            // Keys seen in this dict: as, bs, a, b, c.
            let mut seen = [false; 5];
            if !c.eat_if(b'}') {
                loop {
                    let key = c.str()?;
                    let k = match key.as_bytes() {
                        b"as" => 0,
                        b"bs" => 1,
                        b"a" => 2,
                        b"b" => 3,
                        b"c" => 4,
                        _ => return None,
                    };
                    // A repeated key is an error for serde; `b` before `a` is applied `a` first
                    // by it: leave both to it.
                    if seen[k] || (k == 2 && seen[3]) {
                        return None;
                    }
                    seen[k] = true;
                    c.eat(b':')?;
                    if k == 4 {
                        expected = Some(c.str()?.parse::<u32>().ok()?);
                    } else {
                        let is_snapshot = k < 2;
                        if *snapshot.get_or_insert(is_snapshot) != is_snapshot {
                            return None;
                        }
                        c.eat(b'[')?;
                        if !c.eat_if(b']') {
                            loop {
                                c.eat(b'[')?;
                                let price = c.str()?;
                                c.eat(b',')?;
                                let qty = c.str()?;
                                if c.eat_if(b',') {
                                    let ts = c.str()?;
                                    if let Some(ms) = unix_text_millis(ts) {
                                        latest = Some(latest.map_or(ms, |l| l.max(ms)));
                                    }
                                    // The republish flag "r", or anything else a later API adds.
                                    while c.eat_if(b',') {
                                        c.str()?;
                                    }
                                }
                                c.eat(b']')?;
                                price_dp = price_dp.max(decimals(price));
                                qty_dp = qty_dp.max(decimals(qty));
                                let level = (Dec::parse(price).ok()?, Dec::parse(qty).ok()?);
                                match k {
                                    0 => asks.push(level),
                                    1 => bids.push(level),
                                    _ => out.events.push(Event::Set {
                                        side: if k == 2 { Side::Ask } else { Side::Bid },
                                        price: level.0,
                                        qty: level.1,
                                    }),
                                }
                                if !c.eat_if(b',') {
                                    break;
                                }
                            }
                            c.eat(b']')?;
                        }
                    }
                    if !c.eat_if(b',') {
                        break;
                    }
                }
                c.eat(b'}')?;
            }
            c.eat(b',')?;
        }
        // No dict at all is a malformed frame: the serde path says so.
        if dicts == 0 {
            return None;
        }
        let name = c.str()?;
        c.eat(b',')?;
        let pair = c.str()?;
        c.eat(b']')?;
        c.end()?;
        let depth_text = name.strip_prefix("book-")?;
        if pair != self.spec.symbol {
            return None;
        }
        let depth = depth_text.parse().unwrap_or(self.depth);
        if snapshot == Some(true) {
            // A snapshot's checksum key, if any, is not used (as on the serde path).
            self.end_snapshot(bids, asks, depth, (price_dp, qty_dp), latest, out);
        } else if self.awaiting_snapshot {
            out.events.truncate(mark);
        } else {
            self.end_update(depth, (price_dp, qty_dp), expected, latest, out);
        }
        Some(())
    }

    fn on_channel(&mut self, text: &str, out: &mut Output) -> Result<(), CodecError> {
        const WHAT: &str = "kraken v1 channel frame";
        let frame: RawArray<5> = serde_json::from_str(text)?;
        let n = frame.len();
        if n < 4 {
            return Err(CodecError::malformed("kraken v1 channel frame too short"));
        }
        let name: Text = serde_json::from_str(frame.item(n - 2, WHAT)?.get())?;
        let pair: Text = serde_json::from_str(frame.item(n - 1, WHAT)?.get())?;
        let Some(depth_text) = name.0.strip_prefix("book-") else {
            return Ok(());
        };
        if pair.0 != self.spec.symbol {
            return Ok(());
        }
        let depth = depth_text.parse().unwrap_or(self.depth);
        let mut dicts = [None, None];
        for (slot, i) in dicts.iter_mut().zip(1..n - 2) {
            *slot = Some(serde_json::from_str::<V1BookDict>(
                frame.item(i, WHAT)?.get(),
            )?);
        }
        let snapshot = dicts
            .iter()
            .flatten()
            .any(|d| d.asks_snapshot.is_some() || d.bids_snapshot.is_some());
        let mut latest: Option<Millis> = None;
        let mut stamp = |ts: Option<&str>| {
            if let Some(ms) = ts.and_then(unix_text_millis) {
                latest = Some(latest.map_or(ms, |l| l.max(ms)));
            }
        };
        if snapshot {
            let (mut bids, mut asks) = (Vec::new(), Vec::new());
            let (mut price_dp, mut qty_dp) = (0, 0);
            for d in dicts.iter().flatten() {
                for (raw, levels) in [(d.bids_snapshot, &mut bids), (d.asks_snapshot, &mut asks)] {
                    if let Some(raw) = raw {
                        for_each::<V1Level, _>(raw, |l| {
                            price_dp = price_dp.max(decimals(l.price));
                            qty_dp = qty_dp.max(decimals(l.qty));
                            stamp(l.ts);
                            levels.push((Dec::parse(l.price)?, Dec::parse(l.qty)?));
                            Ok(())
                        })?;
                    }
                }
            }
            self.end_snapshot(bids, asks, depth, (price_dp, qty_dp), latest, out);
            return Ok(());
        }
        if self.awaiting_snapshot {
            return Ok(());
        }
        let mut expected = None;
        let (mut price_dp, mut qty_dp) = (self.price_dp, self.qty_dp);
        // An update may hold an `a` dict and a `b` dict (or both keys in one): every level of
        // both is applied (namjug-kim/reactive-crypto#110 applied only the first).
        for d in dicts.iter().flatten() {
            for (raw, side) in [(d.asks, Side::Ask), (d.bids, Side::Bid)] {
                if let Some(raw) = raw {
                    for_each::<V1Level, _>(raw, |l| {
                        price_dp = price_dp.max(decimals(l.price));
                        qty_dp = qty_dp.max(decimals(l.qty));
                        stamp(l.ts);
                        out.events.push(Event::Set {
                            side,
                            price: Dec::parse(l.price)?,
                            qty: Dec::parse(l.qty)?,
                        });
                        Ok(())
                    })?;
                }
            }
            if let Some(c) = d.checksum {
                expected = Some(c.parse::<u32>().map_err(|_| {
                    CodecError::malformed(format!("kraken v1 checksum {c:?} is not a u32"))
                })?);
            }
        }
        self.end_update(depth, (price_dp, qty_dp), expected, latest, out);
        Ok(())
    }
}

impl Codec for V1Codec {
    fn spec(&self) -> &VenueSpec {
        &self.spec
    }

    fn on_open(&mut self, _now: Millis, out: &mut Output) {
        self.awaiting_snapshot = true;
        self.unsubscribing = false;
        out.actions
            .push(crate::venue::Action::Send(self.frame("subscribe")));
    }

    fn on_text(&mut self, text: &str, _now: Millis, out: &mut Output) -> Result<(), CodecError> {
        match text.trim_start().as_bytes().first() {
            Some(b'{') => self.on_event(text, out),
            Some(b'[') if self.is_our_pair(text) => {
                match self
                    .fast_path
                    .then(|| self.fast_channel(text, out))
                    .flatten()
                {
                    Some(()) => Ok(()),
                    None => self.on_channel(text, out),
                }
            }
            Some(b'[') => Ok(()),
            _ => Err(CodecError::malformed("kraken v1 frame is not JSON")),
        }
    }

    fn resync(&mut self, _now: Millis, out: &mut Output) {
        self.awaiting_snapshot = true;
        self.unsubscribing = true;
        out.actions
            .push(crate::venue::Action::Send(self.frame("unsubscribe")));
        out.actions
            .push(crate::venue::Action::Send(self.frame("subscribe")));
    }

    fn checksum(&self, book: &Book) -> u32 {
        self.memo.checksum(book, self.price_dp, self.qty_dp)
    }

    fn stale_after_ms(&self) -> Millis {
        STALE_AFTER_MS
    }
}

/// A v1 event frame (`systemStatus`, `subscriptionStatus`, `heartbeat`, `pong`, `error`).
#[derive(Deserialize)]
struct V1Event<'a> {
    #[serde(borrow)]
    event: Text<'a>,
    #[serde(borrow, default)]
    status: Option<Text<'a>>,
    #[serde(borrow, default)]
    pair: Option<Text<'a>>,
    #[serde(borrow, default, rename = "errorMessage")]
    error_message: Option<Text<'a>>,
    #[serde(borrow, default)]
    subscription: Option<V1Subscription<'a>>,
}

#[derive(Deserialize)]
struct V1Subscription<'a> {
    #[serde(borrow, default)]
    name: Option<Text<'a>>,
}

/// One dict of a v1 book frame: snapshot sides `as`/`bs`, update sides `a`/`b`, checksum `c`.
#[derive(Deserialize)]
struct V1BookDict<'a> {
    #[serde(borrow, default, rename = "as")]
    asks_snapshot: Option<&'a RawValue>,
    #[serde(borrow, default, rename = "bs")]
    bids_snapshot: Option<&'a RawValue>,
    #[serde(borrow, default, rename = "a")]
    asks: Option<&'a RawValue>,
    #[serde(borrow, default, rename = "b")]
    bids: Option<&'a RawValue>,
    #[serde(borrow, default, rename = "c")]
    checksum: Option<&'a str>,
}

/// A v1 level `["price","qty","timestamp"(,"r")]`: strings with the pair's fixed decimals. The
/// `"r"` flag marks a republished level; it is applied like any other.
struct V1Level<'a> {
    price: &'a str,
    qty: &'a str,
    ts: Option<&'a str>,
}

impl<'de: 'a, 'a> Deserialize<'de> for V1Level<'a> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct LevelVisitor<'a>(PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for LevelVisitor<'a> {
            type Value = V1Level<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a kraken v1 level [price, volume, timestamp]")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<V1Level<'a>, A::Error> {
                let price = seq
                    .next_element::<&'de str>()?
                    .ok_or_else(|| de::Error::invalid_length(0, &self))?;
                let qty = seq
                    .next_element::<&'de str>()?
                    .ok_or_else(|| de::Error::invalid_length(1, &self))?;
                let ts = seq.next_element::<&'de str>()?;
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(V1Level { price, qty, ts })
            }
        }
        d.deserialize_seq(LevelVisitor(PhantomData))
    }
}

// ---------------------------------------------------------------------------------------------
// Shared by both versions
// ---------------------------------------------------------------------------------------------

fn error_text(text: Option<&Text<'_>>, fallback: &str) -> String {
    text.map_or_else(|| fallback.to_string(), |t| t.0.to_string())
}

/// Decimals written after the point of a decimal string (`"0.00100000"` → 8).
fn decimals(s: &str) -> u32 {
    // A byte walk from the end: the strings are short, and a char search costs more to set up.
    s.bytes()
        .rposition(|c| c == b'.')
        .map_or(0, |i| (s.len() - i - 1) as u32)
}

/// Unix milliseconds of a Kraken v2 time stamp `2023-10-06T17:35:55.440295Z` (UTC only).
fn rfc3339_millis(s: &str) -> Option<Millis> {
    let b = s.as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
        || b.last() != Some(&b'Z')
    {
        return None;
    }
    let num = |from: usize, to: usize| -> Option<i64> {
        let t = s.get(from..to)?;
        if t.bytes().all(|c| c.is_ascii_digit()) {
            t.parse().ok()
        } else {
            None
        }
    };
    let (y, mo, d) = (num(0, 4)?, num(5, 7)?, num(8, 10)?);
    let (h, mi, sec) = (num(11, 13)?, num(14, 16)?, num(17, 19)?);
    let mut millis = 0;
    if b[19] == b'.' {
        let frac = s.get(20..s.len() - 1)?;
        if !frac.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        for (i, c) in frac
            .bytes()
            .chain(std::iter::repeat(b'0'))
            .take(3)
            .enumerate()
        {
            millis += i64::from(c - b'0') * [100, 10, 1][i];
        }
    } else if b.len() != 20 {
        return None;
    }
    let days = days_from_civil(y, mo, d);
    Some(((days * 24 + h) * 60 + mi) * 60_000 + sec * 1000 + millis)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Unix milliseconds of a v1 level time stamp `"1618678145.920470"` (seconds with a fraction).
fn unix_text_millis(s: &str) -> Option<Millis> {
    let (secs, frac) = match s.bytes().position(|c| c == b'.') {
        // The point is ASCII: both sides are on character boundaries.
        Some(i) => (s.get(..i)?, s.get(i + 1..)?),
        None => (s, ""),
    };
    let secs: i64 = secs.parse().ok()?;
    let mut millis = 0;
    for (i, c) in frac
        .bytes()
        .chain(std::iter::repeat(b'0'))
        .take(3)
        .enumerate()
    {
        if !c.is_ascii_digit() {
            return None;
        }
        millis += i64::from(c - b'0') * [100, 10, 1][i];
    }
    secs.checked_mul(1000)?.checked_add(millis)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v2_time_stamps_are_unix_millis() {
        assert_eq!(
            rfc3339_millis("2023-10-06T17:35:55.440295Z"),
            Some(1_696_613_755_440)
        );
        assert_eq!(rfc3339_millis("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            rfc3339_millis("2024-02-29T23:59:59.9Z"),
            Some(1_709_251_199_900)
        );
        assert_eq!(rfc3339_millis("2023-10-06 17:35:55Z"), None);
        assert_eq!(rfc3339_millis("2023-10-06T17:35:55+01:00"), None);
    }

    #[test]
    fn v1_time_stamps_are_unix_millis() {
        assert_eq!(
            unix_text_millis("1618678145.920470"),
            Some(1_618_678_145_920)
        );
        assert_eq!(unix_text_millis("1618678145"), Some(1_618_678_145_000));
        assert_eq!(unix_text_millis("1618678145.9"), Some(1_618_678_145_900));
        assert_eq!(unix_text_millis("r"), None);
        for bad in ["", ".5", "1.2x", "99999999999999999.0"] {
            assert_eq!(unix_text_millis(bad), None, "{bad}");
        }
        assert_eq!(unix_text_millis("0.000999"), Some(0));
    }

    #[test]
    fn depth_is_one_kraken_offers() {
        assert_eq!(subscribe_depth(1), 10);
        assert_eq!(subscribe_depth(10), 10);
        assert_eq!(subscribe_depth(200), 500);
        assert_eq!(subscribe_depth(1000), 1000);
        assert_eq!(subscribe_depth(5000), 1000);
    }

    #[test]
    fn decimals_of_wire_strings() {
        assert_eq!(decimals("56218.30000"), 5);
        assert_eq!(decimals("0.00000048"), 8);
        assert_eq!(decimals("100"), 0);
    }
}
