//! Capture files: recorded exchange traffic as JSON Lines (`../shared/capture-format.md`, version 1).
//!
//! Readers skip unknown record types and unknown fields, and reject a line that is not valid JSON
//! (or not a record) with an error naming the file and the line number.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::venue::Protocol;

/// The capture format version this build reads and writes.
pub const FORMAT: u64 = 1;

/// One record of a capture.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "lowercase")]
pub enum Record {
    /// First line: what the file holds.
    Header(Header),
    /// A WebSocket connection opened.
    Connect {
        /// Venue name.
        venue: String,
        /// Unix seconds.
        ts: f64,
        /// Connection id, unique in the file.
        conn: String,
        /// URL.
        url: String,
    },
    /// A text frame the client sent.
    Send {
        /// Venue name.
        venue: String,
        /// Unix seconds.
        ts: f64,
        /// Connection id.
        conn: String,
        /// Frame text, verbatim.
        data: String,
    },
    /// A text frame the client received.
    Recv {
        /// Venue name.
        venue: String,
        /// Unix seconds.
        ts: f64,
        /// Connection id.
        conn: String,
        /// Frame text, verbatim.
        data: String,
    },
    /// An HTTP GET and its response body.
    Http {
        /// Venue name.
        venue: String,
        /// Unix seconds.
        ts: f64,
        /// Requested URL.
        url: String,
        /// HTTP status.
        status: u16,
        /// Response body, verbatim.
        data: String,
    },
    /// The connection closed or failed.
    Close {
        /// Venue name.
        venue: String,
        /// Unix seconds.
        ts: f64,
        /// Connection id.
        conn: String,
        /// Close code.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        code: Option<u16>,
        /// Close reason.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// A record type this build does not know (skipped).
    #[serde(other)]
    Unknown,
}

impl Record {
    /// The venue name of a record (`None` for the header and unknown records).
    pub fn venue(&self) -> Option<&str> {
        match self {
            Record::Connect { venue, .. }
            | Record::Send { venue, .. }
            | Record::Recv { venue, .. }
            | Record::Http { venue, .. }
            | Record::Close { venue, .. } => Some(venue),
            Record::Header(_) | Record::Unknown => None,
        }
    }

    /// The time stamp in Unix seconds (`None` for the header and unknown records).
    pub fn ts(&self) -> Option<f64> {
        match self {
            Record::Connect { ts, .. }
            | Record::Send { ts, .. }
            | Record::Recv { ts, .. }
            | Record::Http { ts, .. }
            | Record::Close { ts, .. } => Some(*ts),
            Record::Header(_) | Record::Unknown => None,
        }
    }
}

/// The header record.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Header {
    /// Format version (1).
    pub format: u64,
    /// Venue name, or `mixed`.
    pub venue: String,
    /// Protocol name (single-venue files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    /// Protocol per venue (mixed files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocols: Option<BTreeMap<String, String>>,
    /// Symbols recorded.
    #[serde(default)]
    pub symbols: Vec<String>,
    /// When the recording started (Unix seconds), if known.
    #[serde(default)]
    pub recorded_at: Option<f64>,
    /// Free text.
    #[serde(default)]
    pub source: String,
}

impl Header {
    /// The protocol of each venue in the file, checked against the protocols this build knows.
    pub fn venue_protocols(&self) -> Result<Vec<(String, Protocol)>, String> {
        let mut out = Vec::new();
        if let Some(p) = &self.protocol {
            out.push((self.venue.clone(), p.parse::<Protocol>()?));
        }
        if let Some(map) = &self.protocols {
            for (v, p) in map {
                out.push((v.clone(), p.parse::<Protocol>()?));
            }
        }
        for (venue, proto) in &out {
            if proto.venue().name() != venue {
                return Err(format!(
                    "protocol {proto} belongs to {}, not to venue {venue:?}",
                    proto.venue()
                ));
            }
        }
        if out.is_empty() {
            return Err("header names no protocol".to_string());
        }
        Ok(out)
    }
}

/// A capture file that cannot be read, with the file and line it concerns.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    /// Opening or reading the file failed.
    #[error("{path}: {source}")]
    Io {
        /// File.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// A line is not valid JSON or not a record.
    #[error("{path}:{line}: {message}")]
    Line {
        /// File.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        message: String,
    },
}

/// Reads a capture record by record.
pub struct CaptureReader {
    path: PathBuf,
    lines: Box<dyn Iterator<Item = std::io::Result<String>> + Send>,
    line_no: usize,
    header: Header,
    venues: Vec<String>,
    last_ts: f64,
}

