//! Bitfinex codec: WS v2 `book` channel, P0 aggregated, with `cs` checksums and SEQ_ALL
//! sequence numbers ([`BitfinexCodec`]).
//!
//! Sync rules (protocols.md §4.2–§4.5):
//! - Send `conf` first: flag `OB_CHECKSUM` (131072) makes the server send `[chan,"cs",crc]` after
//!   book changes; flag `SEQ_ALL` (65536) appends a sequence number to every channel frame. The
//!   recording shows those numbers count every frame of the **connection** (1, 2, 3, … across
//!   all channels, heartbeats included), so one counter per connection detects any lost frame.
//!   The codec trusts the flags the server confirms in its `conf` ack.
//! - The first array after `subscribed` is the snapshot `[[price,count,amount],…]`; later arrays
//!   are single entries `[price,count,amount]`. `count == 0` deletes the level, on the side the
//!   sign of `amount` names (`> 0` bid, `< 0` ask); otherwise the level is set to `|amount|`.
//! - The checksum is the CRC32 of the top 25 bids and asks interleaved as
//!   `price:amount` text, in the exchange's own number text (`7e-7`), compared as signed 32 bits.
//!   Numbers are therefore read from the raw JSON token, never through `f64`.
//! - Info 20051 (server restart): reconnect. 20060 (maintenance): down, ignore the book until
//!   20061 (maintenance over), then unsubscribe and subscribe again.

use std::fmt;
use std::marker::PhantomData;

use serde::Deserialize;
use serde::de::{self, IgnoredAny, SeqAccess, Visitor};
use serde_json::value::RawValue;

use crate::book::Book;
use crate::decimal::Dec;
use crate::types::Side;
use crate::venue::wire::{RawArray, Text, for_each, json_string};
use crate::venue::{
    Action, Codec, CodecError, Event, FeedState, Millis, Output, VenueSpec, checksum,
};

/// The symbol depthagg follows on Bitfinex.
pub const DEFAULT_SYMBOL: &str = "tBTCUSD";

/// `conf` flag: append a per-connection sequence number to every channel frame.
pub const SEQ_ALL: u64 = 65_536;
/// `conf` flag: send a `cs` checksum frame after book changes.
pub const OB_CHECKSUM: u64 = 131_072;

/// Book lengths Bitfinex accepts for P0 (§4.2); 1 is left out because the checksum covers 25.
pub const LENGTHS: [usize; 3] = [25, 100, 250];

/// The `len` to subscribe with for a wanted depth: the smallest one that covers it (250 at most).
pub fn subscribe_len(wanted: usize) -> usize {
    LENGTHS.into_iter().find(|&l| l >= wanted).unwrap_or(250)
}

/// Bitfinex sends `[chan,"hb"]` after about 15 s without channel data (§4.5); protocols.md §5
/// advises calling a feed stale after about twice that.
const STALE_AFTER_MS: Millis = 30_000;

/// Info code: the server is restarting, reconnect.
const INFO_RECONNECT: i64 = 20051;
/// Info code: maintenance starts, pause.
const INFO_MAINTENANCE_START: i64 = 20060;
/// Info code: maintenance ended, unsubscribe and subscribe again.
const INFO_MAINTENANCE_END: i64 = 20061;
/// Give a restarting server a moment; the driver's backoff takes over if it still refuses.
const RESTART_RECONNECT_DELAY_MS: u64 = 1000;

/// Codec for `bitfinex-v2`: `wss://api-pub.bitfinex.com/ws/2`, channel `book`, P0, F0.
pub struct BitfinexCodec {
    spec: VenueSpec,
    len: usize,
    /// The book channel of our symbol, once `subscribed` named it.
    chan_id: Option<u64>,
    /// A subscribe was sent and not yet answered.
    subscribe_pending: bool,
    /// An unsubscribe was sent and not yet answered.
    unsubscribing: bool,
    awaiting_snapshot: bool,
    /// The server confirmed SEQ_ALL: every channel frame ends with a sequence number.
    seq_all: bool,
    next_seq: Option<u64>,
    /// Between info 20060 and 20061 (maintenance).
    paused: bool,
}

