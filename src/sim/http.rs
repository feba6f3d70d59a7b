//! The HTTP/1.1 front door of every venue port: read the request head, then either answer a plain
//! GET (Binance REST), refuse the handshake (HTTP 451/429 faults), or complete the WebSocket
//! upgrade and hand the socket to the venue's session.
//!
//! The head is parsed here rather than by tungstenite so that one port can serve both REST and
//! WebSocket, and so that a refused handshake gets exactly the status and body we choose.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;

const MAX_HEAD: usize = 16 * 1024;

/// A parsed request head.
#[derive(Clone, Debug)]
pub(crate) struct Request {
    /// `GET`, ...
    pub method: String,
    /// Path and query as sent.
    pub target: String,
    headers: Vec<(String, String)>,
}

impl Request {
    /// The path without the query.
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }

    /// The percent-decoded value of a query parameter.
    pub fn query(&self, key: &str) -> Option<String> {
        let (_, q) = self.target.split_once('?')?;
        q.split('&').find_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k) == key).then(|| percent_decode(v))
        })
    }

    /// A header value (name compared case-insensitively).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// True when the client asks for a WebSocket upgrade.
    pub fn is_websocket(&self) -> bool {
        self.header("upgrade")
            .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
            && self.header("sec-websocket-key").is_some()
    }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(v) => {
                        out.push(v);
                        i += 3;
                        continue;
                    }
                    None => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Read a request head. Nothing follows the head until we answer (a GET has no body and a
/// WebSocket client waits for the 101), so reading in chunks never swallows frame bytes.
pub(crate) async fn read_request(tcp: &mut TcpStream) -> std::io::Result<Request> {
    let bad = |m: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, m.to_string());
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 2048];
    let end = loop {
        let n = tokio::time::timeout(Duration::from_secs(10), tcp.read(&mut chunk))
            .await
            .map_err(|_| bad("request head timed out"))??;
        if n == 0 {
            return Err(bad("connection closed before the request head"));
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break pos;
        }
        if buf.len() > MAX_HEAD {
            return Err(bad("request head too large"));
        }
    };
    let head = std::str::from_utf8(&buf[..end]).map_err(|_| bad("request head is not UTF-8"))?;
    let mut lines = head.split("\r\n");
    let first = lines.next().unwrap_or("");
    let mut parts = first.split_whitespace();
    let (Some(method), Some(target)) = (parts.next(), parts.next()) else {
        return Err(bad("bad request line"));
    };
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    Ok(Request {
        method: method.to_string(),
        target: target.to_string(),
        headers,
    })
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        429 => "Too Many Requests",
        451 => "Unavailable For Legal Reasons",
        _ => "Error",
    }
}

/// Write a complete response and close the connection.
pub(crate) async fn respond(
    tcp: &mut TcpStream,
    status: u16,
    content_type: &str,
    body: &str,
) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        reason(status),
        body.len()
    );
    tcp.write_all(head.as_bytes()).await?;
    tcp.write_all(body.as_bytes()).await?;
    tcp.flush().await?;
    let _ = tcp.shutdown().await;
    Ok(())
}

/// Complete the WebSocket upgrade (RFC 6455 §4.2.2) and wrap the socket.
pub(crate) async fn upgrade(
    mut tcp: TcpStream,
    req: &Request,
) -> std::io::Result<WebSocketStream<TcpStream>> {
    let key = req.header("sec-websocket-key").unwrap_or("");
    let head = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n\r\n",
        derive_accept_key(key.as_bytes())
    );
    tcp.write_all(head.as_bytes()).await?;
    tcp.flush().await?;
    Ok(WebSocketStream::from_raw_socket(tcp, Role::Server, None).await)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_decoded() {
        let r = Request {
            method: "GET".into(),
            target: "/stream?streams=btcusdt%40depth%40100ms&x=a+b&flag".into(),
            headers: vec![("Upgrade".into(), "WebSocket".into())],
        };
        assert_eq!(r.path(), "/stream");
        assert_eq!(r.query("streams").as_deref(), Some("btcusdt@depth@100ms"));
        assert_eq!(r.query("x").as_deref(), Some("a b"));
        assert_eq!(r.query("flag").as_deref(), Some(""));
        assert_eq!(r.query("none"), None);
        assert_eq!(r.header("upgrade"), Some("WebSocket"));
        assert!(!r.is_websocket());
        assert_eq!(percent_decode("%4"), "%4");
    }
}
