//! Sans-IO venue codecs: text in, book events and actions out, time passed in.
//!
//! A [`Codec`] knows one exchange protocol. It never touches a socket or a clock: the feed driver
//! (`crate::feed`), the capture replayer (`crate::replay`) and the tests hand it frames, REST bodies
//! and the current time, and it answers with [`Event`]s (what to do to the book, what state the
//! feed is in) and [`Action`]s (what to send or fetch). [`crate::engine::Engine`] applies the
//! events to the book, checks checksums, keeps the status honest and counts everything.

pub mod binance;
pub mod bitfinex;
pub mod checksum;
pub mod coinbase;
pub mod kraken;
mod wire;

use std::fmt;
use std::str::FromStr;

use crate::book::Book;
use crate::decimal::Dec;
use crate::types::{Side, Venue};

/// Unix time in milliseconds. Codecs get "now" passed in and never read a clock.
pub type Millis = i64;

/// A wire protocol depthagg speaks (the names are those of `../shared/capture-format.md`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
pub enum Protocol {
    /// Binance spot diff depth stream + REST snapshot.
    #[serde(rename = "binance-spot")]
    BinanceSpot,
    /// Coinbase Advanced Trade `level2` + `heartbeats`.
    #[serde(rename = "coinbase-advanced")]
    CoinbaseAdvanced,
    /// Coinbase Exchange `level2_batch` (`snapshot` + `l2update`).
    #[serde(rename = "coinbase-exchange")]
    CoinbaseExchange,
    /// Kraken WS v2 `book` with checksums.
    #[serde(rename = "kraken-v2")]
    KrakenV2,
    /// Kraken WS v1 `book-N` with `"c"` checksums.
    #[serde(rename = "kraken-v1")]
    KrakenV1,
    /// Bitfinex WS v2 `book` P0 with `cs` checksum frames.
    #[serde(rename = "bitfinex-v2")]
    BitfinexV2,
}

impl Protocol {
    /// Every protocol.
    pub const ALL: [Protocol; 6] = [
        Protocol::BinanceSpot,
        Protocol::CoinbaseAdvanced,
        Protocol::CoinbaseExchange,
        Protocol::KrakenV2,
        Protocol::KrakenV1,
        Protocol::BitfinexV2,
    ];

    /// The capture-format name (`binance-spot`, `kraken-v2`, ...).
    pub const fn name(self) -> &'static str {
        match self {
            Protocol::BinanceSpot => "binance-spot",
            Protocol::CoinbaseAdvanced => "coinbase-advanced",
            Protocol::CoinbaseExchange => "coinbase-exchange",
            Protocol::KrakenV2 => "kraken-v2",
            Protocol::KrakenV1 => "kraken-v1",
            Protocol::BitfinexV2 => "bitfinex-v2",
        }
    }

    /// The venue this protocol belongs to.
    pub const fn venue(self) -> Venue {
        match self {
            Protocol::BinanceSpot => Venue::Binance,
            Protocol::CoinbaseAdvanced | Protocol::CoinbaseExchange => Venue::Coinbase,
            Protocol::KrakenV2 | Protocol::KrakenV1 => Venue::Kraken,
            Protocol::BitfinexV2 => Venue::Bitfinex,
        }
    }

    /// The recommended protocol of a venue (protocols.md §9).
    pub const fn default_for(venue: Venue) -> Protocol {
        match venue {
            Venue::Binance => Protocol::BinanceSpot,
            Venue::Coinbase => Protocol::CoinbaseAdvanced,
            Venue::Kraken => Protocol::KrakenV2,
            Venue::Bitfinex => Protocol::BitfinexV2,
        }
    }

    /// The public WebSocket endpoint of the live exchange.
    pub const fn default_ws_url(self) -> &'static str {
        match self {
            Protocol::BinanceSpot => "wss://stream.binance.com:9443",
            Protocol::CoinbaseAdvanced => "wss://advanced-trade-ws.coinbase.com",
            Protocol::CoinbaseExchange => "wss://ws-feed.exchange.coinbase.com",
            Protocol::KrakenV2 => "wss://ws.kraken.com/v2",
            Protocol::KrakenV1 => "wss://ws.kraken.com",
            Protocol::BitfinexV2 => "wss://api-pub.bitfinex.com/ws/2",
        }
    }

    /// The REST base URL, for protocols that fetch a snapshot over HTTP.
    pub const fn default_rest_url(self) -> Option<&'static str> {
        match self {
            Protocol::BinanceSpot => Some("https://api.binance.com"),
            _ => None,
        }
    }

    /// Levels per side the client keeps (and subscribes to, where the protocol has a depth).
    pub const fn default_depth(self) -> usize {
        match self {
            Protocol::BinanceSpot => 5000,
            Protocol::CoinbaseAdvanced | Protocol::CoinbaseExchange => 200_000,
            Protocol::KrakenV2 | Protocol::KrakenV1 => 1000,
            Protocol::BitfinexV2 => 250,
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.name())
    }
}

