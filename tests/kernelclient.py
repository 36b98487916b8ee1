"""A small Jupyter client toolkit for the tests: run a cell, collect its iopub messages."""
import os
import queue
import time


KERNEL_NAME = os.environ.get("RCK_KERNEL_NAME", "rust-cluster")
# Generous: the first Rust cell waits for evcxr's start (it compiles) — never an assertion.
TIMEOUT = 180


class Run:
    """What one execute_request produced: the reply and the iopub messages, in order."""

    def __init__(self, reply, messages):
        self.reply = reply
        self.messages = messages

    @property
    def status(self):
        return self.reply["content"]["status"]

    def of(self, msg_type):
        return [m for m in self.messages if m["msg_type"] == msg_type]

    @property
    def stdout(self):
        return "".join(m["content"]["text"] for m in self.of("stream") if m["content"]["name"] == "stdout")

    @property
    def stderr(self):
        return "".join(m["content"]["text"] for m in self.of("stream") if m["content"]["name"] == "stderr")

    @property
    def result(self):
        results = self.of("execute_result")
        return results[0]["content"]["data"] if results else None

    @property
    def error(self):
        errors = self.of("error")
        return errors[0]["content"] if errors else None


def collect(kc, msg_id, timeout=TIMEOUT):
    """iopub messages for msg_id up to and including its idle status."""
    messages = []
    deadline = time.monotonic() + timeout
    while True:
        msg = kc.get_iopub_msg(timeout=max(0.1, deadline - time.monotonic()))
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        messages.append(msg)
        if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            return messages


def shell_reply(kc, msg_id, timeout=TIMEOUT):
    deadline = time.monotonic() + timeout
    while True:
        msg = kc.get_shell_msg(timeout=max(0.1, deadline - time.monotonic()))
        if msg["parent_header"].get("msg_id") == msg_id:
            return msg


def execute(kc, code, timeout=TIMEOUT, **kwargs):
    msg_id = kc.execute(code, **kwargs)
    reply = shell_reply(kc, msg_id, timeout)
    return Run(reply, collect(kc, msg_id, timeout))


def drain(kc):
    while True:
        try:
            kc.get_iopub_msg(timeout=0.2)
        except queue.Empty:
            return
