//! One ipykernel process and the client side of its shell and iopub channels.
//!
//! The kernel makes a directory only its user can enter, writes there a connection file for IPC
//! sockets (Unix sockets in that directory, not loopback TCP ports that every user of a shared
//! login node could reach) with a fresh key, starts `PYTHON -m ipykernel_launcher -f FILE` in its
//! own process group (it dies with this process:
//! `PR_SET_PDEATHSIG` and ipykernel's own parent poller), connects a DEALER to shell, a SUB to
//! iopub and a DEALER to stdin with the `zeromq` crate, and signs and checks every message with
//! [`crate::protocol`]. Both DEALERs announce the same identity, as jupyter_client's do:
//! ipykernel sends an `input_request` on stdin to the identity of the shell request's sender.

use std::fs::File;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{select, unbounded, Receiver};
use dask_slurm::process::{kill_group, last_lines};
use rustix::process::{kill_process, set_parent_process_death_signal, Pid, Signal};
use serde_json::{json, Map, Value};
use zeromq::util::PeerIdentity;
use zeromq::{DealerSocket, Socket, SocketOptions, SocketRecv, SocketSend, SubSocket};

use crate::cell::{CellInput, InputError};
use crate::protocol::zmq::{frames_to_zmq, zmq_to_frames};
use crate::protocol::{ConnectionInfo, Signer, WireMessage};

/// How long a new sub-kernel may take to answer its first kernel_info_request.
const START_TIMEOUT: Duration = Duration::from_secs(90);
/// How long an interrupted cell may take to end before the sub-kernel is killed.
const INTERRUPT_GRACE: Duration = Duration::from_secs(5);
/// How long a `comm_info_request` may take.
const COMM_INFO_TIMEOUT: Duration = Duration::from_secs(5);

/// Called with every `comm_open`, `comm_msg` and `comm_close` the sub-kernel publishes (its
/// widgets), in order with its other outputs and whether or not a cell runs.
pub(super) type CommSink = Arc<dyn Fn(&WireMessage) + Send + Sync>;

/// Each sub-kernel's directory is `rck-python-PID-N` in the temporary directory; it holds the
/// connection file, the log and the sockets.
const DIR_PREFIX: &str = "rck-python-";

/// Unix socket paths must fit in 108 bytes; a longer `$TMPDIR` gives way to `/tmp`.
const MAX_SOCKET_PATH: usize = 100;

/// Why an execution did not end with a reply.
#[derive(Debug)]
pub(super) enum Stopped {
    /// The process ended (exit, crash, kill).
    Died(ExitStatus),
    /// It did not end the cell within [`INTERRUPT_GRACE`] of SIGINT.
    Unresponsive,
}

/// A running ipykernel and the sockets that talk to it.
pub(super) struct SubKernel {
    child: Child,
    runtime: tokio::runtime::Runtime,
    shell: zeromq::DealerSendHalf,
    replies: Receiver<WireMessage>,
    iopub: Receiver<WireMessage>,
    /// Input replies go here.
    stdin: zeromq::DealerSendHalf,
    /// The sub-kernel's input requests.
    input_requests: Receiver<WireMessage>,
    signer: Signer,
    session: String,
    /// Its private directory (connection file, log, sockets), removed when it ends.
    dir: PathBuf,
    /// The interpreter it runs on.
    pub python: PathBuf,
    /// Where its own stdout and stderr go (Python's start-up errors end up here).
    pub log_file: PathBuf,
    /// The scheduler address the sub-kernel was last told, and the cluster's name.
    pub bound_to: Option<(String, String)>,
    /// The dashboard link through the Jupyter server that Dask was last told, if any.
    pub dashboard_link: Option<String>,
}

