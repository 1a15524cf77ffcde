//! Authentication. For now: password hashing, used by the seed; sessions, tokens and API keys
//! arrive with the authentication issue.

pub mod password;
