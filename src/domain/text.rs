//! Chat text parsed at the edge: a `MessageText` is 1 to 32,768 characters with something other
//! than whitespace in it; a `ChatName` is at most 128 characters, trimmed. Once a handler has
//! one, the services and SQL below it need not check again.

/// The longest message text (the original's limit; also a CHECK in the schema).
pub const MAX_MESSAGE_CHARS: usize = 32_768;

/// The longest chat name.
pub const MAX_CHAT_NAME_CHARS: usize = 128;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a message is 1 to 32,768 characters")]
pub struct InvalidText;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a chat name is at most 128 characters")]
pub struct InvalidChatName;

/// A message's text, as written (not trimmed: leading spaces and line breaks are the author's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageText(String);

impl MessageText {
    pub fn parse(text: String) -> Result<Self, InvalidText> {
        if text.trim().is_empty() || text.chars().count() > MAX_MESSAGE_CHARS {
            return Err(InvalidText);
        }
        Ok(Self(text))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A chat's name, trimmed (it may be empty: the chat is then named by its participants).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ChatName(String);

impl ChatName {
    pub fn parse(name: &str) -> Result<Self, InvalidChatName> {
        let name = name.trim();
        if name.chars().count() > MAX_CHAT_NAME_CHARS {
            return Err(InvalidChatName);
        }
        Ok(Self(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_text_bounds() {
        assert!(MessageText::parse("hi".into()).is_ok());
        assert!(MessageText::parse("  \n ".into()).is_err());
        assert!(MessageText::parse("é".repeat(MAX_MESSAGE_CHARS)).is_ok());
        assert!(MessageText::parse("é".repeat(MAX_MESSAGE_CHARS + 1)).is_err());
        assert_eq!(
            MessageText::parse(" kept ".into()).unwrap().as_str(),
            " kept "
        );
    }

    #[test]
    fn chat_names_are_trimmed_and_bounded() {
        assert_eq!(ChatName::parse("  Team  ").unwrap().as_str(), "Team");
        assert!(ChatName::parse(&"n".repeat(129)).is_err());
        assert_eq!(ChatName::parse("").unwrap(), ChatName::default());
    }
}
