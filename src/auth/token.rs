//! Session tokens: an EdDSA-signed JWT that lists the signed-in users of one browser (current
//! first), each with the session row it belongs to. `exp` is the session lifetime; `accessExp`
//! ends the window in which the token is trusted without a database look-up.
//!
//! Verification accepts EdDSA only, so `alg: none`, HS256 signed with the public key and any
//! other algorithm are refused before the signature is even considered.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, Header, Validation};

use serde::{Deserialize, Serialize};

use super::keys::TokenKeys;
use crate::ids::{SessionId, UserId};

pub const ISSUER: &str = "vrooli";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenUser {
    pub id: UserId,
    pub session_id: SessionId,
    /// Optional display fields: trimmed first when the token would not fit a cookie.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handle: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Claims {
    pub iss: String,
    pub iat: i64,
    /// When the longest-lived session in the token ends (seconds since the epoch).
    pub exp: i64,
    /// Until when (seconds since the epoch) the token is trusted without checking sessions.
    pub access_exp: i64,
    /// Signed-in users, the current one first. Never empty.
    pub users: Vec<TokenUser>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the token is not valid")]
    Invalid,
    #[error("the token has expired")]
    Expired,
    #[error("the signed-in user does not fit in a token of {0} bytes")]
    TooLarge(usize),
    #[error("signing the token failed")]
    Sign,
}

/// Signs a token for `users` (current first), shrinking it to `max_bytes`: optional fields of
/// the other users go first, then those of the current user, then the other users themselves.
pub fn issue(
    keys: &TokenKeys,
    mut users: Vec<TokenUser>,
    now: DateTime<Utc>,
    access_exp: DateTime<Utc>,
    exp: DateTime<Utc>,
    max_bytes: usize,
) -> Result<String, TokenError> {
    let sign = |users: &[TokenUser]| {
        let claims = Claims {
            iss: ISSUER.into(),
            iat: now.timestamp(),
            exp: exp.timestamp(),
            access_exp: access_exp.timestamp(),
            users: users.to_vec(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::EdDSA), &claims, &keys.encoding)
            .map_err(|_| TokenError::Sign)
    };
    let token = sign(&users)?;
    if token.len() <= max_bytes {
        return Ok(token);
    }
    for user in users.iter_mut().skip(1) {
        user.handle = None;
        user.name = None;
    }
    let token = sign(&users)?;
    if token.len() <= max_bytes {
        return Ok(token);
    }
    if let Some(current) = users.first_mut() {
        current.handle = None;
        current.name = None;
    }
    while !users.is_empty() {
        let token = sign(&users)?;
        if token.len() <= max_bytes {
            return Ok(token);
        }
        if users.len() == 1 {
            break;
        }
        users.pop();
    }
    Err(TokenError::TooLarge(max_bytes))
}

/// Checks signature, algorithm, issuer and `exp`; returns the claims.
/// Tokens whose signature was checked, by their text. A token's claims cannot change without
/// changing its text, so a hit needs no signature check; its expiry is checked again on every
/// hit. Bounded: at `max` entries it is emptied (a burst of new tokens costs one check each, as
/// without a cache).
pub struct VerifiedTokens {
    max: usize,
    tokens: dashmap::DashMap<Box<str>, Arc<Claims>>,
}

impl VerifiedTokens {
    pub fn new(max: usize) -> Self {
        Self {
            max,
            tokens: dashmap::DashMap::new(),
        }
    }

    /// `verify`, from the cache when the same token was verified before.
    pub fn verify(
        &self,
        keys: &TokenKeys,
        token: &str,
        now: i64,
    ) -> Result<Arc<Claims>, TokenError> {
        if let Some(claims) = self.tokens.get(token) {
            if claims.exp <= now {
                drop(claims);
                self.tokens.remove(token);
                return Err(TokenError::Expired);
            }
            return Ok(Arc::clone(&claims));
        }
        let claims = Arc::new(verify(keys, token)?);
        if self.max > 0 {
            if self.tokens.len() >= self.max {
                self.tokens.clear();
            }
            self.tokens.insert(token.into(), Arc::clone(&claims));
        }
        Ok(claims)
    }
}

pub fn verify(keys: &TokenKeys, token: &str) -> Result<Claims, TokenError> {
    let mut validation = Validation::new(Algorithm::EdDSA);
    validation.set_issuer(&[ISSUER]);
    validation.set_required_spec_claims(&["exp", "iss"]);
    validation.leeway = 0;
    let claims = jsonwebtoken::decode::<Claims>(token, &keys.decoding, &validation)
        .map_err(|e| match e.kind() {
            jsonwebtoken::errors::ErrorKind::ExpiredSignature => TokenError::Expired,
            _ => TokenError::Invalid,
        })?
        .claims;
    if claims.users.is_empty() {
        return Err(TokenError::Invalid);
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> TokenKeys {
        let dir = std::env::temp_dir().join(format!("vrooli-token-test-{}", std::process::id()));
        let (private, public) = (dir.join("k.pem"), dir.join("k.pub.pem"));
        super::super::keys::generate_into(&private, &public).unwrap();
        let settings = crate::config::Settings::load(&crate::config::Sources::default())
            .unwrap()
            .auth;
        TokenKeys::load(&crate::config::AuthSettings {
            private_key_file: private.display().to_string(),
            public_key_file: public.display().to_string(),
            ..settings
        })
        .unwrap()
    }

    #[test]
    fn the_cache_skips_only_the_signature_check() {
        let keys = keys();
        let now = Utc::now();
        let user = TokenUser {
            id: UserId(1),
            session_id: SessionId(2),
            handle: None,
            name: None,
        };
        let exp = now + chrono::Duration::seconds(60);
        let token = issue(&keys, vec![user], now, exp, exp, 4096).unwrap();
        let cache = VerifiedTokens::new(2);
        let first = cache.verify(&keys, &token, now.timestamp()).unwrap();
        let again = cache.verify(&keys, &token, now.timestamp()).unwrap();
        assert!(
            Arc::ptr_eq(&first, &again),
            "the second check is the cached one"
        );
        // Expiry is checked on every hit.
        assert_eq!(
            cache.verify(&keys, &token, exp.timestamp()).unwrap_err(),
            TokenError::Expired
        );
        // A token with another signature is checked, and refused, not matched by its claims.
        // (A character inside the signature, not its last one, whose low bits are padding.)
        let at = token.len() - 10;
        let flipped = if &token[at..=at] == "A" { "B" } else { "A" };
        let forged = format!("{}{flipped}{}", &token[..at], &token[at + 1..]);
        assert_eq!(
            cache.verify(&keys, &forged, now.timestamp()).unwrap_err(),
            TokenError::Invalid
        );
        // Bounded: a third token empties the cache of two.
        let other = issue(
            &keys,
            vec![TokenUser {
                id: UserId(3),
                session_id: SessionId(4),
                handle: None,
                name: None,
            }],
            now,
            exp,
            exp,
            4096,
        )
        .unwrap();
        cache.verify(&keys, &token, now.timestamp()).unwrap();
        cache.verify(&keys, &other, now.timestamp()).unwrap();
        let third = issue(
            &keys,
            vec![TokenUser {
                id: UserId(5),
                session_id: SessionId(6),
                handle: None,
                name: None,
            }],
            now,
            exp,
            exp,
            4096,
        )
        .unwrap();
        cache.verify(&keys, &third, now.timestamp()).unwrap();
        assert!(cache.tokens.len() <= 2);
        let _ = std::fs::remove_dir_all(
            std::env::temp_dir().join(format!("vrooli-token-test-{}", std::process::id())),
        );
    }
}
