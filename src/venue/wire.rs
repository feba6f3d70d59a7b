//! JSON decoding pieces the array-framed codecs (Kraken, Bitfinex) share: borrowed strings, raw
//! array elements, and a walk over an array's elements that collects nothing. Numbers stay raw
//! JSON tokens (`&RawValue`) so prices are parsed exactly from the exchange's text.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

use crate::decimal::Dec;
use crate::types::Side;
use crate::venue::CodecError;

/// A decimal read from the exchange's text, with serde's error type.
pub(crate) fn decimal<E: de::Error>(text: &str) -> Result<Dec, E> {
    Dec::parse(text).map_err(E::custom)
}

/// A list of `[price, quantity]` string pairs (Binance `b`/`a`, Coinbase Exchange `bids`/`asks`),
/// each pushed onto `levels` with `side`, without collecting the list first.
///
/// With `skip_other_types`, a value that is not a list is skipped: Binance uses the same keys for
/// other things on other streams (bookTicker's `b` is a price string, aggTrade's `a` an id).
/// Without it, anything but a list is an error.
pub(crate) struct PairsSeed<'v> {
    pub(crate) side: Side,
    pub(crate) levels: &'v mut Vec<(Side, Dec, Dec)>,
    pub(crate) skip_other_types: bool,
}

impl<'de> DeserializeSeed<'de> for PairsSeed<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        if self.skip_other_types {
            d.deserialize_any(self)
        } else {
            // Any other type is refused by the deserializer before a visit_* below is called.
            d.deserialize_seq(self)
        }
    }
}

impl<'de> Visitor<'de> for PairsSeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of [price, quantity] string pairs")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some((p, q)) = seq.next_element::<(&'de str, &'de str)>()? {
            self.levels
                .push((self.side, decimal::<A::Error>(p)?, decimal::<A::Error>(q)?));
        }
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(())
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
}

/// A JSON string, borrowed from the frame unless it holds escapes.
#[derive(Deserialize)]
pub(crate) struct Text<'a>(#[serde(borrow)] pub(crate) Cow<'a, str>);

/// `s` as a JSON string literal, quotes included.
pub(crate) fn json_string(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| format!("\"{s}\""))
}

/// A JSON array of at most `N` elements, each kept as its raw JSON text.
pub(crate) struct RawArray<'a, const N: usize> {
    items: [Option<&'a RawValue>; N],
    len: usize,
}

impl<'a, const N: usize> RawArray<'a, N> {
    /// Number of elements.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Element `i`, or a malformed-frame error naming `what` when there is none.
    pub(crate) fn item(&self, i: usize, what: &str) -> Result<&'a RawValue, CodecError> {
        self.items
            .get(i)
            .copied()
            .flatten()
            .ok_or_else(|| CodecError::malformed(format!("{what}: element {i} missing")))
    }
}

impl<'de: 'a, 'a, const N: usize> Deserialize<'de> for RawArray<'a, N> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ArrayVisitor<'a, const N: usize>(PhantomData<&'a ()>);
        impl<'de: 'a, 'a, const N: usize> Visitor<'de> for ArrayVisitor<'a, N> {
            type Value = RawArray<'a, N>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                write!(f, "an array of at most {N} elements")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut array = RawArray {
                    items: [None; N],
                    len: 0,
                };
                while let Some(item) = seq.next_element::<&'de RawValue>()? {
                    let slot = array
                        .items
                        .get_mut(array.len)
                        .ok_or_else(|| de::Error::invalid_length(N + 1, &self))?;
                    *slot = Some(item);
                    array.len += 1;
                }
                Ok(array)
            }
        }
        d.deserialize_seq(ArrayVisitor(PhantomData))
    }
}

/// Call `f` on every element of the JSON array `raw`, in order, without collecting them. The
/// first error `f` returns stops the walk and is returned as is.
pub(crate) fn for_each<'a, T, F>(raw: &'a RawValue, f: F) -> Result<(), CodecError>
where
    T: Deserialize<'a>,
    F: FnMut(T) -> Result<(), CodecError>,
{
    let mut failure = None;
    let mut de = serde_json::Deserializer::from_str(raw.get());
    let res = EachElement {
        f,
        failure: &mut failure,
        _t: PhantomData,
    }
    .deserialize(&mut de);
    match failure {
        Some(e) => Err(e),
        None => res.map_err(CodecError::from),
    }
}

struct EachElement<'e, T, F> {
    f: F,
    failure: &'e mut Option<CodecError>,
    _t: PhantomData<T>,
}

impl<'de, T, F> DeserializeSeed<'de> for EachElement<'_, T, F>
where
    T: Deserialize<'de>,
    F: FnMut(T) -> Result<(), CodecError>,
{
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de, T, F> Visitor<'de> for EachElement<'_, T, F>
where
    T: Deserialize<'de>,
    F: FnMut(T) -> Result<(), CodecError>,
{
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array")
    }
    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<(), A::Error> {
        while let Some(item) = seq.next_element::<T>()? {
            if let Err(e) = (self.f)(item) {
                let text = e.to_string();
                *self.failure = Some(e);
                return Err(de::Error::custom(text));
            }
        }
        Ok(())
    }
}

