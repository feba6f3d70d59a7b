//! Serving a capture file (`../shared/capture-format.md`) instead of the synthetic market.
//!
//! Every WebSocket connection to a recorded venue gets that venue's recorded `recv` frames in
//! file order, from all recorded connections merged (the client ignores channels it did not ask
//! for, as it would have live). Frames recorded after the venue's first `send` wait until this
//! client has sent a frame too, so a subscription is answered, not anticipated. Pace: the
//! recorded gaps divided by the speed factor, or none at [`Speed::Max`]. When the replay ends the
//! socket stays open and quiet.
//!
//! Binance REST requests get the recorded `http` answers for the requested symbol in file order,
//! each once a replay has reached it in the file (the request waits up to 30 s for that).

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use tokio::net::TcpStream;
use tokio::sync::{Notify, watch};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use super::http::Request;
use super::hub::{Hub, Out, bump};
use super::{SimError, Speed};
use crate::capture::{CaptureReader, Record};
use crate::types::Venue;

enum Item {
    Recv { ts: f64, data: String },
    WaitForClient,
    Http { index: usize, ts: f64 },
}

struct RestEntry {
    symbol: Option<String>,
    status: u16,
    body: String,
    reached: bool,
    used: bool,
}

/// One venue's recorded traffic.
pub struct CaptureVenue {
    items: Vec<Item>,
    speed: Speed,
    rest: Mutex<Vec<RestEntry>>,
    rest_ready: Notify,
}

fn query_symbol(url: &str) -> Option<String> {
    let (_, q) = url.split_once('?')?;
    q.split('&')
        .find_map(|kv| kv.strip_prefix("symbol="))
        .map(str::to_string)
}

/// Read a capture and split it by venue.
pub(crate) fn load(
    path: &Path,
    speed: Speed,
) -> Result<HashMap<Venue, Arc<CaptureVenue>>, SimError> {
    let reader = CaptureReader::open(path)?;
    let mut items: HashMap<Venue, Vec<Item>> = HashMap::new();
    let mut rest: HashMap<Venue, Vec<RestEntry>> = HashMap::new();
    let mut sent: HashMap<Venue, bool> = HashMap::new();
    for rec in reader {
        let rec = rec?;
        let Some(venue) = rec.venue().and_then(|v| v.parse::<Venue>().ok()) else {
            continue;
        };
        match rec {
            Record::Recv { ts, data, .. } => items
                .entry(venue)
                .or_default()
                .push(Item::Recv { ts, data }),
            Record::Send { .. } if !sent.insert(venue, true).unwrap_or(false) => {
                items.entry(venue).or_default().push(Item::WaitForClient);
            }
            Record::Http {
                ts,
                url,
                status,
                data,
                ..
            } => {
                let list = rest.entry(venue).or_default();
                items.entry(venue).or_default().push(Item::Http {
                    index: list.len(),
                    ts,
                });
                list.push(RestEntry {
                    symbol: query_symbol(&url),
                    status,
                    body: data,
                    reached: false,
                    used: false,
                });
            }
            _ => {}
        }
    }
    if items.is_empty() {
        return Err(SimError::CaptureContent(format!(
            "{} holds no frames of binance, coinbase, kraken or bitfinex",
            path.display()
        )));
    }
    Ok(items
        .into_iter()
        .map(|(venue, items)| {
            let rest = rest.remove(&venue).unwrap_or_default();
            (
                venue,
                Arc::new(CaptureVenue {
                    items,
                    speed,
                    rest: Mutex::new(rest),
                    rest_ready: Notify::new(),
                }),
            )
        })
        .collect())
}

impl CaptureVenue {
    fn lock_rest(&self) -> std::sync::MutexGuard<'_, Vec<RestEntry>> {
        self.rest.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn delay(&self, first_ts: f64, ts: f64) -> Option<Duration> {
        match self.speed {
            Speed::Max => None,
            Speed::Factor(f) => Some(Duration::from_secs_f64(((ts - first_ts) / f).max(0.0))),
        }
    }
}

