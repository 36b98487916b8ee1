//! The built binary over real sockets, byte for byte: a client made of this crate's own
//! protocol code and the `zeromq` crate starts the kernel with a connection file and talks to it.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use rust_cluster_kernel::protocol::{ConnectionInfo, Signer, WireMessage};
use serde_json::json;
use zeromq::{DealerSocket, ReqSocket, Socket, SocketRecv, SocketSend, SubSocket, ZmqMessage};

struct Kernel {
    child: Child,
    info: ConnectionInfo,
    /// The connection file and the kernel's log (`kernel.log`, shown when a reply is missing).
    dir: std::path::PathBuf,
}

impl Kernel {
    /// The kernel's log so far, for a failure message.
    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("kernel.log")).unwrap_or_default()
    }
}

impl Drop for Kernel {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start_kernel() -> Kernel {
    let dir = std::env::temp_dir().join(format!("rck-wire-{}-{}", std::process::id(), free_port()));
    std::fs::create_dir_all(&dir).unwrap();
    let info = ConnectionInfo {
        ip: "127.0.0.1".into(),
        transport: "tcp".into(),
        shell_port: free_port(),
        iopub_port: free_port(),
        stdin_port: free_port(),
        control_port: free_port(),
        hb_port: free_port(),
        key: "a-test-key".into(),
        signature_scheme: "hmac-sha256".into(),
        kernel_name: None,
    };
    let path = dir.join("kernel.json");
    std::fs::write(&path, serde_json::to_string(&info).unwrap()).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_rust-cluster-kernel"))
        .arg("--connection-file")
        .arg(&path)
        .env("XDG_DATA_HOME", &dir)
        .env("RUST_CLUSTER_KERNEL_LOG", "rust_cluster_kernel=debug")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("kernel.log")).unwrap())
        .spawn()
        .unwrap();
    Kernel { child, info, dir }
}

fn to_zmq(frames: Vec<Vec<u8>>) -> ZmqMessage {
    let mut frames = frames.into_iter().map(bytes::Bytes::from);
    let mut message = ZmqMessage::from(frames.next().unwrap());
    for f in frames {
        message.push_back(f);
    }
    message
}

fn frames_of(message: ZmqMessage) -> Vec<Vec<u8>> {
    message.into_vec().into_iter().map(|b| b.to_vec()).collect()
}

async fn connect_dealer(kernel: &Kernel, port: u16) -> DealerSocket {
    let mut socket = DealerSocket::new();
    let endpoint = kernel.info.endpoint(port);
    for _ in 0..100 {
        if socket.connect(&endpoint).await.is_ok() {
            return socket;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("could not connect to {endpoint}");
}

async fn recv_within(socket: &mut impl SocketRecv, secs: u64) -> Option<ZmqMessage> {
    tokio::time::timeout(Duration::from_secs(secs), socket.recv())
        .await
        .ok()
        .map(|r| r.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kernel_info_signed_reply_bad_signature_dropped_and_heartbeat() {
    let kernel = start_kernel();
    let signer = Signer::new(&kernel.info.key);
    let mut shell = connect_dealer(&kernel, kernel.info.shell_port).await;
    let mut iopub = SubSocket::new();
    iopub
        .connect(&kernel.info.endpoint(kernel.info.iopub_port))
        .await
        .unwrap();
    iopub.subscribe("").await.unwrap();

    // A request signed with the wrong key is dropped: no reply at all.
    let forged = WireMessage::new("kernel_info_request", "client", None, json!({}));
    shell
        .send(to_zmq(forged.to_frames(&Signer::new("wrong-key"))))
        .await
        .unwrap();
    assert!(
        recv_within(&mut shell, 2).await.is_none(),
        "a forged request was answered"
    );

    // The same request signed with the right key is answered, and the reply is signed.
    let request = WireMessage::new("kernel_info_request", "client", None, json!({}));
    shell
        .send(to_zmq(request.to_frames(&signer)))
        .await
        .unwrap();
    let reply = recv_within(&mut shell, 10)
        .await
        .expect("a kernel_info_reply");
    let reply = WireMessage::from_frames(frames_of(reply), &signer).expect("a well-signed reply");
    assert_eq!(reply.header.msg_type, "kernel_info_reply");
    assert_eq!(
        reply.parent_header.as_ref().unwrap().msg_id,
        request.header.msg_id
    );
    assert_eq!(reply.content["language_info"]["name"], "rust");
    assert!(WireMessage::from_frames(
        frames_of(to_zmq(reply.to_frames(&signer))),
        &Signer::new("other")
    )
    .is_err());

    // busy and idle for that request arrive on iopub, signed, in that order (after any welcome).
    let mut states = Vec::new();
    while states.len() < 2 {
        let message = recv_within(&mut iopub, 10)
            .await
            .expect("iopub status messages");
        let message = WireMessage::from_frames(frames_of(message), &signer).unwrap();
        if message.header.msg_type == "status"
            && message.parent_header.as_ref().map(|p| &p.msg_id) == Some(&request.header.msg_id)
        {
            states.push(
                message.content["execution_state"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            );
        }
    }
    assert_eq!(states, ["busy", "idle"]);

    // The heartbeat echoes exactly what it got.
    let mut hb = ReqSocket::new();
    hb.connect(&kernel.info.endpoint(kernel.info.hb_port))
        .await
        .unwrap();
    hb.send(ZmqMessage::from(vec![0u8, 255, 1, 2]))
        .await
        .unwrap();
    let echo = recv_within(&mut hb, 5).await.expect("a heartbeat echo");
    assert_eq!(frames_of(echo), vec![vec![0u8, 255, 1, 2]]);

    // shutdown_request on control ends the process.
    let mut control = connect_dealer(&kernel, kernel.info.control_port).await;
    let shutdown = WireMessage::new(
        "shutdown_request",
        "client",
        None,
        json!({"restart": false}),
    );
    control
        .send(to_zmq(shutdown.to_frames(&signer)))
        .await
        .unwrap();
    let Some(reply) = recv_within(&mut control, 30).await else {
        panic!(
            "no shutdown_reply within 30 s; the kernel's log:\n{}",
            kernel.log()
        );
    };
    let reply = WireMessage::from_frames(frames_of(reply), &signer).unwrap();
    assert_eq!(reply.content, json!({"status": "ok", "restart": false}));
    let mut kernel = kernel;
    let mut exited = false;
    for _ in 0..100 {
        if kernel.child.try_wait().unwrap().is_some() {
            exited = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(exited, "the kernel did not exit after shutdown_request");
}
