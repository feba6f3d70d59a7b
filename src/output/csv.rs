//! The CSV body of a snapshot: `price,buy_qty,sell_qty`, one row per bin, ascending by price.
//!
//! Exact contract (README "CSV semantics" repeats it):
//! - header `price,buy_qty,sell_qty`, `\n` line endings, a final `\n`, no quoting;
//! - `price` is the bin price in its canonical decimal text (`61000`, `61000.5`): bin prices are
//!   exact [`Dec`](crate::decimal::Dec) values, so nothing like `61000.0000001` can appear;
//! - `buy_qty` and `sell_qty` have exactly `qty_decimals` fractional digits (default 4), rounded
//!   half away from zero (see [`format_qty`]); `-0.0000` never appears;
//! - every bin of the snapshot is a row, so a bin holding less than half the last decimal shows as
//!   `…,0.0000,0.0000` (there is depth there, below the written precision).
//!
//! The text is built with plain formatting rather than the `csv` crate: no field can contain a
//! comma, quote or newline, and plain formatting makes the exact bytes obvious.

use std::fmt::Write;

use crate::aggregate::Snapshot;
use crate::decimal::Dec;

/// The CSV header line (without its `\n`).
pub const CSV_HEADER: &str = "price,buy_qty,sell_qty";

/// Most fractional digits a quantity can be written with.
pub const MAX_QTY_DECIMALS: u32 = 18;

/// Why a snapshot cannot be written as CSV.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CsvError {
    /// The requested number of decimals is above [`MAX_QTY_DECIMALS`].
    #[error("quantity decimals {0} is above the maximum of {MAX_QTY_DECIMALS}")]
    TooManyDecimals(u32),
    /// A quantity is NaN or infinite (only possible with a non-finite weight).
    #[error("bin {price}: {side} quantity is not a finite number")]
    NotFinite {
        /// Bin price.
        price: Dec,
        /// `buy_qty` or `sell_qty`.
        side: &'static str,
    },
}

/// Render the CSV text of a snapshot: the header, then one row per bin. A snapshot without bins
/// (no live venue) gives the header alone.
pub fn render_csv(snap: &Snapshot, qty_decimals: u32) -> Result<String, CsvError> {
    if qty_decimals > MAX_QTY_DECIMALS {
        return Err(CsvError::TooManyDecimals(qty_decimals));
    }
    let mut out = String::with_capacity(32 + snap.bins.len() * 40);
    out.push_str(CSV_HEADER);
    out.push('\n');
    for bin in &snap.bins {
        let buy = format_qty(bin.buy_qty, qty_decimals).ok_or(CsvError::NotFinite {
            price: bin.price,
            side: "buy_qty",
        })?;
        let sell = format_qty(bin.sell_qty, qty_decimals).ok_or(CsvError::NotFinite {
            price: bin.price,
            side: "sell_qty",
        })?;
        let _ = writeln!(out, "{},{buy},{sell}", bin.price);
    }
    Ok(out)
}

/// A weighted quantity as text with exactly `dp` fractional digits; `None` for NaN or infinity.
///
/// Rounding is half away from zero, applied to the shortest decimal text that reads back as the
/// same `f64` (what `{}` prints). The quantities are sums of exact book quantities times weights;
/// that shortest text is the decimal the computation meant, so `0.00005 → 0.0001` and
/// `0.00015 → 0.0002` at 4 decimals, where rounding the binary value itself would give `0.0001`
/// for the second (its nearest `f64` lies just below the tie). A value that rounds to zero is
/// written without a sign: `-0.00004 → 0.0000`, never `-0.0000`.
pub fn format_qty(value: f64, dp: u32) -> Option<String> {
    if !value.is_finite() {
        return None;
    }
    // `Display` for f64 never uses an exponent: "0.00005", "123.5", "100000000000000000000".
    let text = format!("{}", value.abs());
    let (int_part, frac_part) = text.split_once('.').unwrap_or((text.as_str(), ""));
    let dp = dp as usize;
    // All kept digits, integer then fraction, as numbers 0..=9.
    let mut digits: Vec<u8> = int_part.bytes().map(|b| b - b'0').collect();
    let int_len = digits.len();
    let frac = frac_part.as_bytes();
    for i in 0..dp {
        digits.push(frac.get(i).map_or(0, |b| b - b'0'));
    }
    let round_up = frac.get(dp).is_some_and(|&b| b >= b'5');
    let mut int_len = int_len;
    if round_up {
        let mut i = digits.len();
        loop {
            if i == 0 {
                // Carry out of the leading digit: 9.99995 → 10.0000.
                digits.insert(0, 1);
                int_len += 1;
                break;
            }
            i -= 1;
            if digits[i] == 9 {
                digits[i] = 0;
            } else {
                digits[i] += 1;
                break;
            }
        }
    }
    let mut out = String::with_capacity(digits.len() + 2);
    if value < 0.0 && digits.iter().any(|&d| d != 0) {
        out.push('-');
    }
    for (i, d) in digits.iter().enumerate() {
        if i == int_len {
            out.push('.');
        }
        out.push(char::from(b'0' + d));
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(v: f64, dp: u32) -> String {
        format_qty(v, dp).expect("finite")
    }

    #[test]
    fn rounds_half_away_from_zero_on_the_shortest_text() {
        assert_eq!(q(0.00005, 4), "0.0001");
        assert_eq!(q(0.00015, 4), "0.0002");
        assert_eq!(q(0.000049999, 4), "0.0000");
        assert_eq!(q(-0.00005, 4), "-0.0001");
        assert_eq!(q(0.125, 2), "0.13");
        assert_eq!(q(2.5, 0), "3");
        assert_eq!(q(9.99995, 4), "10.0000");
        assert_eq!(q(99.995, 2), "100.00");
        assert_eq!(q(0.1 + 0.2, 4), "0.3000");
        assert_eq!(q(1.0, 4), "1.0000");
        assert_eq!(q(0.0, 2), "0.00");
        assert_eq!(q(123456.789, 0), "123457");
        assert_eq!(q(1e-20, 4), "0.0000");
        assert_eq!(q(1e20, 1), "100000000000000000000.0");
    }

    #[test]
    fn tiny_negatives_and_negative_zero_print_without_sign() {
        assert_eq!(q(-0.00004, 4), "0.0000");
        assert_eq!(q(-1e-12, 4), "0.0000");
        assert_eq!(q(-0.0, 4), "0.0000");
        assert_eq!(q(-0.004, 2), "0.00");
        assert_eq!(q(-0.005, 2), "-0.01");
    }

    #[test]
    fn non_finite_is_refused() {
        assert_eq!(format_qty(f64::NAN, 4), None);
        assert_eq!(format_qty(f64::INFINITY, 4), None);
        assert_eq!(format_qty(f64::NEG_INFINITY, 4), None);
    }
}
