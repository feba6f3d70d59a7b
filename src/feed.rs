//! The feed driver: the only network code. One task per venue.
//!
//! It opens the WebSocket (TLS with certificate verification against the Mozilla roots; there is no
//! way to turn verification off), hands every frame to the venue's [`Engine`], performs the actions
//! the codec asks for (send a frame, fetch a REST snapshot, reconnect), answers pings, runs the
//! staleness watchdog once a second, and reconnects with exponential backoff, jitter and a cap.
//! Everything it buffers is bounded: one frame at a time from the socket, at most
//! [`MAX_PENDING_FETCHES`] REST responses in flight, frames capped at [`FeedOptions::max_message_bytes`].

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use rand::Rng;
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::tungstenite::{self, Message};

use crate::capture::{CaptureWriter, Header, Record};
use crate::engine::Engine;
use crate::metrics::LatencyHistogram;
use crate::venue::{Action, FeedState, Millis};

/// REST responses that may be in flight at once per venue.
pub const MAX_PENDING_FETCHES: usize = 4;

/// Unix time now in milliseconds.
pub fn now_ms() -> Millis {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as Millis)
        .unwrap_or(0)
}

/// Unix time now in seconds with sub-second digits (capture time stamps).
fn now_secs() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Writes everything all venues send and receive into one capture file.
#[derive(Clone)]
pub struct Recorder {
    inner: Arc<Mutex<(CaptureWriter, u64)>>,
}

impl Recorder {
    /// Create the capture file with a mixed-venue header.
    pub fn create(
        path: &Path,
        venues: &[(String, String)],
        symbols: Vec<String>,
    ) -> std::io::Result<Recorder> {
        let header = Header {
            format: crate::capture::FORMAT,
            venue: "mixed".into(),
            protocol: None,
            protocols: Some(venues.iter().cloned().collect()),
            symbols,
            recorded_at: Some(now_secs()),
            source: format!("depthagg {} --record", env!("CARGO_PKG_VERSION")),
        };
        let w = CaptureWriter::create(path, &header)?;
        Ok(Recorder {
            inner: Arc::new(Mutex::new((w, 0))),
        })
    }

    fn write(&self, rec: Record) {
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if let Err(e) = g.0.write(&rec) {
            tracing::warn!("recording failed: {e}");
        }
    }

    fn next_conn(&self) -> String {
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        g.1 += 1;
        g.1.to_string()
    }
}

/// Driver settings.
#[derive(Clone)]
pub struct FeedOptions {
    /// Time allowed for TCP + TLS + WebSocket handshake.
    pub connect_timeout: Duration,
    /// First reconnect delay.
    pub backoff_initial: Duration,
    /// Reconnect delay cap.
    pub backoff_max: Duration,
    /// Largest frame accepted (the Coinbase BTC-USD snapshot is about 5.1 MB).
    pub max_message_bytes: usize,
    /// Reconnect proactively after this long (Binance closes connections at 24 h).
    pub max_connection_age: Duration,
    /// Timeout of a REST request.
    pub http_timeout: Duration,
    /// How often the staleness watchdog runs.
    pub watchdog_tick: Duration,
    /// Record all traffic here.
    pub recorder: Option<Recorder>,
    /// Frame arrival → applied-in-view latency, when measured (load runs).
    pub latency: Option<Arc<Mutex<LatencyHistogram>>>,
}

impl Default for FeedOptions {
    fn default() -> Self {
        FeedOptions {
            connect_timeout: Duration::from_secs(10),
            backoff_initial: Duration::from_millis(500),
            backoff_max: Duration::from_secs(30),
            max_message_bytes: 64 << 20,
            max_connection_age: Duration::from_secs(23 * 3600),
            http_timeout: Duration::from_secs(15),
            watchdog_tick: Duration::from_secs(1),
            recorder: None,
            latency: None,
        }
    }
}

/// Why a connection ended.
enum End {
    Shutdown,
    Reconnect { reason: String, min_delay_ms: u64 },
}

