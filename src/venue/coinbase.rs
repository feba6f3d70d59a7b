//! Coinbase codecs.

use crate::venue::{Codec, CodecError, Millis, Output, Protocol, VenueSpec};

/// Codec for `coinbase-advanced` (not implemented yet).
pub struct AdvancedCodec {
    spec: VenueSpec,
}

impl AdvancedCodec {
    /// A codec for a spec.
    pub fn new(spec: VenueSpec) -> Self {
        Self { spec }
    }
}

impl Codec for AdvancedCodec {
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
        3000
    }
}

/// Codec for `coinbase-exchange` (not implemented yet).
pub struct ExchangeCodec {
    spec: VenueSpec,
}

impl ExchangeCodec {
    /// A codec for a spec.
    pub fn new(spec: VenueSpec) -> Self {
        Self { spec }
    }
}

impl Codec for ExchangeCodec {
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
        5000
    }
}
