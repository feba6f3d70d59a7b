//! Coinbase Advanced Trade, BTC-USD (protocols.md §2): `level2` and `heartbeats`.
//!
//! * `{"type":"subscribe","product_ids":["BTC-USD"],"channel":"level2"}` → an `l2_data`
//!   `snapshot` of the whole book, then a `subscriptions` message listing every channel of the
//!   connection (the order the real exchange uses in the recorded fixture), then one `update` per
//!   market step.
//! * `{"type":"subscribe","channel":"heartbeats"}` → `heartbeats` once per second with a
//!   `heartbeat_counter` (§2.5).
//! * Every message carries `sequence_num`, counted per connection across all channels (§2.4).
//! * Sides are `bid` / `offer` (§2.3); numbers are strings without trailing zeros, as recorded.
//! * An unknown product gets `{"type":"error","message":"Failed to subscribe","reason":"X is not
//!   a valid product"}`.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Arc;

use futures_util::StreamExt;
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use super::faults::Fault;
use super::hub::{Flow, Gone, Hub, Out, bump, json_str, next_step, utc_text};
use super::market::Change;
use crate::book::Book;
use crate::types::Side;

const PRODUCT: &str = "BTC-USD";
const KNOWN_CHANNELS: [&str; 8] = [
    "level2",
    "heartbeats",
    "ticker",
    "ticker_batch",
    "market_trades",
    "candles",
    "status",
    "level2_batch",
];

struct Conn {
    out: Out,
    seq: u64,
    subs: BTreeMap<String, Vec<String>>,
}

impl Conn {
    fn envelope(&mut self, channel: &str, events: &str) -> String {
        let seq = self.seq;
        self.seq += 1;
        format!(
            "{{\"channel\":\"{channel}\",\"timestamp\":\"{}\",\"sequence_num\":{seq},\"events\":{events}}}",
            utc_text(9)
        )
    }

    async fn send(&mut self, channel: &str, events: &str) -> Result<(), Gone> {
        let text = self.envelope(channel, events);
        self.out.text(text).await
    }

    async fn send_subscriptions(&mut self) -> Result<(), Gone> {
        let mut s = String::from("[{\"subscriptions\":{");
        for (i, (k, v)) in self.subs.iter().enumerate() {
            if i > 0 {
                s.push(',');
            }
            let list: Vec<String> = v.iter().map(|p| json_str(p)).collect();
            let _ = write!(s, "{}:[{}]", json_str(k), list.join(","));
        }
        s.push_str("}}]");
        self.send("subscriptions", &s).await
    }

    async fn error(&mut self, reason: &str) -> Result<(), Gone> {
        self.out
            .text(format!(
                "{{\"type\":\"error\",\"message\":\"Failed to subscribe\",\"reason\":{}}}",
                json_str(reason)
            ))
            .await
    }
}

fn updates_text(kind: &str, changes: impl Iterator<Item = Change>, event_time: &str) -> String {
    let mut s = String::with_capacity(4096);
    let _ = write!(
        s,
        "[{{\"type\":\"{kind}\",\"product_id\":\"{PRODUCT}\",\"updates\":["
    );
    for (i, c) in changes.enumerate() {
        if i > 0 {
            s.push(',');
        }
        let side = match c.side {
            Side::Bid => "bid",
            Side::Ask => "offer",
        };
        let _ = write!(
            s,
            "{{\"side\":\"{side}\",\"event_time\":\"{event_time}\",\"price_level\":\"{}\",\"new_quantity\":\"{}\"}}",
            c.price, c.qty
        );
    }
    s.push_str("]}]");
    s
}

fn snapshot_changes(book: &Book) -> impl Iterator<Item = Change> + '_ {
    [Side::Bid, Side::Ask].into_iter().flat_map(move |side| {
        book.levels(side).map(move |l| Change {
            side,
            price: l.price,
            qty: l.qty,
        })
    })
}