impl BitfinexCodec {
    /// A codec for a spec (`spec.symbol` such as `tBTCUSD`; `spec.depth` picks the `len`).
    pub fn new(spec: VenueSpec) -> Self {
        let len = subscribe_len(spec.depth);
        BitfinexCodec {
            spec,
            len,
            chan_id: None,
            subscribe_pending: false,
            unsubscribing: false,
            awaiting_snapshot: true,
            seq_all: false,
            next_seq: None,
            paused: false,
        }
    }

    /// The `len` subscribed to, which the book is truncated at.
    pub fn book_len(&self) -> usize {
        self.len
    }

    fn subscribe(&mut self, out: &mut Output) {
        self.subscribe_pending = true;
        self.awaiting_snapshot = true;
        out.actions.push(Action::Send(format!(
            r#"{{"event":"subscribe","channel":"book","symbol":{},"prec":"P0","freq":"F0","len":"{}"}}"#,
            json_string(&self.spec.symbol),
            self.len
        )));
    }

    /// Unsubscribe (when subscribed) and subscribe again, for a fresh snapshot.
    fn resubscribe(&mut self, out: &mut Output) {
        self.awaiting_snapshot = true;
        if let Some(chan) = self.chan_id.take() {
            self.unsubscribing = true;
            out.actions.push(Action::Send(format!(
                r#"{{"event":"unsubscribe","chanId":{chan}}}"#
            )));
            self.subscribe(out);
        } else if !self.subscribe_pending {
            self.subscribe(out);
        }
        // A subscribe still in flight brings a snapshot anyway; a second one would be refused
        // as a duplicate.
    }

