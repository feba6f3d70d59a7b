//! Any bytes as a capture file: an error naming the line, or records; never a panic. The records
//! read before the first bad line are also replayed through the engines of the venues the header
//! names (first symbol of the header, or a placeholder), as `depthagg replay` would.
#![no_main]

use std::io::Cursor;
use std::path::{Path, PathBuf};

use depthagg::capture::CaptureReader;
use depthagg::replay::{ReplayPlan, Replayer};
use depthagg::venue::VenueSpec;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = Path::new("fuzz.jsonl");
    let Ok(reader) = CaptureReader::from_reader(Cursor::new(data.to_vec()), path) else {
        return;
    };
    let header = reader.header().clone();
    let symbol = header
        .symbols
        .first()
        .cloned()
        .unwrap_or_else(|| "X".to_string());
    let venues = header
        .venue_protocols()
        .map(|ps| {
            ps.into_iter()
                .map(|(_, p)| VenueSpec::new(p, &symbol))
                .collect()
        })
        .unwrap_or_default();
    let plan = ReplayPlan {
        file: PathBuf::from(path),
        venues,
    };
    let mut replayer = Replayer::new(&plan, 0);
    for (i, rec) in reader.enumerate() {
        let Ok(rec) = rec else { break };
        replayer.feed(&rec, i as i64);
    }
});
