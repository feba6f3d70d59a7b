//! An exact L2 order book: one price level per price, absolute quantities.
//!
//! Each side is a `BTreeMap` from exact price to exact quantity. Bids iterate highest first, asks
//! lowest first. Setting a quantity of zero deletes the level (deleting a level the book does not
//! hold is normal on every venue). The full Coinbase BTC-USD book (about 46,000 levels) takes a few
//! megabytes and a snapshot replaces it in a few milliseconds.

use std::collections::BTreeMap;

use crate::decimal::Dec;
use crate::types::Side;

/// One price level.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Level {
    /// Exact price.
    pub price: Dec,
    /// Exact quantity (always positive in a book).
    pub qty: Dec,
}

/// The lowest bid and the highest ask the book holds: the price range its data covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Coverage {
    /// Lowest bid price held, if any bid is held.
    pub low: Option<Dec>,
    /// Highest ask price held, if any ask is held.
    pub high: Option<Dec>,
}

/// An L2 order book.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Book {
    bids: BTreeMap<Dec, Dec>,
    asks: BTreeMap<Dec, Dec>,
}

/// The levels of one side, best first (see [`Book::levels`]): a plain enum rather than a boxed
/// iterator, so walking the top of a book (every checksum does) allocates nothing.
pub enum Levels<'a> {
    /// Bids, highest first.
    Bids(std::iter::Rev<std::collections::btree_map::Iter<'a, Dec, Dec>>),
    /// Asks, lowest first.
    Asks(std::collections::btree_map::Iter<'a, Dec, Dec>),
}

impl Iterator for Levels<'_> {
    type Item = Level;

    fn next(&mut self) -> Option<Level> {
        let (&price, &qty) = match self {
            Levels::Bids(it) => it.next()?,
            Levels::Asks(it) => it.next()?,
        };
        Some(Level { price, qty })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match self {
            Levels::Bids(it) => it.size_hint(),
            Levels::Asks(it) => it.size_hint(),
        }
    }
}

impl Book {
    /// An empty book.
    pub fn new() -> Book {
        Book::default()
    }

    /// Remove every level.
    pub fn clear(&mut self) {
        self.bids.clear();
        self.asks.clear();
    }

    /// Replace the whole book with a snapshot. Zero quantities in the snapshot are skipped; a
    /// price given twice keeps the last quantity.
    pub fn replace<B, A>(&mut self, bids: B, asks: A)
    where
        B: IntoIterator<Item = (Dec, Dec)>,
        A: IntoIterator<Item = (Dec, Dec)>,
    {
        self.clear();
        for (p, q) in bids {
            self.set(Side::Bid, p, q);
        }
        for (p, q) in asks {
            self.set(Side::Ask, p, q);
        }
    }

    /// Set the absolute quantity at a price; zero (or negative) removes the level.
    #[inline]
    pub fn set(&mut self, side: Side, price: Dec, qty: Dec) {
        let map = self.side_mut(side);
        if qty.is_zero() || qty.is_negative() {
            map.remove(&price);
        } else {
            map.insert(price, qty);
        }
    }

    /// Quantity held at a price.
    pub fn get(&self, side: Side, price: Dec) -> Option<Dec> {
        self.side(side).get(&price).copied()
    }

    /// Keep only the best `depth` levels on each side.
    pub fn truncate(&mut self, depth: usize) {
        while self.bids.len() > depth {
            self.bids.pop_first();
        }
        while self.asks.len() > depth {
            self.asks.pop_last();
        }
    }

    /// Keep only the best `depth` levels on one side.
    pub fn truncate_side(&mut self, side: Side, depth: usize) {
        match side {
            Side::Bid => {
                while self.bids.len() > depth {
                    self.bids.pop_first();
                }
            }
            Side::Ask => {
                while self.asks.len() > depth {
                    self.asks.pop_last();
                }
            }
        }
    }

    /// Highest bid.
    pub fn best_bid(&self) -> Option<Level> {
        self.bids
            .last_key_value()
            .map(|(&price, &qty)| Level { price, qty })
    }

    /// Lowest ask.
    pub fn best_ask(&self) -> Option<Level> {
        self.asks
            .first_key_value()
            .map(|(&price, &qty)| Level { price, qty })
    }

    /// True when the best bid is at or above the best ask: the book cannot be right.
    pub fn is_crossed(&self) -> bool {
        match (self.best_bid(), self.best_ask()) {
            (Some(b), Some(a)) => b.price >= a.price,
            _ => false,
        }
    }

    /// Mid price `(best bid + best ask) / 2`, exact, when both sides hold a level.
    pub fn mid(&self) -> Option<Dec> {
        let (b, a) = (self.best_bid()?, self.best_ask()?);
        Some(Dec::from_raw((b.price.raw() + a.price.raw()) / 2))
    }

    /// Number of levels on a side.
    pub fn len(&self, side: Side) -> usize {
        self.side(side).len()
    }

    /// True when neither side holds a level.
    pub fn is_empty(&self) -> bool {
        self.bids.is_empty() && self.asks.is_empty()
    }

