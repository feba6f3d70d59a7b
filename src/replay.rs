//! `depthagg replay FILE`: drive the same codecs and engines from a capture, with no network.
//!
//! Records are fed in file order: `connect` opens the venue's session (the codec's subscribe
//! frames are not sent anywhere), `recv` frames go to the codec, recorded `http` answers for the
//! followed symbol are handed over at their point in the file (capture-format.md), and `close`
//! ends the session when the venue's last open connection closes. `send` records are ignored.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::capture::{CaptureError, CaptureReader, Record};
use crate::engine::{Engine, SharedVenue, VenueState};
use crate::types::{Side, Venue};
use crate::venue::{Protocol, VenueSpec, codec_for};

/// Replay pace.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Speed {
    /// As fast as possible.
    Max,
    /// This many times the recorded pace (1 = as recorded).
    Factor(f64),
}

impl Speed {
    /// Parse `max` or a positive number.
    pub fn parse(text: &str) -> Result<Speed, String> {
        let t = text.trim();
        if t.eq_ignore_ascii_case("max") {
            return Ok(Speed::Max);
        }
        match t.parse::<f64>() {
            Ok(f) if f.is_finite() && f > 0.0 => Ok(Speed::Factor(f)),
            _ => Err(format!(
                "--speed {text:?}: not valid (accepted: max, or a number above 0 such as 1 or 10)"
            )),
        }
    }
}

/// Which venue, protocol and symbol a replay follows.
#[derive(Clone, Debug, PartialEq)]
pub struct ReplayPlan {
    /// The capture file.
    pub file: PathBuf,
    /// Per venue in the file: its protocol and the symbol followed.
    pub venues: Vec<VenueSpec>,
}

/// Read a capture's header and decide what to follow. `symbols` are `VENUE=SYMBOL` choices.
pub fn plan(file: &Path, symbols: &[String]) -> Result<ReplayPlan, String> {
    let reader = CaptureReader::open(file).map_err(|e| e.to_string())?;
    let header = reader.header().clone();
    let protocols = header
        .venue_protocols()
        .map_err(|m| format!("{}:1: {m}", file.display()))?;
    let mut chosen: BTreeMap<Venue, String> = BTreeMap::new();
    for s in symbols {
        let (v, sym) = s.split_once('=').ok_or_else(|| {
            format!("--symbol {s:?}: not VENUE=SYMBOL (accepted: e.g. kraken=XBT/CHF)")
        })?;
        let venue: Venue = v.parse().map_err(|e| format!("--symbol {s:?}: {e}"))?;
        chosen.insert(venue, sym.trim().to_string());
    }
    let mut venues = Vec::new();
    for (name, protocol) in protocols {
        let venue = protocol.venue();
        let _ = name;
        let symbol = match chosen.remove(&venue) {
            Some(s) => {
                if !header.symbols.is_empty() && !header.symbols.iter().any(|h| h == &s) {
                    return Err(format!(
                        "--symbol {}={s}: the capture {} does not hold {s} (it holds: {})",
                        venue,
                        file.display(),
                        header.symbols.join(", ")
                    ));
                }
                s
            }
            None => default_symbol(protocol, &header.symbols).ok_or_else(|| {
                format!("{}: the header lists no symbol for {venue}", file.display())
            })?,
        };
        venues.push(VenueSpec::new(protocol, &symbol));
    }
    if let Some((venue, _)) = chosen.into_iter().next() {
        return Err(format!(
            "--symbol: the capture {} has no {venue} data",
            file.display()
        ));
    }
    Ok(ReplayPlan {
        file: file.to_path_buf(),
        venues,
    })
}

fn default_symbol(protocol: Protocol, symbols: &[String]) -> Option<String> {
    let btc = match protocol {
        Protocol::KrakenV1 => "XBT/USD",
        _ => protocol.venue().default_symbol(),
    };
    symbols
        .iter()
        .find(|s| s.as_str() == btc)
        .or_else(|| symbols.first())
        .cloned()
}

/// The engines of a replay and their shared states.
pub struct Replayer {
    engines: Vec<(Venue, Engine, BTreeSet<String>, u64)>,
}

impl Replayer {
    /// Engines for a plan. `source` names the data source in the venue state.
    pub fn new(plan: &ReplayPlan, now: i64) -> Replayer {
        let source = format!("replay {}", plan.file.display());
        let engines = plan
            .venues
            .iter()
            .map(|spec| {
                let st = VenueState::new(spec.protocol, &spec.symbol, &source, now);
                (
                    spec.venue(),
                    Engine::new(codec_for(spec.clone()), SharedVenue::new(st)),
                    BTreeSet::new(),
                    0,
                )
            })
            .collect();
        Replayer { engines }
    }

    /// The shared states, one per venue.
    pub fn venues(&self) -> Vec<SharedVenue> {
        self.engines
            .iter()
            .map(|(_, e, _, _)| e.shared().clone())
            .collect()
    }

    /// Frames fed per venue.
    pub fn frames(&self) -> Vec<(Venue, u64)> {
        self.engines.iter().map(|(v, _, _, n)| (*v, *n)).collect()
    }

