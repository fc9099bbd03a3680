//! One message of a conversation.

/// A message: who speaks (`system`, `user`, `assistant`, or any role a template knows) and
/// what they say. Templates see it as `message.role` and `message.content`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// The speaker's role.
    pub role: String,
    /// The text of the message.
    pub content: String,
}

impl Message {
    /// A message of any role.
    pub fn new(role: impl Into<String>, content: impl Into<String>) -> Message {
        Message {
            role: role.into(),
            content: content.into(),
        }
    }

    /// A system message (instructions for the whole conversation).
    pub fn system(content: impl Into<String>) -> Message {
        Message::new("system", content)
    }

    /// A user's message.
    pub fn user(content: impl Into<String>) -> Message {
        Message::new("user", content)
    }

    /// The model's reply.
    pub fn assistant(content: impl Into<String>) -> Message {
        Message::new("assistant", content)
    }
}
