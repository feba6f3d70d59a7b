//! Differential: the Kraken v1 codec's one-pass reader of book frames against its serde path.
//! Any bytes, split into frames at '\n', go to both; they must answer alike, frame by frame.
//! Seeds: the `kraken-v1` files of the `codec` corpus (pair XMR/USD, the one the bench follows).
#![no_main]

use depthagg::venue::kraken::V1Codec;
use depthagg::venue::{Codec, Output, Protocol, VenueSpec};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let spec = VenueSpec::new(Protocol::KrakenV1, "XMR/USD");
    let mut fast = V1Codec::new(spec.clone());
    let mut reference = V1Codec::new(spec).without_fast_path();
    let (mut a, mut b) = (Output::default(), Output::default());
    fast.on_open(0, &mut a);
    reference.on_open(0, &mut b);
    for frame in data.split(|&c| c == b'\n') {
        let text = String::from_utf8_lossy(frame);
        a.clear();
        b.clear();
        let ra = fast.on_text(&text, 0, &mut a);
        let rb = reference.on_text(&text, 0, &mut b);
        assert_eq!(ra, rb, "result differs on {text:?}");
        assert_eq!(a.events, b.events, "events differ on {text:?}");
        assert_eq!(a.actions, b.actions, "actions differ on {text:?}");
        assert_eq!(fast.precision(), reference.precision());
    }
});
