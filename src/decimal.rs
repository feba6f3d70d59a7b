//! Exact decimal numbers for prices and quantities.
//!
//! Every price and quantity that comes from an exchange is decimal text: a JSON string such as
//! `"65083.66"`, or a JSON number such as `0.00000109`, `7e-7` or `19203.444049780002` (Bitfinex and
//! Kraken v2 send JS-formatted floats). [`Dec`] holds such a value exactly as a signed 128-bit integer
//! count of 10⁻¹⁸ units, so parsing is exact for every value with at most 18 fractional digits and
//! up to ±1.7·10²⁰ in magnitude, comparison is an integer compare, and nothing passes through `f64`.
//!
//! Values with more than 18 significant fractional digits are rejected rather than rounded: an
//! exchange never sends them, and rounding would silently break checksums.

use std::fmt;
use std::str::FromStr;

/// Number of fractional decimal digits a [`Dec`] holds.
pub const SCALE: u32 = 18;
const ONE: i128 = 1_000_000_000_000_000_000;

/// An exact decimal: `mantissa × 10⁻¹⁸`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Dec(i128);

/// Why a piece of text is not a decimal number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecError {
    /// Empty text.
    #[error("empty number")]
    Empty,
    /// A character that is not part of a decimal number.
    #[error("not a decimal number: {0:?}")]
    Invalid(String),
    /// More than 18 fractional digits (after applying the exponent) that are not zero.
    #[error("more than 18 decimal places: {0:?}")]
    TooPrecise(String),
    /// Magnitude beyond ±1.7·10²⁰.
    #[error("number out of range: {0:?}")]
    OutOfRange(String),
}

impl Dec {
    /// Zero.
    pub const ZERO: Dec = Dec(0);

    /// The value `units × 10⁻¹⁸`.
    pub const fn from_raw(units: i128) -> Dec {
        Dec(units)
    }

    /// The integer count of 10⁻¹⁸ units.
    pub const fn raw(self) -> i128 {
        self.0
    }

    /// An integer value.
    pub const fn from_int(n: i64) -> Dec {
        Dec(n as i128 * ONE)
    }

    /// True when the value is exactly zero.
    pub const fn is_zero(self) -> bool {
        self.0 == 0
    }

    /// True when the value is below zero.
    pub const fn is_negative(self) -> bool {
        self.0 < 0
    }

    /// Absolute value.
    pub const fn abs(self) -> Dec {
        Dec(self.0.abs())
    }

    /// Exact sum, `None` on overflow.
    pub fn checked_add(self, other: Dec) -> Option<Dec> {
        self.0.checked_add(other.0).map(Dec)
    }

    /// Exact sum, saturating at the ends of the range (quantities never get near them).
    pub fn saturating_add(self, other: Dec) -> Dec {
        Dec(self.0.saturating_add(other.0))
    }

    /// Exact difference, saturating at the ends of the range.
    pub fn saturating_sub(self, other: Dec) -> Dec {
        Dec(self.0.saturating_sub(other.0))
    }

    /// The nearest `f64` (for display, weights and scaling only; never for keys).
    pub fn to_f64(self) -> f64 {
        let int = (self.0 / ONE) as f64;
        let frac = (self.0 % ONE) as f64 / ONE as f64;
        int + frac
    }

    /// Parse decimal text: optional sign, digits with an optional fraction, optional exponent
    /// (`65083.66`, `-0.5`, `7e-7`, `1.5E+3`). Exact or an error.
    pub fn parse(text: &str) -> Result<Dec, DecError> {
        parse_bytes(text.as_bytes()).map_err(|kind| match kind {
            ParseFail::Empty => DecError::Empty,
            ParseFail::Invalid => DecError::Invalid(text.to_string()),
            ParseFail::TooPrecise => DecError::TooPrecise(text.to_string()),
            ParseFail::OutOfRange => DecError::OutOfRange(text.to_string()),
        })
    }

    /// Number of fractional digits needed to write this value without loss (0 to 18).
    pub fn scale(self) -> u32 {
        if self.0 == 0 {
            return 0;
        }
        let mut m = self.0;
        let mut s = SCALE;
        while s > 0 && m % 10 == 0 {
            m /= 10;
            s -= 1;
        }
        s
    }

    /// Fixed-point text with exactly `dp` fractional digits, truncated towards zero if the value has
    /// more (it is only called with the instrument's precision, which the value never exceeds).
    pub fn to_fixed(self, dp: u32) -> String {
        let mut s = String::with_capacity(24);
        self.write_fixed(dp, &mut s);
        s
    }

