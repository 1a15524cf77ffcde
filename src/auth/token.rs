//! Session tokens: an EdDSA-signed JWT that lists the signed-in users of one browser (current
//! first), each with the session row it belongs to. `exp` is the session lifetime; `accessExp`
//! ends the window in which the token is trusted without a database look-up.
//!
//! Verification accepts EdDSA only, so `alg: none`, HS256 signed with the public key and any
//! other algorithm are refused before the signature is even considered.

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
