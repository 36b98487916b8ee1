//! The sockets: shell, control, iopub, stdin and heartbeat over ZeroMQ (the pure-Rust `zeromq`
//! crate, so nothing has to be installed on cluster nodes): the sockets Jupyter connects to. (The
//! `%%python` bridge, [`crate::python`], has client sockets of its own to its sub-kernel.) The
//! server receives a ready [`Kernel`] and the other ends of its [`Outbox`](crate::kernel::Outbox).
//!
//! - heartbeat (REP) echoes every message on its own task, so a busy cell never stalls it;
//! - iopub (XPUB) is a single writer fed by one queue; each new subscription gets an
//!   `iopub_welcome` (JEP 65) so that clients know they will not miss the next message;
//! - shell and control (ROUTER) each have a reader task that verifies signatures, drops
//!   replayed messages ([`ReplayGuard`], one for the session) and hands requests to the
//!   kernel's shell and control threads, and a writer task for the replies;
//! - stdin (ROUTER) is served the same way: its writer sends the cells' `input_request`s (to
//!   the identities of the execute_request's sender), its reader passes the `input_reply`s that
//!   pass the same signature check and replay guard to [`Kernel::on_stdin`].
//!
//! Every port is reachable by every user of the machine, so nothing a peer sends before the
//! signature check may cost more than a bounded amount of memory or time. The `zeromq` crate is
//! patched for that (vendor/zeromq/PATCHES.md): a frame or multipart message larger than
//! [`DEFAULT_MAX_FRAME_MB`] MiB (or `RUST_CLUSTER_KERNEL_MAX_FRAME_MB`) closes that one
//! connection before anything is allocated for it, a handshake must finish within 30 s, and a
//! connection that failed once is dropped. The loops here survive every error a peer can cause.

use std::sync::{Arc, Mutex};

use anyhow::Context;
use serde_json::json;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};
use tokio::sync::oneshot;
use zeromq::{RepSocket, RouterSocket, Socket, SocketRecv, SocketSend, XPubSocket, ZmqError};

use crate::cell::IopubMessage;
use crate::kernel::{ControlOutcome, Kernel, OutboxReceivers};
use crate::protocol::zmq::{frames_to_zmq, zmq_to_frames};
use crate::protocol::{ConnectionInfo, ReplayGuard, Signer, WireMessage};

mod parent;

/// The environment variable that sets, in MiB, the largest frame and the largest multipart
/// message a peer may send to any of the kernel's sockets (and that the `%%python` sub-kernel
/// may send back). A whole number, at least 1.
pub const MAX_FRAME_MB_VAR: &str = "RUST_CLUSTER_KERNEL_MAX_FRAME_MB";

/// The bound of [`MAX_FRAME_MB_VAR`] when it is not set: 256 MiB, as `zeromq`'s patched default.
pub const DEFAULT_MAX_FRAME_MB: usize = zeromq::DEFAULT_MAX_MESSAGE_SIZE >> 20;

