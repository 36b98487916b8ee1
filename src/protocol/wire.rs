//! The multipart wire format and its HMAC-SHA256 signature.
//!
//! ```text
//! [identities…, b"<IDS|MSG>", signature, header, parent_header, metadata, content, buffers…]
//! ```
//! The signature covers exactly the four JSON frames, never the identities or the buffers.

use hmac::{Hmac, Mac};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use sha2::Sha256;

use super::{Header, ProtocolError};

/// The delimiter between routing identities and the message proper.
pub const DELIMITER: &[u8] = b"<IDS|MSG>";

/// Signs and verifies messages with the connection file's key.
#[derive(Clone)]
pub struct Signer {
    /// `None` when the key is empty: then signatures are empty and not checked (spec).
    mac: Option<Hmac<Sha256>>,
}

impl Signer {
    /// A signer for `key` (HMAC-SHA256; an empty key disables signing).
    pub fn new(key: &str) -> Self {
        let mac = (!key.is_empty()).then(|| {
            Hmac::<Sha256>::new_from_slice(key.as_bytes()).expect("HMAC takes any key length")
        });
        Signer { mac }
    }

    /// The hex signature of the four JSON frames.
    pub fn sign(&self, frames: [&[u8]; 4]) -> String {
        match &self.mac {
            None => String::new(),
            Some(mac) => {
                let mut mac = mac.clone();
                for f in frames {
                    mac.update(f);
                }
                hex::encode(mac.finalize().into_bytes())
            }
        }
    }

    /// Whether `signature` (hex) is right for the four frames, compared in constant time.
    pub fn verify(&self, signature: &[u8], frames: [&[u8]; 4]) -> bool {
        match &self.mac {
            None => true,
            Some(mac) => {
                let Ok(expected) = hex::decode(signature) else {
                    return false;
                };
                let mut mac = mac.clone();
                for f in frames {
                    mac.update(f);
                }
                mac.verify_slice(&expected).is_ok()
            }
        }
    }
}

/// One message as it travels on a socket, with its content still as JSON.
#[derive(Debug, Clone, PartialEq)]
pub struct WireMessage {
    /// ROUTER identities of the sender (empty on iopub); replies go back to them.
    pub identities: Vec<Vec<u8>>,
    /// This message's header.
    pub header: Header,
    /// The header of the request this answers; `None` is sent as `{}`.
    pub parent_header: Option<Header>,
    /// Free-form metadata.
    pub metadata: Value,
    /// The content; see [`super::content`] for typed views.
    pub content: Value,
    /// Binary buffers after the content frame (not signed).
    pub buffers: Vec<Vec<u8>>,
}

impl WireMessage {
    /// Parses and verifies the frames of one message. A bad signature is an error (the caller
    /// drops the message and logs it; it is never answered).
    pub fn from_frames(frames: Vec<Vec<u8>>, signer: &Signer) -> Result<Self, ProtocolError> {
        let split = frames
            .iter()
            .position(|f| f == DELIMITER)
            .ok_or(ProtocolError::NoDelimiter)?;
        let mut rest = frames.into_iter();
        let identities: Vec<Vec<u8>> = rest.by_ref().take(split).collect();
        rest.next(); // the delimiter
        let rest: Vec<Vec<u8>> = rest.collect();
        if rest.len() < 5 {
            return Err(ProtocolError::TooFewFrames(rest.len()));
        }
        let (signature, parts) = (&rest[0], &rest[1..5]);
        if !signer.verify(signature, [&parts[0], &parts[1], &parts[2], &parts[3]]) {
            return Err(ProtocolError::BadSignature);
        }
        let header: Header = parse_json(&parts[0], "header")?;
        let parent: Value = parse_json(&parts[1], "parent_header")?;
        let parent_header = match parent {
            Value::Object(ref m) if m.is_empty() => None,
            other => Some(
                serde_json::from_value(other).map_err(|e| ProtocolError::BadJson {
                    frame: "parent_header",
                    reason: e.to_string(),
                })?,
            ),
        };
        Ok(WireMessage {
            identities,
            header,
            parent_header,
            metadata: parse_json(&parts[2], "metadata")?,
            content: parse_json(&parts[3], "content")?,
            buffers: rest[5..].to_vec(),
        })
    }

    /// The signature frame of a message's `frames` (the one after the delimiter), empty if
    /// there is none: what a [`super::ReplayGuard`] remembers once the message is verified.
    pub fn signature_of(frames: &[Vec<u8>]) -> &[u8] {
        frames
            .iter()
            .position(|f| f == DELIMITER)
            .and_then(|i| frames.get(i + 1))
            .map_or(&[], Vec::as_slice)
    }

    /// The signed frames of this message.
    pub fn to_frames(&self, signer: &Signer) -> Vec<Vec<u8>> {
        let header = to_json(&self.header);
        let parent = match &self.parent_header {
            Some(p) => to_json(p),
            None => b"{}".to_vec(),
        };
        let metadata = to_json(&self.metadata);
        let content = to_json(&self.content);
        let signature = signer.sign([&header, &parent, &metadata, &content]);
        let mut frames = self.identities.clone();
        frames.push(DELIMITER.to_vec());
        frames.push(signature.into_bytes());
        frames.extend([header, parent, metadata, content]);
        frames.extend(self.buffers.iter().cloned());
        frames
    }

