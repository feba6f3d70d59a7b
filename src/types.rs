//! Venues and book sides.

use std::fmt;
use std::str::FromStr;

/// One of the four exchanges depthagg follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Venue {
    /// Binance spot, BTCUSDT.
    Binance,
    /// Coinbase, BTC-USD.
    Coinbase,
    /// Kraken, BTC/USD.
    Kraken,
    /// Bitfinex, tBTCUSD.
    Bitfinex,
}

impl Venue {
    /// All venues in display order (this order is also the `1`–`4` keys of the dashboard).
    pub const ALL: [Venue; 4] = [
        Venue::Binance,
        Venue::Coinbase,
        Venue::Kraken,
        Venue::Bitfinex,
    ];

    /// Lowercase name used in flags, files and logs.
    pub const fn name(self) -> &'static str {
        match self {
            Venue::Binance => "binance",
            Venue::Coinbase => "coinbase",
            Venue::Kraken => "kraken",
            Venue::Bitfinex => "bitfinex",
        }
    }

    /// Position in [`Venue::ALL`].
    pub const fn index(self) -> usize {
        self as usize
    }

    /// The default symbol of the BTC/USD market on this venue.
    pub const fn default_symbol(self) -> &'static str {
        match self {
            Venue::Binance => "BTCUSDT",
            Venue::Coinbase => "BTC-USD",
            Venue::Kraken => "BTC/USD",
            Venue::Bitfinex => "tBTCUSD",
        }
    }

    /// The default weight ("rough liquidity share" of the original script).
    pub const fn default_weight(self) -> f64 {
        match self {
            Venue::Binance => 0.5,
            Venue::Coinbase => 0.2,
            Venue::Kraken => 0.15,
            Venue::Bitfinex => 0.15,
        }
    }
}

impl fmt::Display for Venue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.name())
    }
}

impl FromStr for Venue {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "binance" => Ok(Venue::Binance),
            "coinbase" => Ok(Venue::Coinbase),
            "kraken" => Ok(Venue::Kraken),
            "bitfinex" => Ok(Venue::Bitfinex),
            other => Err(format!(
                "unknown venue {other:?} (accepted: binance, coinbase, kraken, bitfinex)"
            )),
        }
    }
}

/// A side of an order book.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    /// Buy orders.
    Bid,
    /// Sell orders.
    Ask,
}

impl Side {
    /// `bid` or `ask`.
    pub const fn name(self) -> &'static str {
        match self {
            Side::Bid => "bid",
            Side::Ask => "ask",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn venue_names_round_trip() {
        for v in Venue::ALL {
            assert_eq!(v.name().parse::<Venue>(), Ok(v));
            assert_eq!(Venue::ALL[v.index()], v);
        }
        assert_eq!(" Kraken ".parse::<Venue>(), Ok(Venue::Kraken));
        assert!("bybit".parse::<Venue>().is_err());
        let total: f64 = Venue::ALL.iter().map(|v| v.default_weight()).sum();
        assert!((total - 1.0).abs() < 1e-12);
    }
}