    fn on_event(&mut self, text: &str, out: &mut Output) -> Result<(), CodecError> {
        let ev: BfxEvent = serde_json::from_str(text)?;
        match ev.event.0.as_ref() {
            "info" => self.on_info(&ev, out),
            "conf" => {
                let ok = ev.status.is_none_or(|s| s.get() == r#""OK""#);
                self.seq_all = ok && ev.flags.is_some_and(|f| f & SEQ_ALL != 0);
                out.events.push(Event::Heartbeat);
            }
            "subscribed" => {
                let ours = ev.channel.as_ref().is_some_and(|c| c.0 == "book")
                    && ev.symbol.as_ref().is_some_and(|s| s.0 == self.spec.symbol);
                if ours {
                    self.chan_id = ev.chan_id;
                    self.subscribe_pending = false;
                    self.awaiting_snapshot = true;
                    if let Some(len) = ev.len.as_ref().and_then(|l| l.0.parse().ok()) {
                        self.len = len;
                    }
                }
                out.events.push(Event::Heartbeat);
            }
            "unsubscribed" => {
                self.unsubscribing = false;
                out.events.push(Event::Heartbeat);
            }
            "error" => {
                let msg = ev.msg.as_ref().map_or("error", |m| m.0.as_ref());
                let code = ev.code.unwrap_or(0);
                if self.unsubscribing && (10400..10500).contains(&code) {
                    // "Unsubscription failed" / "Not subscribed" answering a resync's
                    // unsubscribe: the subscribe after it still brings a fresh book.
                    self.unsubscribing = false;
                    out.events.push(Event::Heartbeat);
                } else {
                    self.subscribe_pending = false;
                    out.events.push(Event::State {
                        state: FeedState::Down,
                        reason: format!("{msg} (code {code})"),
                    });
                }
            }
            _ => out.events.push(Event::Heartbeat),
        }
        Ok(())
    }

    fn on_info(&mut self, ev: &BfxEvent<'_>, out: &mut Output) {
        let msg = ev.msg.as_ref().map_or("", |m| m.0.as_ref());
        match ev.code {
            Some(INFO_RECONNECT) => out.actions.push(Action::Reconnect {
                reason: format!("bitfinex info {INFO_RECONNECT}: {msg}"),
                min_delay_ms: RESTART_RECONNECT_DELAY_MS,
            }),
            Some(INFO_MAINTENANCE_START) => {
                self.paused = true;
                out.events.push(Event::State {
                    state: FeedState::Down,
                    reason: format!("maintenance (info {INFO_MAINTENANCE_START}): {msg}"),
                });
            }
            Some(INFO_MAINTENANCE_END) => {
                self.paused = false;
                self.resubscribe(out);
                out.events.push(Event::State {
                    state: FeedState::Syncing,
                    reason: format!(
                        "maintenance ended (info {INFO_MAINTENANCE_END}); resubscribing"
                    ),
                });
            }
            _ if ev.platform.as_ref().is_some_and(|p| p.status == 0) => {
                // platform.status 0 on connect: the exchange is in maintenance (§4.1).
                self.paused = true;
                out.events.push(Event::State {
                    state: FeedState::Down,
                    reason: "maintenance (platform status 0)".into(),
                });
            }
            _ => out.events.push(Event::Heartbeat),
        }
    }

    /// Check the SEQ_ALL number of a channel frame. Returns false when a gap was reported.
    fn check_seq(&mut self, seq: u64, out: &mut Output) -> bool {
        let expected = self.next_seq;
        self.next_seq = Some(seq.wrapping_add(1));
        match expected {
            Some(expected) if seq != expected => {
                out.events.push(Event::Gap { expected, got: seq });
                false
            }
            _ => true,
        }
    }

    fn on_channel(&mut self, text: &str, out: &mut Output) -> Result<(), CodecError> {
        const WHAT: &str = "bitfinex channel frame";
        // Frames of other channels on the connection only matter for their sequence number:
        // read the channel id and the last number without parsing the frame.
        if let (Some(chan), Some(ours)) = (leading_chan(text), self.chan_id)
            && chan != ours
        {
            if self.seq_all {
                match trailing_u64(text) {
                    Some(seq) => {
                        self.check_seq(seq, out);
                    }
                    None => return Err(CodecError::malformed("bitfinex frame without sequence")),
                }
            }
            return Ok(());
        }
        let frame: RawArray<5> = serde_json::from_str(text)?;
        let mut n = frame.len();
        if self.seq_all {
            if n < 3 {
                return Err(CodecError::malformed("bitfinex frame without sequence"));
            }
            n -= 1;
            let raw_seq = frame.item(n, WHAT)?.get();
            let seq: u64 = raw_seq
                .parse()
                .map_err(|_| CodecError::malformed(format!("bitfinex sequence {raw_seq}")))?;
            if !self.check_seq(seq, out) {
                return Ok(());
            }
        }
        let chan: u64 = frame
            .item(0, WHAT)?
            .get()
            .parse()
            .map_err(|_| CodecError::malformed("bitfinex channel id is not an integer"))?;
        if Some(chan) != self.chan_id || self.paused || n < 2 {
            return Ok(());
        }
        let body = frame.item(1, WHAT)?.get();
        match body.as_bytes().first() {
            Some(b'"') => match body {
                r#""hb""# => out.events.push(Event::Heartbeat),
                r#""cs""# if !self.awaiting_snapshot => {
                    let cs: i32 =
                        frame.item(2, WHAT)?.get().parse().map_err(|_| {
                            CodecError::malformed("bitfinex checksum is not an i32")
                        })?;
                    out.events.push(Event::Checksum {
                        expected: cs as u32,
                    });
                }
                _ => {}
            },
            Some(b'[') => {
                // `[[…],…]` (or an empty `[]`) is a list of entries, `[p,c,a]` a single one.
                let rest = body[1..].trim_start();
                let list = rest.starts_with('[') || rest.starts_with(']');
                if list && self.awaiting_snapshot {
                    self.on_snapshot(frame.item(1, WHAT)?, out)?;
                } else if self.awaiting_snapshot {
                    // An update with no snapshot to apply it to (Bitfinex sends the snapshot
                    // first, so this only follows a lost frame, which SEQ_ALL or cs reports).
                } else if list {
                    // BULK_UPDATES: a list of entries after the snapshot.
                    for_each::<BfxEntry, _>(frame.item(1, WHAT)?, |e| self.push_update(e, out))?;
                    out.events.push(Event::Truncate { depth: self.len });
                } else {
                    let entry: BfxEntry = serde_json::from_str(body)?;
                    self.push_update(entry, out)?;
                    out.events.push(Event::Truncate { depth: self.len });
                }
            }
            _ => return Err(CodecError::malformed("bitfinex frame body")),
        }
        Ok(())
    }

