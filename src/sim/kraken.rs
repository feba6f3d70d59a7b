//! Kraken WebSocket v2, BTC/USD (protocols.md §3): `status`, `book`, `heartbeat`.
//!
//! * On connect: a `status` update (§3.2).
//! * `{"method":"subscribe","params":{"channel":"book","symbol":["BTC/USD"],"depth":1000,
//!   "snapshot":true},"req_id":1}` → one ack per symbol, then a `snapshot` and `update`s, each with
//!   the CRC32 `checksum` of the top 10 at precision 1/8 (§3.4). `depth` must be 10, 25, 100,
//!   500 or 1000 (default 10); other symbols get `Currency pair not supported <symbol>` (§3.1).
//! * Every connection sees the book through its own depth: levels that fall out of scope are not
//!   deleted on the wire, the client truncates (§3.4 step 2); levels that come into scope are sent.
//!   The true book never holds more than 1000 levels per side, so at depth 1000 the client's
//!   book is the truth.
//! * Prices and quantities are JSON numbers (§3.3), written as the shortest exact decimal text.
//! * `{"channel":"heartbeat"}` after a second without traffic (§3.5); `ping` → `pong`.

use std::fmt::Write;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use super::faults::Fault;
use super::hub::{Flow, Gone, Hub, Out, advance_view, bump, json_str, next_step, top_of, utc_text};
use super::market::Change;
use crate::book::Book;
use crate::types::Side;
use crate::venue::checksum;

const SYMBOL: &str = "BTC/USD";
const DEPTHS: [u64; 5] = [10, 25, 100, 500, 1000];

fn levels_json(
    s: &mut String,
    levels: impl Iterator<Item = (crate::decimal::Dec, crate::decimal::Dec)>,
) {
    s.push('[');
    for (i, (p, q)) in levels.enumerate() {
        if i > 0 {
            s.push(',');
        }
        let _ = write!(
            s,
            "{{\"price\":{},\"qty\":{}}}",
            p.to_js_string(),
            q.to_js_string()
        );
    }
    s.push(']');
}

fn book_message(kind: &str, bids: &[Change], asks: &[Change], checksum: u32) -> String {
    let mut s = String::with_capacity(256 + 48 * (bids.len() + asks.len()));
    let _ = write!(
        s,
        "{{\"channel\":\"book\",\"type\":\"{kind}\",\"data\":[{{\"symbol\":\"{SYMBOL}\",\"bids\":"
    );
    levels_json(&mut s, bids.iter().map(|c| (c.price, c.qty)));
    s.push_str(",\"asks\":");
    levels_json(&mut s, asks.iter().map(|c| (c.price, c.qty)));
    let _ = write!(
        s,
        ",\"checksum\":{checksum},\"timestamp\":\"{}\"}}]}}",
        utc_text(6)
    );
    s
}

fn split(changes: Vec<Change>) -> (Vec<Change>, Vec<Change>) {
    changes.into_iter().partition(|c| c.side == Side::Bid)
}

fn book_changes(book: &Book) -> Vec<Change> {
    [Side::Bid, Side::Ask]
        .into_iter()
        .flat_map(|side| {
            book.levels(side).map(move |l| Change {
                side,
                price: l.price,
                qty: l.qty,
            })
        })
        .collect()
}

fn req_id_field(v: &Value) -> String {
    match v.get("req_id") {
        Some(id) if !id.is_null() => format!(",\"req_id\":{id}"),
        _ => String::new(),
    }
}

fn error_frame(method: &str, error: &str, req_id: &str, symbol: Option<&str>) -> String {
    let now = utc_text(6);
    let sym = symbol
        .map(|s| format!(",\"symbol\":{}", json_str(s)))
        .unwrap_or_default();
    format!(
        "{{\"error\":{},\"method\":{}{req_id},\"success\":false{sym},\"time_in\":\"{now}\",\"time_out\":\"{now}\"}}",
        json_str(error),
        json_str(method)
    )
}

