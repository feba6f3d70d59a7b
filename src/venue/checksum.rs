//! CRC32 book checksums of Kraken (v1 and v2) and Bitfinex, computed from the exchange's own
//! number text (protocols.md §3.4, §4.4). Both the client codecs and the simulator use these.

use crate::book::Book;
use crate::decimal::Dec;
use crate::types::Side;

/// Kraken's checksum (protocols.md §3.4): the top 10 asks (lowest first) then the top 10 bids
/// (highest first); for each level the price then the quantity written at the instrument's
/// precision (`price_dp`, `qty_dp` decimals), with the decimal point removed and then the leading
/// zeros removed; CRC32 (IEEE) of the concatenation, compared unsigned.
pub fn kraken(book: &Book, price_dp: u32, qty_dp: u32) -> u32 {
    let mut top = KrakenTop::default();
    top.fill(book);
    let mut text = Vec::with_capacity(512);
    for &(price, qty) in top.levels() {
        push_digits(&mut text, price, price_dp);
        push_digits(&mut text, qty, qty_dp);
    }
    crc32fast::hash(&text)
}

/// The top 10 asks (lowest first) then the top 10 bids (highest first).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct KrakenTop {
    levels: [(Dec, Dec); 20],
    /// How many of `levels` are asks; the bids follow them.
    asks: usize,
    len: usize,
}

impl KrakenTop {
    fn fill(&mut self, book: &Book) {
        self.len = 0;
        for side in [Side::Ask, Side::Bid] {
            for level in book.levels(side).take(10) {
                self.levels[self.len] = (level.price, level.qty);
                self.len += 1;
            }
            if side == Side::Ask {
                self.asks = self.len;
            }
        }
    }

    fn levels(&self) -> &[(Dec, Dec)] {
        &self.levels[..self.len]
    }

    fn same(&self, other: &KrakenTop) -> bool {
        self.asks == other.asks && self.levels() == other.levels()
    }
}

/// Append the checksum text of one number: the digits of its value at `dp` decimals with the
/// point and the leading zeros removed (a zero contributes nothing).
fn push_digits(text: &mut Vec<u8>, value: Dec, dp: u32) {
    let n = value.checksum_integer(dp);
    if n != 0 {
        let mut itoa = itoa::Buffer::new();
        let digits = match u64::try_from(n) {
            Ok(small) => itoa.format(small),
            Err(_) => itoa.format(n),
        };
        text.extend_from_slice(digits.as_bytes());
    }
}

/// [`kraken`] with a memo of the last result and of the checksum text of each of its levels.
///
/// Many updates change levels below the top 10, which leaves the checksum as it was: the top 10
/// of each side is compared with the last one (a few integer compares) before any digit is
/// written. When the top did change, usually one or two levels did: the others keep their order,
/// so a merge walk over the last top finds them and copies their text, and only the new prices
/// and quantities are written out. The whole text is then hashed in one call (a few hundred
/// bytes take crc32fast's folding path; forty tiny updates would not).
#[derive(Debug, Default)]
pub struct KrakenMemo {
    state: std::sync::Mutex<MemoState>,
}

#[derive(Debug, Default)]
struct MemoState {
    /// The last computation (when `valid`), and a spare the next one is built in (boxed, so
    /// that handing over is a pointer swap).
    last: Box<KrakenText>,
    spare: Box<KrakenText>,
    valid: bool,
}

/// The checksum text of a top, with where each level's price and quantity text end.
#[derive(Debug, Default)]
struct KrakenText {
    dp: (u32, u32),
    top: KrakenTop,
    text: Vec<u8>,
    /// `(end of the price text, end of the quantity text)` of each level in `text`.
    ends: [(usize, usize); 20],
    crc: u32,
}

impl KrakenText {
    fn price_range(&self, i: usize) -> std::ops::Range<usize> {
        let start = if i == 0 { 0 } else { self.ends[i - 1].1 };
        start..self.ends[i].0
    }

    fn qty_range(&self, i: usize) -> std::ops::Range<usize> {
        self.ends[i].0..self.ends[i].1
    }
}