    fn on_snapshot(&mut self, raw: &RawValue, out: &mut Output) -> Result<(), CodecError> {
        let (mut bids, mut asks) = (Vec::new(), Vec::new());
        for_each::<BfxEntry, _>(raw, |e| {
            let price = Dec::parse(e.price.get())?;
            let amount = Dec::parse(e.amount.get())?;
            if parse_count(e.count)?.is_zero() {
                return Ok(());
            }
            match side_of(amount)? {
                Side::Bid => bids.push((price, amount)),
                Side::Ask => asks.push((price, amount.abs())),
            }
            Ok(())
        })?;
        self.awaiting_snapshot = false;
        out.events.push(Event::Snapshot { bids, asks });
        out.events.push(Event::Truncate { depth: self.len });
        out.events.push(Event::Synced);
        Ok(())
    }

    fn push_update(&self, e: BfxEntry<'_>, out: &mut Output) -> Result<(), CodecError> {
        let price = Dec::parse(e.price.get())?;
        let amount = Dec::parse(e.amount.get())?;
        let side = side_of(amount)?;
        let qty = if parse_count(e.count)?.is_zero() {
            Dec::ZERO
        } else {
            amount.abs()
        };
        out.events.push(Event::Set { side, price, qty });
        Ok(())
    }
}

impl Codec for BitfinexCodec {
    fn spec(&self) -> &VenueSpec {
        &self.spec
    }

    fn on_open(&mut self, _now: Millis, out: &mut Output) {
        self.chan_id = None;
        self.subscribe_pending = false;
        self.unsubscribing = false;
        self.seq_all = false;
        self.next_seq = None;
        self.paused = false;
        out.actions.push(Action::Send(format!(
            r#"{{"event":"conf","flags":{}}}"#,
            OB_CHECKSUM | SEQ_ALL
        )));
        self.subscribe(out);
    }

    fn on_text(&mut self, text: &str, _now: Millis, out: &mut Output) -> Result<(), CodecError> {
        match text.trim_start().as_bytes().first() {
            Some(b'{') => self.on_event(text, out),
            Some(b'[') => self.on_channel(text, out),
            _ => Err(CodecError::malformed("bitfinex frame is not JSON")),
        }
    }

    fn resync(&mut self, _now: Millis, out: &mut Output) {
        self.resubscribe(out);
    }

    fn checksum(&self, book: &Book) -> u32 {
        checksum::bitfinex(book) as u32
    }

    fn stale_after_ms(&self) -> Millis {
        STALE_AFTER_MS
    }
}

/// The number of orders at a level. Only zero matters (it deletes the level), but a negative
/// count is a corrupted entry: read as "not zero" it would turn a deletion into a level.
fn parse_count(raw: &RawValue) -> Result<Dec, CodecError> {
    let count = Dec::parse(raw.get())?;
    if count.is_negative() {
        return Err(CodecError::malformed(format!(
            "bitfinex book entry with count {count}"
        )));
    }
    Ok(count)
}

fn side_of(amount: Dec) -> Result<Side, CodecError> {
    if amount.is_negative() {
        Ok(Side::Ask)
    } else if amount.is_zero() {
        Err(CodecError::malformed("bitfinex book entry with amount 0"))
    } else {
        Ok(Side::Bid)
    }
}

