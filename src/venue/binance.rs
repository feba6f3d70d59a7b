//! Binance spot diff-depth codec.

use crate::venue::{Codec, CodecError, Millis, Output, Protocol, VenueSpec};

/// Codec for `binance-spot` (not implemented yet).
pub struct BinanceCodec {
    spec: VenueSpec,
}

impl BinanceCodec {
    /// A codec for a spec.
    pub fn new(spec: VenueSpec) -> Self {
        Self { spec }
    }
}

impl Codec for BinanceCodec {
    fn protocol(&self) -> Protocol {
        self.spec.protocol
    }
    fn spec(&self) -> &VenueSpec {
        &self.spec
    }
    fn connect_url(&self) -> String {
        self.spec.ws_url.clone()
    }
    fn on_open(&mut self, _now: Millis, _out: &mut Output) {}
    fn on_text(&mut self, _text: &str, _now: Millis, _out: &mut Output) -> Result<(), CodecError> {
        Ok(())
    }
    fn resync(&mut self, _now: Millis, _out: &mut Output) {}
    fn stale_after_ms(&self) -> Millis {
        10000
    }
}