impl SubKernel {
    /// Starts ipykernel on `python` and waits until it answers; `Err` says why it could not.
    /// Its comm messages go to `comms`.
    pub fn start(python: &Path, comms: CommSink) -> Result<SubKernel, String> {
        remove_dirs_of_dead_kernels();
        let dir = make_private_dir()?;
        let info = ConnectionInfo {
            ip: dir.join("kernel").to_string_lossy().into_owned(),
            transport: "ipc".into(),
            shell_port: 1,
            iopub_port: 2,
            stdin_port: 3,
            control_port: 4,
            hb_port: 5,
            key: uuid::Uuid::new_v4().to_string(),
            signature_scheme: "hmac-sha256".into(),
            kernel_name: Some("python3".into()),
        };
        let connection_file = dir.join("connection.json");
        let log_file = dir.join("kernel.log");
        write_private(&connection_file, &serde_json::to_vec(&info).expect("json"))
            .map_err(|e| format!("cannot write {}: {e}", connection_file.display()))?;
        let log = File::create(&log_file)
            .map_err(|e| format!("cannot create {}: {e}", log_file.display()))?;
        let child = spawn_ipykernel(python, &connection_file, log)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("python-bridge")
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the bridge's runtime: {e}"))?;
        let mut kernel = SubKernelStarting {
            child: Some(child),
            dir,
            log_file,
        };
        kernel.wait_for_ports(&info)?;
        let signer = Signer::new(&info.key);
        let session = uuid::Uuid::new_v4().to_string();
        let Channels {
            shell,
            replies,
            iopub,
            stdin,
            input_requests,
        } = runtime
            .block_on(connect(&info, signer.clone(), &session, comms))
            .map_err(|e| kernel.failure(&format!("cannot connect to it: {e}")))?;
        let mut kernel = SubKernel {
            child: kernel.take_child(),
            runtime,
            shell,
            replies,
            iopub,
            stdin,
            input_requests,
            signer,
            session,
            dir: kernel.take_dir(),
            python: python.to_owned(),
            log_file: kernel.log_file.clone(),
            bound_to: None,
            dashboard_link: None,
        };
        kernel.wait_until_ready()?;
        Ok(kernel)
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The exit status, if the process has ended.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// The last lines of the sub-kernel's own log (its start-up errors).
    pub fn log_tail(&self) -> String {
        log_tail(&self.log_file)
    }

    /// Runs `code`; `on_output` gets every iopub message of this execution except `status`.
    /// The sub-kernel may ask for input when `input` allows it (`allow_stdin`): its
    /// input_requests go to `input`, and the answers back to it. `interrupted` is polled: once
    /// it says so, the sub-kernel gets SIGINT. Returns the content of the `execute_reply`.
    pub fn execute(
        &mut self,
        code: &str,
        silent: bool,
        input: &CellInput,
        on_output: &mut dyn FnMut(&WireMessage),
        interrupted: &dyn Fn() -> bool,
    ) -> Result<Value, Stopped> {
        let request = WireMessage::new(
            "execute_request",
            &self.session,
            None,
            json!({
                "code": code,
                "silent": silent,
                "store_history": !silent,
                "user_expressions": {},
                "allow_stdin": input.allowed(),
                "stop_on_error": true,
            }),
        );
        let id = request.header.msg_id.clone();
        self.send(&request);
        let ours = |m: &WireMessage| m.parent_header.as_ref().is_some_and(|p| p.msg_id == id);
        let (mut reply, mut idle): (Option<Value>, bool) = (None, false);
        let mut interrupted_at: Option<Instant> = None;
        let mut replied_at: Option<Instant> = None;
        loop {
            if let Some(content) = &reply {
                // The reply can overtake the last outputs (two sockets); idle closes them.
                if idle || replied_at.is_some_and(|t| t.elapsed() > Duration::from_secs(2)) {
                    return Ok(content.clone());
                }
            }
            select! {
                recv(self.iopub) -> m => {
                    let Ok(m) = m else { break };
                    if !ours(&m) {
                        continue;
                    }
                    if m.header.msg_type == "status" {
                        idle |= m.content["execution_state"] == "idle";
                    } else {
                        on_output(&m);
                    }
                }
                recv(self.replies) -> m => {
                    let Ok(m) = m else { break };
                    if ours(&m) {
                        reply = Some(m.content);
                        replied_at = Some(Instant::now());
                    }
                }
                recv(self.input_requests) -> m => {
                    let Ok(m) = m else { break };
                    if ours(&m) && m.header.msg_type == "input_request" {
                        self.answer_input_request(&m, input);
                    }
                }
                default(Duration::from_millis(100)) => {}
            }
            if let Some(status) = self.exited() {
                return Err(Stopped::Died(status));
            }
            if reply.is_none() && interrupted() {
                let since = *interrupted_at.get_or_insert_with(|| {
                    self.signal(Signal::INT);
                    Instant::now()
                });
                if since.elapsed() > INTERRUPT_GRACE {
                    return Err(Stopped::Unresponsive);
                }
            }
        }
        // The socket tasks ended: the runtime is going down with the process.
        match self.exited() {
            Some(status) => Err(Stopped::Died(status)),
            None => Err(Stopped::Unresponsive),
        }
    }

    /// Asks the frontend for the answer to the sub-kernel's `request` and sends it back as an
    /// `input_reply`. With no answer (an interrupt, or a frontend that takes no input), the
    /// sub-kernel gets SIGINT instead, which ends its `input()` with a KeyboardInterrupt.
    fn answer_input_request(&mut self, request: &WireMessage, input: &CellInput) {
        let prompt = request.content["prompt"].as_str().unwrap_or_default();
        let password = request.content["password"].as_bool().unwrap_or(false);
        match input.request(prompt, password) {
            Ok(value) => {
                let reply = request.reply("input_reply", &self.session, json!({ "value": value }));
                let frames = frames_to_zmq(reply.to_frames(&self.signer));
                if let Err(e) = self.runtime.block_on(self.stdin.send(frames)) {
                    tracing::warn!("sending input to the Python kernel failed: {e}");
                }
            }
            // `execute` sends SIGINT itself once it sees the interrupt: only once.
            Err(InputError::Interrupted) => {}
            Err(e) => {
                tracing::info!("the Python kernel's input request got no answer: {e}");
                self.signal(Signal::INT);
            }
        }
    }

    /// Passes a comm message of the frontend (`comm_open`, `comm_msg`, `comm_close`) on, with
    /// its metadata and buffers, as a message of this client's session.
    pub fn send_comm(&mut self, message: &WireMessage) {
        let mut ours = WireMessage::new(
            &message.header.msg_type,
            &self.session,
            None,
            message.content.clone(),
        );
        ours.metadata = message.metadata.clone();
        ours.buffers = message.buffers.clone();
        self.send(&ours);
    }

    /// The sub-kernel's open comms (of `target_name`, if given), as in a `comm_info_reply`.
    pub fn comm_info(&mut self, target_name: Option<&str>) -> Map<String, Value> {
        let content = match target_name {
            Some(target) => json!({ "target_name": target }),
            None => json!({}),
        };
        let request = WireMessage::new("comm_info_request", &self.session, None, content);
        let id = request.header.msg_id.clone();
        self.send(&request);
        let deadline = Instant::now() + COMM_INFO_TIMEOUT;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.replies.recv_timeout(left) {
                Ok(m) if m.parent_header.as_ref().is_some_and(|p| p.msg_id == id) => {
                    return m.content["comms"].as_object().cloned().unwrap_or_default();
                }
                Ok(_) => {}
                Err(_) => break,
            }
        }
        tracing::warn!("the Python kernel did not answer comm_info_request");
        Map::new()
    }

