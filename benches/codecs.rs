//! Decode-and-apply throughput per protocol on the real recordings in ../shared/fixtures, beside
//! the time to merely parse the same frames into `serde_json::Value`.
//!
//! Budgets (issue "Live order books"): ≥ 1,000,000 level changes per second on one core for every
//! protocol; the 5.1 MB Coinbase BTC-USD snapshot parsed and applied in ≤ 50 ms; full
//! decode-and-apply no slower than a `Value` parse.
//!
//! Run: `cargo bench --bench codecs`

use std::path::PathBuf;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use depthagg::capture::{CaptureReader, Record};
use depthagg::replay::{Replayer, plan};
use depthagg::venue::{Event, Output, codec_for};

struct Case {
    name: &'static str,
    file: PathBuf,
    symbol: &'static str,
}

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/fixtures")
        .join(name)
}

/// Records of a capture, and the level changes the codec emits for the followed symbol.
fn load(case: &Case) -> (Vec<Record>, u64, Vec<String>) {
    let records: Vec<Record> = CaptureReader::open(&case.file)
        .expect("fixture opens")
        .collect::<Result<_, _>>()
        .expect("fixture reads");
    let p = plan(&case.file, &[format!("{}={}", venue_of(case), case.symbol)]).expect("plan");
    let mut codec = codec_for(p.venues[0].clone());
    let mut out = Output::default();
    let mut levels = 0u64;
    let mut frames = Vec::new();
    // Keep the connect records, the REST answers and the frames that change the followed
    // symbol's book: the bench measures decode-and-apply per level change, not the skipping of
    // other symbols' frames (which the codecs do without parsing them).
    let mut kept = Vec::new();
    for r in &records {
        out.clear();
        let keep = match r {
            Record::Recv { data, .. } => {
                let _ = codec.on_text(data, 0, &mut out);
                let book = out.events.iter().any(|e| {
                    matches!(
                        e,
                        Event::Snapshot { .. } | Event::Set { .. } | Event::Checksum { .. }
                    )
                });
                if book {
                    frames.push(data.clone());
                }
                book
            }
            Record::Http {
                status, data, url, ..
            } if url.contains(case.symbol) => {
                let _ = codec.on_http(*status, data, 0, &mut out);
                frames.push(data.clone());
                true
            }
            Record::Connect { .. } => true,
            _ => false,
        };
        if keep {
            kept.push(r.clone());
        }
        for e in &out.events {
            levels += match e {
                Event::Snapshot { bids, asks } => (bids.len() + asks.len()) as u64,
                Event::Set { .. } => 1,
                _ => 0,
            };
        }
    }
    (kept, levels, frames)
}

fn venue_of(case: &Case) -> &'static str {
    case.name.split('-').next().unwrap_or("")
}

fn bench(c: &mut Criterion) {
    let cases = [
        Case {
            name: "binance-spot",
            file: fixture("binance-spot.capture.jsonl"),
            symbol: "LRCBTC",
        },
        Case {
            name: "coinbase-advanced",
            file: fixture("coinbase-advanced.capture.jsonl"),
            symbol: "BTC-USD",
        },
        Case {
            name: "coinbase-exchange",
            file: fixture("coinbase-exchange.capture.jsonl"),
            symbol: "SKL-USD",
        },
        Case {
            name: "kraken-v1",
            file: fixture("kraken-v1.capture.jsonl"),
            symbol: "XMR/USD",
        },
        Case {
            name: "bitfinex-v2",
            file: fixture("bitfinex-v2.capture.jsonl"),
            symbol: "tTESTBTC:TESTUSD",
        },
    ];
    let mut group = c.benchmark_group("decode_apply");
    group.sample_size(20);
    for case in &cases {
        if !case.file.exists() {
            eprintln!("skipping {}: fixture missing", case.name);
            continue;
        }
        let (records, levels, frames) = load(case);
        let p = plan(&case.file, &[format!("{}={}", venue_of(case), case.symbol)]).expect("plan");
        eprintln!(
            "{}: {} frames, {levels} level changes for {}",
            case.name,
            frames.len(),
            case.symbol
        );
        group.throughput(Throughput::Elements(levels));
        group.bench_with_input(
            BenchmarkId::new("engine", case.name),
            &records,
            |b, records| {
                b.iter(|| {
                    let mut r = Replayer::new(&p, 0);
                    for rec in records {
                        r.feed(rec, 0);
                    }
                    r
                })
            },
        );
        group.bench_with_input(
            BenchmarkId::new("serde_json_value", case.name),
            &frames,
            |b, frames| {
                b.iter(|| {
                    for f in frames {
                        let v: serde_json::Value =
                            serde_json::from_str(f).unwrap_or(serde_json::Value::Null);
                        std::hint::black_box(v);
                    }
                })
            },
        );
    }
    group.finish();

    // The single 5.1 MB Coinbase BTC-USD snapshot frame.
    let file = fixture("coinbase-advanced.capture.jsonl");
    if file.exists() {
        let snapshot = CaptureReader::open(&file)
            .expect("fixture opens")
            .filter_map(Result::ok)
            .find_map(|r| match r {
                Record::Recv { data, .. }
                    if data.len() > 1_000_000 && data.contains("\"BTC-USD\"") =>
                {
                    Some(data)
                }
                _ => None,
            })
            .expect("the BTC-USD snapshot frame");
        let mut g = c.benchmark_group("coinbase_btc_usd_snapshot_5mb");
        g.sample_size(20);
        let p = plan(&file, &["coinbase=BTC-USD".to_string()]).expect("plan");
        g.bench_function("engine", |b| {
            b.iter(|| {
                let mut e = depthagg::engine::Engine::standalone(
                    codec_for(p.venues[0].clone()),
                    "bench",
                    0,
                );
                e.on_open(0);
                e.on_text(&snapshot, 0);
                e
            })
        });
        g.bench_function("serde_json_value", |b| {
            b.iter(|| {
                serde_json::from_str::<serde_json::Value>(&snapshot)
                    .map(std::hint::black_box)
                    .is_ok()
            })
        });
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
