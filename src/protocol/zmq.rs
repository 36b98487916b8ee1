//! The glue between wire frames (`Vec<Vec<u8>>`, as [`WireMessage`](super::WireMessage) reads and
//! writes them) and the `zeromq` crate's multipart messages. Data only: the sockets are the
//! server's and the Python bridge's.

use zeromq::ZmqMessage;

/// One multipart ZeroMQ message of `frames`.
pub fn frames_to_zmq(frames: Vec<Vec<u8>>) -> ZmqMessage {
    let mut frames = frames.into_iter().map(bytes::Bytes::from);
    let mut message = ZmqMessage::from(frames.next().unwrap_or_default());
    for f in frames {
        message.push_back(f);
    }
    message
}

/// The frames of a multipart ZeroMQ message.
pub fn zmq_to_frames(message: ZmqMessage) -> Vec<Vec<u8>> {
    message.into_vec().into_iter().map(|b| b.to_vec()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_survive_the_round_trip() {
        let frames = vec![b"id".to_vec(), Vec::new(), b"<IDS|MSG>".to_vec()];
        assert_eq!(zmq_to_frames(frames_to_zmq(frames.clone())), frames);
    }
}
