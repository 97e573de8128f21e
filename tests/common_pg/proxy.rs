//! A loopback TCP proxy in front of the PostgreSQL server that can lose one reply.
//!
//! It listens on `127.0.0.1:0` and forwards every connection to the real server. Once
//! [`Proxy::arm`]ed, the next message batch any client sends is forwarded to the server as
//! usual, but the server's reply is held back until it contains `ReadyForQuery` (`Z`: the
//! statement, and its commit, are done); then the client's connection is closed without
//! that reply. The client sees a connection lost after its commit: the lost reply of
//! issue 9. Only loopback addresses are used; every thread stops when the proxy drops.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// The proxy; stops accepting and closes its connections when dropped.
pub struct Proxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

struct Shared {
    armed: AtomicBool,
    stop: AtomicBool,
    /// How many replies were dropped.
    dropped: AtomicUsize,
}

impl Proxy {
    /// Starts a proxy to `upstream` (a loopback address of the test server).
    pub fn start(upstream: SocketAddr) -> Proxy {
        assert!(upstream.ip().is_loopback(), "the proxy forwards to loopback only");
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        listener.set_nonblocking(true).expect("non-blocking listener");
        let addr = listener.local_addr().expect("proxy address");
        let shared = Arc::new(Shared {
            armed: AtomicBool::new(false),
            stop: AtomicBool::new(false),
            dropped: AtomicUsize::new(0),
        });
        let acceptor = {
            let shared = Arc::clone(&shared);
            std::thread::spawn(move || accept_loop(listener, upstream, shared))
        };
        Proxy {
            addr,
            shared,
            acceptor: Some(acceptor),
        }
    }

    /// The proxy's address (`127.0.0.1:<port>`).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Loses the reply to the next message batch a client sends.
    pub fn arm(&self) {
        self.shared.armed.store(true, Ordering::SeqCst);
    }

    /// Whether the armed loss is still pending.
    pub fn is_armed(&self) -> bool {
        self.shared.armed.load(Ordering::SeqCst)
    }

    /// How many replies the proxy has dropped so far.
    pub fn dropped(&self) -> usize {
        self.shared.dropped.load(Ordering::SeqCst)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

/// Poll interval of the blocking loops, so they notice `stop`.
const TICK: Duration = Duration::from_millis(20);

fn accept_loop(listener: TcpListener, upstream: SocketAddr, shared: Arc<Shared>) {
    let mut pumps = Vec::new();
    while !shared.stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((client, _)) => {
                let Ok(server) = TcpStream::connect_timeout(&upstream, Duration::from_secs(5)) else {
                    continue;
                };
                pumps.extend(connection(client, server, &shared));
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => std::thread::sleep(TICK),
            Err(_) => std::thread::sleep(TICK),
        }
    }
    for pump in pumps {
        let _ = pump.join();
    }
}

/// Starts the two pumps of one proxied connection.
fn connection(client: TcpStream, server: TcpStream, shared: &Arc<Shared>) -> Vec<JoinHandle<()>> {
    let setup = || -> std::io::Result<[TcpStream; 4]> {
        client.set_nonblocking(false)?;
        for s in [&client, &server] {
            s.set_read_timeout(Some(TICK))?;
            s.set_nodelay(true)?;
        }
        Ok([
            client.try_clone()?,
            server.try_clone()?,
            client.try_clone()?,
            server.try_clone()?,
        ])
    };
    let Ok([c_read, s_write, c_write, s_read]) = setup() else {
        return Vec::new();
    };
    // Set by the client-to-server pump when it forwards the batch whose reply is lost.
    let swallow = Arc::new(AtomicBool::new(false));
    let up = {
        let (shared, swallow) = (Arc::clone(shared), Arc::clone(&swallow));
        std::thread::spawn(move || client_to_server(c_read, s_write, &shared, &swallow))
    };
    let down = {
        let shared = Arc::clone(shared);
        std::thread::spawn(move || server_to_client(s_read, c_write, &shared, &swallow))
    };
    vec![up, down]
}

fn close(a: &TcpStream, b: &TcpStream) {
    let _ = a.shutdown(Shutdown::Both);
    let _ = b.shutdown(Shutdown::Both);
}

fn client_to_server(mut from: TcpStream, mut to: TcpStream, shared: &Shared, swallow: &AtomicBool) {
    let mut buf = vec![0u8; 64 * 1024];
    while !shared.stop.load(Ordering::SeqCst) {
        match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                if shared.armed.swap(false, Ordering::SeqCst) {
                    swallow.store(true, Ordering::SeqCst);
                }
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(_) => break,
        }
    }
    close(&from, &to);
}

fn server_to_client(mut from: TcpStream, mut to: TcpStream, shared: &Shared, swallow: &AtomicBool) {
    let mut buf = vec![0u8; 64 * 1024];
    // The held-back reply, parsed into messages (type byte, then a length that counts itself).
    let mut held: Vec<u8> = Vec::new();
    while !shared.stop.load(Ordering::SeqCst) {
        match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                if !swallow.load(Ordering::SeqCst) {
                    if to.write_all(&buf[..n]).is_err() {
                        break;
                    }
                    continue;
                }
                held.extend_from_slice(&buf[..n]);
                if reply_complete(&held) {
                    shared.dropped.fetch_add(1, Ordering::SeqCst);
                    break;
                }
            }
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(_) => break,
        }
    }
    close(&from, &to);
}

/// Whether the backend messages in `bytes` (from a message boundary) include a
/// `ReadyForQuery`.
fn reply_complete(bytes: &[u8]) -> bool {
    let mut rest = bytes;
    while rest.len() >= 5 {
        let len = u32::from_be_bytes([rest[1], rest[2], rest[3], rest[4]]) as usize;
        if rest.len() < 1 + len {
            return false;
        }
        if rest[0] == b'Z' {
            return true;
        }
        rest = &rest[1 + len..];
    }
    false
}
