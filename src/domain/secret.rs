//! Secrets we hand out and the one-way form we keep of them: single-use codes (for links in
//! mails, refresh tokens, invite secrets) and their SHA-256 (the codes carry ~124 bits, so a
//! fast hash is enough).

use crate::ids::PublicId;

/// A fresh single-use code for a link in an email: 24 random characters of 0-9a-z (~124 bits).
pub fn new_code() -> String {
    let mut code = PublicId::generate().as_str().to_owned();
    code.push_str(PublicId::generate().as_str());
    code
}

pub fn sha256_hex(text: &str) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, text.as_bytes());
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}