struct View {
    depth: usize,
    mirror: Book,
    view: Book,
}

/// Serve one WebSocket connection.
pub(crate) async fn session(hub: Arc<Hub>, ws: WebSocketStream<TcpStream>) {
    let (sink, mut reader) = ws.split();
    let mut out = Out::new(sink, hub.clone());
    let conn_id = 10_000_000_000_000u64 + hub.seed.wrapping_mul(7919) % 1_000_000 + hub.next_conn();
    let mut shutdown = hub.shutdown.clone();
    let mut rx = None;
    let mut sub: Option<View> = None;
    let period = hub.timing.kraken_heartbeat;
    let mut hb = tokio::time::interval((period / 2).max(Duration::from_millis(5)));
    let mut stalled = false;
    let mut drop_next = false;
    let mut corrupt_next = false;
    let result: Result<(), Gone> = async {
        out.text(format!(
            "{{\"channel\":\"status\",\"data\":[{{\"api_version\":\"v2\",\"connection_id\":{conn_id},\"system\":\"online\",\"version\":\"2.0.10\"}}],\"type\":\"update\"}}"
        ))
        .await?;
        loop {
            tokio::select! {
                _ = shutdown.changed() => {
                    out.close(CloseCode::Away, "server shutdown").await;
                    return Ok(());
                }
                msg = reader.next() => match msg {
                    Some(Ok(Message::Text(t))) => {
                        if stalled { continue; }
                        let Ok(v) = serde_json::from_str::<Value>(&t) else {
                            out.text(error_frame("", "Malformed request", "", None)).await?;
                            continue;
                        };
                        let req_id = req_id_field(&v);
                        let method = v.get("method").and_then(Value::as_str).unwrap_or("").to_string();
                        let params = v.get("params").cloned().unwrap_or(Value::Null);
                        match method.as_str() {
                            "ping" => {
                                let now = utc_text(6);
                                out.text(format!("{{\"method\":\"pong\"{req_id},\"time_in\":\"{now}\",\"time_out\":\"{now}\"}}")).await?;
                            }
                            "subscribe" => {
                                let channel = params.get("channel").and_then(Value::as_str).unwrap_or("");
                                if channel != "book" {
                                    bump(&hub.counters.rejections);
                                    out.text(error_frame("subscribe", "Channel not supported", &req_id, None)).await?;
                                    continue;
                                }
                                let depth = match params.get("depth") {
                                    None => Some(10),
                                    Some(d) => d.as_u64().filter(|d| DEPTHS.contains(d)),
                                };
                                let Some(depth) = depth else {
                                    bump(&hub.counters.rejections);
                                    out.text(error_frame("subscribe", "Invalid depth: must be one of 10, 25, 100, 500, 1000", &req_id, None)).await?;
                                    continue;
                                };
                                let snapshot = params.get("snapshot").and_then(Value::as_bool).unwrap_or(true);
                                let symbols: Vec<String> = params.get("symbol").and_then(Value::as_array)
                                    .map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_string)).collect())
                                    .unwrap_or_default();
                                if symbols.is_empty() {
                                    bump(&hub.counters.rejections);
                                    out.text(error_frame("subscribe", "Missing symbol", &req_id, None)).await?;
                                }
                                for symbol in symbols {
                                    if symbol != SYMBOL {
                                        bump(&hub.counters.rejections);
                                        out.text(error_frame("subscribe", &format!("Currency pair not supported {symbol}"), &req_id, Some(&symbol))).await?;
                                        continue;
                                    }
                                    if sub.is_some() {
                                        bump(&hub.counters.rejections);
                                        out.text(error_frame("subscribe", "Already subscribed", &req_id, Some(&symbol))).await?;
                                        continue;
                                    }
                                    if hub.take_conn_fault(|f| f == Fault::Reject).is_some() {
                                        bump(&hub.counters.rejections);
                                        out.text(error_frame("subscribe", "Subscription rejected: service unavailable", &req_id, Some(&symbol))).await?;
                                        continue;
                                    }
                                    let now = utc_text(6);
                                    out.text(format!(
                                        "{{\"method\":\"subscribe\",\"result\":{{\"channel\":\"book\",\"depth\":{depth},\"snapshot\":{snapshot},\"symbol\":\"{SYMBOL}\"}}{req_id},\"success\":true,\"time_in\":\"{now}\",\"time_out\":\"{now}\"}}"
                                    )).await?;
                                    let s = hub.subscribe();
                                    let depth = depth as usize;
                                    let view = top_of(&s.book, depth);
                                    if snapshot {
                                        if let Some(Fault::DelaySnapshot(d)) =
                                            hub.take_conn_fault(|f| matches!(f, Fault::DelaySnapshot(_)))
                                        {
                                            tokio::time::sleep(d).await;
                                        }
                                        let (bids, asks) = split(book_changes(&view));
                                        out.text(book_message("snapshot", &bids, &asks, checksum::kraken(&view, 1, 8))).await?;
                                        bump(&hub.counters.snapshots);
                                    }
                                    bump(&hub.counters.subscriptions);
                                    sub = Some(View { depth, mirror: s.book, view });
                                    rx = Some(s.rx);
                                }
                            }
                            "unsubscribe" => {
                                let now = utc_text(6);
                                let depth = sub.as_ref().map_or(10, |s| s.depth);
                                sub = None;
                                rx = None;
                                out.text(format!(
                                    "{{\"method\":\"unsubscribe\",\"result\":{{\"channel\":\"book\",\"depth\":{depth},\"symbol\":\"{SYMBOL}\"}}{req_id},\"success\":true,\"time_in\":\"{now}\",\"time_out\":\"{now}\"}}"
                                )).await?;
                            }
                            other => {
                                out.text(error_frame(other, &format!("Method not found: {other}"), &req_id, None)).await?;
                            }
                        }
                    }
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return Ok(()),
                    Some(Ok(_)) => {}
                },
                step = next_step(&mut rx) => {
                    let step = match out.begin_step(step, &mut rx, &mut stalled).await {
                        Flow::Go(step) => step,
                        Flow::Skip => continue,
                        Flow::End => return Ok(()),
                    };
                    if step.has(Fault::Malformed) {
                        bump(&hub.counters.malformed);
                        out.text(format!("{{\"channel\":\"book\",\"type\":\"update\",\"data\":[{{\"symbol\":\"{SYMBOL}\",\"bids\":[{{\"price\":")).await?;
                    }
                    drop_next |= step.has(Fault::Drop);
                    corrupt_next |= step.has(Fault::Checksum);
                    let Some(v) = sub.as_mut() else { continue };
                    for c in &step.changes {
                        v.mirror.set(c.side, c.price, c.qty);
                    }
                    let diff = advance_view(&mut v.view, &v.mirror, &step.changes, v.depth, false);
                    if diff.is_empty() {
                        continue;
                    }
                    if drop_next {
                        drop_next = false;
                        bump(&hub.counters.dropped);
                        continue;
                    }
                    let mut sum = checksum::kraken(&v.view, 1, 8);
                    if corrupt_next {
                        corrupt_next = false;
                        sum = sum.wrapping_add(1);
                        bump(&hub.counters.corrupted);
                    }
                    let (bids, asks) = split(diff);
                    out.text(book_message("update", &bids, &asks, sum)).await?;
                    bump(&hub.counters.updates);
                }
                _ = hb.tick(), if sub.is_some() && !stalled => {
                    if out.last_sent.elapsed() >= period {
                        out.text("{\"channel\":\"heartbeat\"}".into()).await?;
                        bump(&hub.counters.heartbeats);
                    }
                }
            }
        }
    }
    .await;
    let _ = result;
}