    /// Levels of a side in price order from the best: bids high→low, asks low→high.
    pub fn levels(&self, side: Side) -> Levels<'_> {
        match side {
            Side::Bid => Levels::Bids(self.bids.iter().rev()),
            Side::Ask => Levels::Asks(self.asks.iter()),
        }
    }

    /// Bid levels with `lo <= price <= hi`, ascending by price.
    pub fn bids_in(&self, lo: Dec, hi: Dec) -> impl Iterator<Item = Level> + '_ {
        range(&self.bids, lo, hi)
    }

    /// Ask levels with `lo <= price <= hi`, ascending by price.
    pub fn asks_in(&self, lo: Dec, hi: Dec) -> impl Iterator<Item = Level> + '_ {
        range(&self.asks, lo, hi)
    }

    /// Levels of one side with `lo <= price <= hi`, ascending by price.
    pub fn side_in(&self, side: Side, lo: Dec, hi: Dec) -> impl Iterator<Item = Level> + '_ {
        range(self.side(side), lo, hi)
    }

    /// The price range the book's data covers: lowest bid and highest ask held.
    pub fn coverage(&self) -> Coverage {
        Coverage {
            low: self.bids.first_key_value().map(|(&p, _)| p),
            high: self.asks.last_key_value().map(|(&p, _)| p),
        }
    }

    fn side(&self, side: Side) -> &BTreeMap<Dec, Dec> {
        match side {
            Side::Bid => &self.bids,
            Side::Ask => &self.asks,
        }
    }

    fn side_mut(&mut self, side: Side) -> &mut BTreeMap<Dec, Dec> {
        match side {
            Side::Bid => &mut self.bids,
            Side::Ask => &mut self.asks,
        }
    }
}

fn range(map: &BTreeMap<Dec, Dec>, lo: Dec, hi: Dec) -> impl Iterator<Item = Level> + '_ {
    let r = if lo <= hi {
        Some(map.range(lo..=hi))
    } else {
        None
    };
    r.into_iter()
        .flatten()
        .map(|(&price, &qty)| Level { price, qty })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Dec {
        Dec::parse(s).expect("valid decimal")
    }

    fn book() -> Book {
        let mut b = Book::new();
        b.replace(
            [("100", "1"), ("99.5", "2"), ("98", "3")].map(|(p, q)| (d(p), d(q))),
            [("101", "4"), ("102.25", "5"), ("110", "6")].map(|(p, q)| (d(p), d(q))),
        );
        b
    }

    fn prices(b: &Book, side: Side) -> Vec<String> {
        b.levels(side).map(|l| l.price.to_string()).collect()
    }

    #[test]
    fn levels_come_best_first() {
        let b = book();
        assert_eq!(prices(&b, Side::Bid), ["100", "99.5", "98"]);
        assert_eq!(prices(&b, Side::Ask), ["101", "102.25", "110"]);
        assert_eq!(
            b.best_bid(),
            Some(Level {
                price: d("100"),
                qty: d("1")
            })
        );
        assert_eq!(
            b.best_ask(),
            Some(Level {
                price: d("101"),
                qty: d("4")
            })
        );
        assert_eq!(b.mid(), Some(d("100.5")));
    }

    #[test]
    fn zero_deletes_and_missing_delete_is_harmless() {
        let mut b = book();
        b.set(Side::Bid, d("99.5"), d("0"));
        b.set(Side::Ask, d("105"), d("0.000"));
        assert_eq!(prices(&b, Side::Bid), ["100", "98"]);
        assert_eq!(b.len(Side::Ask), 3);
        b.set(Side::Ask, d("101"), d("7.5"));
        assert_eq!(b.get(Side::Ask, d("101")), Some(d("7.5")));
    }

    #[test]
    fn replace_drops_the_old_book() {
        let mut b = book();
        b.replace([(d("50"), d("1")), (d("51"), d("0"))], []);
        assert_eq!(prices(&b, Side::Bid), ["50"]);
        assert_eq!(b.len(Side::Ask), 0);
        assert_eq!(b.mid(), None);
    }

    #[test]
    fn truncate_keeps_the_best() {
        let mut b = book();
        b.truncate(2);
        assert_eq!(prices(&b, Side::Bid), ["100", "99.5"]);
        assert_eq!(prices(&b, Side::Ask), ["101", "102.25"]);
        b.truncate_side(Side::Ask, 1);
        assert_eq!(prices(&b, Side::Ask), ["101"]);
        assert_eq!(b.len(Side::Bid), 2);
    }

    #[test]
    fn crossed_and_coverage() {
        let mut b = book();
        assert!(!b.is_crossed());
        assert_eq!(
            b.coverage(),
            Coverage {
                low: Some(d("98")),
                high: Some(d("110"))
            }
        );
        b.set(Side::Bid, d("101"), d("1"));
        assert!(b.is_crossed());
        b.set(Side::Bid, d("101"), d("0"));
        b.set(Side::Bid, d("100.99"), d("1"));
        assert!(!b.is_crossed());
        assert_eq!(
            Book::new().coverage(),
            Coverage {
                low: None,
                high: None
            }
        );
    }

    #[test]
    fn ranges_are_inclusive_and_ascending() {
        let b = book();
        let got: Vec<_> = b.bids_in(d("98"), d("99.5")).map(|l| l.price).collect();
        assert_eq!(got, [d("98"), d("99.5")]);
        let got: Vec<_> = b.asks_in(d("102"), d("200")).map(|l| l.price).collect();
        assert_eq!(got, [d("102.25"), d("110")]);
        assert_eq!(b.asks_in(d("5"), d("1")).count(), 0);
    }
}
