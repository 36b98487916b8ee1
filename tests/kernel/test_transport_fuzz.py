"""The kernel's five ports under attack by a peer without the key (issue 9, the transport).

Raw TCP clients speak just enough ZMTP 3 to reach each socket's decoder: frame headers that
announce 2^62, 2^40 or just over the bound, half and garbage greetings, random bytes, peers
that never read, and a replayed signed message. After each attack the kernel must answer
kernel_info on shell and control, echo on the heartbeat, and its resident memory must not have
grown past a bound. This module's kernel runs with a bound of 64 MiB (RUST_CLUSTER_KERNEL_MAX_FRAME_MB),
so that a frame between 64 and 256 MiB also shows that the setting is read.
"""
import os
import random
import socket
import struct
import time

import pytest
import zmq

from kernelclient import collect, execute, shell_reply

BOUND_MB = 64
KERNEL_ENV = {"RUST_CLUSTER_KERNEL_MAX_FRAME_MB": str(BOUND_MB)}
BOUND = BOUND_MB << 20
# How far the kernel's resident memory may grow over the whole module.
RSS_SLACK = 64 << 20

PORTS = ["shell", "control", "stdin", "iopub", "hb"]
# The socket type a well-behaved peer of each port announces in its READY command.
PEER_TYPE = {"shell": b"DEALER", "control": b"DEALER", "stdin": b"DEALER", "iopub": b"SUB", "hb": b"REQ"}


def greeting(version=(3, 0), mechanism=b"NULL"):
    """A ZMTP 3 greeting: signature, version, mechanism, as-server, filler (64 bytes)."""
    return (b"\xff" + b"\x00" * 8 + b"\x7f" + bytes(version) + mechanism.ljust(20, b"\x00")
            + b"\x00" + b"\x00" * 31)


def frame(body, more=False, command=False):
    flags = (1 if more else 0) | (4 if command else 0)
    if len(body) > 255:
        return bytes([flags | 2]) + struct.pack(">Q", len(body)) + body
    return bytes([flags, len(body)]) + body


def ready(socket_type, identity=None):
    """The READY command that completes a NULL-mechanism handshake."""
    body = b"\x05READY" + b"\x0bSocket-Type" + struct.pack(">I", len(socket_type)) + socket_type
    if identity is not None:
        body += b"\x08Identity" + struct.pack(">I", len(identity)) + identity
    return frame(body, command=True)


def long_header(length, command=False):
    return bytes([2 | (4 if command else 0)]) + struct.pack(">Q", length)


def connect_raw(info, port, rcvbuf=None):
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.settimeout(5)
    sock.connect((info["ip"], info[f"{port}_port"]))
    return sock


def handshake(info, port, rcvbuf=None):
    """A raw connection past the greeting and READY exchange."""
    sock = connect_raw(info, port, rcvbuf)
    sock.sendall(greeting() + ready(PEER_TYPE[port]))
    received = b""
    while len(received) < 64 + 2 or b"READY" not in received:
        chunk = sock.recv(4096)
        assert chunk, f"{port}: the kernel closed a correct handshake"
        received += chunk
    return sock


def closed_by_kernel(sock, timeout=5.0):
    """Whether the kernel closes the connection within timeout (what it sends is read away)."""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            sock.settimeout(max(0.05, deadline - time.monotonic()))
            try:
                if not sock.recv(65536):
                    return True
            except socket.timeout:
                return False
    except (ConnectionResetError, BrokenPipeError):
        return True
    return False


