//! Kraken codecs.

use crate::venue::{Codec, CodecError, Millis, Output, Protocol, VenueSpec};

/// Codec for `kraken-v2` (not implemented yet).
pub struct V2Codec {
    spec: VenueSpec,
}

impl V2Codec {
    /// A codec for a spec.
    pub fn new(spec: VenueSpec) -> Self {
        Self { spec }
    }
}

impl Codec for V2Codec {
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

/// Codec for `kraken-v1` (not implemented yet).
pub struct V1Codec {
    spec: VenueSpec,
}

impl V1Codec {
    /// A codec for a spec.
    pub fn new(spec: VenueSpec) -> Self {
        Self { spec }
    }
}

impl Codec for V1Codec {
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