impl FromStr for Protocol {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Protocol::ALL
            .into_iter()
            .find(|p| p.name() == s.trim())
            .ok_or_else(|| {
                format!(
                    "unknown protocol {s:?} (accepted: {})",
                    Protocol::ALL.map(|p| p.name()).join(", ")
                )
            })
    }
}

/// Everything a codec needs to know about the market it follows.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct VenueSpec {
    /// Protocol (and so venue).
    pub protocol: Protocol,
    /// Exchange symbol as the protocol writes it (`BTCUSDT`, `BTC-USD`, `BTC/USD`, `tBTCUSD`).
    pub symbol: String,
    /// WebSocket base URL.
    pub ws_url: String,
    /// REST base URL (Binance only).
    pub rest_url: Option<String>,
    /// Levels per side to keep and subscribe to.
    pub depth: usize,
}

impl VenueSpec {
    /// The live defaults of a protocol for a symbol.
    pub fn new(protocol: Protocol, symbol: &str) -> VenueSpec {
        VenueSpec {
            protocol,
            symbol: symbol.to_string(),
            ws_url: protocol.default_ws_url().to_string(),
            rest_url: protocol.default_rest_url().map(str::to_string),
            depth: protocol.default_depth(),
        }
    }

    /// The venue.
    pub fn venue(&self) -> Venue {
        self.protocol.venue()
    }
}

/// The state of one venue's feed. Only [`FeedState::Live`] books are shown and written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FeedState {
    /// Opening the connection.
    Connecting,
    /// Connected, waiting for the first consistent book.
    Syncing,
    /// In sync and fresh.
    Live,
    /// In sync when last heard from, but silent for too long.
    Stale,
    /// Integrity lost (gap, checksum, crossed, malformed); getting a new snapshot.
    Resyncing,
    /// Refused by the exchange for where we are or how often we ask (HTTP 451, 429).
    Blocked,
    /// Not working: rejected subscription, connection failing, exchange maintenance.
    Down,
}

impl FeedState {
    /// Lowercase name.
    pub const fn name(self) -> &'static str {
        match self {
            FeedState::Connecting => "connecting",
            FeedState::Syncing => "syncing",
            FeedState::Live => "live",
            FeedState::Stale => "stale",
            FeedState::Resyncing => "resyncing",
            FeedState::Blocked => "blocked",
            FeedState::Down => "down",
        }
    }
}

impl fmt::Display for FeedState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.name())
    }
}

/// What a codec tells the engine to do with the book and the status, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// Replace the whole book with these levels (the book is not yet live: see [`Event::Synced`]).
    Snapshot {
        /// Bid levels (any order).
        bids: Vec<(Dec, Dec)>,
        /// Ask levels (any order).
        asks: Vec<(Dec, Dec)>,
    },
    /// Set a level to an absolute quantity; zero deletes it.
    Set {
        /// Side.
        side: Side,
        /// Exact price.
        price: Dec,
        /// Exact absolute quantity.
        qty: Dec,
    },
    /// Keep only the best `depth` levels per side.
    Truncate {
        /// Levels per side to keep.
        depth: usize,
    },
    /// The book, after the events before this one, must have this checksum
    /// (computed by [`Codec::checksum`]). A mismatch triggers a resync.
    Checksum {
        /// The checksum the exchange sent, as an unsigned 32-bit value.
        expected: u32,
    },
    /// The book is now a consistent copy of the exchange's: it may go live.
    Synced,
    /// A message was missed: the book is no longer trustworthy. Triggers a resync.
    Gap {
        /// Sequence number expected.
        expected: u64,
        /// Sequence number received.
        got: u64,
    },
    /// The exchange's own time stamp of the data just applied (for latency).
    ExchangeTime(Millis),
    /// The feed is in a state the engine cannot infer (rejected subscription, maintenance,
    /// blocked), with the exchange's words as the reason.
    State {
        /// New state.
        state: FeedState,
        /// Human-readable reason, naming the exchange's words where there are any.
        reason: String,
    },
    /// A sign of life with no book change (heartbeat, ack, pong).
    Heartbeat,
}