def rss(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


@pytest.fixture(scope="module")
def target(kernel):
    """The kernel's connection info, pid and resident memory before any attack."""
    km, kc = kernel
    info = km.get_connection_info()
    pid = km.provisioner.pid
    # The kernel warms rust-analyzer up once it is idle; measure after that has settled.
    before, deadline = rss(pid), time.monotonic() + 15
    while time.monotonic() < deadline:
        time.sleep(1)
        now = rss(pid)
        if abs(now - before) < (2 << 20):
            break
        before = now
    return {"info": info, "pid": pid, "rss": rss(pid), "km": km, "kc": kc}


def assert_healthy(target, after):
    """Shell and control answer kernel_info, the heartbeat echoes, memory stayed bounded."""
    km, kc, info = target["km"], target["kc"], target["info"]
    assert km.is_alive(), f"the kernel died after {after}"
    reply = shell_reply(kc, kc.kernel_info(), timeout=10)
    assert reply["content"]["status"] == "ok", after
    collect(kc, reply["parent_header"]["msg_id"], timeout=10)
    msg = kc.session.msg("kernel_info_request")
    kc.control_channel.send(msg)
    reply = kc.control_channel.get_msg(timeout=10)
    assert reply["parent_header"]["msg_id"] == msg["header"]["msg_id"], after
    collect(kc, msg["header"]["msg_id"], timeout=10)
    hb = zmq.Context.instance().socket(zmq.REQ)
    hb.connect(f"tcp://{info['ip']}:{info['hb_port']}")
    try:
        hb.send(b"still there?")
        assert hb.poll(5000), f"no heartbeat echo after {after}"
        assert hb.recv() == b"still there?"
    finally:
        hb.close(linger=0)
    grown = rss(target["pid"]) - target["rss"]
    assert grown < RSS_SLACK, f"RSS grew by {grown >> 20} MiB after {after}"


@pytest.fixture(scope="module")
def silent_peers(target):
    """On every port, a peer that connects and sends nothing and one that sends half a
    greeting; they stay open while the other tests run."""
    info = target["info"]
    peers = []
    for port in PORTS:
        peers.append((port, "nothing", connect_raw(info, port)))
        half = connect_raw(info, port)
        half.sendall(greeting()[:10])
        peers.append((port, "half a greeting", half))
    yield time.monotonic(), peers
    for _, _, sock in peers:
        sock.close()


def test_oversized_frame_headers_close_only_that_connection(target, silent_peers):
    info = target["info"]
    sizes = [1 << 62, 1 << 40, (256 << 20) + 1, BOUND + 1, 100 << 20]
    for port in PORTS:
        # A well-behaved peer on the same port, connected throughout: it must stay connected.
        bystander = handshake(info, port)
        for size in sizes:
            for stage in ["handshake", "after handshake"]:
                for command in [False, True]:
                    what = f"a {size}-byte {'command' if command else 'frame'} header on {port} ({stage})"
                    if stage == "handshake":
                        sock = connect_raw(info, port)
                        sock.sendall(greeting() + long_header(size, command))
                    else:
                        sock = handshake(info, port)
                        sock.sendall(long_header(size, command))
                    try:
                        assert closed_by_kernel(sock), f"{what}: the connection stayed open"
                    finally:
                        sock.close()
            assert_healthy(target, f"{size}-byte headers on {port}")
        bystander.settimeout(0.2)
        try:
            assert bystander.recv(1) != b"", f"{port}: the bystander was disconnected"
        except socket.timeout:
            pass  # still open, nothing to read: as it should be
        bystander.close()


def test_a_message_just_under_the_bound_is_still_served(target):
    """The bound is not too tight: a signed request with a 16 MiB buffer is answered."""
    kc = target["kc"]
    msg = kc.session.msg("kernel_info_request")
    kc.session.send(kc.shell_channel.socket, msg, buffers=[b"\x00" * (16 << 20)])
    reply = shell_reply(kc, msg["header"]["msg_id"], timeout=20)
    assert reply["content"]["status"] == "ok"
    collect(kc, msg["header"]["msg_id"])
    assert_healthy(target, "a 16 MiB message")


def test_garbage_greetings(target):
    info = target["info"]
    rng = random.Random(9)
    garbage = [
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" + b" " * 40,     # a web client or port scanner
        bytes(rng.randrange(256) for _ in range(64)).replace(b"\xff", b"\x00", 1),
        b"\xff" + bytes(rng.randrange(256) for _ in range(63)),  # right first byte only
        greeting(version=(2, 0)),                              # an older ZMTP
        greeting(mechanism=b"NOPE"),                           # an unknown mechanism
        b"\x00" * 64,
    ]
    for port in PORTS:
        for data in garbage:
            sock = connect_raw(info, port)
            try:
                sock.sendall(data)
                assert closed_by_kernel(sock), f"{port}: garbage greeting {data[:12]!r} kept open"
            finally:
                sock.close()
        assert_healthy(target, f"garbage greetings on {port}")


def test_random_bytes_after_a_valid_greeting(target):
    info = target["info"]
    for port in PORTS:
        for seed in range(10):
            rng = random.Random(seed)
            noise = bytes(rng.randrange(256) for _ in range(100))
            # Even seeds: noise instead of READY; odd seeds: noise after the handshake.
            sock = connect_raw(info, port) if seed % 2 == 0 else handshake(info, port)
            try:
                sock.sendall((greeting() if seed % 2 == 0 else b"") + noise)
                closed_by_kernel(sock, timeout=0.3)  # closed, or waiting for more: both fine
            finally:
                sock.close()
        assert_healthy(target, f"random bytes on {port}")


def test_new_peers_are_served_while_others_stall_their_handshake(target, silent_peers):
    info = target["info"]
    for port in PORTS:
        handshake(info, port).close()  # the accept loop and the handshake of others go on
    assert_healthy(target, "silent peers and half greetings on every port")
    # A fresh client on every channel works too: a new SUB gets the kernel's output.
    sub = zmq.Context.instance().socket(zmq.SUB)
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    sub.connect(f"tcp://{info['ip']}:{info['iopub_port']}")
    try:
        assert sub.poll(5000), "a new iopub subscriber got no welcome"
    finally:
        sub.close(linger=0)


def test_a_subscriber_that_never_reads_does_not_stall_iopub(target):
    """A peer subscribes to everything and stops reading; the notebook's output goes on."""
    info, kc = target["info"], target["kc"]
    slow = handshake(info, "iopub", rcvbuf=4096)
    slow.sendall(frame(b"\x01"))  # subscribe to every topic, then never read again
    time.sleep(0.2)
    try:
        # 12 MB of output, more than the socket buffers hold (4 MiB each way, doubled by Linux)
        lines, width = 3000, 4000
        run = execute(kc, f'for _ in 0..{lines} {{ println!("{{}}", "x".repeat({width})); }}', timeout=60)
        assert run.status == "ok"
        assert len(run.stdout) == lines * (width + 1)
        assert_healthy(target, "a subscriber that never reads")
    finally:
        slow.close()


def test_a_heartbeat_peer_that_never_reads_does_not_stall_the_heartbeat(target):
    info = target["info"]
    slow = handshake(info, "hb", rcvbuf=4096)
    slow.settimeout(10)
    try:
        ping = frame(b"", more=True) + frame(b"p" * 4000)
        for _ in range(5000):  # 20 MB of pings whose echoes are never read
            slow.sendall(ping)
        assert_healthy(target, "a heartbeat peer that never reads")
    finally:
        slow.close()


def test_a_peer_cannot_take_over_a_connected_clients_identity(target):
    """A Jupyter client's shell, control and stdin identity is its session id, which anyone can
    read on iopub. A second connection announcing a connected client's identity is refused;
    the client keeps its connection and its replies."""
    info, kc = target["info"], target["kc"]
    ctx = zmq.Context.instance()
    for port in ["shell", "control", "stdin"]:
        client = ctx.socket(zmq.DEALER)
        identity = f"client-{port}".encode()
        client.setsockopt(zmq.IDENTITY, identity)
        client.setsockopt(zmq.RECONNECT_IVL, 30000)  # a dropped connection stays dropped
        client.connect(f"tcp://{info['ip']}:{info[f'{port}_port']}")
        try:
            if port != "stdin":  # the first request shows the connection is up
                msg = kc.session.msg("kernel_info_request")
                kc.session.send(client, msg)
                assert client.poll(10000), f"{port}: no reply before the attack"
                client.recv_multipart()
            else:
                time.sleep(0.5)
            sock = connect_raw(info, port)
            try:
                sock.sendall(greeting() + ready(b"DEALER", identity=identity))
                assert closed_by_kernel(sock), f"{port}: a second peer with a client's identity was kept"
            finally:
                sock.close()
            if port != "stdin":
                msg = kc.session.msg("kernel_info_request")
                kc.session.send(client, msg)
                assert client.poll(5000), f"{port}: the client lost its connection to the thief"
                client.recv_multipart()
        finally:
            client.close(linger=0)
        assert_healthy(target, f"a stolen identity on {port}")


def test_a_replayed_execute_request_runs_once(target):
    km, kc, info = target["km"], target["kc"], target["info"]
    execute(kc, "let mut replay_count = 0;")
    msg = kc.session.msg("execute_request", content={
        "code": "replay_count += 1;", "silent": False, "store_history": True,
        "user_expressions": {}, "allow_stdin": False, "stop_on_error": True})
    frames = kc.session.serialize(msg)
    ctx = zmq.Context.instance()
    shell = ctx.socket(zmq.DEALER)
    shell.connect(f"tcp://{info['ip']}:{info['shell_port']}")
    control = ctx.socket(zmq.DEALER)
    control.connect(f"tcp://{info['ip']}:{info['control_port']}")
    try:
        shell.send_multipart(frames)
        assert shell.poll(60000), "the original request was not answered"
        shell.recv_multipart()
        shell.send_multipart(frames)          # the same bytes again, same connection
        control.send_multipart(frames)        # and on another channel
        other = ctx.socket(zmq.DEALER)        # and from another connection
        other.connect(f"tcp://{info['ip']}:{info['shell_port']}")
        other.send_multipart(frames)
        time.sleep(2)
        assert shell.poll(0) == 0 and control.poll(0) == 0 and other.poll(0) == 0, "a replay was answered"
        other.close(linger=0)
        assert execute(kc, "replay_count").result["text/plain"] == "1"
    finally:
        shell.close(linger=0)
        control.close(linger=0)
    assert_healthy(target, "replayed requests")


def test_stalled_handshakes_are_closed_after_the_timeout(target, silent_peers):
    """Last: the peers of `silent_peers` have had zeromq's 30 s handshake timeout."""
    opened, peers = silent_peers
    time.sleep(max(0.0, opened + 31 - time.monotonic()))
    for port, what, sock in peers:
        assert closed_by_kernel(sock, timeout=3), f"{port}: a peer that sent {what} is still connected"
    assert_healthy(target, "stalled handshakes")
