//! The sockets: shell, control, iopub, stdin and heartbeat over ZeroMQ (the pure-Rust `zeromq`
//! crate, so nothing has to be installed on cluster nodes). The only module with I/O.
//!
//! - heartbeat (REP) echoes every message on its own task, so a busy cell never stalls it;
//! - iopub (XPUB) is a single writer fed by one queue; each new subscription gets an
//!   `iopub_welcome` (JEP 65) so that clients know they will not miss the next message;
//! - shell and control (ROUTER) each have a reader task that verifies signatures and hands
//!   requests to the kernel's shell and control threads, and a writer task for the replies.

use std::sync::Arc;

use anyhow::Context;
use serde_json::json;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};
use zeromq::{RepSocket, RouterSocket, Socket, SocketRecv, SocketSend, XPubSocket, ZmqMessage};

use crate::kernel::{ControlOutcome, IopubMessage, Kernel, Outbox};
use crate::magics::Registry;
use crate::protocol::{ConnectionInfo, Signer, WireMessage};

/// Binds every socket of `info`, serves as kernel session `session` until a shutdown request,
/// and returns whether a restart was asked for.
pub async fn serve(
    info: ConnectionInfo,
    registry: Registry,
    session: String,
) -> anyhow::Result<bool> {
    let signer = Signer::new(&info.key);

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

    let (iopub_tx, iopub_rx) = unbounded_channel();
    let (shell_tx, shell_out) = unbounded_channel();
    let (control_tx, control_out) = unbounded_channel();
    let kernel = Kernel::new(
        Outbox {
            iopub: iopub_tx,
            shell: shell_tx,
            control: control_tx,
        },
        registry,
        session,
    );

    tokio::spawn(echo_heartbeats(heartbeat));
    tokio::spawn(publish_iopub(
        iopub,
        iopub_rx,
        signer.clone(),
        kernel.session().to_owned(),
    ));
    kernel.announce_start();
    // stdin: input requests are not offered (allow_stdin is answered as false); keep the socket
    // bound so that clients connect cleanly.
    tokio::spawn(async move { while stdin.recv().await.is_ok() {} });

    let (shell_send, shell_recv) = shell.split();
    let (control_send, control_recv) = control.split();
    tokio::spawn(write_replies(shell_send, shell_out, signer.clone()));
    tokio::spawn(write_replies(control_send, control_out, signer.clone()));

    let (shell_requests_tx, shell_requests) = crossbeam_channel::unbounded();
    let shell_kernel = kernel.clone();
    std::thread::Builder::new()
        .name("shell".into())
        .spawn(move || shell_kernel.serve_shell(shell_requests))?;
    tokio::spawn(read_requests(shell_recv, signer.clone(), move |m| {
        let _ = shell_requests_tx.send((std::time::Instant::now(), m));
    }));

    let (control_requests_tx, mut control_requests) = unbounded_channel();
    tokio::spawn(read_requests(control_recv, signer.clone(), move |m| {
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

    while let Some(request) = control_requests.recv().await {
        let k: Arc<Kernel> = kernel.clone();
        let outcome = tokio::task::spawn_blocking(move || k.handle_control(&request)).await?;
        if let ControlOutcome::Shutdown { restart } = outcome {
            // Let the reply and the final idle leave before the process ends.
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            return Ok(restart);
        }
    }
    Ok(false)
}

async fn echo_heartbeats(mut socket: RepSocket) {
    while let Ok(message) = socket.recv().await {
        if socket.send(message).await.is_err() {
            break;
        }
    }
}

/// The single iopub writer: publishes queued messages and welcomes new subscribers.
async fn publish_iopub(
    mut socket: XPubSocket,
    mut queue: UnboundedReceiver<IopubMessage>,
    signer: Signer,
    session: String,
) {
    loop {
        tokio::select! {
            incoming = socket.recv() => {
                let Ok(frames) = incoming else { continue };
                // A subscription is one frame: byte 1 then the topic (0 is an unsubscription).
                let Some(frame) = frames.get(0) else { continue };
                if frame.first() == Some(&1) {
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
                let parent = message.parent.as_deref().cloned();
                let mut wire = WireMessage::new(&message.msg_type, &session, parent, message.content);
                wire.metadata = message.metadata;
                wire.buffers = message.buffers;
                send_frames(&mut socket, iopub_frames(&wire, &signer)).await;
            }
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

/// One multipart ZeroMQ message of `frames` (also used by the Python bridge, a client).
pub(crate) fn frames_to_zmq(frames: Vec<Vec<u8>>) -> ZmqMessage {
    let mut frames = frames.into_iter().map(bytes::Bytes::from);
    let mut message = ZmqMessage::from(frames.next().unwrap_or_default());
    for f in frames {
        message.push_back(f);
    }
    message
}

async fn write_replies<S: SocketSend>(
    mut socket: S,
    mut queue: UnboundedReceiver<WireMessage>,
    signer: Signer,
) {
    while let Some(reply) = queue.recv().await {
        send_frames(&mut socket, reply.to_frames(&signer)).await;
    }
}

/// Reads requests, drops (and logs) any whose signature or framing is wrong, hands on the rest.
async fn read_requests<S: SocketRecv>(
    mut socket: S,
    signer: Signer,
    mut deliver: impl FnMut(WireMessage),
) {
    loop {
        let frames = match socket.recv().await {
            Ok(m) => m.into_vec().into_iter().map(|b| b.to_vec()).collect(),
            Err(e) => {
                tracing::warn!("receive failed: {e}");
                continue;
            }
        };
        match WireMessage::from_frames(frames, &signer) {
            Ok(message) => deliver(message),
            Err(e) => tracing::warn!("dropped a message: {e}"),
        }
    }
}
