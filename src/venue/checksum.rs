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
    let (top, n) = kraken_top(book);
    kraken_of(&top[..n], price_dp, qty_dp)
}

/// The top 10 asks (lowest first) then the top 10 bids (highest first), and how many there are.
fn kraken_top(book: &Book) -> ([(Dec, Dec); 20], usize) {
    let mut top = [(Dec::ZERO, Dec::ZERO); 20];
    let mut n = 0;
    for side in [Side::Ask, Side::Bid] {
        for level in book.levels(side).take(10) {
            top[n] = (level.price, level.qty);
            n += 1;
        }
    }
    (top, n)
}

fn kraken_of(levels: &[(Dec, Dec)], price_dp: u32, qty_dp: u32) -> u32 {
    // The digits go straight into the hash: no string is built.
    let mut hasher = crc32fast::Hasher::new();
    let mut digits = itoa::Buffer::new();
    for &(price, qty) in levels {
        for (value, dp) in [(price, price_dp), (qty, qty_dp)] {
            let n = value.checksum_integer(dp);
            // Leading zeros are removed, so a zero contributes nothing.
            if n != 0 {
                match u64::try_from(n) {
                    Ok(small) => hasher.update(digits.format(small).as_bytes()),
                    Err(_) => hasher.update(digits.format(n).as_bytes()),
                }
            }
        }
    }
    hasher.finalize()
}

/// [`kraken`] with a memo of the last result: many updates change levels below the top 10, which
/// leaves the checksum as it was, so the top 10 of each side is compared with the last one (a few
/// integer compares) before any digit is written.
#[derive(Debug, Default)]
pub struct KrakenMemo {
    last: std::sync::Mutex<Option<KrakenLast>>,
}

#[derive(Debug)]
struct KrakenLast {
    dp: (u32, u32),
    top: [(Dec, Dec); 20],
    n: usize,
    crc: u32,
}

impl KrakenMemo {
    /// The checksum of `book` at the given precision, reusing the last one when the top 10 of both
    /// sides did not change.
    pub fn checksum(&self, book: &Book, price_dp: u32, qty_dp: u32) -> u32 {
        let (top, n) = kraken_top(book);
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(l) = last.as_ref() {
            if l.dp == (price_dp, qty_dp) && l.n == n && l.top[..n] == top[..n] {
                return l.crc;
            }
        }
        let crc = kraken_of(&top[..n], price_dp, qty_dp);
        *last = Some(KrakenLast {
            dp: (price_dp, qty_dp),
            top,
            n,
            crc,
        });
        crc
    }
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
