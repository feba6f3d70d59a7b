//! A plain tokio-tungstenite client for the simulator tests: connect, send, read text frames,
//! and rebuild books from each venue's messages.
#![allow(dead_code)]

use std::time::Duration;

use depthagg::book::Book;
use depthagg::decimal::Dec;
use depthagg::sim::{SimConfig, Simulator, Timing};
use depthagg::types::Side;
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// Client socket.
pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Upper bound for anything a test waits for.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// A quick simulator: 50 steps/s, short heartbeats.
pub fn config(seed: u64) -> SimConfig {
    SimConfig {
        seed,
        rate: depthagg::sim::Rate::PerSecond(50),
        timing: Timing {
            binance_ping: Duration::from_millis(200),
            coinbase_heartbeat: Duration::from_millis(50),
            kraken_heartbeat: Duration::from_millis(100),
            bitfinex_heartbeat: Duration::from_millis(100),
        },
        ..SimConfig::default()
    }
}

/// Start a simulator.
pub async fn start(cfg: SimConfig) -> Simulator {
    Simulator::start(cfg).await.expect("simulator starts")
}

/// Connect.
pub async fn connect(url: &str) -> Ws {
    let (ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .unwrap_or_else(|e| panic!("connect {url}: {e}"));
    ws
}

/// Send a text frame.
pub async fn send(ws: &mut Ws, text: &str) {
    ws.send(Message::Text(text.to_string()))
        .await
        .expect("send frame");
}

/// What the next read gave.
#[derive(Debug)]
pub enum Read {
    /// A text frame.
    Text(String),
    /// A close frame with its code, or the end of the stream (code 0).
    Closed(u16),
    /// Nothing within the wait.
    Timeout,
}

/// The next text frame (pings and pongs skipped), a close, or a timeout.
pub async fn read(ws: &mut Ws, wait: Duration) -> Read {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        match tokio::time::timeout_at(deadline, ws.next()).await {
            Err(_) => return Read::Timeout,
            Ok(None) | Ok(Some(Err(_))) => return Read::Closed(0),
            Ok(Some(Ok(Message::Text(t)))) => return Read::Text(t),
            Ok(Some(Ok(Message::Close(f)))) => {
                return Read::Closed(f.map(|f| u16::from(f.code)).unwrap_or(0));
            }
            Ok(Some(Ok(_))) => continue,
        }
    }
}

/// The next text frame; panics on close or after [`PATIENCE`].
pub async fn text(ws: &mut Ws) -> String {
    match read(ws, PATIENCE).await {
        Read::Text(t) => t,
        other => panic!("expected a text frame, got {other:?}"),
    }
}

/// The next frame as JSON.
pub async fn json(ws: &mut Ws) -> Value {
    let t = text(ws).await;
    serde_json::from_str(&t).unwrap_or_else(|e| panic!("not JSON ({e}): {t}"))
}

/// A decimal from a JSON string or number.
pub fn dec(v: &Value) -> Dec {
    let text = match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        other => panic!("not a number: {other}"),
    };
    Dec::parse(&text).unwrap_or_else(|e| panic!("{e}"))
}

/// Parse decimal text.
pub fn d(s: &str) -> Dec {
    Dec::parse(s).expect("decimal")
}

/// The best `depth` levels per side of a book.
pub fn truncated(book: &Book, depth: usize) -> Book {
    let mut b = book.clone();
    b.truncate(depth);
    b
}

/// Apply Binance-style `[["p","q"],..]` levels.
pub fn apply_pairs(book: &mut Book, side: Side, levels: &Value) {
    for l in levels.as_array().expect("levels array") {
        book.set(side, dec(&l[0]), dec(&l[1]));
    }
}

/// Remove fields that carry the wall clock or are per-process, so frames compare across runs.
pub fn without_clock(mut v: Value) -> Value {
    fn strip(v: &mut Value) {
        match v {
            Value::Object(m) => {
                for k in [
                    "E",
                    "timestamp",
                    "event_time",
                    "time_in",
                    "time_out",
                    "current_time",
                ] {
                    m.remove(k);
                }
                for x in m.values_mut() {
                    strip(x);
                }
            }
            Value::Array(a) => a.iter_mut().for_each(strip),
            _ => {}
        }
    }
    strip(&mut v);
    v
}
