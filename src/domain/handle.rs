//! A user or team handle: 3–16 ASCII letters, digits or underscores, as in the original.
//! Handles compare case-insensitively; the database enforces that with a unique index on
//! `lower(handle)`, so the original spelling is kept for display.

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a handle is 3-16 letters, digits or underscores")]
pub struct InvalidHandle;

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(transparent)]
pub struct Handle(String);

impl Handle {
    pub fn parse(text: &str) -> Result<Self, InvalidHandle> {
        let ok = (3..=16).contains(&text.len())
            && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if ok {
            Ok(Self(text.to_owned()))
        } else {
            Err(InvalidHandle)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_and_rejects() {
        assert!(Handle::parse("Valyxa").is_ok());
        assert!(Handle::parse("a_1").is_ok());
        for bad in ["ab", "seventeen_chars_x", "has space", "émile", ""] {
            assert_eq!(Handle::parse(bad), Err(InvalidHandle), "{bad}");
        }
    }
}