/// Run one venue's feed until `shutdown` becomes true.
pub async fn run_feed(mut engine: Engine, opts: FeedOptions, mut shutdown: watch::Receiver<bool>) {
    let venue = engine.shared().lock().venue.name();
    let http = match reqwest::Client::builder()
        .timeout(opts.http_timeout)
        .user_agent(concat!("depthagg/", env!("CARGO_PKG_VERSION")))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            engine.on_connect_error(None, &format!("cannot build HTTP client: {e}"), now_ms());
            return;
        }
    };
    let mut attempt: u32 = 0;
    loop {
        if *shutdown.borrow() {
            return;
        }
        let url = engine.connect_url();
        engine.on_connecting(&url, now_ms());
        let end = connect_and_run(&mut engine, &url, &opts, &http, &mut shutdown).await;
        let (reason, min_delay_ms) = match end {
            End::Shutdown => return,
            End::Reconnect {
                reason,
                min_delay_ms,
            } => (reason, min_delay_ms),
        };
        let was_live = resets_backoff(&engine.shared().lock());
        engine.on_close(&reason, now_ms());
        if was_live {
            attempt = 0;
        }
        let backoff = backoff_delay(&opts, attempt);
        attempt = attempt.saturating_add(1);
        let delay = backoff.max(Duration::from_millis(min_delay_ms));
        tracing::info!(
            venue,
            "reconnecting in {:.1} s: {reason}",
            delay.as_secs_f64()
        );
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// Whether a connection that just ended resets the reconnect backoff: it does when its book was
/// live. Stale counts too: only a live book is marked stale, so a connection dropped for silence
/// was live until the data stopped; without this, every stall added a backoff step for good
/// (Kraken waited 7.7 s after a few stalls instead of 0.5 s; found by the soak).
fn resets_backoff(st: &crate::engine::VenueState) -> bool {
    st.counters.book_messages > 0 && matches!(st.state, FeedState::Live | FeedState::Stale)
}

/// Exponential backoff with full jitter in [50 %, 100 %] of the step, capped.
pub fn backoff_delay(opts: &FeedOptions, attempt: u32) -> Duration {
    let base = opts.backoff_initial.as_millis() as u64;
    let cap = opts.backoff_max.as_millis() as u64;
    let step = base.saturating_mul(1u64 << attempt.min(20)).min(cap);
    let jittered = rand::thread_rng().gen_range(step / 2..=step.max(1));
    Duration::from_millis(jittered)
}

async fn connect_and_run(
    engine: &mut Engine,
    url: &str,
    opts: &FeedOptions,
    http: &reqwest::Client,
    shutdown: &mut watch::Receiver<bool>,
) -> End {
    let venue = engine.shared().lock().venue.name().to_string();
    let ws_config = tungstenite::protocol::WebSocketConfig {
        max_message_size: Some(opts.max_message_bytes),
        max_frame_size: Some(opts.max_message_bytes),
        ..Default::default()
    };
    let connect = tokio_tungstenite::connect_async_with_config(url, Some(ws_config), true);
    let ws = tokio::select! {
        r = tokio::time::timeout(opts.connect_timeout, connect) => r,
        _ = shutdown.changed() => return End::Shutdown,
    };
    let mut ws = match ws {
        Err(_) => {
            let msg = format!("connect timeout after {} s", opts.connect_timeout.as_secs());
            let delay = engine.on_connect_error(None, &msg, now_ms());
            return End::Reconnect {
                reason: msg,
                min_delay_ms: delay,
            };
        }
        Ok(Err(e)) => {
            let (status, msg) = describe_connect_error(&e);
            let delay = engine.on_connect_error(status, &msg, now_ms());
            return End::Reconnect {
                reason: msg,
                min_delay_ms: delay,
            };
        }
        Ok(Ok((ws, _resp))) => ws,
    };
    let conn = opts.recorder.as_ref().map(|r| {
        let conn = r.next_conn();
        r.write(Record::Connect {
            venue: venue.clone(),
            ts: now_secs(),
            conn: conn.clone(),
            url: url.to_string(),
        });
        conn
    });
    let record = |rec: Record| {
        if let Some(r) = &opts.recorder {
            r.write(rec);
        }
    };
    let conn_id = conn.clone().unwrap_or_default();

    let (fetch_tx, mut fetch_rx) = mpsc::channel::<(u16, String, String)>(MAX_PENDING_FETCHES);
    let mut fetches: Vec<tokio::task::JoinHandle<()>> = Vec::new();
    let opened_at = Instant::now();
    let mut tick = tokio::time::interval(opts.watchdog_tick);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);

    let mut pending: Vec<Action> = engine.on_open(now_ms()).to_vec();
    let end = 'conn: loop {
        // Perform the actions the engine asked for.
        for action in pending.drain(..) {
            match action {
                Action::Send(text) => {
                    record(Record::Send {
                        venue: venue.clone(),
                        ts: now_secs(),
                        conn: conn_id.clone(),
                        data: text.clone(),
                    });
                    if let Err(e) = ws.send(Message::Text(text)).await {
                        break 'conn End::Reconnect {
                            reason: format!("send failed: {e}"),
                            min_delay_ms: 0,
                        };
                    }
                }
                Action::Fetch { url, delay_ms } => {
                    fetches.retain(|h| !h.is_finished());
                    if fetches.len() >= MAX_PENDING_FETCHES {
                        tracing::warn!(venue, "too many snapshot requests in flight; dropping one");
                        continue;
                    }
                    let tx = fetch_tx.clone();
                    let client = http.clone();
                    fetches.push(tokio::spawn(async move {
                        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
                        let (status, body) = http_get(&client, &url).await;
                        let _ = tx.send((status, url, body)).await;
                    }));
                }
                Action::Reconnect {
                    reason,
                    min_delay_ms,
                } => {
                    break 'conn End::Reconnect {
                        reason,
                        min_delay_ms,
                    };
                }
            }
        }
        tokio::select! {
            msg = ws.next() => {
                let arrived = Instant::now();
                match msg {
                    Some(Ok(Message::Text(text))) => {
                        record(Record::Recv { venue: venue.clone(), ts: now_secs(), conn: conn_id.clone(), data: text.clone() });
                        pending.extend_from_slice(engine.on_text(&text, now_ms()));
                        if let Some(h) = &opts.latency {
                            h.lock().unwrap_or_else(|e| e.into_inner()).record(arrived.elapsed());
                        }
                    }
                    Some(Ok(Message::Binary(bytes))) => {
                        // No venue sends binary book data; decode as text if it is UTF-8.
                        match String::from_utf8(bytes) {
                            Ok(text) => pending.extend_from_slice(engine.on_text(&text, now_ms())),
                            Err(_) => tracing::debug!(venue, "ignored a binary frame"),
                        }
                    }
                    Some(Ok(Message::Ping(_))) => {
                        // tungstenite queued the pong; flush it now (Binance disconnects after 1 min without).
                        if let Err(e) = ws.flush().await {
                            break 'conn End::Reconnect { reason: format!("pong failed: {e}"), min_delay_ms: 0 };
                        }
                    }
                    Some(Ok(Message::Close(frame))) => {
                        let (code, reason) = frame
                            .map(|f| (Some(u16::from(f.code)), f.reason.to_string()))
                            .unwrap_or((None, String::new()));
                        record(Record::Close { venue: venue.clone(), ts: now_secs(), conn: conn_id.clone(), code, reason: Some(reason.clone()) });
                        break 'conn End::Reconnect {
                            reason: format!("closed by the exchange (code {}{}{})", code.map(|c| c.to_string()).unwrap_or_else(|| "none".into()), if reason.is_empty() { "" } else { ": " }, reason),
                            min_delay_ms: 0,
                        };
                    }
                    Some(Ok(_)) => {}
                    Some(Err(e)) => {
                        record(Record::Close { venue: venue.clone(), ts: now_secs(), conn: conn_id.clone(), code: None, reason: Some(e.to_string()) });
                        break 'conn End::Reconnect { reason: format!("connection error: {e}"), min_delay_ms: 0 };
                    }
                    None => {
                        record(Record::Close { venue: venue.clone(), ts: now_secs(), conn: conn_id.clone(), code: None, reason: Some("end of stream".into()) });
                        break 'conn End::Reconnect { reason: "connection ended".into(), min_delay_ms: 0 };
                    }
                }
            }
            Some((status, url, body)) = fetch_rx.recv() => {
                record(Record::Http { venue: venue.clone(), ts: now_secs(), url, status, data: body.clone() });
                pending.extend_from_slice(engine.on_http(status, &body, now_ms()));
            }
            _ = tick.tick() => {
                if let Some(a) = engine.on_tick(now_ms()) {
                    pending.push(a);
                }
                if opened_at.elapsed() > opts.max_connection_age {
                    pending.push(Action::Reconnect { reason: "connection age limit".into(), min_delay_ms: 0 });
                }
            }
            _ = shutdown.changed() => {
                let _ = ws.close(None).await;
                break 'conn End::Shutdown;
            }
        }
    };
    for h in fetches {
        h.abort();
    }
    if matches!(end, End::Reconnect { .. }) {
        let _ = tokio::time::timeout(Duration::from_secs(1), ws.close(None)).await;
    }
    end
}