    /// A new message with no parent and no identities (e.g. for iopub).
    pub fn new(
        msg_type: &str,
        session: &str,
        parent: Option<Header>,
        content: impl Serialize,
    ) -> Self {
        WireMessage {
            identities: Vec::new(),
            header: Header::new(msg_type, session),
            parent_header: parent,
            metadata: Value::Object(Default::default()),
            content: serde_json::to_value(content).expect("contents serialise"),
            buffers: Vec::new(),
        }
    }

    /// A reply to this message: same identities, this header as parent.
    pub fn reply(&self, msg_type: &str, session: &str, content: impl Serialize) -> Self {
        let mut m = WireMessage::new(msg_type, session, Some(self.header.clone()), content);
        m.identities = self.identities.clone();
        m
    }

    /// The content as a typed value.
    pub fn content_as<T: DeserializeOwned>(&self) -> Result<T, ProtocolError> {
        serde_json::from_value(self.content.clone()).map_err(|e| ProtocolError::BadContent {
            msg_type: self.header.msg_type.clone(),
            reason: e.to_string(),
        })
    }
}

fn parse_json<T: DeserializeOwned>(bytes: &[u8], frame: &'static str) -> Result<T, ProtocolError> {
    serde_json::from_slice(bytes).map_err(|e| ProtocolError::BadJson {
        frame,
        reason: e.to_string(),
    })
}

fn to_json(value: &impl Serialize) -> Vec<u8> {
    serde_json::to_vec(value).expect("message parts serialise")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sample() -> WireMessage {
        let mut m = WireMessage::new("execute_request", "s1", None, json!({"code": "1"}));
        m.identities = vec![b"client-id".to_vec()];
        m.buffers = vec![b"\x00binary".to_vec()];
        m
    }

    #[test]
    fn known_vectors() {
        // Computed independently with Python: hmac.new(key, b"".join(frames), hashlib.sha256).
        let s = Signer::new("key");
        let want = "2a31ec0ee8d878c9eece9fb0df79b3b90b2256240163aa5ee50d176d3d1121f8";
        assert_eq!(s.sign([b"a", b"b", b"c", b"d"]), want);
        assert_eq!(
            s.sign([b"ab", b"", b"c", b"d"]),
            want,
            "the frames are concatenated"
        );
        assert!(s.verify(want.as_bytes(), [b"a", b"b", b"c", b"d"]));
        assert!(!s.verify(b"2a31", [b"a", b"b", b"c", b"d"]));
        assert!(!s.verify(b"not hex", [b"a", b"b", b"c", b"d"]));
        let s = Signer::new("secret");
        assert_eq!(
            s.sign([br#"{"a":1}"#, b"{}", b"{}", b"{}"]),
            "5439160579203ae5952244a353b0f81b6ca58a3fb44727217799b393ee79601c"
        );
    }

    #[test]
    fn round_trip_and_signature_excludes_buffers() {
        let s = Signer::new("secret");
        let m = sample();
        let mut frames = m.to_frames(&s);
        assert_eq!(WireMessage::from_frames(frames.clone(), &s).unwrap(), m);
        // Changing a buffer keeps the signature valid: buffers are not signed.
        *frames.last_mut().unwrap() = b"other".to_vec();
        assert!(WireMessage::from_frames(frames.clone(), &s).is_ok());
        // Changing the content breaks it.
        let content_at = frames.len() - 2;
        frames[content_at] = br#"{"code":"2"}"#.to_vec();
        assert!(matches!(
            WireMessage::from_frames(frames, &s),
            Err(ProtocolError::BadSignature)
        ));
    }

    #[test]
    fn wrong_key_and_garbage_are_rejected() {
        let frames = sample().to_frames(&Signer::new("right"));
        assert!(matches!(
            WireMessage::from_frames(frames, &Signer::new("wrong")),
            Err(ProtocolError::BadSignature)
        ));
        assert!(matches!(
            WireMessage::from_frames(vec![b"x".to_vec()], &Signer::new("k")),
            Err(ProtocolError::NoDelimiter)
        ));
        let short = vec![DELIMITER.to_vec(), b"sig".to_vec()];
        assert!(matches!(
            WireMessage::from_frames(short, &Signer::new("k")),
            Err(ProtocolError::TooFewFrames(1))
        ));
    }

    #[test]
    fn signature_of_finds_the_frame_after_the_delimiter() {
        let s = Signer::new("k");
        let frames = sample().to_frames(&s);
        let header = &frames[3];
        let want = s.sign([header, &frames[4], &frames[5], &frames[6]]);
        assert_eq!(WireMessage::signature_of(&frames), want.as_bytes());
        assert_eq!(WireMessage::signature_of(&[b"x".to_vec()]), b"");
        assert_eq!(WireMessage::signature_of(&[DELIMITER.to_vec()]), b"");
    }

    #[test]
    fn empty_key_means_unsigned() {
        let s = Signer::new("");
        let frames = sample().to_frames(&s);
        assert_eq!(frames[2], b"");
        assert!(WireMessage::from_frames(frames, &s).is_ok());
    }

    #[test]
    fn empty_parent_is_none_and_sent_as_empty_object() {
        let s = Signer::new("k");
        let frames = WireMessage::new("status", "s", None, json!({})).to_frames(&s);
        assert_eq!(frames[3], b"{}");
    }
}
