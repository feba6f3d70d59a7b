//! The bin rule: which USD price bin a price belongs to.
//!
//! A bin size `B > 0` (decimal allowed: 0.5, 10, 25, 100). A price `p` goes to the nearest multiple
//! of `B`; an exact tie goes up. With `B = 10`: 61004.99 → 61000, 61005.00 → 61010. The bin is
//! identified by the integer `k = floor((p + B/2) / B)`, computed exactly on the 10⁻¹⁸ integer
//! representation, and its price is `k × B`.

use std::fmt;

use crate::decimal::Dec;

/// A validated bin size (strictly positive).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BinSize(Dec);

impl BinSize {
    /// A bin size, if strictly positive.
    pub fn new(size: Dec) -> Option<BinSize> {
        (size.raw() > 0).then_some(BinSize(size))
    }

    /// Parse text such as `10` or `0.5`; `None` for anything that is not a positive decimal.
    pub fn parse(text: &str) -> Option<BinSize> {
        Dec::parse(text).ok().and_then(BinSize::new)
    }

    /// The size as a decimal.
    pub fn get(self) -> Dec {
        self.0
    }

    /// The bin index `k` of a price.
    #[inline]
    pub fn index_of(self, price: Dec) -> i64 {
        let b = self.0.raw();
        // b is a multiple of 10⁻¹⁸, so b/2 is exact whenever b is even; for odd raw sizes (only
        // possible with 18 fractional digits) the tie point rounds down by 10⁻¹⁸, below any price
        // an exchange quotes.
        let k = (price.raw() + b / 2).div_euclid(b);
        k.clamp(i64::MIN as i128, i64::MAX as i128) as i64
    }

    /// The price of bin `k`: `k × B`.
    #[inline]
    pub fn price_of(self, k: i64) -> Dec {
        Dec::from_raw((k as i128).saturating_mul(self.0.raw()))
    }

    /// The bin price a price goes to.
    pub fn bin_of(self, price: Dec) -> Dec {
        self.price_of(self.index_of(price))
    }
}

impl fmt::Display for BinSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Dec {
        Dec::parse(s).expect("valid decimal")
    }

    fn bin(size: &str, price: &str) -> String {
        BinSize::parse(size)
            .expect("positive size")
            .bin_of(d(price))
            .to_string()
    }

    #[test]
    fn nearest_multiple_ties_go_up() {
        assert_eq!(bin("10", "61004.99"), "61000");
        assert_eq!(bin("10", "61005.00"), "61010");
        assert_eq!(bin("10", "61005.01"), "61010");
        assert_eq!(bin("10", "60995"), "61000");
        assert_eq!(bin("10", "60994.999999"), "60990");
        assert_eq!(bin("10", "61000"), "61000");
    }

    #[test]
    fn decimal_bin_sizes_are_exact() {
        assert_eq!(bin("0.5", "61000.24"), "61000");
        assert_eq!(bin("0.5", "61000.25"), "61000.5");
        assert_eq!(bin("0.5", "61000.74"), "61000.5");
        assert_eq!(bin("0.5", "61000.75"), "61001");
        assert_eq!(bin("25", "61012.49"), "61000");
        assert_eq!(bin("25", "61012.5"), "61025");
        assert_eq!(bin("100", "61049.99"), "61000");
        assert_eq!(bin("100", "61050"), "61100");
        assert_eq!(bin("0.1", "0.05"), "0.1");
        assert_eq!(bin("0.01", "65083.665"), "65083.67");
    }

    #[test]
    fn non_positive_sizes_are_refused() {
        assert_eq!(BinSize::parse("0"), None);
        assert_eq!(BinSize::parse("-10"), None);
        assert_eq!(BinSize::parse("NaN"), None);
        assert_eq!(BinSize::parse("ten"), None);
        assert_eq!(
            BinSize::parse("1e-3").map(|b| b.to_string()),
            Some("0.001".into())
        );
    }

    #[test]
    fn index_and_price_agree() {
        let b = BinSize::parse("10").expect("positive size");
        assert_eq!(b.index_of(d("61004.99")), 6100);
        assert_eq!(b.price_of(6101), d("61010"));
        assert_eq!(b.index_of(d("-4")), 0);
        assert_eq!(b.index_of(d("-5.01")), -1);
    }
}