/// Binds every socket of `info`, serves `kernel` (whose outbox's other ends are `outgoing`) until
/// a shutdown request, and returns whether a restart was asked for.
pub async fn serve(
    info: ConnectionInfo,
    kernel: Arc<Kernel>,
    outgoing: OutboxReceivers,
) -> anyhow::Result<bool> {
    let signer = Signer::new(&info.key);
    // Before any socket exists: the bound applies to connections opened afterwards.
    set_transport_bound(std::env::var(MAX_FRAME_MB_VAR).ok().as_deref());

    let mut shell = RouterSocket::new();
    shell
        .bind(&info.endpoint(info.shell_port))
        .await
        .context("binding shell")?;
    let mut control = RouterSocket::new();
    control
        .bind(&info.endpoint(info.control_port))
        .await
        .context("binding control")?;
    let mut stdin = RouterSocket::new();
    stdin
        .bind(&info.endpoint(info.stdin_port))
        .await
        .context("binding stdin")?;
    let mut iopub = XPubSocket::new();
    iopub
        .bind(&info.endpoint(info.iopub_port))
        .await
        .context("binding iopub")?;
    let mut heartbeat = RepSocket::new();
    heartbeat
        .bind(&info.endpoint(info.hb_port))
        .await
        .context("binding heartbeat")?;

    let OutboxReceivers {
        iopub: iopub_rx,
        shell: shell_out,
        control: control_out,
        stdin: stdin_out,
    } = outgoing;

    tokio::spawn(echo_heartbeats(heartbeat));
    let (iopub_flush, iopub_flushes) = unbounded_channel();
    tokio::spawn(publish_iopub(
        iopub,
        iopub_rx,
        iopub_flushes,
        signer.clone(),
        kernel.session().to_owned(),
    ));
    kernel.announce_start();

    let (shell_send, shell_recv) = shell.split();
    let (control_send, control_recv) = control.split();
    let (stdin_send, stdin_recv) = stdin.split();
    // Nothing waits for the shell replies at shutdown: that writer gets no flush requests.
    let (_, shell_flushes) = unbounded_channel();
    tokio::spawn(write_replies(
        shell_send,
        shell_out,
        shell_flushes,
        signer.clone(),
    ));
    let (control_flush, control_flushes) = unbounded_channel();
    tokio::spawn(write_replies(
        control_send,
        control_out,
        control_flushes,
        signer.clone(),
    ));
    // Nor for input requests: a cell that waits for input is interrupted at shutdown.
    let (_, stdin_flushes) = unbounded_channel();
    tokio::spawn(write_replies(
        stdin_send,
        stdin_out,
        stdin_flushes,
        signer.clone(),
    ));

    // One history for the session: a message captured on one channel is not accepted on another.
    let replays = Arc::new(Mutex::new(ReplayGuard::default()));
    let (shell_requests_tx, shell_requests) = crossbeam_channel::unbounded();
    let shell_kernel = kernel.clone();
    std::thread::Builder::new()
        .name("shell".into())
        .spawn(move || shell_kernel.serve_shell(shell_requests))?;
    let readers = Reader {
        signer: signer.clone(),
        replays,
    };
    tokio::spawn(read_requests(shell_recv, readers.clone(), move |m| {
        let _ = shell_requests_tx.send((std::time::Instant::now(), m));
    }));

    let stdin_kernel = kernel.clone();
    tokio::spawn(read_requests(stdin_recv, readers.clone(), move |m| {
        stdin_kernel.on_stdin(m)
    }));

    let (control_requests_tx, mut control_requests) = unbounded_channel();
    tokio::spawn(read_requests(control_recv, readers, move |m| {
        let _ = control_requests_tx.send(m);
    }));

    let sigint_kernel = kernel.clone();
    tokio::spawn(async move {
        let Ok(mut sigint) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
        else {
            return;
        };
        while sigint.recv().await.is_some() {
            sigint_kernel.interrupt();
        }
    });

    let parent_gone = parent::parent_gone();
    tokio::pin!(parent_gone);
    loop {
        let request = tokio::select! {
            request = control_requests.recv() => match request {
                Some(request) => request,
                None => break,
            },
            () = &mut parent_gone => {
                let k = kernel.clone();
                tokio::task::spawn_blocking(move || k.shut_down()).await?;
                return Ok(false);
            }
        };
        let k: Arc<Kernel> = kernel.clone();
        let outcome = tokio::task::spawn_blocking(move || k.handle_control(&request)).await?;
        if let ControlOutcome::Shutdown { restart } = outcome {
            // The reply and the final idle are queued: wait until they have left, then for the
            // kernel's cleanup (the `%%python` sub-kernel), which the process's exit would skip.
            flushed(&control_flush).await;
            flushed(&iopub_flush).await;
            let k = kernel.clone();
            tokio::task::spawn_blocking(move || k.shut_down()).await?;
            return Ok(restart);
        }
    }
    Ok(false)
}

/// Reads `RUST_CLUSTER_KERNEL_MAX_FRAME_MB` (`value`) and sets the process-wide bound of the
/// `zeromq` crate; a wrong value is logged and the default kept.
fn set_transport_bound(value: Option<&str>) {
    let mb = match value.map(parse_max_frame_mb) {
        None => DEFAULT_MAX_FRAME_MB,
        Some(Ok(mb)) => mb,
        Some(Err(e)) => {
            tracing::warn!("{MAX_FRAME_MB_VAR}: {e}; the bound stays {DEFAULT_MAX_FRAME_MB} MiB");
            DEFAULT_MAX_FRAME_MB
        }
    };
    zeromq::set_max_message_size(mb << 20);
    tracing::debug!("largest frame or message a peer may send: {mb} MiB");
}