impl CaptureReader {
    /// Open a capture and read its header (which must be the first line, format 1).
    pub fn open(path: &Path) -> Result<CaptureReader, CaptureError> {
        let file = File::open(path).map_err(|source| CaptureError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        CaptureReader::from_reader(BufReader::with_capacity(1 << 20, file), path)
    }

    /// Read a capture from any buffered reader; `path` names it in errors.
    pub fn from_reader<R: BufRead + Send + 'static>(
        reader: R,
        path: &Path,
    ) -> Result<CaptureReader, CaptureError> {
        let mut lines: Box<dyn Iterator<Item = std::io::Result<String>> + Send> =
            Box::new(reader.lines());
        let err = |line: usize, message: String| CaptureError::Line {
            path: path.to_path_buf(),
            line,
            message,
        };
        let first = match lines.next() {
            Some(Ok(l)) => l,
            Some(Err(source)) => {
                return Err(CaptureError::Io {
                    path: path.to_path_buf(),
                    source,
                });
            }
            None => return Err(err(1, "empty file: expected a header record".into())),
        };
        let header = match serde_json::from_str::<Record>(&first) {
            Ok(Record::Header(h)) => h,
            Ok(_) => return Err(err(1, "first record is not a header".into())),
            Err(e) => return Err(err(1, format!("not a capture header: {e}"))),
        };
        if header.format != FORMAT {
            return Err(err(
                1,
                format!(
                    "capture format {} is not supported (this build reads format {FORMAT})",
                    header.format
                ),
            ));
        }
        let venues = header
            .venue_protocols()
            .map_err(|m| err(1, m))?
            .into_iter()
            .map(|(v, _)| v)
            .collect();
        Ok(CaptureReader {
            venues,
            path: path.to_path_buf(),
            lines,
            line_no: 1,
            header,
            last_ts: f64::NEG_INFINITY,
        })
    }

    /// The header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The line number of the last record returned.
    pub fn line(&self) -> usize {
        self.line_no
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The next known record, or `None` at the end. Unknown records are skipped.
    pub fn next_record(&mut self) -> Result<Option<Record>, CaptureError> {
        loop {
            let Some(line) = self.lines.next() else {
                return Ok(None);
            };
            self.line_no += 1;
            let line = line.map_err(|source| match source.kind() {
                std::io::ErrorKind::InvalidData => CaptureError::Line {
                    path: self.path.clone(),
                    line: self.line_no,
                    message: "not UTF-8 text".into(),
                },
                _ => CaptureError::Io {
                    path: self.path.clone(),
                    source,
                },
            })?;
            if line.trim().is_empty() {
                continue;
            }
            let rec: Record = serde_json::from_str(&line).map_err(|e| CaptureError::Line {
                path: self.path.clone(),
                line: self.line_no,
                message: format!("not a capture record: {e}"),
            })?;
            if matches!(rec, Record::Unknown) {
                continue;
            }
            if matches!(rec, Record::Header(_)) {
                return Err(CaptureError::Line {
                    path: self.path.clone(),
                    line: self.line_no,
                    message: "a second header record".into(),
                });
            }
            if let Some(venue) = rec.venue() {
                if !self.venues.iter().any(|v| v == venue) {
                    return Err(CaptureError::Line {
                        path: self.path.clone(),
                        line: self.line_no,
                        message: format!(
                            "record for venue {venue:?}, which the header does not list (it lists: {})",
                            self.venues.join(", ")
                        ),
                    });
                }
            }
            if let Some(ts) = rec.ts() {
                if ts < self.last_ts {
                    return Err(CaptureError::Line {
                        path: self.path.clone(),
                        line: self.line_no,
                        message: format!("time goes backwards ({ts} after {})", self.last_ts),
                    });
                }
                self.last_ts = ts;
            }
            return Ok(Some(rec));
        }
    }
}

impl Iterator for CaptureReader {
    type Item = Result<Record, CaptureError>;
    fn next(&mut self) -> Option<Self::Item> {
        self.next_record().transpose()
    }
}

/// Writes a capture, one record per line, flushing after every record so a crash loses at most
/// the record being written.
pub struct CaptureWriter {
    out: BufWriter<File>,
}

impl CaptureWriter {
    /// Create (truncate) a capture file and write its header.
    pub fn create(path: &Path, header: &Header) -> std::io::Result<CaptureWriter> {
        let file = File::create(path)?;
        let mut w = CaptureWriter {
            out: BufWriter::new(file),
        };
        w.write(&Record::Header(header.clone()))?;
        Ok(w)
    }

