//! README "Timeouts and connections": clients that send their head or body
//! too slowly, sit idle, or take too long are cut off, each by its own
//! configurable limit, and no more than `--max-connections` are served at
//! once. Spoken over raw TCP, since an HTTP client would not dribble.

use std::time::{Duration, Instant};

use bellbook::Settings;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{Backend, TestApp};

async fn spawn(configure: impl FnOnce(&mut Settings)) -> (TestApp, String) {
    let app = TestApp::spawn_with(Backend::Sqlite, |s| {
        s.rate_limit_rps = 0;
        configure(s);
    })
    .await;
    let address = app
        .url("")
        .trim_start_matches("http://")
        .trim_end_matches("/v1")
        .to_owned();
    (app, address)
}

/// Reads until the server closes the connection (or `limit` passes), and
/// returns what it sent and when it closed.
async fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> (String, Option<Duration>) {
    let started = Instant::now();
    let mut received = Vec::new();
    let mut buffer = [0_u8; 4096];
    loop {
        let left = limit.saturating_sub(started.elapsed());
        match tokio::time::timeout(left, stream.read(&mut buffer)).await {
            Err(_) => return (String::from_utf8_lossy(&received).into_owned(), None),
            Ok(Ok(0)) | Ok(Err(_)) => {
                return (
                    String::from_utf8_lossy(&received).into_owned(),
                    Some(started.elapsed()),
                );
            }
            Ok(Ok(n)) => received.extend_from_slice(&buffer[..n]),
        }
    }
}

/// Reads one whole response head and its `Content-Length` body.
async fn read_response(stream: &mut TcpStream) -> String {
    let mut received = Vec::new();
    let mut buffer = [0_u8; 4096];
    loop {
        let text = String::from_utf8_lossy(&received).into_owned();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                })
                .unwrap_or(0);
            if body.len() >= length {
                return text;
            }
        }
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buffer))
            .await
            .expect("a response within 10 s")
            .expect("read");
        assert!(n > 0, "closed before a whole response: {text}");
        received.extend_from_slice(&buffer[..n]);
    }
}

const HEALTHZ: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: bellbook\r\n\r\n";

async fn slowloris_is_disconnected_after_the_header_timeout() {
    let (_app, address) = spawn(|s| {
        s.connections.header_timeout = Duration::from_secs(1);
        s.connections.idle_timeout = Duration::from_secs(30);
    })
    .await;
    let mut stream = TcpStream::connect(&address).await.expect("connect");
    // One byte every 200 ms: the socket is never idle, the head never ends.
    let started = Instant::now();
    let dribble = b"GET /healthz HTTP/1.1\r\nHost: bellbook\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    let mut closed_after = None;
    for byte in dribble {
        if stream.write_all(&[*byte]).await.is_err() {
            closed_after = Some(started.elapsed());
            break;
        }
        let mut probe = [0_u8; 1];
        match tokio::time::timeout(Duration::from_millis(200), stream.read(&mut probe)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {
                closed_after = Some(started.elapsed());
                break;
            }
            _ => {}
        }
    }
    let closed_after = closed_after.expect("the dribbling connection was closed");
    assert!(
        closed_after >= Duration::from_millis(900) && closed_after < Duration::from_secs(6),
        "closed after {closed_after:?}, with a 1 s header timeout"
    );
}