/// A bound in MiB: a whole number from 1 to what fits in memory's address space.
fn parse_max_frame_mb(value: &str) -> Result<usize, String> {
    let mb: usize = value
        .trim()
        .parse()
        .map_err(|_| format!("{value:?} is not a whole number of MiB"))?;
    if mb == 0
        || mb
            .checked_mul(1 << 20)
            .is_none_or(|b| b > isize::MAX as usize / 2)
    {
        return Err(format!("{mb} MiB is out of range (1 or more)"));
    }
    Ok(mb)
}

/// Whether a socket's reader goes on after `error`: every error a peer can cause (a malformed
/// or oversized message, a failed connection) is logged and survived; only a socket that has
/// no connections left to wait for ([`ZmqError::NoMessage`], at shutdown) ends its reader.
fn survivable(socket: &str, error: &ZmqError) -> bool {
    if matches!(error, ZmqError::NoMessage) {
        return false;
    }
    tracing::warn!("{socket}: receive failed: {error}");
    true
}

/// The largest heartbeat the kernel echoes. Jupyter's pings are a timestamp; the patched REP
/// socket queues up to 1000 echoes for a peer that does not read them, so this keeps such a
/// peer's share of memory to 4 MiB.
const MAX_HEARTBEAT: usize = 4096;

/// The heartbeat: echoes each message (up to [`MAX_HEARTBEAT`] bytes) to its sender. Neither a
/// malformed message nor a peer that left or does not read its echoes stops it.
async fn echo_heartbeats(mut socket: RepSocket) {
    loop {
        match socket.recv().await {
            Ok(message) if message.iter().map(|f| f.len()).sum::<usize>() > MAX_HEARTBEAT => {
                tracing::debug!(
                    "heartbeat: a message of more than {MAX_HEARTBEAT} bytes, not echoed"
                );
            }
            Ok(message) => {
                if let Err(e) = socket.send(message).await {
                    tracing::debug!("heartbeat: the echo was not sent: {e}");
                }
            }
            Err(e) if survivable("heartbeat", &e) => {}
            Err(_) => break,
        }
    }
}

/// The single iopub writer: publishes queued messages and welcomes new subscribers.
async fn publish_iopub(
    mut socket: XPubSocket,
    mut queue: UnboundedReceiver<IopubMessage>,
    mut flushes: UnboundedReceiver<Flush>,
    signer: Signer,
    session: String,
) {
    let mut welcomes = WelcomeBudget::default();
    // A message taken from the queue while coalescing streams, to be published next.
    let mut held: Option<IopubMessage> = None;
    loop {
        if let Some(message) = held.take() {
            held = publish_coalesced(&mut socket, message, &mut queue, &signer, &session).await;
            continue;
        }
        tokio::select! {
            incoming = socket.recv() => {
                let frames = match incoming {
                    Ok(frames) => frames,
                    Err(e) if survivable("iopub", &e) => continue,
                    Err(_) => break,
                };
                // A subscription is one frame: byte 1 then the topic (0 is an unsubscription).
                let Some(frame) = frames.get(0) else { continue };
                if frame.first() == Some(&1) && welcomes.allows(frame.len() - 1, std::time::Instant::now()) {
                    let topic = String::from_utf8_lossy(&frame[1..]).into_owned();
                    let welcome = WireMessage::new("iopub_welcome", &session, None, json!({"subscription": topic}));
                    // The topic frame repeats the subscription so that the subscriber's filter
                    // lets the welcome through.
                    let mut frames = vec![if topic.is_empty() { b"kernel.iopub_welcome".to_vec() } else { topic.into_bytes() }];
                    frames.extend(welcome.to_frames(&signer));
                    send_frames(&mut socket, frames).await;
                }
            }
            next = queue.recv() => {
                let Some(message) = next else { break };
                held = publish_coalesced(&mut socket, message, &mut queue, &signer, &session).await;
            }
            Some(done) = flushes.recv() => {
                while let Ok(message) = queue.try_recv() {
                    publish(&mut socket, message, &signer, &session).await;
                }
                let _ = done.send(());
            }
        }
    }
}