    fn send(&mut self, message: &WireMessage) {
        let frames = frames_to_zmq(message.to_frames(&self.signer));
        if let Err(e) = self.runtime.block_on(self.shell.send(frames)) {
            tracing::warn!("sending to the Python kernel failed: {e}");
        }
    }

    /// Sends `signal` to the sub-kernel process (SIGINT interrupts the running cell).
    pub fn signal(&self, signal: Signal) {
        // It may have ended already; the caller notices that by other means.
        let _ = kill_process(Pid::from_child(&self.child), signal);
    }

    fn wait_until_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + START_TIMEOUT;
        let (mut replied, mut published) = (false, false);
        while Instant::now() < deadline && !(replied && published) {
            if let Some(status) = self.exited() {
                return Err(format!(
                    "the Python kernel ended at start ({status}):\n{}",
                    self.log_tail()
                ));
            }
            // Repeated until iopub carries its status too: a SUB socket misses what was
            // published before its subscription reached the kernel.
            let request = WireMessage::new("kernel_info_request", &self.session, None, json!({}));
            let id = request.header.msg_id.clone();
            self.send(&request);
            let until = Instant::now() + Duration::from_secs(1);
            while Instant::now() < until && !(replied && published) {
                select! {
                    recv(self.replies) -> m => if let Ok(m) = m {
                        replied |= m.header.msg_type == "kernel_info_reply";
                    },
                    recv(self.iopub) -> m => if let Ok(m) = m {
                        published |= m.parent_header.as_ref().is_some_and(|p| p.msg_id == id);
                    },
                    default(Duration::from_millis(100)) => {}
                }
            }
        }
        if replied && published {
            Ok(())
        } else {
            Err(format!(
                "the Python kernel did not answer within {} s:\n{}",
                START_TIMEOUT.as_secs(),
                self.log_tail()
            ))
        }
    }
}

