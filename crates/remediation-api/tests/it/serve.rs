//! The router served on 127.0.0.1 by `serve::serve` under hostile clients: trickled and silent
//! headers are cut off at the header deadline while `/healthz` keeps answering, connections
//! over the cap wait until one in service closes, and a request whose body never finishes
//! gets a 408 in the error shape.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use remediation_api::serve::{ServeOptions, serve};
use serde_json::Value;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

use crate::support::Env;

/// Serves a fresh installation's router with `options` on a free port.
async fn start(options: ServeOptions) -> (SocketAddr, Env) {
    let env = Env::new();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(serve(listener, env.app.clone(), options, std::future::pending()));
    (addr, env)
}

/// Sends `request` on a fresh connection and reads the whole answer: status and JSON body,
/// checked against the OpenAPI document.
async fn exchange(addr: SocketAddr, request: &[u8]) -> (u16, Value) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    let text = String::from_utf8_lossy(&answer);
    let status = text.get(9..12).and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("no status line: {text}"));
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    let body = serde_json::from_str(body).unwrap_or(Value::Null);
    // Served over TCP too, every answer is held to the committed OpenAPI document.
    let line = String::from_utf8_lossy(request);
    let mut words = line.split(' ');
    let (method, path) = (words.next().unwrap().parse().unwrap(), words.next().unwrap());
    crate::contract::check(&method, path, axum::http::StatusCode::from_u16(status).unwrap(), None, &body);
    (status, body)
}

const HEALTHZ: &[u8] = b"GET /healthz HTTP/1.1\r\nhost: test\r\nconnection: close\r\n\r\n";

/// `/healthz` on a fresh connection must answer 200 within `bound`.
async fn healthz_within(addr: SocketAddr, bound: Duration) -> Duration {
    let started = Instant::now();
    let (status, body) = tokio::time::timeout(bound, exchange(addr, HEALTHZ))
        .await
        .unwrap_or_else(|_| panic!("/healthz did not answer within {bound:?}"));
    assert_eq!(status, 200, "{body}");
    started.elapsed()
}

/// A client that opens a connection and sends a never-ending header one byte every 20 ms
/// (`trickle`), or nothing at all; returns how long the server kept it, or fails when it is
/// still connected after 10 s.
async fn slow_client(addr: SocketAddr, trickle: bool) -> Duration {
    let started = Instant::now();
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let header = b"GET /healthz HTTP/1.1\r\nhost: test\r\nx-padding: ";
    let mut sent = 0usize;
    let mut buf = [0u8; 64];
    // Bounded: 500 rounds of 20 ms, far beyond any deadline the tests configure.
    for _ in 0..500 {
        tokio::select! {
            read = stream.read(&mut buf) => match read {
                Ok(0) | Err(_) => return started.elapsed(),
                Ok(_) => panic!("the server answered a header that never ended"),
            },
            () = tokio::time::sleep(Duration::from_millis(20)) => {
                if trickle {
                    let byte = header.get(sent).copied().unwrap_or(b'a');
                    if stream.write_all(&[byte]).await.is_err() {
                        return started.elapsed();
                    }
                    sent += 1;
                }
            }
        }
    }
    panic!(
        "a {} client was still connected after {:?}",
        if trickle { "trickling" } else { "silent" },
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_are_cut_off_while_healthz_keeps_answering() {
    let deadline = Duration::from_millis(200);
    let options = ServeOptions { header_read_timeout: deadline, max_connections: 4, ..ServeOptions::default() };
    let (addr, _env) = start(options).await;
    // Three times as many slow clients as the server serves at once, trickling or silent.
    let clients: Vec<_> = (0..12).map(|i| tokio::spawn(slow_client(addr, i % 3 != 0))).collect();
    for _ in 0..5 {
        healthz_within(addr, Duration::from_secs(5)).await;
    }
    for client in clients {
        let held = client.await.unwrap();
        // Queued clients wait for a slot first; each one's deadline starts once it is served.
        assert!(held >= deadline, "cut off after {held:?}, before the deadline");
        assert!(held < Duration::from_secs(5), "held for {held:?}");
    }
    healthz_within(addr, Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_over_the_cap_wait_until_one_closes() {
    let options =
        ServeOptions { header_read_timeout: Duration::from_secs(30), max_connections: 2, ..ServeOptions::default() };
    let (addr, _env) = start(options).await;
    healthz_within(addr, Duration::from_secs(5)).await;
    // Two idle connections fill the cap; a request header started on each one proves the
    // server has accepted them (and so holds their slots).
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream.write_all(b"GET /healthz HTTP/1.1\r\nhost: test\r\nconnection: keep-alive\r\n\r\n").await.unwrap();
        let mut buf = [0u8; 1024];
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await.unwrap().unwrap();
        assert!(buf[..n].starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&buf[..n]));
        held.push(stream);
    }
    let waiting = tokio::spawn(exchange(addr, HEALTHZ));
    let blocked = tokio::time::timeout(Duration::from_millis(300), async {
        while !waiting.is_finished() {
            tokio::task::yield_now().await;
        }
    })
    .await;
    assert!(blocked.is_err(), "a third connection was served beyond the cap of two");
    drop(held.pop());
    let (status, _) = tokio::time::timeout(Duration::from_secs(5), waiting)
        .await
        .expect("the waiting connection is served once a slot frees")
        .unwrap();
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_whose_body_never_finishes_gets_408_in_the_error_shape() {
    let limit = Duration::from_millis(300);
    let options = ServeOptions { request_timeout: limit, ..ServeOptions::default() };
    let (addr, env) = start(options).await;
    let request = format!(
        "POST /v1/actions HTTP/1.1\r\nhost: test\r\nauthorization: Bearer {}\r\ncontent-type: application/json\r\n\
         content-length: 200\r\n\r\n{{\"connector\":",
        env.token("requester")
    );
    let started = Instant::now();
    let (status, body) = tokio::time::timeout(Duration::from_secs(5), exchange(addr, request.as_bytes()))
        .await
        .expect("the server answers instead of waiting for the body");
    assert_eq!(status, 408, "{body}");
    assert_eq!(body["error"]["code"], "request_timeout", "{body}");
    assert!(started.elapsed() >= limit);
    // A request that completes in time is untouched.
    healthz_within(addr, Duration::from_secs(5)).await;
}
