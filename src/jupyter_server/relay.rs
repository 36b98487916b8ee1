//! A relay on `127.0.0.1` to one dashboard: for a Jupyter server whose proxy admits only
//! localhost (jupyter-server-proxy's default allow-list), the kernel listens on an ephemeral
//! loopback port and forwards every connection to the dashboard's address on the cluster
//! network, so that `{base_url}proxy/{port}/status` reaches it.
//!
//! What it does not do, on purpose: it forwards to that one address only (the target is fixed
//! when it starts, never taken from what a peer sends); it accepts only peers on the loopback
//! interface, and at most [`MAX_CONNECTIONS`] at a time; it ends, with every connection it
//! carries, when it is dropped (when its cluster ends, or the kernel exits). A loopback port is
//! reachable by every user of the node, like the dashboard itself on the cluster's network.
//!
//! Plain threads, as for the kernel's other blocking work: one accepts, and each connection has
//! two that copy bytes, one per direction.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

/// At most this many connections at once; further ones are closed at once. A dashboard page
/// with its plots and their websockets uses a few dozen.
pub const MAX_CONNECTIONS: usize = 64;

/// How long connecting to the dashboard may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A running relay from `127.0.0.1:port()` to one target; dropping it ends it.
///
/// ```no_run
/// use rust_cluster_kernel::jupyter_server::Relay;
///
/// let relay = Relay::start("10.0.0.5:8787".parse().unwrap()).unwrap();
/// println!("http://127.0.0.1:{}/status", relay.port());
/// drop(relay); // closes the port and every connection through it
/// ```
pub struct Relay {
    port: u16,
    /// Set when the relay is dropped; the accepting thread then stops.
    stop: Arc<AtomicBool>,
    /// The sockets of the connections in flight, so that dropping the relay ends them too.
    open: Arc<Mutex<Open>>,
    accept: Option<JoinHandle<()>>,
}

/// The connections in flight: each one's sockets (the peer's, and the target's once connected).
#[derive(Default)]
struct Open {
    next: u64,
    sockets: HashMap<u64, Vec<TcpStream>>,
}

impl Relay {
    /// Listens on an ephemeral port of `127.0.0.1` and forwards to `target`.
    pub fn start(target: SocketAddr) -> io::Result<Relay> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
        let port = listener.local_addr()?.port();
        let stop = Arc::new(AtomicBool::new(false));
        let open = Arc::new(Mutex::new(Open::default()));
        let accept = {
            let (stop, open) = (stop.clone(), open.clone());
            std::thread::Builder::new()
                .name(format!("dashboard-relay-{port}"))
                .spawn(move || accept_loop(&listener, target, &stop, &open))?
        };
        Ok(Relay {
            port,
            stop,
            open,
            accept: Some(accept),
        })
    }

    /// The port on `127.0.0.1`.
    pub fn port(&self) -> u16 {
        self.port
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Taken out of the table: a connection still connecting to the target finds itself
        // gone and gives up, instead of registering a socket nobody would shut down.
        let open = std::mem::take(&mut lock(&self.open).sockets);
        for socket in open.values().flatten() {
            let _ = socket.shutdown(Shutdown::Both);
        }
        // Wakes the accepting thread, which then sees `stop`.
        let _ = TcpStream::connect_timeout(
            &SocketAddr::from((Ipv4Addr::LOCALHOST, self.port)),
            Duration::from_secs(1),
        );
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
    }
}

fn accept_loop(
    listener: &TcpListener,
    target: SocketAddr,
    stop: &AtomicBool,
    open: &Arc<Mutex<Open>>,
) {
    for peer in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(peer) = peer else { continue };
        let loopback = peer.peer_addr().is_ok_and(|a| a.ip().is_loopback());
        let Some(id) = loopback.then(|| admit(open, &peer)).flatten() else {
            let _ = peer.shutdown(Shutdown::Both);
            continue;
        };
        let shared = open.clone();
        let spawned = std::thread::Builder::new()
            .name("dashboard-relay-connection".into())
            .spawn(move || {
                carry(peer, target, id, &shared);
                lock(&shared).sockets.remove(&id);
            });
        if spawned.is_err() {
            if let Some(sockets) = lock(open).sockets.remove(&id) {
                sockets
                    .iter()
                    .for_each(|s| drop(s.shutdown(Shutdown::Both)));
            }
        }
    }
}

/// Records a new connection, unless [`MAX_CONNECTIONS`] are open: its id.
fn admit(open: &Mutex<Open>, peer: &TcpStream) -> Option<u64> {
    let mut open = lock(open);
    if open.sockets.len() >= MAX_CONNECTIONS {
        return None;
    }
    let id = open.next;
    open.next += 1;
    open.sockets.insert(id, vec![peer.try_clone().ok()?]);
    Some(id)
}

/// Connects to the target and copies both ways until both sides have finished.
fn carry(peer: TcpStream, target: SocketAddr, id: u64, open: &Mutex<Open>) {
    let Ok(upstream) = TcpStream::connect_timeout(&target, CONNECT_TIMEOUT) else {
        return;
    };
    {
        let mut open = lock(open);
        // The relay was dropped meanwhile (and shut the peer down): the target's socket closes
        // here, unused.
        let (Some(sockets), Ok(clone)) = (open.sockets.get_mut(&id), upstream.try_clone()) else {
            return;
        };
        sockets.push(clone);
    }
    let (Ok(peer_in), Ok(upstream_out)) = (peer.try_clone(), upstream.try_clone()) else {
        return;
    };
    let uphill = std::thread::Builder::new()
        .name("dashboard-relay-upstream".into())
        .spawn(move || copy(peer_in, upstream_out));
    copy(upstream, peer);
    if let Ok(uphill) = uphill {
        let _ = uphill.join();
    }
}