/// What a codec asks the driver to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Send this text frame on the connection.
    Send(String),
    /// HTTP GET this URL after `delay_ms` and pass the response to [`Codec::on_http`].
    Fetch {
        /// Full URL.
        url: String,
        /// Wait this long first (0 = now).
        delay_ms: u64,
    },
    /// Close the connection and open a new one, waiting at least `min_delay_ms`
    /// (the driver's backoff may wait longer).
    Reconnect {
        /// Why, for logs and status.
        reason: String,
        /// Minimum wait before reconnecting.
        min_delay_ms: u64,
    },
}

/// Where a codec puts its events and actions; reused across frames to avoid allocation.
#[derive(Debug, Default)]
pub struct Output {
    /// Book and state events, in order.
    pub events: Vec<Event>,
    /// Actions for the driver, in order.
    pub actions: Vec<Action>,
}

impl Output {
    /// Empty both lists (keeping their capacity).
    pub fn clear(&mut self) {
        self.events.clear();
        self.actions.clear();
    }
}

/// Why a frame could not be decoded. A malformed frame is counted and triggers a resync.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    /// Not valid JSON or not of the expected shape.
    #[error("malformed frame: {0}")]
    Malformed(String),
    /// A price or quantity that is not an exact decimal.
    #[error("bad number: {0}")]
    Number(#[from] crate::decimal::DecError),
}

impl CodecError {
    /// A malformed-frame error from anything printable.
    pub fn malformed(what: impl fmt::Display) -> CodecError {
        CodecError::Malformed(what.to_string())
    }
}

impl From<serde_json::Error> for CodecError {
    fn from(e: serde_json::Error) -> Self {
        CodecError::Malformed(e.to_string())
    }
}

/// One exchange protocol, sans IO.
pub trait Codec: Send {
    /// The spec this codec was built from.
    fn spec(&self) -> &VenueSpec;

    /// The protocol spoken.
    fn protocol(&self) -> Protocol {
        self.spec().protocol
    }

    /// The full WebSocket URL to connect to (stream names in the path where the protocol wants
    /// it); the spec's URL unless the protocol says otherwise.
    fn connect_url(&self) -> String {
        self.spec().ws_url.clone()
    }

    /// The connection is open: reset per-connection state and emit the subscribe frames.
    fn on_open(&mut self, now: Millis, out: &mut Output);

    /// A text frame arrived.
    fn on_text(&mut self, text: &str, now: Millis, out: &mut Output) -> Result<(), CodecError>;

    /// The response to an [`Action::Fetch`] arrived (or, in replay, a recorded one).
    fn on_http(
        &mut self,
        status: u16,
        body: &str,
        now: Millis,
        out: &mut Output,
    ) -> Result<(), CodecError> {
        let _ = (status, body, now, out);
        Ok(())
    }

    /// The book lost integrity (gap, checksum mismatch, crossed book, malformed frame). Forget the
    /// sync state and emit what it takes to get a fresh snapshot on this connection (resubscribe,
    /// refetch). If the protocol cannot resync in place, emit [`Action::Reconnect`].
    fn resync(&mut self, now: Millis, out: &mut Output);

    /// The venue's checksum of `book`, for [`Event::Checksum`]. Protocols without checksums never
    /// emit that event.
    fn checksum(&self, book: &Book) -> u32 {
        let _ = book;
        0
    }

    /// How long the feed may be silent (no frame at all, heartbeats included) before it is stale.
    fn stale_after_ms(&self) -> Millis;
}

/// Build the codec for a spec.
pub fn codec_for(spec: VenueSpec) -> Box<dyn Codec> {
    match spec.protocol {
        Protocol::BinanceSpot => Box::new(binance::BinanceCodec::new(spec)),
        Protocol::CoinbaseAdvanced => Box::new(coinbase::AdvancedCodec::new(spec)),
        Protocol::CoinbaseExchange => Box::new(coinbase::ExchangeCodec::new(spec)),
        Protocol::KrakenV2 => Box::new(kraken::V2Codec::new(spec)),
        Protocol::KrakenV1 => Box::new(kraken::V1Codec::new(spec)),
        Protocol::BitfinexV2 => Box::new(bitfinex::BitfinexCodec::new(spec)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocol_names_round_trip() {
        for p in Protocol::ALL {
            assert_eq!(p.name().parse::<Protocol>(), Ok(p));
        }
        assert!("kraken-v3".parse::<Protocol>().is_err());
        for v in Venue::ALL {
            assert_eq!(Protocol::default_for(v).venue(), v);
        }
    }
}