    /// Append fixed-point text with exactly `dp` fractional digits (see [`Dec::to_fixed`]).
    pub fn write_fixed(self, dp: u32, out: &mut String) {
        use fmt::Write;
        let dp = dp.min(SCALE);
        if self.0 < 0 {
            out.push('-');
        }
        let abs = self.0.unsigned_abs();
        let one = ONE as u128;
        let int = abs / one;
        let _ = write!(out, "{int}");
        if dp > 0 {
            let frac = (abs % one) / 10u128.pow(SCALE - dp);
            let _ = write!(out, ".{:0width$}", frac, width = dp as usize);
        }
    }

    /// The text JavaScript's `Number.prototype.toString` gives for this value, which is the text
    /// Bitfinex puts on the wire: plain notation without trailing zeros for magnitudes from 10⁻⁶
    /// up, `d.ddde-N` below that (`7e-7`, `6.6e-7`, `1e-8`).
    ///
    /// For a value written with at most 17 significant digits this is exactly the JSON token the
    /// exchange sent, because JS prints the shortest text that round-trips.
    pub fn to_js_string(self) -> String {
        let mut out = String::with_capacity(24);
        self.write_js_string(&mut out);
        out
    }

    /// Append [`Dec::to_js_string`]'s text to `out` without allocating.
    pub fn write_js_string(self, out: &mut String) {
        let abs = self.0.unsigned_abs();
        if self.0 < 0 {
            out.push('-');
        }
        let one = ONE as u128;
        if abs == 0 || abs >= one / 1_000_000 {
            // Plain notation: integer part, then the fraction without trailing zeros.
            push_digits(out, abs / one, 0);
            let mut frac = abs % one;
            if frac != 0 {
                let mut width = SCALE as usize;
                while frac % 10 == 0 {
                    frac /= 10;
                    width -= 1;
                }
                out.push('.');
                push_digits(out, frac, width);
            }
            return;
        }
        // Exponent notation: abs < 1e-6, i.e. fewer than 13 digits as an integer of 1e-18.
        let mut m = abs;
        let mut zeros = 0;
        while m % 10 == 0 {
            m /= 10;
            zeros += 1;
        }
        let mut digits = [0u8; 40];
        let n = fill_digits(&mut digits, m);
        // value = m × 10^(zeros - 18); the first digit's power of ten:
        let exp = n as i32 - 1 + zeros - SCALE as i32;
        out.push(digits[40 - n] as char);
        if n > 1 {
            out.push('.');
            for &d in &digits[40 - n + 1..] {
                out.push(d as char);
            }
        }
        out.push('e');
        out.push('-');
        push_digits(out, exp.unsigned_abs() as u128, 0);
    }

    /// `|value| × 10^dp` as an integer (truncated): the value written with `dp` decimals with the
    /// decimal point removed. Its decimal digits are Kraken's checksum field.
    pub fn checksum_integer(self, dp: u32) -> u128 {
        self.0.unsigned_abs() / 10u128.pow(SCALE - dp.min(SCALE))
    }
}

/// Write the digits of `n` right-aligned into `buf`; returns how many.
fn fill_digits(buf: &mut [u8; 40], mut n: u128) -> usize {
    let mut i = buf.len();
    // 64-bit division by 10 is a multiply; 128-bit division is a slow library call.
    if let Ok(mut m) = u64::try_from(n) {
        loop {
            i -= 1;
            buf[i] = b'0' + (m % 10) as u8;
            m /= 10;
            if m == 0 {
                return buf.len() - i;
            }
        }
    }
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    buf.len() - i
}

/// Append the decimal digits of `n`, left-padded with zeros to `width` (at most 18).
fn push_digits(out: &mut String, n: u128, width: usize) {
    const ZEROS: &str = "000000000000000000";
    let mut buf = [0u8; 40];
    let len = fill_digits(&mut buf, n);
    if width > len {
        out.push_str(&ZEROS[..(width - len).min(ZEROS.len())]);
    }
    // Only ASCII digits were written, so this never fails; pushing the slice at once is much
    // faster than pushing characters one by one.
    out.push_str(std::str::from_utf8(&buf[40 - len..]).unwrap_or_default());
}

#[derive(Debug, PartialEq)]
enum ParseFail {
    Empty,
    Invalid,
    TooPrecise,
    OutOfRange,
}

fn parse_bytes(b: &[u8]) -> Result<Dec, ParseFail> {
    match parse_plain(b) {
        Some(d) => Ok(d),
        None => parse_general(b),
    }
}

