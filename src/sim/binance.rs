//! Binance spot, BTCUSDT (protocols.md §1): the diff depth stream and the REST depth snapshot.
//!
//! * WebSocket `/stream?streams=btcusdt@depth@100ms` wraps each event in the combined-stream
//!   envelope `{"stream":..,"data":..}`; `/ws/btcusdt@depth@100ms` sends the bare event. Live
//!   `SUBSCRIBE`/`UNSUBSCRIBE` requests are acknowledged with `{"result":null,"id":..}` (§1.2).
//! * Each market step is one `depthUpdate` with `U` = previous `u` + 1 and `u` = `U` + changes − 1.
//! * `GET /api/v3/depth?symbol=BTCUSDT&limit=N`: `{"lastUpdateId":..,"bids":..,"asks":..}` with
//!   limit default 100, capped at 5000 (§1.3); errors `{"code":..,"msg":..}` with HTTP 400.
//! * Prices are strings with 2 decimals (tick 0.01), quantities with 8 decimals (step 0.00001).
//! * A ping frame every 20 s (§1.5).

use std::fmt::Write;
use std::sync::Arc;

use futures_util::StreamExt;
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use super::faults::Fault;
use super::http::Request;
use super::hub::{Flow, Gone, Hub, Out, Step, bump, next_step, now_ms};
use crate::book::Book;
use crate::decimal::Dec;
use crate::types::Side;

const STREAM: &str = "btcusdt@depth@100ms";

fn is_depth_stream(s: &str) -> bool {
    s == "btcusdt@depth@100ms" || s == "btcusdt@depth"
}

fn write_levels(out: &mut String, levels: impl Iterator<Item = (Dec, Dec)>) {
    out.push('[');
    for (i, (p, q)) in levels.enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str("[\"");
        p.write_fixed(2, out);
        out.push_str("\",\"");
        q.write_fixed(8, out);
        out.push_str("\"]");
    }
    out.push(']');
}

fn error_body(code: i32, msg: &str) -> String {
    format!("{{\"code\":{code},\"msg\":{}}}", super::hub::json_str(msg))
}

/// Answer a REST request: `(HTTP status, JSON body)`.
pub(crate) async fn rest(hub: &Arc<Hub>, req: &Request) -> (u16, String) {
    bump(&hub.counters.rest_requests);
    if req.path() != "/api/v3/depth" {
        return (404, error_body(-1000, "Not found."));
    }
    let Some(symbol) = req.query("symbol").filter(|s| !s.is_empty()) else {
        bump(&hub.counters.rejections);
        return (
            400,
            error_body(
                -1102,
                "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed.",
            ),
        );
    };
    let limit = match req.query("limit") {
        None => 100,
        Some(l) => match l.parse::<usize>() {
            // Binance caps the depth at 5000 rather than refusing larger limits (§1.3).
            Ok(n) if n > 0 => n.min(5000),
            _ => {
                bump(&hub.counters.rejections);
                return (
                    400,
                    error_body(
                        -1100,
                        "Illegal characters found in parameter 'limit'; legal range is '^[0-9]{1,20}$'.",
                    ),
                );
            }
        },
    };
    if symbol != "BTCUSDT" || hub.take_conn_fault(|f| f == Fault::Reject).is_some() {
        bump(&hub.counters.rejections);
        return (400, error_body(-1121, "Invalid symbol."));
    }
    let (id, book) = hub.top(limit);
    if let Some(Fault::DelaySnapshot(d)) =
        hub.take_conn_fault(|f| matches!(f, Fault::DelaySnapshot(_)))
    {
        tokio::time::sleep(d).await;
    }
    bump(&hub.counters.snapshots);
    (200, snapshot_body(id, &book))
}

fn snapshot_body(id: u64, book: &Book) -> String {
    let mut s = String::with_capacity(64 + 70 * (book.len(Side::Bid) + book.len(Side::Ask)));
    let _ = write!(s, "{{\"lastUpdateId\":{id},\"bids\":");
    write_levels(&mut s, book.levels(Side::Bid).map(|l| (l.price, l.qty)));
    s.push_str(",\"asks\":");
    write_levels(&mut s, book.levels(Side::Ask).map(|l| (l.price, l.qty)));
    s.push('}');
    s
}

fn event_text(step: &Step, combined: bool) -> String {
    let mut s = String::with_capacity(128 + 48 * step.changes.len());
    if combined {
        let _ = write!(s, "{{\"stream\":\"{STREAM}\",\"data\":");
    }
    let _ = write!(
        s,
        "{{\"e\":\"depthUpdate\",\"E\":{},\"s\":\"BTCUSDT\",\"U\":{},\"u\":{},\"b\":",
        now_ms(),
        step.first_id,
        step.last_id
    );
    let side = |side: Side| {
        step.changes
            .iter()
            .filter(move |c| c.side == side)
            .map(|c| (c.price, c.qty))
    };
    write_levels(&mut s, side(Side::Bid));
    s.push_str(",\"a\":");
    write_levels(&mut s, side(Side::Ask));
    s.push('}');
    if combined {
        s.push('}');
    }
    s
}