    /// Feed one record; `now` is the time to pass to the engine (Unix ms).
    pub fn feed(&mut self, rec: &Record, now: i64) {
        let Some(name) = rec.venue() else { return };
        let Some((_, engine, open, frames)) = self
            .engines
            .iter_mut()
            .find(|(v, _, _, _)| v.name() == name)
        else {
            return;
        };
        match rec {
            Record::Connect { conn, .. } => {
                if open.is_empty() {
                    engine.on_open(now);
                }
                open.insert(conn.clone());
            }
            Record::Recv { data, .. } => {
                *frames += 1;
                engine.on_text(data, now);
            }
            Record::Http {
                url, status, data, ..
            } => {
                let symbol = engine.codec().spec().symbol.clone();
                if url_symbol(url).is_none_or(|s| s.eq_ignore_ascii_case(&symbol)) {
                    engine.on_http(*status, data, now);
                }
            }
            Record::Close { conn, reason, .. } => {
                open.remove(conn);
                if open.is_empty() {
                    engine.on_close(reason.as_deref().unwrap_or("closed"), now);
                }
            }
            Record::Send { .. } | Record::Header(_) | Record::Unknown => {}
        }
    }

    /// Feed a whole capture as fast as possible, passing each record's own time as "now".
    pub fn feed_file(&mut self, file: &Path) -> Result<i64, CaptureError> {
        let mut last = 0;
        for rec in CaptureReader::open(file)? {
            let rec = rec?;
            let now = rec
                .ts()
                .map(|t| (t * 1000.0).round() as i64)
                .unwrap_or(last);
            last = now;
            self.feed(&rec, now);
        }
        Ok(last)
    }
}

/// Read a whole capture once, so that a bad line is reported before anything is replayed.
/// Returns the number of records.
pub fn validate(file: &Path) -> Result<u64, CaptureError> {
    let mut n = 0;
    for rec in CaptureReader::open(file)? {
        rec?;
        n += 1;
    }
    Ok(n)
}

/// The `symbol=` query parameter of a URL, if any.
fn url_symbol(url: &str) -> Option<&str> {
    let query = url.split_once('?')?.1;
    query.split('&').find_map(|kv| kv.strip_prefix("symbol="))
}

/// Feed a capture with pacing (for the dashboard), passing wall-clock time as "now".
pub async fn feed_paced(
    mut replayer: Replayer,
    file: PathBuf,
    speed: Speed,
    controls: std::sync::Arc<crate::control::Controls>,
) -> Result<(), CaptureError> {
    let reader = CaptureReader::open(&file)?;
    let start = Instant::now();
    let mut first: Option<f64> = None;
    let mut tick = Instant::now();
    for rec in reader {
        let rec = rec?;
        if controls.is_shutting_down() {
            return Ok(());
        }
        if let (Speed::Factor(f), Some(ts)) = (speed, rec.ts()) {
            let t0 = *first.get_or_insert(ts);
            let due = Duration::from_secs_f64(((ts - t0) / f).max(0.0));
            let elapsed = start.elapsed();
            if due > elapsed {
                tokio::time::sleep(due - elapsed).await;
            }
        }
        let now = crate::feed::now_ms();
        replayer.feed(&rec, now);
        if tick.elapsed() >= Duration::from_secs(1) {
            tick = Instant::now();
            for (_, e, _, _) in replayer.engines.iter_mut() {
                e.on_tick(now);
            }
        }
        if speed == Speed::Max {
            tokio::task::yield_now().await;
        }
    }
    Ok(())
}

/// Write each venue's final book as `DIR/<venue>.book.csv`: header `side,price,qty`, bids high to
/// low, then asks low to high, exact decimal text.
pub fn dump_books(venues: &[SharedVenue], dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    for v in venues {
        let st = v.lock();
        let path = dir.join(format!("{}.book.csv", st.venue.name()));
        let mut text = String::from("side,price,qty\n");
        for side in [Side::Bid, Side::Ask] {
            for l in st.book.levels(side) {
                text.push_str(&format!("{},{},{}\n", side.name(), l.price, l.qty));
            }
        }
        std::fs::write(&path, text)?;
        written.push(path);
    }
    Ok(written)
}

/// The end-of-replay report: per venue frames, book messages applied, checksums, gaps, resyncs,
/// final levels per side and best bid/ask.
pub fn print_report(replayer: &Replayer, out: &mut dyn std::io::Write) -> std::io::Result<()> {
    writeln!(
        out,
        "{:<9} {:<18} {:<10} {:>7} {:>7} {:>10} {:>6} {:>5} {:>7} {:>6} {:>6} {:>14} {:>14}",
        "venue",
        "symbol",
        "state",
        "frames",
        "book",
        "cksum ok",
        "fail",
        "gaps",
        "resyncs",
        "bids",
        "asks",
        "best bid",
        "best ask"
    )?;
    for (venue, engine, _, frames) in &replayer.engines {
        let st = engine.shared().lock();
        let c = &st.counters;
        let (b, a) = st.levels();
        writeln!(
            out,
            "{:<9} {:<18} {:<10} {:>7} {:>7} {:>10} {:>6} {:>5} {:>7} {:>6} {:>6} {:>14} {:>14}",
            venue.name(),
            st.symbol,
            st.state.name(),
            frames,
            c.book_messages,
            c.checksums_ok,
            c.checksums_failed,
            c.gaps,
            c.resyncs,
            b,
            a,
            st.book
                .best_bid()
                .map(|l| l.price.to_string())
                .unwrap_or_else(|| "-".into()),
            st.book
                .best_ask()
                .map(|l| l.price.to_string())
                .unwrap_or_else(|| "-".into()),
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn speeds() {
        assert_eq!(Speed::parse("max"), Ok(Speed::Max));
        assert_eq!(Speed::parse("10"), Ok(Speed::Factor(10.0)));
        assert!(Speed::parse("0").is_err());
        assert!(Speed::parse("fast").is_err());
    }

    #[test]
    fn url_symbols() {
        assert_eq!(
            url_symbol("https://api.binance.com/api/v3/depth?symbol=LRCBTC&limit=1000"),
            Some("LRCBTC")
        );
        assert_eq!(url_symbol("https://x/y"), None);
    }
}