/// Any decimal text the module accepts: sign, point, exponent, digits past an `i128`.
fn parse_general(b: &[u8]) -> Result<Dec, ParseFail> {
    if b.is_empty() {
        return Err(ParseFail::Empty);
    }
    let mut i = 0;
    let neg = match b[0] {
        b'-' => {
            i = 1;
            true
        }
        b'+' => {
            i = 1;
            false
        }
        _ => false,
    };
    let mut mant: i128 = 0;
    let mut digits = 0usize; // significant digits accumulated (after leading zeros)
    let mut frac_digits: i32 = 0;
    let mut any_digit = false;
    let mut seen_dot = false;
    // Digits beyond what an i128 can hold must be zeros past the scale; we track them as
    // a pending power of ten only when they are zeros.
    let mut dropped_nonzero = false;
    let mut dropped_zeros: i32 = 0;
    while i < b.len() {
        let c = b[i];
        match c {
            b'0'..=b'9' => {
                any_digit = true;
                if seen_dot {
                    frac_digits += 1;
                }
                let d = (c - b'0') as i128;
                if digits < 36 {
                    mant = mant * 10 + d;
                    if mant != 0 {
                        digits += 1;
                    }
                } else {
                    // Too many digits to hold: remember them as a scale shift.
                    if d != 0 {
                        dropped_nonzero = true;
                    }
                    dropped_zeros += 1;
                }
            }
            b'.' if !seen_dot => seen_dot = true,
            b'e' | b'E' => break,
            _ => return Err(ParseFail::Invalid),
        }
        i += 1;
    }
    if !any_digit {
        return Err(ParseFail::Invalid);
    }
    let mut exp: i32 = 0;
    if i < b.len() {
        // exponent
        i += 1;
        let mut eneg = false;
        if i < b.len() && (b[i] == b'-' || b[i] == b'+') {
            eneg = b[i] == b'-';
            i += 1;
        }
        if i >= b.len() {
            return Err(ParseFail::Invalid);
        }
        while i < b.len() {
            let c = b[i];
            if !c.is_ascii_digit() {
                return Err(ParseFail::Invalid);
            }
            exp = exp.saturating_mul(10).saturating_add((c - b'0') as i32);
            i += 1;
        }
        if eneg {
            exp = -exp;
        }
    }
    // value = mant × 10^(dropped_zeros - frac_digits + exp); we need mant × 10^(shift) in 1e-18 units
    let shift = dropped_zeros as i64 - frac_digits as i64 + exp as i64 + SCALE as i64;
    if mant == 0 {
        if dropped_nonzero {
            return Err(ParseFail::TooPrecise);
        }
        return Ok(Dec(0));
    }
    if dropped_nonzero && shift < 0 {
        return Err(ParseFail::TooPrecise);
    }
    let mut m = mant;
    if shift >= 0 {
        for _ in 0..shift {
            m = m.checked_mul(10).ok_or(ParseFail::OutOfRange)?;
        }
    } else {
        for _ in 0..(-shift) {
            if m % 10 != 0 {
                return Err(ParseFail::TooPrecise);
            }
            m /= 10;
        }
    }
    Ok(Dec(if neg { -m } else { m }))
}

/// The common case in one pass on a `u64`: at most 19 digits with at most one point and at most
/// 18 of them after it, no sign, no exponent. `None` for anything else, which the general parser
/// then reads (and refuses, if it must).
fn parse_plain(b: &[u8]) -> Option<Dec> {
    const POW10: [i128; 19] = {
        let mut t = [1i128; 19];
        let mut i = 1;
        while i < 19 {
            t[i] = t[i - 1] * 10;
            i += 1;
        }
        t
    };
    let mut mant: u64 = 0;
    let mut digits = 0;
    let mut point = None;
    for (i, &c) in b.iter().enumerate() {
        match c {
            b'0'..=b'9' => {
                digits += 1;
                if digits > 19 {
                    return None;
                }
                mant = mant * 10 + u64::from(c - b'0');
            }
            b'.' if point.is_none() => point = Some(i),
            _ => return None,
        }
    }
    if digits == 0 {
        return None;
    }
    let frac = point.map_or(0, |p| b.len() - p - 1);
    let shift = (SCALE as usize).checked_sub(frac)?;
    // 19 digits fit in a u64 (< 10^19 < 2^64), and u64 × 10^18 < 2^127.
    Some(Dec(i128::from(mant) * POW10[shift]))
}

impl FromStr for Dec {
    type Err = DecError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Dec::parse(s)
    }
}

impl fmt::Display for Dec {
    /// Canonical plain text: no exponent, no trailing fractional zeros (`61000`, `61000.5`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = String::with_capacity(24);
        self.write_fixed(self.scale(), &mut s);
        f.pad(&s)
    }
}