/// Serve one WebSocket connection.
pub(crate) async fn session(hub: Arc<Hub>, ws: WebSocketStream<TcpStream>) {
    let (sink, mut reader) = ws.split();
    let mut c = Conn {
        out: Out::new(sink, hub.clone()),
        seq: 0,
        subs: BTreeMap::new(),
    };
    let mut rx = None;
    let mut heartbeats = false;
    let mut hb_counter: u64 = 40_000 + hub.seed % 10_000;
    let mut hb = tokio::time::interval(hub.timing.coinbase_heartbeat);
    let mut shutdown = hub.shutdown.clone();
    let mut stalled = false;
    let mut drop_next = false;
    let result: Result<(), Gone> = async {
        loop {
            tokio::select! {
                _ = shutdown.changed() => {
                    c.out.close(CloseCode::Away, "server shutdown").await;
                    return Ok(());
                }
                msg = reader.next() => match msg {
                    Some(Ok(Message::Text(t))) => {
                        if stalled { continue; }
                        let Ok(v) = serde_json::from_str::<serde_json::Value>(&t) else {
                            c.out.text("{\"type\":\"error\",\"message\":\"Failed to parse message\"}".into()).await?;
                            continue;
                        };
                        let kind = v.get("type").and_then(|x| x.as_str()).unwrap_or("");
                        let channel = v.get("channel").and_then(|x| x.as_str()).unwrap_or("").to_string();
                        let products: Vec<String> = v.get("product_ids").and_then(|p| p.as_array())
                            .map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_string)).collect())
                            .unwrap_or_default();
                        match kind {
                            "subscribe" => {
                                if !KNOWN_CHANNELS.contains(&channel.as_str()) {
                                    bump(&hub.counters.rejections);
                                    c.error(&format!("{channel} is not a valid channel")).await?;
                                    continue;
                                }
                                if let Some(bad) = products.iter().find(|p| *p != PRODUCT) {
                                    bump(&hub.counters.rejections);
                                    c.error(&format!("{bad} is not a valid product")).await?;
                                    continue;
                                }
                                if channel == "heartbeats" {
                                    heartbeats = true;
                                    c.subs.insert(channel.clone(), vec!["heartbeats".into()]);
                                    c.send_subscriptions().await?;
                                    continue;
                                }
                                if products.is_empty() {
                                    bump(&hub.counters.rejections);
                                    c.error("product_ids is required").await?;
                                    continue;
                                }
                                if channel == "level2" {
                                    if hub.take_conn_fault(|f| f == Fault::Reject).is_some() {
                                        bump(&hub.counters.rejections);
                                        c.error("subscription rejected: try again later").await?;
                                        continue;
                                    }
                                    let sub = hub.subscribe();
                                    if let Some(Fault::DelaySnapshot(d)) =
                                        hub.take_conn_fault(|f| matches!(f, Fault::DelaySnapshot(_)))
                                    {
                                        tokio::time::sleep(d).await;
                                    }
                                    let events = updates_text("snapshot", snapshot_changes(&sub.book), "1970-01-01T00:00:00Z");
                                    c.send("l2_data", &events).await?;
                                    bump(&hub.counters.snapshots);
                                    bump(&hub.counters.subscriptions);
                                    rx = Some(sub.rx);
                                }
                                c.subs.insert(channel.clone(), vec![PRODUCT.into()]);
                                c.send_subscriptions().await?;
                            }
                            "unsubscribe" => {
                                if channel == "level2" { rx = None; }
                                if channel == "heartbeats" { heartbeats = false; }
                                c.subs.remove(&channel);
                                c.send_subscriptions().await?;
                            }
                            _ => {
                                c.out.text("{\"type\":\"error\",\"message\":\"Failed to parse message\"}".into()).await?;
                            }
                        }
                    }
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return Ok(()),
                    Some(Ok(_)) => {}
                },
                step = next_step(&mut rx) => {
                    let step = match c.out.begin_step(step, &mut rx, &mut stalled).await {
                        Flow::Go(step) => step,
                        Flow::Skip => continue,
                        Flow::End => return Ok(()),
                    };
                    if step.has(Fault::Malformed) {
                        bump(&hub.counters.malformed);
                        c.out.text(format!("{{\"channel\":\"l2_data\",\"timestamp\":\"{}\",\"sequence_num\":", utc_text(9))).await?;
                    }
                    drop_next |= step.has(Fault::Drop);
                    if drop_next {
                        // The message is lost on the way: its sequence number is used up.
                        drop_next = false;
                        c.seq += 1;
                        bump(&hub.counters.dropped);
                        continue;
                    }
                    let now = utc_text(6);
                    let events = updates_text("update", step.changes.iter().copied(), &now);
                    c.send("l2_data", &events).await?;
                    bump(&hub.counters.updates);
                }
                _ = hb.tick(), if heartbeats && !stalled => {
                    hb_counter += 1;
                    let now = utc_text(9).replace('T', " ").replace('Z', " +0000 UTC");
                    let events = format!(
                        "[{{\"current_time\":\"{now} m=+{hb_counter}.000000001\",\"heartbeat_counter\":{hb_counter}}}]"
                    );
                    c.send("heartbeats", &events).await?;
                    bump(&hub.counters.heartbeats);
                }
            }
        }
    }
    .await;
    let _ = result;
}
