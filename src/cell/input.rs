//! [`CellInput`]: how a running cell asks the person at the notebook for a line of input — an
//! `input_request` on the stdin channel, answered by an `input_reply` ([messaging spec,
//! "Messages on the stdin ROUTER/DEALER channel"][spec]).
//!
//! The request goes to the identities of the `execute_request`'s sender, with that request as
//! its parent; the frontend shows a text box (a password box for `password: true`) and sends
//! back what was typed. A cell may only ask when its request said `allow_stdin: true`; asking
//! otherwise, or being interrupted while waiting, is an [`InputError`] and never an empty
//! answer, so that nothing runs on with a value the person never typed.
//!
//! [spec]: https://jupyter-client.readthedocs.io/en/latest/messaging.html#messages-on-the-stdin-router-dealer-channel

use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError};
use serde_json::json;
use tokio::sync::mpsc::UnboundedSender;

use super::Interrupt;
use crate::protocol::content::InputReply;
use crate::protocol::WireMessage;

/// How often a wait for input looks at the interrupt flag.
const INTERRUPT_POLL: Duration = Duration::from_millis(50);

/// Why a request for input got no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InputError {
    /// The execute_request said `allow_stdin: false` (nbclient, `jupyter execute`, a client
    /// that has no text box): nothing was asked.
    #[error("input was requested, but this client does not accept input (allow_stdin is false)")]
    NotAllowed,
    /// The cell was interrupted while it waited for the answer.
    #[error("interrupted while waiting for input")]
    Interrupted,
    /// The kernel is shutting down: no answer can arrive any more.
    #[error("the kernel's stdin channel is closed")]
    Closed,
}

impl InputError {
    /// The `ename` of the cell's error: IPython's names, which frontends and users know.
    pub fn ename(self) -> &'static str {
        match self {
            InputError::NotAllowed => "StdinNotImplementedError",
            InputError::Interrupted => "KeyboardInterrupt",
            InputError::Closed => "StdinClosed",
        }
    }
}

/// The stdin channel of one execution: asks its frontend for input and waits for the answer.
///
/// ```text
/// let name = input.request("Your name: ", false)?;
/// ```
pub struct CellInput {
    /// `allow_stdin` of the execute_request.
    allowed: bool,
    /// The execute_request: its identities address the frontend, its header is the parent.
    parent: Option<WireMessage>,
    /// The kernel's session id, for the headers of its input_requests.
    session: String,
    /// Where input_requests go (the server signs and sends them on the stdin socket).
    to_frontend: Option<UnboundedSender<WireMessage>>,
    /// Every verified message that arrived on the stdin socket, in order.
    from_frontend: Receiver<WireMessage>,
    /// The interrupt of the running request.
    interrupt: Interrupt,
}

impl CellInput {
    /// The stdin channel of `request` (an execute_request): input_requests go to `to_frontend`,
    /// replies come from `from_frontend`, and `interrupt` ends a wait.
    pub fn new(
        request: &WireMessage,
        allowed: bool,
        session: &str,
        to_frontend: UnboundedSender<WireMessage>,
        from_frontend: Receiver<WireMessage>,
        interrupt: Interrupt,
    ) -> Self {
        CellInput {
            allowed,
            parent: Some(request.clone()),
            session: session.to_owned(),
            to_frontend: Some(to_frontend),
            from_frontend,
            interrupt,
        }
    }

    /// A channel that refuses every request ([`InputError::NotAllowed`]): for code that runs on
    /// no frontend's behalf, such as the `%%python` bridge's own set-up code.
    pub fn refused() -> Self {
        CellInput {
            allowed: false,
            parent: None,
            session: String::new(),
            to_frontend: None,
            from_frontend: crossbeam_channel::never(),
            interrupt: Interrupt::default(),
        }
    }

    /// Whether the frontend accepts input requests (`allow_stdin` of the execute_request).
    pub fn allowed(&self) -> bool {
        self.allowed
    }