    /// Append one record.
    pub fn write(&mut self, rec: &Record) -> std::io::Result<()> {
        serde_json::to_writer(&mut self.out, rec)?;
        self.out.write_all(b"\n")?;
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_file(text: &str) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().expect("temp file");
        f.write_all(text.as_bytes()).expect("write");
        f
    }

    const HEADER: &str = r#"{"t":"header","format":1,"venue":"kraken","protocol":"kraken-v1","symbols":["XBT/CHF"],"recorded_at":1.0,"source":"x"}"#;

    #[test]
    fn reads_records_and_skips_unknown_ones() {
        let f = write_file(&format!(
            "{HEADER}\n{}\n{}\n\n{}\n",
            r#"{"t":"connect","venue":"kraken","ts":1.5,"conn":"1","url":"wss://ws.kraken.com","extra":true}"#,
            r#"{"t":"note","venue":"kraken","ts":1.6}"#,
            r#"{"t":"recv","venue":"kraken","ts":1.7,"conn":"1","data":"{\"event\":\"heartbeat\"}"}"#
        ));
        let r = CaptureReader::open(f.path()).expect("opens");
        assert_eq!(r.header().symbols, ["XBT/CHF"]);
        let recs: Vec<_> = r.collect::<Result<_, _>>().expect("reads");
        assert_eq!(recs.len(), 2);
        assert!(
            matches!(&recs[1], Record::Recv { data, .. } if data == r#"{"event":"heartbeat"}"#)
        );
    }

    #[test]
    fn bad_lines_name_file_and_line() {
        let f = write_file(&format!("{HEADER}\n{{\"t\":\"recv\",\"venue\"\n"));
        let mut r = CaptureReader::open(f.path()).expect("opens");
        let e = r.next_record().expect_err("bad line").to_string();
        assert!(
            e.contains(&format!("{}:2: not a capture record", f.path().display())),
            "{e}"
        );

        let mut f = write_file(&format!("{HEADER}\n"));
        f.write_all(b"{\"t\":\"recv\xff\"}\n").expect("write");
        let mut r = CaptureReader::open(f.path()).expect("opens");
        let e = r.next_record().expect_err("bad bytes").to_string();
        assert!(e.ends_with(":2: not UTF-8 text"), "{e}");

        let f = write_file(&format!(
            "{HEADER}\n{}\n",
            r#"{"t":"recv","venue":"binance","ts":2.0,"conn":"1","data":"{}"}"#
        ));
        let mut r = CaptureReader::open(f.path()).expect("opens");
        let e = r.next_record().expect_err("wrong venue").to_string();
        assert!(
            e.ends_with(":2: record for venue \"binance\", which the header does not list (it lists: kraken)"),
            "{e}"
        );

        let f = write_file("hello\n");
        let e = CaptureReader::open(f.path())
            .err()
            .expect("not a header")
            .to_string();
        assert!(e.contains(":1: not a capture header"), "{e}");

        let f = write_file(&HEADER.replace("\"format\":1", "\"format\":2"));
        let e = CaptureReader::open(f.path())
            .err()
            .expect("format 2")
            .to_string();
        assert!(e.contains("capture format 2 is not supported"), "{e}");

        let f = write_file(&HEADER.replace("kraken-v1", "bitfinex-v2"));
        let e = CaptureReader::open(f.path())
            .err()
            .expect("mixed up")
            .to_string();
        assert!(
            e.contains("protocol bitfinex-v2 belongs to bitfinex"),
            "{e}"
        );
    }

    #[test]
    fn writer_round_trips() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("c.jsonl");
        let header: Header = match serde_json::from_str(HEADER).expect("header") {
            Record::Header(h) => h,
            _ => unreachable!(),
        };
        let mut w = CaptureWriter::create(&path, &header).expect("create");
        let rec = Record::Send {
            venue: "kraken".into(),
            ts: 2.25,
            conn: "1".into(),
            data: "{\"a\":\"b\\n\"}".into(),
        };
        w.write(&rec).expect("write");
        drop(w);
        let got: Vec<_> = CaptureReader::open(&path)
            .expect("opens")
            .collect::<Result<_, _>>()
            .expect("reads");
        assert_eq!(got, [rec]);
    }
}