/// The channel id of a frame `[123,…`, read without parsing the frame.
fn leading_chan(text: &str) -> Option<u64> {
    let rest = text.trim_start().strip_prefix('[')?.trim_start();
    let end = rest.find(|c: char| !c.is_ascii_digit())?;
    // Only a well-formed `[123,` names a channel: a frame of ours that is corrupted after its
    // first digits must not pass for another channel's frame and be skipped unparsed.
    if !rest[end..].trim_start().starts_with(',') {
        return None;
    }
    rest[..end].parse().ok()
}

/// The last element of a frame `…,19]` when it is an unsigned integer, read from the end.
fn trailing_u64(text: &str) -> Option<u64> {
    let body = text.trim_end().strip_suffix(']')?.trim_end();
    // By bytes: the byte after the last non-digit is a char boundary (only ASCII digits follow),
    // whereas one past a non-ASCII char's first byte is not.
    let start = body
        .bytes()
        .rposition(|b| !b.is_ascii_digit())
        .map_or(0, |i| i + 1);
    if !body[..start].trim_end().ends_with(',') {
        return None;
    }
    body[start..].parse().ok()
}

/// Any Bitfinex event frame (`info`, `conf`, `subscribed`, `unsubscribed`, `error`, `pong`).
#[derive(Deserialize)]
struct BfxEvent<'a> {
    #[serde(borrow)]
    event: Text<'a>,
    #[serde(default)]
    code: Option<i64>,
    #[serde(borrow, default)]
    msg: Option<Text<'a>>,
    #[serde(borrow, default)]
    channel: Option<Text<'a>>,
    #[serde(borrow, default)]
    symbol: Option<Text<'a>>,
    #[serde(default, rename = "chanId")]
    chan_id: Option<u64>,
    #[serde(default)]
    flags: Option<u64>,
    #[serde(borrow, default)]
    status: Option<&'a RawValue>,
    #[serde(borrow, default)]
    len: Option<Text<'a>>,
    #[serde(default)]
    platform: Option<Platform>,
}

#[derive(Deserialize)]
struct Platform {
    status: i64,
}

/// A P0 book entry `[price, count, amount]`, numbers as their raw JSON tokens.
struct BfxEntry<'a> {
    price: &'a RawValue,
    count: &'a RawValue,
    amount: &'a RawValue,
}

impl<'de: 'a, 'a> Deserialize<'de> for BfxEntry<'a> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct EntryVisitor<'a>(PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for EntryVisitor<'a> {
            type Value = BfxEntry<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a bitfinex book entry [price, count, amount]")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<BfxEntry<'a>, A::Error> {
                let mut next = |i| -> Result<&'de RawValue, A::Error> {
                    seq.next_element::<&'de RawValue>()?
                        .ok_or_else(|| de::Error::invalid_length(i, &self))
                };
                let (price, count, amount) = (next(0)?, next(1)?, next(2)?);
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(BfxEntry {
                    price,
                    count,
                    amount,
                })
            }
        }
        d.deserialize_seq(EntryVisitor(PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_ends_are_read_without_parsing() {
        assert_eq!(leading_chan("[232957,[60495,0,-1],267]"), Some(232957));
        assert_eq!(leading_chan(" [ 17,\"hb\"]"), Some(17));
        assert_eq!(leading_chan("{\"event\":1}"), None);
        assert_eq!(trailing_u64("[232957,[60495,0,-1],267]"), Some(267));
        assert_eq!(trailing_u64("[204928,\"hb\",127] "), Some(127));
        assert_eq!(trailing_u64("[1,[2,3,-4]]"), None);
        assert_eq!(trailing_u64("[1,\"cs\",-5]"), None);
    }

    #[test]
    fn len_is_one_bitfinex_offers() {
        assert_eq!(subscribe_len(1), 25);
        assert_eq!(subscribe_len(100), 100);
        assert_eq!(subscribe_len(101), 250);
        assert_eq!(subscribe_len(1000), 250);
    }
}