async fn until_true(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|g| *g).await;
}

async fn until_spoke(rx: &mut watch::Receiver<u64>) -> bool {
    rx.wait_for(|n| *n > 0).await.is_ok()
}

/// Replay the venue's frames to one connection.
pub(crate) async fn session(hub: Arc<Hub>, ws: WebSocketStream<TcpStream>, cap: Arc<CaptureVenue>) {
    let (sink, mut reader) = ws.split();
    let mut out = Out::new(sink, hub.clone());
    let (spoke_tx, mut spoke) = watch::channel(0u64);
    let (gone_tx, mut gone) = watch::channel(false);
    let reader_task = tokio::spawn(async move {
        while let Some(msg) = reader.next().await {
            match msg {
                Ok(Message::Text(_)) | Ok(Message::Binary(_)) => {
                    spoke_tx.send_modify(|n| *n += 1);
                }
                Ok(Message::Close(_)) | Err(_) => break,
                Ok(_) => {}
            }
        }
        gone_tx.send_replace(true);
    });
    let mut shutdown = hub.shutdown.clone();
    let start = tokio::time::Instant::now();
    let first_ts = cap
        .items
        .iter()
        .find_map(|i| match i {
            Item::Recv { ts, .. } | Item::Http { ts, .. } => Some(*ts),
            Item::WaitForClient => None,
        })
        .unwrap_or(0.0);
    let mut waited = Duration::ZERO;
    'replay: for item in &cap.items {
        let ts = match item {
            Item::Recv { ts, .. } | Item::Http { ts, .. } => Some(*ts),
            Item::WaitForClient => None,
        };
        if let Some(d) = ts.and_then(|ts| cap.delay(first_ts, ts)) {
            tokio::select! {
                _ = tokio::time::sleep_until(start + waited + d) => {}
                _ = shutdown.changed() => break 'replay,
                _ = until_true(&mut gone) => break 'replay,
            }
        }
        match item {
            Item::Recv { data, .. } => {
                if out.text(data.clone()).await.is_err() {
                    break 'replay;
                }
                bump(&hub.counters.updates);
            }
            Item::Http { index, .. } => {
                if let Some(e) = cap.lock_rest().get_mut(*index) {
                    e.reached = true;
                }
                cap.rest_ready.notify_waiters();
            }
            Item::WaitForClient => {
                let before = tokio::time::Instant::now();
                tokio::select! {
                    ok = until_spoke(&mut spoke) => if !ok { break 'replay },
                    _ = shutdown.changed() => break 'replay,
                    _ = until_true(&mut gone) => break 'replay,
                }
                // Time spent waiting for the client does not count against the recorded pace.
                waited += before.elapsed();
            }
        }
    }
    tokio::select! {
        _ = shutdown.changed() => out.close(CloseCode::Away, "server shutdown").await,
        _ = until_true(&mut gone) => {}
    }
    reader_task.abort();
}

/// Answer a Binance REST request from the capture.
pub(crate) async fn rest(hub: &Hub, req: &Request, cap: Arc<CaptureVenue>) -> (u16, String) {
    bump(&hub.counters.rest_requests);
    let symbol = req.query("symbol");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let notified = cap.rest_ready.notified();
        {
            let mut rest = cap.lock_rest();
            let next = rest.iter_mut().find(|e| !e.used && e.symbol == symbol);
            let pending = next.is_some();
            if let Some(e) = next.filter(|e| e.reached) {
                e.used = true;
                bump(&hub.counters.snapshots);
                return (e.status, e.body.clone());
            }
            if !pending {
                bump(&hub.counters.rejections);
                return (
                    400,
                    "{\"code\":-1121,\"msg\":\"Invalid symbol.\"}".to_string(),
                );
            }
        }
        if tokio::time::timeout_at(deadline, notified).await.is_err() {
            return (
                503,
                "{\"code\":-1007,\"msg\":\"Timeout waiting for response from backend server. Send status unknown; execution status unknown.\"}".to_string(),
            );
        }
    }
}