async fn idle_connections_close_after_the_idle_timeout_and_not_the_header_one() {
    let (_app, address) = spawn(|s| {
        s.connections.header_timeout = Duration::from_secs(1);
        s.connections.idle_timeout = Duration::from_secs(3);
    })
    .await;
    let mut stream = TcpStream::connect(&address).await.expect("connect");
    stream.write_all(HEALTHZ).await.expect("write");
    assert!(read_response(&mut stream).await.starts_with("HTTP/1.1 200"));
    // Idle for longer than the header timeout: still open, still served.
    tokio::time::sleep(Duration::from_millis(1800)).await;
    stream.write_all(HEALTHZ).await.expect("write");
    assert!(read_response(&mut stream).await.starts_with("HTTP/1.1 200"));
    // Then idle past the idle timeout: closed by the server.
    let (rest, closed) = read_until_closed(&mut stream, Duration::from_secs(10)).await;
    assert_eq!(rest, "", "nothing more is sent on an idle connection");
    let closed = closed.expect("the idle connection was closed");
    assert!(
        closed >= Duration::from_millis(2500) && closed < Duration::from_secs(8),
        "closed after {closed:?} idle, with a 3 s idle timeout"
    );
}

async fn a_body_sent_too_slowly_is_408_body_timeout() {
    let (app, address) = spawn(|s| s.body_timeout = Duration::from_secs(1)).await;
    let mut stream = TcpStream::connect(&address).await.expect("connect");
    let head = format!(
        "POST /v1/contacts HTTP/1.1\r\nHost: bellbook\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"name\": ",
        app.key
    );
    stream.write_all(head.as_bytes()).await.expect("write");
    let response = read_response(&mut stream).await;
    assert!(response.starts_with("HTTP/1.1 408"), "{response}");
    assert!(response.contains(r#""code":"body_timeout""#), "{response}");
    let listed = app.get("/contacts").await;
    assert_eq!(
        listed.body["contacts"].as_array().map(Vec::len),
        Some(0),
        "nothing was created"
    );
}

async fn a_request_past_the_request_timeout_is_503_request_timeout() {
    let (app, _address) = spawn(|s| s.request_timeout = Duration::from_secs(1)).await;
    // The change feed's long poll waits as long as it is told to.
    let started = Instant::now();
    let reply = app.get("/events?wait=10").await;
    reply.assert_error(503, "request_timeout");
    assert!(reply.headers.contains_key("retry-after"));
    assert!(started.elapsed() < Duration::from_secs(5));
    // Requests that finish in time are untouched.
    app.get("/contacts").await.assert_status(200);
}

async fn connections_past_the_maximum_wait_until_one_closes() {
    let (_app, address) = spawn(|s| {
        s.connections.max_connections = 2;
        s.connections.idle_timeout = Duration::from_secs(30);
    })
    .await;
    let mut first = TcpStream::connect(&address).await.expect("connect");
    first.write_all(HEALTHZ).await.expect("write");
    assert!(read_response(&mut first).await.starts_with("HTTP/1.1 200"));
    let mut second = TcpStream::connect(&address).await.expect("connect");
    second.write_all(HEALTHZ).await.expect("write");
    assert!(read_response(&mut second).await.starts_with("HTTP/1.1 200"));
    // A third is left in the listen backlog: connected, but not served.
    let mut third = TcpStream::connect(&address).await.expect("connect");
    third.write_all(HEALTHZ).await.expect("write");
    let mut byte = [0_u8; 1];
    let early = tokio::time::timeout(Duration::from_millis(800), third.read(&mut byte)).await;
    assert!(
        early.is_err(),
        "a third connection was served past the maximum of 2"
    );
    // One of the two goes: the waiting one is served.
    drop(first);
    let response = read_response(&mut third).await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
}

mod sqlite {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn slowloris_is_disconnected_after_the_header_timeout() {
        super::slowloris_is_disconnected_after_the_header_timeout().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn idle_connections_close_after_the_idle_timeout_and_not_the_header_one() {
        super::idle_connections_close_after_the_idle_timeout_and_not_the_header_one().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_body_sent_too_slowly_is_408_body_timeout() {
        super::a_body_sent_too_slowly_is_408_body_timeout().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_request_past_the_request_timeout_is_503_request_timeout() {
        super::a_request_past_the_request_timeout_is_503_request_timeout().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn connections_past_the_maximum_wait_until_one_closes() {
        super::connections_past_the_maximum_wait_until_one_closes().await;
    }
}
