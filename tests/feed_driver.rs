//! The feed driver over real loopback sockets, with a minimal test codec: handshake refusals,
//! refused connections, server closes, stalls (watchdog → stale → reconnect), pings, shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use depthagg::book::Book;
use depthagg::decimal::Dec;
use depthagg::engine::{Engine, SharedVenue, VenueState};
use depthagg::feed::{FeedOptions, run_feed};
use depthagg::types::Side;
use depthagg::venue::{Codec, CodecError, Event, FeedState, Millis, Output, Protocol, VenueSpec};
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;

/// A tiny protocol: the client sends "sub"; "snap" is a snapshot; "hb" a heartbeat.
struct TestCodec {
    spec: VenueSpec,
}

impl Codec for TestCodec {
    fn protocol(&self) -> Protocol {
        self.spec.protocol
    }
    fn spec(&self) -> &VenueSpec {
        &self.spec
    }
    fn connect_url(&self) -> String {
        self.spec.ws_url.clone()
    }
    fn on_open(&mut self, _now: Millis, out: &mut Output) {
        out.actions
            .push(depthagg::venue::Action::Send("sub".into()));
    }
    fn on_text(&mut self, text: &str, _now: Millis, out: &mut Output) -> Result<(), CodecError> {
        match text {
            "snap" => {
                out.events.push(Event::Snapshot {
                    bids: vec![(Dec::from_int(100), Dec::from_int(1))],
                    asks: vec![(Dec::from_int(101), Dec::from_int(2))],
                });
                out.events.push(Event::Synced);
            }
            "hb" => out.events.push(Event::Heartbeat),
            other => return Err(CodecError::malformed(other)),
        }
        Ok(())
    }
    fn resync(&mut self, _now: Millis, out: &mut Output) {
        out.actions
            .push(depthagg::venue::Action::Send("sub".into()));
    }
    fn checksum(&self, _book: &Book) -> u32 {
        0
    }
    fn stale_after_ms(&self) -> Millis {
        400
    }
}

fn start(
    protocol: Protocol,
    url: String,
) -> (
    SharedVenue,
    tokio::sync::watch::Sender<bool>,
    tokio::task::JoinHandle<()>,
) {
    let spec = VenueSpec {
        protocol,
        symbol: "TEST".into(),
        ws_url: url,
        rest_url: None,
        depth: 100,
    };
    let shared = SharedVenue::new(VenueState::new(protocol, "TEST", "test", 0));
    let engine = Engine::new(Box::new(TestCodec { spec }), shared.clone());
    let opts = FeedOptions {
        backoff_initial: Duration::from_millis(50),
        backoff_max: Duration::from_millis(200),
        watchdog_tick: Duration::from_millis(50),
        connect_timeout: Duration::from_secs(2),
        ..FeedOptions::default()
    };
    let (tx, rx) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(run_feed(engine, opts, rx));
    (shared, tx, task)
}

/// Wait (bounded) until the venue is in `state`; returns its reason.
async fn wait_for(v: &SharedVenue, state: FeedState) -> String {
    for _ in 0..500 {
        {
            let st = v.lock();
            if st.state == state {
                return st.reason.clone();
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let st = v.lock();
    panic!("never reached {state}; now {} ({})", st.state, st.reason);
}

async fn listener() -> (TcpListener, SocketAddr) {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let a = l.local_addr().expect("addr");
    (l, a)
}

#[tokio::test]
async fn handshake_451_is_blocked_with_the_reason() {
    let (l, addr) = listener().await;
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            let mut buf = vec![0u8; 4096];
            let _ = s.read(&mut buf).await;
            let _ = s
                .write_all(
                    b"HTTP/1.1 451 Unavailable For Legal Reasons\r\nContent-Length: 0\r\n\r\n",
                )
                .await;
        }
    });
    let (v, stop, task) = start(Protocol::BinanceSpot, format!("ws://{addr}"));
    let reason = wait_for(&v, FeedState::Blocked).await;
    assert!(
        reason.starts_with(
            "HTTP 451, restricted location; the market-data-only hosts data-stream.binance.vision"
        ),
        "{reason}"
    );
    assert!(v.lock().book.is_empty());
    stop.send_replace(true);
    tokio::time::timeout(Duration::from_secs(2), task)
        .await
        .expect("stops promptly")
        .expect("no panic");
}

#[tokio::test]
async fn refused_connection_is_down() {
    let (l, addr) = listener().await;
    drop(l);
    let (v, stop, task) = start(Protocol::KrakenV2, format!("ws://{addr}"));
    let reason = wait_for(&v, FeedState::Down).await;
    assert!(reason.starts_with("cannot connect:"), "{reason}");
    stop.send_replace(true);
    tokio::time::timeout(Duration::from_secs(2), task)
        .await
        .expect("stops promptly")
        .expect("no panic");
}

