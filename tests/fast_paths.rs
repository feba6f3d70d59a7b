//! The one-pass readers the hot codecs use for the plain shape of their frames give exactly what
//! their serde paths give: on every frame of the real recordings, and on damaged and reshaped
//! variants of them (where the fast path must either agree or step aside).

mod common;

use depthagg::capture::Record;
use depthagg::venue::kraken::V1Codec;
use depthagg::venue::{Codec, CodecError, Output, Protocol, VenueSpec};

/// Feed `text` to both codecs and assert they answer alike: the same result, events and actions.
fn same(fast: &mut dyn Codec, reference: &mut dyn Codec, text: &str, what: &str) -> bool {
    let (mut a, mut b) = (Output::default(), Output::default());
    let ra: Result<(), CodecError> = fast.on_text(text, 0, &mut a);
    let rb = reference.on_text(text, 0, &mut b);
    assert_eq!(ra, rb, "{what}: result differs on {text:?}");
    assert_eq!(a.events, b.events, "{what}: events differ on {text:?}");
    assert_eq!(a.actions, b.actions, "{what}: actions differ on {text:?}");
    ra.is_ok() && !a.events.is_empty()
}

/// Reshaped variants of a frame that JSON reads alike or nearly alike: white space, escapes,
/// reordered and repeated keys, other element types. Each must give the same answer on both paths.
fn variants(frame: &str) -> Vec<String> {
    let mut v = vec![
        frame.replace(',', " ,\n\t"),
        frame.replace(':', " : "),
        format!(" {frame} "),
        frame.replace("\"a\":", "\"b\":"),
        frame.replace("\"b\":", "\"a\":"),
        frame.replace("\"as\":", "\"a\":"),
        frame.replace("\"c\":", "\"x\":"),
        frame.replacen('{', "{\"c\":\"1\",", 1),
        frame.replacen('{', "{\"a\":[],", 1),
        // A bid before the asks of the same dict: serde applies the asks first.
        frame.replacen('{', "{\"b\":[[\"1.0\",\"2.0\",\"1618678134.1\"]],", 1),
        frame.replacen("\"]", "\",\"r\"]", 1),
        frame.replacen("\"]", "\",5]", 1),
        frame.replacen("\"", "\"\\u0030", 3),
        frame.replacen('[', "[007,", 1),
        frame.replacen("\"book-", "\"bock-", 1),
        frame.replacen("},{", ",", 1),
        frame.replacen("},{", "},{},{", 1),
        frame.replacen(".", "..", 1),
        frame.replacen(".", "e", 1),
        frame.replacen("]]", "]", 1),
        format!("{frame},"),
    ];
    // No dict at all (found by the kraken_v1_paths fuzz target: the fast path took it for an
    // empty update, the serde path calls it too short).
    if let (Some(i), Some(j)) = (frame.find(",{"), frame.rfind("},")) {
        v.push(format!("{}{}", &frame[..i], &frame[j + 1..]));
    }
    // Swap the two dicts of a two-dict update.
    if let Some((head, tail)) = frame.split_once("},{") {
        if let (Some(i), Some(j)) = (head.find('{'), tail.find('}')) {
            v.push(format!(
                "{}{{{}}},{{{}{}",
                &head[..i],
                &tail[..j],
                &head[i + 1..],
                &tail[j..]
            ));
        }
    }
    v
}

#[test]
fn kraken_v1_fast_path_equals_the_serde_path() {
    let Some(path) = common::fixture("kraken-v1.capture.jsonl") else {
        return;
    };
    let records = common::records(&path);
    let mut pairs: Vec<&str> = Vec::new();
    for r in &records {
        if let Record::Recv { data, .. } = r {
            if let Some(pair) = data.strip_suffix("\"]").and_then(|d| d.rsplit_once(",\"")) {
                if data.contains("\"book-") && !pairs.contains(&pair.1) {
                    pairs.push(pair.1);
                }
            }
        }
    }
    assert_eq!(pairs.len(), 10, "{pairs:?}");
    let (mut applied, mut variants_tried, mut truncations) = (0, 0, 0);
    for pair in pairs {
        let spec = VenueSpec::new(Protocol::KrakenV1, pair);
        let mut fast = V1Codec::new(spec.clone());
        let mut reference = V1Codec::new(spec).without_fast_path();
        let mut out = Output::default();
        fast.on_open(0, &mut out);
        reference.on_open(0, &mut out);
        let mut book_frames = 0;
        for r in &records {
            let Record::Recv { data, .. } = r else {
                continue;
            };
            if !data.ends_with(&format!("\"{pair}\"]")) {
                same(&mut fast, &mut reference, data, pair);
                continue;
            }
            book_frames += 1;
            // Damaged and reshaped copies first (the codecs' state is the same either way), then
            // the frame itself.
            if book_frames <= 40 {
                for v in variants(data) {
                    same(&mut fast, &mut reference, &v, pair);
                    variants_tried += 1;
                }
                for cut in (1..data.len()).step_by(3) {
                    if let Some(prefix) = data.get(..cut) {
                        same(&mut fast, &mut reference, prefix, pair);
                        truncations += 1;
                    }
                }
            }
            if same(&mut fast, &mut reference, data, pair) {
                applied += 1;
            }
        }
        assert_eq!(fast.precision(), reference.precision(), "{pair}");
    }
    eprintln!(
        "{applied} book frames applied alike, {variants_tried} variants, {truncations} truncations"
    );
    // Every book frame of the ten pairs (the 4,269 checksummed updates and the snapshots, some
    // of them re-sent after a variant resynced neither codec) answered alike.
    assert!(applied > 4_269, "{applied}");
    assert!(
        variants_tried > 7_000 && truncations > 100_000,
        "{variants_tried} {truncations}"
    );
}