/// Copies until `from` ends, then says so to `to` (a half close, as HTTP expects).
fn copy(mut from: TcpStream, mut to: TcpStream) {
    let mut buffer = [0u8; 16 * 1024];
    loop {
        match from.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if to.write_all(&buffer[..n]).is_err() {
                    let _ = from.shutdown(Shutdown::Read);
                    break;
                }
            }
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}

fn lock(open: &Mutex<Open>) -> MutexGuard<'_, Open> {
    open.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A target that answers each connection with what it read, upper-cased, then closes.
    fn upper_case_server() -> (SocketAddr, JoinHandle<()>) {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let address = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            for stream in listener.incoming() {
                let mut stream = stream.unwrap();
                let mut text = String::new();
                stream.read_to_string(&mut text).unwrap();
                if text == "END" {
                    return;
                }
                stream.write_all(text.to_uppercase().as_bytes()).unwrap();
            }
        });
        (address, server)
    }

    fn ask(port: u16, text: &str) -> io::Result<String> {
        let mut stream = TcpStream::connect((Ipv4Addr::LOCALHOST, port))?;
        stream.write_all(text.as_bytes())?;
        stream.shutdown(Shutdown::Write)?;
        let mut answer = String::new();
        stream.read_to_string(&mut answer)?;
        Ok(answer)
    }

    /// Whether the other side closed `stream` without sending anything (a read that would
    /// wait longer than a minute counts as open).
    fn ended(stream: &mut TcpStream) -> bool {
        stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .unwrap();
        let mut rest = Vec::new();
        match stream.read_to_end(&mut rest) {
            Ok(n) => n == 0,
            Err(e) => e.kind() == io::ErrorKind::ConnectionReset,
        }
    }

    #[test]
    fn forwards_bytes_both_ways_to_its_one_target() {
        let (target, server) = upper_case_server();
        let relay = Relay::start(target).unwrap();
        assert_ne!(relay.port(), target.port());
        assert_eq!(
            ask(relay.port(), "hello dashboard").unwrap(),
            "HELLO DASHBOARD"
        );
        let big = "x".repeat(200_000);
        assert_eq!(ask(relay.port(), &big).unwrap(), big.to_uppercase());
        drop(relay);
        ask(target.port(), "END").unwrap();
        server.join().unwrap();
    }

    #[test]
    fn listens_on_loopback_only() {
        let (target, _server) = upper_case_server();
        let relay = Relay::start(target).unwrap();
        let listening = TcpStream::connect((Ipv4Addr::LOCALHOST, relay.port())).unwrap();
        assert_eq!(listening.peer_addr().unwrap().ip(), Ipv4Addr::LOCALHOST);
        // No other address of this machine reaches the port (here: any non-loopback one).
        let others = non_loopback_addresses();
        for ip in others {
            let refused = TcpStream::connect_timeout(
                &SocketAddr::new(ip, relay.port()),
                Duration::from_secs(2),
            );
            assert!(refused.is_err(), "{ip} reaches the relay");
        }
    }

    /// The machine's IPv4 addresses other than loopback, from the route table the kernel sees.
    fn non_loopback_addresses() -> Vec<std::net::IpAddr> {
        let text = std::fs::read_to_string("/proc/net/fib_trie").unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let mut found = Vec::new();
        for pair in lines.windows(2) {
            if pair[1].contains("/32 host LOCAL") {
                if let Ok(ip) = pair[0]
                    .trim()
                    .trim_start_matches("|-- ")
                    .parse::<Ipv4Addr>()
                {
                    if !ip.is_loopback() && !found.contains(&ip.into()) {
                        found.push(ip.into());
                    }
                }
            }
        }
        found
    }

    #[test]
    fn dropping_it_closes_the_port_and_its_connections() {
        // A target that says "ready", then holds the connection open.
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let target = listener.local_addr().unwrap();
        let held = std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            stream.write_all(b"ready").unwrap();
            let mut rest = Vec::new();
            // Ends when the relay closes its side.
            let _ = stream.read_to_end(&mut rest);
        });
        let relay = Relay::start(target).unwrap();
        let port = relay.port();
        let mut client = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).unwrap();
        let mut ready = [0u8; 5];
        client.read_exact(&mut ready).unwrap();
        assert_eq!(&ready, b"ready", "the connection is carried");
        drop(relay);
        assert!(ended(&mut client), "the connection ended");
        held.join().unwrap();
        assert!(
            TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_err(),
            "nothing listens on the relay's port any more"
        );
    }

    #[test]
    fn refuses_connections_beyond_its_bound() {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let target = listener.local_addr().unwrap();
        // Accepts and keeps every connection, answering nothing.
        std::thread::spawn(move || {
            let mut kept = Vec::new();
            for stream in listener.incoming() {
                kept.push(stream);
            }
        });
        let relay = Relay::start(target).unwrap();
        let clients: Vec<TcpStream> = (0..MAX_CONNECTIONS)
            .map(|_| TcpStream::connect((Ipv4Addr::LOCALHOST, relay.port())).unwrap())
            .collect();
        // Each of them is admitted: the relay records it before it accepts the next.
        let mut extra = TcpStream::connect((Ipv4Addr::LOCALHOST, relay.port())).unwrap();
        assert!(
            ended(&mut extra),
            "the connection beyond the bound is closed"
        );
        drop(clients);
    }
}