impl KrakenMemo {
    /// The checksum of `book` at the given precision, reusing the last one when the top 10 of both
    /// sides did not change, and the text of every level that stayed.
    pub fn checksum(&self, book: &Book, price_dp: u32, qty_dp: u32) -> u32 {
        let dp = (price_dp, qty_dp);
        let mut guard = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let MemoState { last, spare, valid } = &mut *guard;
        let next = spare;
        next.top.fill(book);
        let reusable = *valid && last.dp == dp;
        if reusable && next.top.same(&last.top) {
            return last.crc;
        }
        next.dp = dp;
        next.text.clear();
        let (new, old) = (&next.top, &last.top);
        // Text reused from the last top is copied in runs: the levels that stayed are mostly
        // next to each other there too. `run` is the range of `last.text` not yet copied.
        let mut run = 0..0;
        let flush = |text: &mut Vec<u8>, run: &mut std::ops::Range<usize>| {
            text.extend_from_slice(&last.text[run.clone()]);
            *run = 0..0;
        };
        let reuse =
            |text: &mut Vec<u8>, run: &mut std::ops::Range<usize>, from: std::ops::Range<usize>| {
                if run.end == from.start && run.end > run.start {
                    run.end = from.end;
                } else {
                    text.extend_from_slice(&last.text[run.clone()]);
                    *run = from;
                }
            };
        for (range, old_range, ask) in [
            (0..new.asks, 0..old.asks, true),
            (new.asks..new.len, old.asks..old.len, false),
        ] {
            // Both lists are in the side's price order: asks rising, bids falling.
            let mut j = old_range.start;
            for i in range {
                let (price, qty) = new.levels[i];
                let mut found = None;
                if reusable {
                    while j < old_range.end && ahead(old.levels[j].0, price, ask) {
                        j += 1;
                    }
                    if j < old_range.end && old.levels[j].0 == price {
                        found = Some(j);
                    }
                }
                match found {
                    Some(j) => reuse(&mut next.text, &mut run, last.price_range(j)),
                    None => {
                        flush(&mut next.text, &mut run);
                        push_digits(&mut next.text, price, price_dp);
                    }
                }
                let price_end = next.text.len() + run.len();
                match found {
                    Some(j) if old.levels[j].1 == qty => {
                        reuse(&mut next.text, &mut run, last.qty_range(j));
                    }
                    _ => {
                        flush(&mut next.text, &mut run);
                        push_digits(&mut next.text, qty, qty_dp);
                    }
                }
                next.ends[i] = (price_end, next.text.len() + run.len());
            }
        }
        flush(&mut next.text, &mut run);
        next.crc = crc32fast::hash(&next.text);
        std::mem::swap(last, next);
        *valid = true;
        last.crc
    }
}

/// True when `old` comes before `new` in the side's order (lower for asks, higher for bids).
fn ahead(old: Dec, new: Dec, ask: bool) -> bool {
    if ask { old < new } else { old > new }
}