/// Publishes `message` with the stream text queued right behind it for the same stream and
/// request ([`IopubMessage::absorb`]); returns the first queued message that could not join.
async fn publish_coalesced(
    socket: &mut XPubSocket,
    mut message: IopubMessage,
    queue: &mut UnboundedReceiver<IopubMessage>,
    signer: &Signer,
    session: &str,
) -> Option<IopubMessage> {
    let mut held = None;
    while let Ok(next) = queue.try_recv() {
        if let Err(other) = message.absorb(next) {
            held = Some(other);
            break;
        }
    }
    publish(socket, message, signer, session).await;
    held
}

/// How many `iopub_welcome`s are sent. Subscriptions come from any peer, unauthenticated, and
/// a welcome reaches every subscriber of its topic (the notebook's client too): without a
/// budget, a flood of subscriptions would become a flood of welcomes to the user. A client
/// subscribes once when it connects, with a short topic (usually empty).
struct WelcomeBudget {
    window_start: std::time::Instant,
    sent_in_window: u32,
}

impl WelcomeBudget {
    /// Welcomes per second at most; further subscriptions in that second get none.
    const PER_SECOND: u32 = 20;
    /// The longest topic that gets a welcome (Jupyter's are empty or a few words).
    const MAX_TOPIC: usize = 1024;

    /// Whether a subscription to a topic of `topic_len` bytes at `now` gets a welcome.
    fn allows(&mut self, topic_len: usize, now: std::time::Instant) -> bool {
        if topic_len > Self::MAX_TOPIC {
            return false;
        }
        if now.duration_since(self.window_start) >= std::time::Duration::from_secs(1) {
            self.window_start = now;
            self.sent_in_window = 0;
        }
        if self.sent_in_window >= Self::PER_SECOND {
            tracing::debug!("iopub: too many subscriptions this second, no welcome");
            return false;
        }
        self.sent_in_window += 1;
        true
    }
}

impl Default for WelcomeBudget {
    fn default() -> Self {
        WelcomeBudget {
            window_start: std::time::Instant::now(),
            sent_in_window: 0,
        }
    }
}

/// iopub frames: a topic frame (`kernel.SESSION.msg_type` style) first, then the message.
fn iopub_frames(message: &WireMessage, signer: &Signer) -> Vec<Vec<u8>> {
    let mut frames = vec![format!("kernel.{}", message.header.msg_type).into_bytes()];
    frames.extend(message.to_frames(signer));
    frames
}

async fn send_frames<S: SocketSend>(socket: &mut S, frames: Vec<Vec<u8>>) {
    if let Err(e) = socket.send(frames_to_zmq(frames)).await {
        tracing::warn!("send failed: {e}");
    }
}

/// Signs and publishes one iopub message of the kernel's.
async fn publish(socket: &mut XPubSocket, message: IopubMessage, signer: &Signer, session: &str) {
    let parent = message.parent.as_deref().cloned();
    let mut wire = WireMessage::new(&message.msg_type, session, parent, message.content);
    wire.metadata = message.metadata;
    wire.buffers = message.buffers;
    send_frames(socket, iopub_frames(&wire, signer)).await;
}

/// A request to a writer task: send everything queued so far, then answer (or drop the sender,
/// if the task has ended: either way the waiter learns that nothing queued is left behind).
type Flush = oneshot::Sender<()>;

/// Waits until the writer behind `writer` has sent what was queued before this call.
async fn flushed(writer: &UnboundedSender<Flush>) {
    let (done, confirmed) = oneshot::channel();
    if writer.send(done).is_ok() {
        let _ = confirmed.await;
    }
}

/// Sends the kernel's replies on a ROUTER socket, in order; answers [`Flush`] requests.
async fn write_replies<S: SocketSend>(
    mut socket: S,
    mut queue: UnboundedReceiver<WireMessage>,
    mut flushes: UnboundedReceiver<Flush>,
    signer: Signer,
) {
    loop {
        tokio::select! {
            biased;
            next = queue.recv() => {
                let Some(reply) = next else { break };
                send_frames(&mut socket, reply.to_frames(&signer)).await;
            }
            Some(done) = flushes.recv() => {
                while let Ok(reply) = queue.try_recv() {
                    send_frames(&mut socket, reply.to_frames(&signer)).await;
                }
                let _ = done.send(());
            }
        }
    }
}