    /// Asks the frontend for one line, showing `prompt` (in a password box if `password`), and
    /// waits for the answer, or for an interrupt. Answers left over from earlier requests are
    /// dropped first, as ipykernel does; a reply whose parent is another input_request is not
    /// this one's. A reply without a parent is taken (jupyter_client's `input()` sends none).
    pub fn request(&self, prompt: &str, password: bool) -> Result<String, InputError> {
        let (Some(parent), Some(to_frontend), true) =
            (&self.parent, &self.to_frontend, self.allowed)
        else {
            return Err(InputError::NotAllowed);
        };
        while self.from_frontend.try_recv().is_ok() {}
        let request = parent.reply(
            "input_request",
            &self.session,
            json!({"prompt": prompt, "password": password}),
        );
        let id = request.header.msg_id.clone();
        to_frontend.send(request).map_err(|_| InputError::Closed)?;
        loop {
            self.interrupt
                .check()
                .map_err(|_| InputError::Interrupted)?;
            let message = match self.from_frontend.recv_timeout(INTERRUPT_POLL) {
                Ok(message) => message,
                Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => return Err(InputError::Closed),
            };
            if let Some(value) = answer_to(&id, &message) {
                return Ok(value);
            }
        }
    }
}

/// The value of `message` if it is the input_reply to the input_request `id`.
fn answer_to(id: &str, message: &WireMessage) -> Option<String> {
    if message.header.msg_type != "input_reply" {
        tracing::warn!(
            "stdin: ignored a {} (only input_reply is expected)",
            message.header.msg_type
        );
        return None;
    }
    if let Some(parent) = &message.parent_header {
        if parent.msg_id != id {
            tracing::warn!("stdin: ignored an input_reply to an earlier input_request");
            return None;
        }
    }
    match message.content_as::<InputReply>() {
        Ok(reply) => Some(reply.value),
        Err(e) => {
            tracing::warn!("stdin: ignored a malformed input_reply: {e}");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crossbeam_channel::unbounded;
    use tokio::sync::mpsc::unbounded_channel;

    fn execute_request() -> WireMessage {
        let mut request = WireMessage::new("execute_request", "client", None, json!({"code": ""}));
        request.identities = vec![b"frontend".to_vec()];
        request
    }

    #[test]
    fn a_request_goes_to_the_executions_sender_and_takes_its_reply() {
        let (to_frontend, mut sent) = unbounded_channel();
        let (replies, from_frontend) = unbounded();
        let execute = execute_request();
        let input = CellInput::new(
            &execute,
            true,
            "kernel",
            to_frontend,
            from_frontend,
            Interrupt::default(),
        );
        replies
            .send(WireMessage::new(
                "input_reply",
                "c",
                None,
                json!({"value": "stale"}),
            ))
            .unwrap();
        let frontend = std::thread::spawn(move || {
            let request = sent.blocking_recv().unwrap();
            let answer = |parent: Option<_>, value: &str| {
                WireMessage::new("input_reply", "c", parent, json!({ "value": value }))
            };
            // Another request's answer and other message types are not this request's answer.
            let mut other = request.header.clone();
            other.msg_id = "another".into();
            replies.send(answer(Some(other), "wrong")).unwrap();
            replies
                .send(WireMessage::new("execute_request", "c", None, json!({})))
                .unwrap();
            replies
                .send(answer(Some(request.header.clone()), "Ada"))
                .unwrap();
            request
        });
        assert_eq!(input.request("Name: ", true), Ok("Ada".to_owned()));
        let request = frontend.join().unwrap();
        assert_eq!(request.header.msg_type, "input_request");
        assert_eq!(request.identities, execute.identities);
        assert_eq!(request.parent_header, Some(execute.header));
        assert_eq!(
            request.content,
            json!({"prompt": "Name: ", "password": true})
        );
    }

    #[test]
    fn a_client_without_stdin_is_never_asked() {
        let (to_frontend, mut sent) = unbounded_channel();
        let (_replies, from_frontend) = unbounded();
        let input = CellInput::new(
            &execute_request(),
            false,
            "kernel",
            to_frontend,
            from_frontend,
            Interrupt::default(),
        );
        assert_eq!(input.request("?", false), Err(InputError::NotAllowed));
        assert!(sent.try_recv().is_err(), "no input_request was sent");
        assert_eq!(
            CellInput::refused().request("?", false),
            Err(InputError::NotAllowed)
        );
    }

    #[test]
    fn an_interrupt_ends_the_wait() {
        let (to_frontend, mut sent) = unbounded_channel();
        let (_replies, from_frontend) = unbounded();
        let interrupt = Interrupt::default();
        let input = CellInput::new(
            &execute_request(),
            true,
            "kernel",
            to_frontend,
            from_frontend,
            interrupt.clone(),
        );
        let raiser = std::thread::spawn(move || {
            sent.blocking_recv().unwrap();
            interrupt.raise();
        });
        assert_eq!(input.request("?", false), Err(InputError::Interrupted));
        raiser.join().unwrap();
    }
}