/// Bitfinex's checksum (protocols.md §4.4): the top 25 bids and asks interleaved as
/// `bid.price:bid.amount:ask.price:ask.amount` (ask amounts negative, as on the wire), joined with
/// `:`, numbers in JavaScript's text form (the exchange's own tokens, such as `7e-7`); CRC32
/// (IEEE). Returned as the signed value Bitfinex sends. A side with fewer than 25 levels simply
/// contributes fewer items (the official Go client does the same).
pub fn bitfinex(book: &Book) -> i32 {
    let mut bids = book.levels(Side::Bid).take(25);
    let mut asks = book.levels(Side::Ask).take(25);
    let mut text = String::with_capacity(2048);
    let item = |text: &mut String, v: Dec| {
        if !text.is_empty() {
            text.push(':');
        }
        v.write_js_string(text);
    };
    for _ in 0..25 {
        if let Some(b) = bids.next() {
            item(&mut text, b.price);
            item(&mut text, b.qty);
        }
        if let Some(a) = asks.next() {
            item(&mut text, a.price);
            item(&mut text, Dec::ZERO.saturating_sub(a.qty));
        }
    }
    crc32fast::hash(text.as_bytes()) as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Dec {
        Dec::parse(s).expect("valid decimal")
    }

    #[test]
    fn kraken_v2_documented_example() {
        // protocols.md §7, BTC/USD, precision 1/8.
        let asks = "45285.2/0.00100000 45286.4/1.54571953 45286.6/1.54571109 45289.6/1.54560911 \
                    45290.2/0.15890660 45291.8/1.54553491 45294.7/0.04454749 45296.1/0.35380000 \
                    45297.5/0.09945542 45299.5/0.18772827";
        let bids = "45283.5/0.10000000 45283.4/1.54582015 45282.1/0.10000000 45281.0/0.10000000 \
                    45280.3/1.54592586 45279.0/0.07990000 45277.6/0.03310103 45277.5/0.30000000 \
                    45277.3/1.54602737 45276.6/0.15445238";
        let parse = |s: &str| -> Vec<(Dec, Dec)> {
            s.split_whitespace()
                .map(|l| {
                    let (p, q) = l.split_once('/').expect("price/qty");
                    (d(p), d(q))
                })
                .collect()
        };
        let mut book = Book::new();
        book.replace(parse(bids), parse(asks));
        assert_eq!(kraken(&book, 1, 8), 3310070434);
    }

    #[test]
    fn kraken_memo_recomputes_only_when_the_top_ten_changes() {
        let mut book = Book::new();
        book.replace(
            (0..20).map(|i| (Dec::from_int(100 - i), Dec::from_int(1))),
            (0..20).map(|i| (Dec::from_int(101 + i), Dec::from_int(2))),
        );
        let memo = KrakenMemo::default();
        assert_eq!(memo.checksum(&book, 1, 8), kraken(&book, 1, 8));
        // A change below the top 10 keeps the checksum; one inside changes it.
        book.set(Side::Bid, Dec::from_int(85), Dec::from_int(9));
        assert_eq!(memo.checksum(&book, 1, 8), kraken(&book, 1, 8));
        book.set(Side::Ask, Dec::from_int(105), Dec::from_int(9));
        let changed = memo.checksum(&book, 1, 8);
        assert_eq!(changed, kraken(&book, 1, 8));
        assert_ne!(changed, kraken(&Book::new(), 1, 8));
        // Another precision is another text.
        assert_eq!(memo.checksum(&book, 2, 8), kraken(&book, 2, 8));
    }

    #[test]
    fn kraken_memo_equals_a_fresh_checksum_through_random_changes() {
        use rand::{Rng, SeedableRng};
        // Prices on a narrow grid so that inserts, deletes and quantity changes hit the top 10
        // of both sides often, shifting the levels the memo reuses.
        let mut rng = rand::rngs::SmallRng::seed_from_u64(7);
        let mut book = Book::new();
        let memo = KrakenMemo::default();
        let mut recomputed = 0;
        for step in 0..20_000 {
            let side = if rng.gen_bool(0.5) {
                Side::Bid
            } else {
                Side::Ask
            };
            let tick = rng.gen_range(0..40i64);
            let price = match side {
                Side::Bid => Dec::from_int(1000 - tick),
                Side::Ask => Dec::from_int(1001 + tick),
            };
            let qty = if rng.gen_bool(0.3) {
                Dec::ZERO
            } else {
                d(&format!(
                    "{}.{:08}",
                    rng.gen_range(0..5),
                    rng.gen_range(0..100_000_000u32)
                ))
            };
            book.set(side, price, qty);
            let dp = if step % 5000 < 10 { (2, 8) } else { (1, 8) };
            let before = {
                let state = memo.state.lock().expect("memo");
                state.valid.then_some(state.last.crc)
            };
            let got = memo.checksum(&book, dp.0, dp.1);
            assert_eq!(got, kraken(&book, dp.0, dp.1), "step {step}");
            if before != Some(got) {
                recomputed += 1;
            }
        }
        // The walk above changes the top often: the memo's digit reuse was exercised.
        assert!(recomputed > 5_000, "{recomputed}");
    }

    #[test]
    fn bitfinex_node_models_example() {
        // protocols.md §7: '6000:1:6100:-3:5900:2:6200:-4' → 1756193398.
        let mut book = Book::new();
        book.replace(
            [(d("6000"), d("1")), (d("5900"), d("2"))],
            [(d("6100"), d("3")), (d("6200"), d("4"))],
        );
        assert_eq!(bitfinex(&book), 1756193398);
    }
}