/// Serve one WebSocket connection.
pub(crate) async fn session(hub: Arc<Hub>, ws: WebSocketStream<TcpStream>, req: &Request) {
    let (sink, mut reader) = ws.split();
    let mut out = Out::new(sink, hub.clone());
    let path = req.path().to_string();
    let (combined, streams): (bool, Vec<String>) = if let Some(s) = path.strip_prefix("/ws/") {
        (false, s.split('/').map(str::to_string).collect())
    } else {
        let s = req.query("streams").unwrap_or_default();
        (true, s.split('/').map(str::to_string).collect())
    };
    let mut rx = None;
    if streams.iter().any(|s| is_depth_stream(s)) {
        bump(&hub.counters.subscriptions);
        rx = Some(hub.subscribe().rx);
    }
    let mut shutdown = hub.shutdown.clone();
    let mut ping = tokio::time::interval_at(
        tokio::time::Instant::now() + hub.timing.binance_ping,
        hub.timing.binance_ping,
    );
    let mut stalled = false;
    let mut drop_next = false;
    let result: Result<(), Gone> = async {
        loop {
            tokio::select! {
                _ = shutdown.changed() => {
                    out.close(CloseCode::Away, "server shutdown").await;
                    return Ok(());
                }
                msg = reader.next() => match msg {
                    Some(Ok(Message::Text(t))) => {
                        if stalled { continue; }
                        if let Some(reply) = control_reply(&t, &mut rx, &hub) {
                            out.text(reply).await?;
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
                        out.text(format!("{{\"stream\":\"{STREAM}\",\"data\":{{\"e\":\"depthUpdate\",\"E\":")).await?;
                    }
                    drop_next |= step.has(Fault::Drop);
                    if drop_next {
                        drop_next = false;
                        bump(&hub.counters.dropped);
                        continue;
                    }
                    out.text(event_text(&step, combined)).await?;
                    bump(&hub.counters.updates);
                }
                _ = ping.tick() => {
                    if !stalled {
                        out.ping(now_ms().to_string().into_bytes()).await?;
                    }
                }
            }
        }
    }
    .await;
    let _ = result;
}

/// Answer a live `SUBSCRIBE` / `UNSUBSCRIBE` / `LIST_SUBSCRIPTIONS` request (§1.2).
fn control_reply(
    text: &str,
    rx: &mut Option<tokio::sync::broadcast::Receiver<Arc<Step>>>,
    hub: &Hub,
) -> Option<String> {
    let v: serde_json::Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(_) => {
            return Some(
                "{\"error\":{\"code\":3,\"msg\":\"Invalid JSON: expected value at line 1 column 1\"}}"
                    .into(),
            );
        }
    };
    let id = v.get("id").cloned().unwrap_or(serde_json::Value::Null);
    let id_text = id.to_string();
    let params: Vec<String> = v
        .get("params")
        .and_then(|p| p.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    match v.get("method").and_then(|m| m.as_str()) {
        Some("SUBSCRIBE") => {
            if params.iter().any(|s| is_depth_stream(s)) && rx.is_none() {
                bump(&hub.counters.subscriptions);
                *rx = Some(hub.subscribe().rx);
            }
            Some(format!("{{\"result\":null,\"id\":{id_text}}}"))
        }
        Some("UNSUBSCRIBE") => {
            if params.iter().any(|s| is_depth_stream(s)) {
                *rx = None;
            }
            Some(format!("{{\"result\":null,\"id\":{id_text}}}"))
        }
        Some("LIST_SUBSCRIPTIONS") => {
            let list = if rx.is_some() {
                format!("[\"{STREAM}\"]")
            } else {
                "[]".into()
            };
            Some(format!("{{\"result\":{list},\"id\":{id_text}}}"))
        }
        _ => Some(format!(
            "{{\"error\":{{\"code\":2,\"msg\":\"Invalid request: unknown variant\"}},\"id\":{id_text}}}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::market::Change;

    fn d(s: &str) -> Dec {
        Dec::parse(s).expect("decimal")
    }

    #[test]
    fn event_and_snapshot_text() {
        let step = Step {
            changes: vec![
                Change {
                    side: Side::Bid,
                    price: d("90000.1"),
                    qty: d("0.00012"),
                },
                Change {
                    side: Side::Ask,
                    price: d("90000.2"),
                    qty: Dec::ZERO,
                },
            ],
            first_id: 11,
            last_id: 12,
            faults: vec![],
        };
        let t = event_text(&step, true);
        let tail = t.split_once("\"s\"").expect("symbol").1;
        assert!(t.starts_with(
            "{\"stream\":\"btcusdt@depth@100ms\",\"data\":{\"e\":\"depthUpdate\",\"E\":"
        ));
        assert_eq!(
            tail,
            ":\"BTCUSDT\",\"U\":11,\"u\":12,\"b\":[[\"90000.10\",\"0.00012000\"]],\"a\":[[\"90000.20\",\"0.00000000\"]]}}"
        );
        let mut book = Book::new();
        book.replace([(d("1.5"), d("2"))], []);
        assert_eq!(
            snapshot_body(7, &book),
            "{\"lastUpdateId\":7,\"bids\":[[\"1.50\",\"2.00000000\"]],\"asks\":[]}"
        );
    }
}
