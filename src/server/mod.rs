//! The sockets: shell, control, iopub, stdin and heartbeat over ZeroMQ. The only module with I/O.