#[tokio::test]
async fn stall_goes_stale_then_reconnects_to_live() {
    let (l, addr) = listener().await;
    let conns = Arc::new(AtomicUsize::new(0));
    let c = conns.clone();
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            let c = c.clone();
            tokio::spawn(async move {
                let mut ws = tokio_tungstenite::accept_async(s).await.expect("ws");
                c.fetch_add(1, Ordering::SeqCst);
                let sub = ws.next().await;
                assert!(matches!(sub, Some(Ok(Message::Text(t))) if t == "sub"));
                ws.send(Message::Text("snap".into())).await.expect("send");
                // Then stall: keep the socket open, send nothing.
                tokio::time::sleep(Duration::from_secs(30)).await;
            });
        }
    });
    let (v, stop, task) = start(Protocol::KrakenV2, format!("ws://{addr}"));
    wait_for(&v, FeedState::Live).await;
    assert_eq!(
        v.lock().book.best_ask().map(|l| l.qty),
        Some(Dec::from_int(2))
    );
    let reason = wait_for(&v, FeedState::Stale).await;
    assert!(reason.starts_with("no data for"), "{reason}");
    wait_for(&v, FeedState::Connecting).await;
    assert!(
        v.lock().book.is_empty(),
        "a reconnecting venue shows no book"
    );
    wait_for(&v, FeedState::Live).await;
    assert_eq!(conns.load(Ordering::SeqCst), 2);
    assert_eq!(v.lock().counters.reconnects, 1);
    assert_eq!(v.lock().book.len(Side::Bid), 1);
    stop.send_replace(true);
    tokio::time::timeout(Duration::from_secs(2), task)
        .await
        .expect("stops promptly")
        .expect("no panic");
}

#[tokio::test]
async fn server_close_reconnects_and_pings_are_answered() {
    let (l, addr) = listener().await;
    let pongs = Arc::new(AtomicUsize::new(0));
    let p = pongs.clone();
    tokio::spawn(async move {
        let mut first = true;
        while let Ok((s, _)) = l.accept().await {
            let mut ws = tokio_tungstenite::accept_async(s).await.expect("ws");
            let _ = ws.next().await; // "sub"
            ws.send(Message::Text("snap".into())).await.expect("send");
            ws.send(Message::Ping(b"are you there".to_vec()))
                .await
                .expect("ping");
            while let Some(Ok(m)) = ws.next().await {
                if let Message::Pong(payload) = m {
                    assert_eq!(payload, b"are you there");
                    p.fetch_add(1, Ordering::SeqCst);
                    break;
                }
            }
            if first {
                first = false;
                let _ = ws.close(None).await;
            } else {
                loop {
                    if ws.send(Message::Text("hb".into())).await.is_err() {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    });
    let (v, stop, task) = start(Protocol::CoinbaseAdvanced, format!("ws://{addr}"));
    wait_for(&v, FeedState::Live).await;
    let reason = wait_for(&v, FeedState::Connecting).await;
    assert!(
        reason.starts_with("disconnected (closed by the exchange"),
        "{reason}"
    );
    wait_for(&v, FeedState::Live).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(v.lock().state, FeedState::Live, "heartbeats keep it live");
    assert_eq!(pongs.load(Ordering::SeqCst), 2);
    assert_eq!(v.lock().counters.reconnects, 1);
    stop.send_replace(true);
    tokio::time::timeout(Duration::from_secs(2), task)
        .await
        .expect("stops promptly")
        .expect("no panic");
}

#[tokio::test]
async fn malformed_frame_resyncs_in_place() {
    let (l, addr) = listener().await;
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            let mut ws = tokio_tungstenite::accept_async(s).await.expect("ws");
            let _ = ws.next().await; // "sub"
            ws.send(Message::Text("snap".into())).await.expect("send");
            tokio::time::sleep(Duration::from_millis(100)).await;
            ws.send(Message::Text("{garbage".into()))
                .await
                .expect("send");
            // The client asks again on the same connection.
            let again = ws.next().await;
            assert!(matches!(again, Some(Ok(Message::Text(t))) if t == "sub"));
            ws.send(Message::Text("snap".into())).await.expect("send");
            loop {
                if ws.send(Message::Text("hb".into())).await.is_err() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    });
    let (v, stop, task) = start(Protocol::KrakenV2, format!("ws://{addr}"));
    wait_for(&v, FeedState::Live).await;
    // Resyncing lasts only a round trip here; wait for its trace in the counters.
    for _ in 0..300 {
        if v.lock().counters.resyncs == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    wait_for(&v, FeedState::Live).await;
    let c = v.lock().counters.clone();
    assert_eq!((c.malformed, c.resyncs, c.reconnects), (1, 1, 0));
    stop.send_replace(true);
    tokio::time::timeout(Duration::from_secs(2), task)
        .await
        .expect("stops promptly")
        .expect("no panic");
}
