//! Bitfinex WebSocket v2, tBTCUSD P0 (protocols.md §4): `info`, `conf`, `book`, `cs`, `hb`.
//!
//! * On connect: `{"event":"info","version":2,"serverId":..,"platform":{"status":1}}` (§4.1).
//! * `{"event":"conf","flags":131072}` → `{"event":"conf","status":"OK","flags":131072}`;
//!   OB_CHECKSUM (131072) turns on `[chan,"cs",signed]` after the snapshot and after each batch of
//!   updates; SEQ_ALL (65536) appends a sequence number to every channel message (§4.2).
//! * `subscribe` book → `subscribed` with a `chanId`, the snapshot `[chan,[[p,c,a],..]]` (bids best
//!   first, then asks best first with negative amounts), then one `[chan,[p,c,a]]` per level
//!   change; count 0 deletes with amount ±1 (§4.3). Levels leaving the subscribed `len` are
//!   deleted on the wire, so a client never needs to truncate.
//! * Prices have five significant digits ($1 tick below $100,000); amounts are JS number text
//!   such as `7e-7` (§4.4). The `cs` value is `checksum::bitfinex` of the client's view.
//! * Errors: 10300 (unknown symbol, refused), 10011 (precision other than P0), 10012 (len not 1,
//!   25, 100 or 250), 10301 (duplicate), 10302 (unknown channel), 10000 (unknown event).
//! * `[chan,"hb"]` after 15 s of silence on the channel (§4.5); `ping` → `pong`.

use std::fmt::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use super::faults::Fault;
use super::hub::{Flow, Gone, Hub, Out, advance_view, bump, json_str, next_step, now_ms, top_of};
use super::market::Change;
use crate::book::Book;
use crate::decimal::Dec;
use crate::types::Side;
use crate::venue::checksum;

const SYMBOL: &str = "tBTCUSD";
const OB_CHECKSUM: u64 = 131_072;
const SEQ_ALL: u64 = 65_536;

/// The order count shown for a level: not part of the book or the checksum, but plausible and
/// stable for a given level.
fn count(price: Dec, qty: Dec) -> u64 {
    let p = (price.raw() / 1_000_000_000_000_000_000) as u64;
    let q = (qty.raw() / 10_000_000_000) as u64;
    (p ^ q) % 9 + 1
}

fn entry(c: &Change) -> String {
    let signed = |q: Dec| match c.side {
        Side::Bid => q,
        Side::Ask => Dec::ZERO.saturating_sub(q),
    };
    if c.qty.is_zero() {
        let one = if c.side == Side::Bid { "1" } else { "-1" };
        format!("[{},0,{one}]", c.price.to_js_string())
    } else {
        format!(
            "[{},{},{}]",
            c.price.to_js_string(),
            count(c.price, c.qty),
            signed(c.qty).to_js_string()
        )
    }
}