impl Drop for SubKernel {
    fn drop(&mut self) {
        kill_group(&mut self.child);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A process that has been spawned but is not yet a [`SubKernel`]: killed if start-up fails.
struct SubKernelStarting {
    child: Option<Child>,
    /// The private directory until the [`SubKernel`] takes it over; removed if start-up fails.
    dir: PathBuf,
    log_file: PathBuf,
}

impl SubKernelStarting {
    /// Waits until the shell socket accepts connections (ipykernel binds every socket first).
    fn wait_for_ports(&mut self, info: &ConnectionInfo) -> Result<(), String> {
        let deadline = Instant::now() + START_TIMEOUT;
        let address = format!("{}-{}", info.ip, info.shell_port);
        while Instant::now() < deadline {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                return Err(self.failure(&format!("it ended at start ({status})")));
            }
            if UnixStream::connect(&address).is_ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(self.failure("it did not open its ports"))
    }

    fn failure(&self, what: &str) -> String {
        format!(
            "the Python kernel could not start: {what}\n{}",
            log_tail(&self.log_file)
        )
    }

    fn take_child(&mut self) -> Child {
        self.child.take().expect("the child is taken once")
    }

    fn take_dir(&mut self) -> PathBuf {
        std::mem::take(&mut self.dir)
    }
}

impl Drop for SubKernelStarting {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            kill_group(child);
            // Only a failed start still owns the directory (with the log, already reported).
            if !self.dir.as_os_str().is_empty() {
                let _ = std::fs::remove_dir_all(&self.dir);
            }
        }
    }
}

/// The client's ends of a sub-kernel's channels.
struct Channels {
    /// Requests go here.
    shell: zeromq::DealerSendHalf,
    /// Shell replies.
    replies: Receiver<WireMessage>,
    /// iopub messages other than comm messages (those go to the [`CommSink`]).
    iopub: Receiver<WireMessage>,
    /// Input replies go here.
    stdin: zeromq::DealerSendHalf,
    /// Input requests.
    input_requests: Receiver<WireMessage>,
}

/// A DEALER connected to `endpoint` that announces `identity`.
async fn dealer(endpoint: &str, identity: &str) -> zeromq::ZmqResult<DealerSocket> {
    let mut options = SocketOptions::default();
    options.peer_identity(identity.parse::<PeerIdentity>()?);
    let mut socket = DealerSocket::with_options(options);
    socket.connect(endpoint).await?;
    Ok(socket)
}

/// Reads signed messages from `socket` into a channel until either end goes away.
fn receive(
    mut socket: zeromq::DealerRecvHalf,
    signer: Signer,
    what: &'static str,
) -> Receiver<WireMessage> {
    let (tx, rx) = unbounded();
    tokio::spawn(async move {
        while let Ok(m) = socket.recv().await {
            match WireMessage::from_frames(zmq_to_frames(m), &signer) {
                Ok(m) => {
                    if tx.send(m).is_err() {
                        break;
                    }
                }
                Err(e) => tracing::warn!("dropped a {what} message from the Python kernel: {e}"),
            }
        }
    });
    rx
}