impl fmt::Debug for Dec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl serde::Serialize for Dec {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Dec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Dec::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Dec {
        Dec::parse(s).expect("valid decimal")
    }

    #[test]
    fn parses_exchange_text_exactly() {
        assert_eq!(d("65083.66").raw(), 65_083_660_000_000_000_000_000);
        assert_eq!(d("0.00000109").raw(), 1_090_000_000_000);
        assert_eq!(d("7e-7").raw(), 700_000_000_000);
        assert_eq!(d("6.6e-7"), d("0.00000066"));
        assert_eq!(d("-4847.13").raw(), -4_847_130_000_000_000_000_000);
        assert_eq!(d("1.5E+3"), Dec::from_int(1500));
        assert_eq!(d("19203.444049780002").to_string(), "19203.444049780002");
        assert_eq!(d("0"), Dec::ZERO);
        assert_eq!(d("0.00000000"), Dec::ZERO);
        assert_eq!(d("-0"), Dec::ZERO);
        assert_eq!(d("+3"), Dec::from_int(3));
        assert_eq!(d(".5").to_string(), "0.5");
        assert_eq!(d("5.").to_string(), "5");
    }

    #[test]
    fn rejects_what_is_not_exact() {
        assert_eq!(Dec::parse(""), Err(DecError::Empty));
        assert!(matches!(Dec::parse("abc"), Err(DecError::Invalid(_))));
        assert!(matches!(Dec::parse("1.2.3"), Err(DecError::Invalid(_))));
        assert!(matches!(Dec::parse("NaN"), Err(DecError::Invalid(_))));
        assert!(matches!(Dec::parse("1e"), Err(DecError::Invalid(_))));
        assert!(matches!(Dec::parse("-"), Err(DecError::Invalid(_))));
        assert!(matches!(
            Dec::parse("0.0000000000000000001"),
            Err(DecError::TooPrecise(_))
        ));
        assert!(matches!(Dec::parse("1e-19"), Err(DecError::TooPrecise(_))));
        assert!(matches!(Dec::parse("1e300"), Err(DecError::OutOfRange(_))));
        assert!(matches!(
            Dec::parse("999999999999999999999999"),
            Err(DecError::OutOfRange(_))
        ));
        // Trailing zeros beyond the scale are exact, so they are fine.
        assert_eq!(d("0.1000000000000000000000"), d("0.1"));
    }

    #[test]
    fn display_is_canonical() {
        assert_eq!(d("61000.0000").to_string(), "61000");
        assert_eq!(d("61000.50").to_string(), "61000.5");
        assert_eq!(d("-0.25").to_string(), "-0.25");
        assert_eq!(d("7e-7").to_string(), "0.0000007");
    }

    #[test]
    fn fixed_text_at_instrument_precision() {
        assert_eq!(d("0.566").to_fixed(4), "0.5660");
        assert_eq!(d("45285.2").to_fixed(1), "45285.2");
        assert_eq!(d("0.001").to_fixed(8), "0.00100000");
        assert_eq!(d("100").to_fixed(0), "100");
    }

    #[test]
    fn js_text_matches_javascript() {
        for s in [
            "7e-7",
            "6.6e-7",
            "6e-8",
            "1e-8",
            "0.000001",
            "0.00000109",
            "0.0000011",
            "271510.49",
            "-4847.13",
            "-5000",
            "19203.444049780002",
            "0",
            "1.234e-7",
        ] {
            assert_eq!(d(s).to_js_string(), s, "{s}");
        }
        assert_eq!(d("0.0000007").to_js_string(), "7e-7");
        assert_eq!(d("10.50").to_js_string(), "10.5");
    }

    #[test]
    fn f64_is_close() {
        assert_eq!(d("65083.66").to_f64(), 65083.66);
        assert_eq!(d("-0.5").to_f64(), -0.5);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(20_000))]
        /// The one-pass parser of plain text agrees with the general one wherever it answers, and
        /// answers for every plain exchange number (up to 19 digits, up to 18 decimals).
        #[test]
        fn plain_parser_agrees_with_the_general_one(text in "[0-9.]{0,24}") {
            let b = text.as_bytes();
            let general = parse_general(b);
            match parse_plain(b) {
                Some(d) => proptest::prop_assert_eq!(Ok(d), general),
                None => {
                    let digits = b.iter().filter(|c| c.is_ascii_digit()).count();
                    let points = b.iter().filter(|&&c| c == b'.').count();
                    let frac = text.split_once('.').map_or(0, |(_, f)| f.len());
                    proptest::prop_assert!(digits == 0 || digits > 19 || points > 1 || frac > 18);
                }
            }
        }
    }
}