fn book_entries(book: &Book) -> Vec<Change> {
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

struct Chan {
    id: u64,
    len: usize,
    mirror: Book,
    view: Book,
    last_sent: Instant,
}

struct Conn {
    out: Out,
    flags: u64,
    seq: u64,
}

impl Conn {
    /// A channel message: `[chan,BODY]`, with the sequence number under SEQ_ALL.
    async fn chan(&mut self, chan: &mut Chan, body: &str) -> Result<(), Gone> {
        let mut s = format!("[{},{body}", chan.id);
        if self.flags & SEQ_ALL != 0 {
            self.seq += 1;
            let _ = write!(s, ",{}", self.seq);
        }
        s.push(']');
        chan.last_sent = Instant::now();
        self.out.text(s).await
    }

    async fn checksum(&mut self, chan: &mut Chan, corrupt: &mut bool) -> Result<(), Gone> {
        if self.flags & OB_CHECKSUM == 0 {
            return Ok(());
        }
        let mut cs = checksum::bitfinex(&chan.view);
        if *corrupt {
            *corrupt = false;
            cs = cs.wrapping_add(1);
            bump(&self.out_hub().counters.corrupted);
        }
        self.chan(chan, &format!("\"cs\",{cs}")).await
    }

    fn out_hub(&self) -> &Hub {
        self.out.hub()
    }
}

fn error_frame(req: &Value, msg: &str, code: u32) -> String {
    let mut s = String::from("{\"event\":\"error\"");
    for key in ["channel", "symbol", "prec", "freq", "len", "subId"] {
        if let Some(v) = req.get(key) {
            let _ = write!(s, ",\"{key}\":{v}");
        }
    }
    let _ = write!(s, ",\"msg\":{},\"code\":{code}", json_str(msg));
    if let Some(sym) = req.get("symbol").and_then(Value::as_str) {
        let _ = write!(s, ",\"pair\":{}", json_str(sym.trim_start_matches('t')));
    }
    s.push('}');
    s
}

/// Serve one WebSocket connection.
pub(crate) async fn session(hub: Arc<Hub>, ws: WebSocketStream<TcpStream>) {
    let (sink, mut reader) = ws.split();
    let conn_no = hub.next_conn();
    let mut c = Conn {
        out: Out::new(sink, hub.clone()),
        flags: 0,
        seq: 0,
    };
    let mut shutdown = hub.shutdown.clone();
    let mut rx = None;
    let mut chan: Option<Chan> = None;
    let period = hub.timing.bitfinex_heartbeat;
    let mut hb = tokio::time::interval((period / 4).max(Duration::from_millis(5)));
    let mut stalled = false;
    let mut drop_next = false;
    let mut corrupt_next = false;
    let server_id = format!(
        "{:08x}-{:04x}-4{:03x}-a{:03x}-{:012x}",
        hub.seed as u32,
        conn_no as u16,
        hub.seed % 0xfff,
        conn_no % 0xfff,
        hub.seed.wrapping_mul(0x9e37_79b9) & 0xffff_ffff_ffff
    );
    let result: Result<(), Gone> = async {
        c.out
            .text(format!(
                "{{\"event\":\"info\",\"version\":2,\"serverId\":\"{server_id}\",\"platform\":{{\"status\":1}}}}"
            ))
            .await?;
        loop {
            tokio::select! {
                _ = shutdown.changed() => {
                    c.out.close(CloseCode::Away, "server shutdown").await;
                    return Ok(());
                }
                msg = reader.next() => match msg {
                    Some(Ok(Message::Text(t))) => {
                        if stalled { continue; }
                        let Ok(v) = serde_json::from_str::<Value>(&t) else {
                            c.out.text("{\"event\":\"error\",\"msg\":\"Unknown event\",\"code\":10000}".into()).await?;
                            continue;
                        };
                        match v.get("event").and_then(Value::as_str).unwrap_or("") {
                            "conf" => {
                                c.flags = v.get("flags").and_then(Value::as_u64).unwrap_or(0);
                                c.out.text(format!("{{\"event\":\"conf\",\"status\":\"OK\",\"flags\":{}}}", c.flags)).await?;
                            }
                            "ping" => {
                                let cid = v.get("cid").map(|x| format!(",\"cid\":{x}")).unwrap_or_default();
                                c.out.text(format!("{{\"event\":\"pong\",\"ts\":{}{cid}}}", now_ms())).await?;
                            }
                            "subscribe" => {
                                let text = |k: &str, dflt: &str| -> String {
                                    match v.get(k) {
                                        Some(Value::String(s)) => s.clone(),
                                        Some(Value::Number(n)) => n.to_string(),
                                        _ => dflt.to_string(),
                                    }
                                };
                                let channel = text("channel", "");
                                let symbol = text("symbol", "");
                                let prec = text("prec", "P0");
                                let freq = text("freq", "F0");
                                let len = text("len", "25");
                                let refuse = if channel != "book" {
                                    Some(("channel: unknown", 10302))
                                } else if symbol != SYMBOL {
                                    Some(("symbol: invalid", 10300))
                                } else if prec != "P0" {
                                    Some(("prec: invalid", 10011))
                                } else if !["1", "25", "100", "250"].contains(&len.as_str()) {
                                    Some(("len: invalid", 10012))
                                } else if freq != "F0" && freq != "F1" {
                                    Some(("freq: invalid", 10300))
                                } else if chan.is_some() {
                                    Some(("subscribe: dup", 10301))
                                } else if hub.take_conn_fault(|f| f == Fault::Reject).is_some() {
                                    Some(("subscribe: failed", 10300))
                                } else {
                                    None
                                };
                                if let Some((msg, code)) = refuse {
                                    bump(&hub.counters.rejections);
                                    c.out.text(error_frame(&v, msg, code)).await?;
                                    continue;
                                }
                                let id = 17_000 + (hub.seed % 100_000) * 3 + conn_no;
                                let sub_id = v.get("subId").map(|x| format!(",\"subId\":{x}")).unwrap_or_default();
                                c.out.text(format!(
                                    "{{\"event\":\"subscribed\",\"channel\":\"book\",\"chanId\":{id},\"symbol\":\"{SYMBOL}\",\"prec\":\"P0\",\"freq\":{},\"len\":\"{len}\"{sub_id},\"pair\":\"BTCUSD\"}}",
                                    json_str(&freq)
                                )).await?;
                                let s = hub.subscribe();
                                let depth: usize = len.parse().unwrap_or(25);
                                let mut ch = Chan {
                                    id,
                                    len: depth,
                                    view: top_of(&s.book, depth),
                                    mirror: s.book,
                                    last_sent: Instant::now(),
                                };
                                if let Some(Fault::DelaySnapshot(d)) =
                                    hub.take_conn_fault(|f| matches!(f, Fault::DelaySnapshot(_)))
                                {
                                    tokio::time::sleep(d).await;
                                }
                                let entries: Vec<String> = book_entries(&ch.view).iter().map(entry).collect();
                                c.chan(&mut ch, &format!("[{}]", entries.join(","))).await?;
                                bump(&hub.counters.snapshots);
                                bump(&hub.counters.subscriptions);
                                c.checksum(&mut ch, &mut corrupt_next).await?;
                                chan = Some(ch);
                                rx = Some(s.rx);
                            }
                            "unsubscribe" => {
                                let id = v.get("chanId").and_then(Value::as_u64);
                                if let (Some(id), Some(ch)) = (id, chan.as_ref()) {
                                    if ch.id == id {
                                        chan = None;
                                        rx = None;
                                        c.out.text(format!("{{\"event\":\"unsubscribed\",\"status\":\"OK\",\"chanId\":{id}}}")).await?;
                                        continue;
                                    }
                                }
                                c.out.text("{\"event\":\"error\",\"msg\":\"unsubscribe: invalid\",\"code\":10400}".into()).await?;
                            }
                            _ => {
                                c.out.text("{\"event\":\"error\",\"msg\":\"Unknown event\",\"code\":10000}".into()).await?;
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
                    let Some(ch) = chan.as_mut() else { continue };
                    if step.has(Fault::Malformed) {
                        bump(&hub.counters.malformed);
                        c.out.text(format!("[{},[{}", ch.id, 90_000)).await?;
                    }
                    drop_next |= step.has(Fault::Drop);
                    corrupt_next |= step.has(Fault::Checksum);
                    for x in &step.changes {
                        ch.mirror.set(x.side, x.price, x.qty);
                    }
                    let mut diff = advance_view(&mut ch.view, &ch.mirror, &step.changes, ch.len, true);
                    // Deletes first, so a client applying entries one by one never holds
                    // more than `len` levels.
                    diff.sort_by_key(|x| !x.qty.is_zero());
                    if diff.is_empty() {
                        continue;
                    }
                    if drop_next {
                        // The level updates are lost; the next `cs` shows the damage.
                        drop_next = false;
                        bump(&hub.counters.dropped);
                    } else {
                        for x in &diff {
                            c.chan(ch, &entry(x)).await?;
                        }
                        bump(&hub.counters.updates);
                    }
                    c.checksum(ch, &mut corrupt_next).await?;
                }
                _ = hb.tick(), if chan.is_some() && !stalled => {
                    if let Some(ch) = chan.as_mut() {
                        if ch.last_sent.elapsed() >= period {
                            c.chan(ch, "\"hb\"").await?;
                            bump(&hub.counters.heartbeats);
                        }
                    }
                }
            }
        }
    }
    .await;
    let _ = result;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Dec {
        Dec::parse(s).expect("decimal")
    }

    #[test]
    fn entries_use_js_text_and_signed_amounts() {
        let bid = Change {
            side: Side::Bid,
            price: d("90000"),
            qty: d("0.0000007"),
        };
        let ask = Change {
            side: Side::Ask,
            price: d("90001"),
            qty: d("1.5"),
        };
        let del = Change {
            side: Side::Ask,
            price: d("90002"),
            qty: Dec::ZERO,
        };
        let e = entry(&bid);
        assert!(e.starts_with("[90000,") && e.ends_with(",7e-7]"), "{e}");
        let e = entry(&ask);
        assert!(e.starts_with("[90001,") && e.ends_with(",-1.5]"), "{e}");
        assert_eq!(entry(&del), "[90002,0,-1]");
    }
}