/// What a request reader checks: the signature, and that the message is not a replay.
#[derive(Clone)]
struct Reader {
    signer: Signer,
    replays: Arc<Mutex<ReplayGuard>>,
}

impl Reader {
    /// The verified message of `frames`, or why it is dropped.
    fn accept(&self, frames: Vec<Vec<u8>>) -> Result<WireMessage, String> {
        let signature = WireMessage::signature_of(&frames).to_vec();
        let message = WireMessage::from_frames(frames, &self.signer).map_err(|e| e.to_string())?;
        let mut replays = self.replays.lock().unwrap_or_else(|e| e.into_inner());
        if !replays.is_new(&signature) {
            return Err(format!(
                "{} {} is a replay (its signature was accepted before in this session)",
                message.header.msg_type, message.header.msg_id
            ));
        }
        Ok(message)
    }
}

/// Reads requests, drops (and logs) any whose signature or framing is wrong or that replays an
/// earlier message, hands on the rest.
async fn read_requests<S: SocketRecv>(
    mut socket: S,
    reader: Reader,
    mut deliver: impl FnMut(WireMessage),
) {
    loop {
        let frames = match socket.recv().await {
            Ok(m) => zmq_to_frames(m),
            Err(e) if survivable("request socket", &e) => continue,
            Err(_) => break,
        };
        match reader.accept(frames) {
            Ok(message) => deliver(message),
            Err(e) => tracing::warn!("dropped a message: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_frame_mb_is_a_positive_whole_number() {
        assert_eq!(parse_max_frame_mb("256"), Ok(256));
        assert_eq!(parse_max_frame_mb(" 1 "), Ok(1));
        for bad in ["0", "-1", "1.5", "", "lots", "18446744073709551615"] {
            assert!(parse_max_frame_mb(bad).is_err(), "{bad:?}");
        }
        assert_eq!(DEFAULT_MAX_FRAME_MB, 256);
    }

    #[test]
    fn welcomes_are_budgeted() {
        let start = std::time::Instant::now();
        let mut budget = WelcomeBudget::default();
        let allowed = (0..100).filter(|_| budget.allows(0, start)).count();
        assert_eq!(allowed, WelcomeBudget::PER_SECOND as usize);
        let later = start + std::time::Duration::from_millis(1500);
        assert!(budget.allows(0, later), "a new second, a new budget");
        assert!(
            !budget.allows(WelcomeBudget::MAX_TOPIC + 1, later),
            "a huge topic"
        );
    }

    #[test]
    fn a_replayed_message_is_dropped_on_any_channel() {
        let signer = Signer::new("key");
        let shell = Reader {
            signer: signer.clone(),
            replays: Arc::new(Mutex::new(ReplayGuard::default())),
        };
        let control = shell.clone();
        let frames =
            WireMessage::new("execute_request", "s", None, json!({"code": "1"})).to_frames(&signer);
        assert!(shell.accept(frames.clone()).is_ok());
        let replay = shell.accept(frames.clone()).unwrap_err();
        assert!(replay.contains("replay"), "{replay}");
        assert!(
            control.accept(frames).is_err(),
            "the history is the session's"
        );
        let other = WireMessage::new("execute_request", "s", None, json!({"code": "1"}));
        assert!(
            shell.accept(other.to_frames(&signer)).is_ok(),
            "a new msg_id"
        );
    }

    #[test]
    fn a_bad_signature_is_not_recorded() {
        let reader = Reader {
            signer: Signer::new("key"),
            replays: Arc::new(Mutex::new(ReplayGuard::default())),
        };
        let forged = WireMessage::new("execute_request", "s", None, json!({"code": "1"}))
            .to_frames(&Signer::new("other key"));
        assert!(reader.accept(forged).is_err());
        assert!(reader.replays.lock().unwrap().is_empty());
    }

    #[test]
    fn unsigned_sessions_have_no_replay_check() {
        let reader = Reader {
            signer: Signer::new(""),
            replays: Arc::new(Mutex::new(ReplayGuard::default())),
        };
        let frames =
            WireMessage::new("kernel_info_request", "s", None, json!({})).to_frames(&reader.signer);
        assert!(reader.accept(frames.clone()).is_ok());
        assert!(reader.accept(frames).is_ok());
    }
}