/// GET a URL; network failures come back as status 0 with the error as the body.
async fn http_get(client: &reqwest::Client, url: &str) -> (u16, String) {
    match client.get(url).send().await {
        Err(e) => (0, format!("request failed: {e}")),
        Ok(resp) => {
            let status = resp.status().as_u16();
            match resp.text().await {
                Ok(body) => (status, body),
                Err(e) => (0, format!("reading the response failed: {e}")),
            }
        }
    }
}

/// The HTTP status of a failed handshake, if any, and a readable message.
fn describe_connect_error(e: &tungstenite::Error) -> (Option<u16>, String) {
    match e {
        tungstenite::Error::Http(resp) => {
            let status = resp.status().as_u16();
            let body = resp
                .body()
                .as_ref()
                .map(|b| String::from_utf8_lossy(&b[..b.len().min(200)]).into_owned())
                .unwrap_or_default();
            (
                Some(status),
                format!("handshake refused with HTTP {status} {body}")
                    .trim()
                    .to_string(),
            )
        }
        other => (None, format!("cannot connect: {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::VenueState;
    use crate::venue::Protocol;

    #[test]
    fn a_live_or_stale_connection_resets_the_backoff() {
        let mut st = VenueState::new(Protocol::KrakenV2, "BTC/USD", "test", 0);
        st.state = FeedState::Stale;
        assert!(!resets_backoff(&st), "never had a book");
        st.counters.book_messages = 1;
        for (state, resets) in [
            (FeedState::Live, true),
            (FeedState::Stale, true),
            (FeedState::Resyncing, false),
            (FeedState::Syncing, false),
            (FeedState::Blocked, false),
            (FeedState::Down, false),
            (FeedState::Connecting, false),
        ] {
            st.state = state;
            assert_eq!(resets_backoff(&st), resets, "{state}");
        }
    }

    #[test]
    fn backoff_grows_with_jitter_up_to_the_cap() {
        let opts = FeedOptions {
            backoff_initial: Duration::from_millis(100),
            backoff_max: Duration::from_millis(1000),
            ..FeedOptions::default()
        };
        for (attempt, step) in [
            (0u32, 100u64),
            (1, 200),
            (2, 400),
            (3, 800),
            (4, 1000),
            (30, 1000),
        ] {
            for _ in 0..50 {
                let d = backoff_delay(&opts, attempt).as_millis() as u64;
                assert!(d >= step / 2 && d <= step, "attempt {attempt}: {d} ms");
            }
        }
    }
}