async fn connect(
    info: &ConnectionInfo,
    signer: Signer,
    session: &str,
    comms: CommSink,
) -> zeromq::ZmqResult<Channels> {
    let shell = dealer(&info.endpoint(info.shell_port), session).await?;
    let stdin = dealer(&info.endpoint(info.stdin_port), session).await?;
    let mut iopub = SubSocket::new();
    iopub.subscribe("").await?;
    iopub.connect(&info.endpoint(info.iopub_port)).await?;
    let (iopub_tx, iopub_rx) = unbounded();
    let (send, recv) = shell.split();
    let replies = receive(recv, signer.clone(), "shell");
    let (stdin_send, stdin_recv) = stdin.split();
    let input_requests = receive(stdin_recv, signer.clone(), "stdin");
    tokio::spawn(async move {
        while let Ok(m) = iopub.recv().await {
            // The first frame is the topic; from_frames skips everything before <IDS|MSG>.
            match WireMessage::from_frames(zmq_to_frames(m), &signer) {
                Ok(m) if m.header.msg_type.starts_with("comm_") => comms(&m),
                Ok(m) => {
                    if iopub_tx.send(m).is_err() {
                        break;
                    }
                }
                Err(e) => tracing::warn!("dropped an iopub message from the Python kernel: {e}"),
            }
        }
    });
    Ok(Channels {
        shell: send,
        replies,
        iopub: iopub_rx,
        stdin: stdin_send,
        input_requests,
    })
}

fn spawn_ipykernel(python: &Path, connection_file: &Path, log: File) -> Result<Child, String> {
    use std::os::unix::process::CommandExt;
    let err = log
        .try_clone()
        .map_err(|e| format!("cannot open the log: {e}"))?;
    let mut command = Command::new(python);
    command
        .args(["-m", "ipykernel_launcher", "-f"])
        .arg(connection_file)
        // ipykernel ends itself when this process is gone (its parent poller).
        .env("JPY_PARENT_PID", std::process::id().to_string())
        .env("PYDEVD_DISABLE_FILE_VALIDATION", "1")
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(err)
        .process_group(0);
    // SAFETY: the closure runs in the child between fork and exec, where only
    // async-signal-safe calls are allowed: prctl(2) is one, and it allocates nothing.
    unsafe {
        command.pre_exec(|| {
            set_parent_process_death_signal(Some(Signal::KILL))?;
            Ok(())
        });
    }
    command
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", python.display()))
}

/// Where sub-kernels' directories go: the temporary directory, or `/tmp` when socket paths
/// there would be too long.
fn base_dir() -> PathBuf {
    let tmp = std::env::temp_dir();
    // "/rck-python-PID-N/kernel-5", with room for large numbers.
    if tmp.as_os_str().len() + 40 > MAX_SOCKET_PATH {
        PathBuf::from("/tmp")
    } else {
        tmp
    }
}

/// Makes a new directory that only this user can enter.
fn make_private_dir() -> Result<PathBuf, String> {
    use std::os::unix::fs::DirBuilderExt;
    static STARTED: AtomicU32 = AtomicU32::new(0);
    let n = STARTED.fetch_add(1, Ordering::SeqCst);
    let dir = base_dir().join(format!("{DIR_PREFIX}{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir); // left by an earlier process with this pid
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&dir)
        .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    Ok(dir)
}

/// Removes the directories (and the files of older versions) of sub-kernels whose kernel
/// process is gone (killed, so no `Drop` ran).
fn remove_dirs_of_dead_kernels() {
    let Ok(dir) = std::fs::read_dir(base_dir()) else {
        return;
    };
    for entry in dir.flatten() {
        let name = entry.file_name();
        let pid = name
            .to_str()
            .and_then(|n| n.strip_prefix(DIR_PREFIX))
            .and_then(|rest| rest.split(['-', '.']).next())
            .and_then(|pid| pid.parse::<u32>().ok());
        if pid.is_some_and(|pid| !Path::new(&format!("/proc/{pid}")).exists()) {
            let path = entry.path();
            let _ = if path.is_dir() {
                std::fs::remove_dir_all(path)
            } else {
                std::fs::remove_file(path)
            };
        }
    }
}

/// Writes a file only its owner can read (the connection file holds the signing key).
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?
        .write_all(bytes)
}

fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    last_lines(&text, 15)
}