/// A forward-only reader over the common, plain shape of a frame, for the hot paths of the codecs.
///
/// Every method answers `None` as soon as the text is not of that plain shape: a string with an
/// escape or a control character, a number where a string was expected, an unexpected byte. The
/// caller then decodes the frame with its serde path, which handles all JSON and gives the
/// errors; so a fast path built on a cursor only ever accepts frames that its serde path would
/// decode to the same result, and never has to say why it declined.
pub(crate) struct Cursor<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(text: &'a str) -> Self {
        Cursor { text, at: 0 }
    }

    fn skip_ws(&mut self) {
        let b = self.text.as_bytes();
        while let Some(&c) = b.get(self.at) {
            if matches!(c, b' ' | b'\t' | b'\n' | b'\r') {
                self.at += 1;
            } else {
                break;
            }
        }
    }

    /// The next byte after white space, without taking it.
    pub(crate) fn peek(&mut self) -> Option<u8> {
        self.skip_ws();
        self.text.as_bytes().get(self.at).copied()
    }

    /// Take `c` after white space.
    pub(crate) fn eat(&mut self, c: u8) -> Option<()> {
        if self.peek()? == c {
            self.at += 1;
            Some(())
        } else {
            None
        }
    }

    /// Take `c` if it comes next (after white space); true when it did.
    pub(crate) fn eat_if(&mut self, c: u8) -> bool {
        self.eat(c).is_some()
    }

    /// A string without escapes or control characters, borrowed from the text.
    pub(crate) fn str(&mut self) -> Option<&'a str> {
        self.eat(b'"')?;
        let start = self.at;
        let b = self.text.as_bytes();
        loop {
            match *b.get(self.at)? {
                b'"' => break,
                b'\\' => return None,
                c if c < 0x20 => return None,
                _ => self.at += 1,
            }
        }
        // Quotes are ASCII, so both ends are on character boundaries.
        let s = self.text.get(start..self.at)?;
        self.at += 1;
        Some(s)
    }

    /// A non-negative JSON integer that fits in a `u64`.
    pub(crate) fn uint(&mut self) -> Option<u64> {
        self.skip_ws();
        let b = self.text.as_bytes();
        let start = self.at;
        let mut n: u64 = 0;
        while let Some(&c) = b.get(self.at) {
            if !c.is_ascii_digit() {
                break;
            }
            n = n.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
            self.at += 1;
        }
        let len = self.at - start;
        // JSON allows no leading zeros, and a fraction or exponent is not an integer.
        if len == 0
            || (len > 1 && b[start] == b'0')
            || matches!(b.get(self.at), Some(b'.' | b'e' | b'E'))
        {
            return None;
        }
        Some(n)
    }

    /// Only white space is left.
    pub(crate) fn end(&mut self) -> Option<()> {
        self.skip_ws();
        (self.at == self.text.len()).then_some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_array_keeps_tokens_and_refuses_extra_elements() {
        let a: RawArray<3> = serde_json::from_str(r#"[1, 7e-7 ,"x"]"#).expect("array");
        assert_eq!(a.len(), 3);
        assert_eq!(a.item(1, "t").expect("item").get(), "7e-7");
        assert!(a.item(3, "t").is_err());
        assert!(serde_json::from_str::<RawArray<2>>("[1,2,3]").is_err());
    }

    #[test]
    fn cursor_reads_the_plain_shape_and_declines_the_rest() {
        let mut c = Cursor::new(r#" [ 12 , "a.5" ,"b"] "#);
        assert_eq!(c.eat(b'['), Some(()));
        assert_eq!(c.uint(), Some(12));
        assert!(c.eat_if(b','));
        assert_eq!(c.str(), Some("a.5"));
        assert!(!c.eat_if(b']'));
        assert!(c.eat_if(b','));
        assert_eq!(c.peek(), Some(b'"'));
        assert_eq!(c.str(), Some("b"));
        assert_eq!(c.eat(b']'), Some(()));
        assert_eq!(c.end(), Some(()));
        // Escapes, control characters, unterminated strings: not the plain shape.
        assert_eq!(Cursor::new(r#""a\"b""#).str(), None);
        assert_eq!(Cursor::new("\"a\tb\"").str(), None);
        assert_eq!(Cursor::new("\"ab").str(), None);
        assert_eq!(Cursor::new("\"é\"").str(), Some("é"));
        // Integers: no leading zero, no fraction, no overflow, no sign.
        assert_eq!(Cursor::new("0").uint(), Some(0));
        assert_eq!(Cursor::new("18446744073709551615").uint(), Some(u64::MAX));
        for bad in ["01", "1.5", "1e3", "-1", "18446744073709551616", "", "x"] {
            assert_eq!(Cursor::new(bad).uint(), None, "{bad}");
        }
        assert_eq!(
            Cursor::new("[] x").eat(b'[').and(Cursor::new("[] x").end()),
            None
        );
        let mut c = Cursor::new("[] x");
        c.eat(b'[');
        c.eat(b']');
        assert_eq!(c.end(), None);
    }

    #[test]
    fn for_each_walks_in_order_and_stops_at_the_first_error() {
        let raw: &RawValue = serde_json::from_str("[1,2,3,4]").expect("raw");
        let mut seen = Vec::new();
        let res = for_each::<u32, _>(raw, |n| {
            seen.push(n);
            if n == 3 {
                Err(CodecError::malformed("three"))
            } else {
                Ok(())
            }
        });
        assert_eq!(res, Err(CodecError::malformed("three")));
        assert_eq!(seen, [1, 2, 3]);
    }
}
