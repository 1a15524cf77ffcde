//! Readers: who reads, on routes that also serve public data (signed in, an API key, or nobody),
//! and [`SessionReader`], the one extractor that takes a session the middleware left for the
//! handler's statement to confirm ([`super::session`]'s `CONFIRMED_BY_HANDLER`).

use std::future::{Ready, ready};

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpMessage, HttpRequest};

use super::session::{AuthState, invalid_api_key, unconfirmed, within};
use crate::auth::AuthFailure;
use crate::auth::api_keys::Permission;
use crate::http::error::ApiError;
use crate::ids::{SessionId, UserId};

/// Who is reading, for routes that also serve public data: a signed-in user, the owner of an API
/// key holding `ReadPrivate`, or nobody (signed out, or a key with only `ReadPublic`: public
/// data only). An unknown or disabled key is refused.
#[derive(Debug, Clone, Copy)]
pub struct Reader(pub Option<UserId>);

impl FromRequest for Reader {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(match req.extensions().get::<AuthState>() {
            // A team's key reads as nobody here: it sees public data only, not its maker's.
            Some(AuthState::ApiKey(key)) => Ok(Reader(
                (key.team.is_none() && key.permissions.contains(&Permission::ReadPrivate))
                    .then_some(key.user),
            )),
            Some(AuthState::BadApiKey) => Err(invalid_api_key()),
            Some(AuthState::Authenticated(a)) => Ok(Reader(Some(a.current().id))),
            Some(AuthState::Unconfirmed(_)) => Err(unconfirmed()),
            _ => Ok(Reader(None)),
        })
    }
}

/// [`Reader`] on a route that also takes a team's key holding `ReadPrivate`: the reader is then
/// the key's maker and `team` the key's team, within which the handler keeps the read.
#[derive(Debug, Clone, Copy)]
pub struct TeamReader {
    pub user: Option<UserId>,
    pub team: Option<crate::ids::TeamId>,
}

impl TeamReader {
    /// Refuses a team's key reading outside its team (`team` being what the read touches).
    pub fn within(&self, team: Option<crate::ids::TeamId>) -> Result<(), ApiError> {
        within(self.team, team)
    }
}

impl FromRequest for TeamReader {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(match req.extensions().get::<AuthState>() {
            Some(AuthState::ApiKey(key)) if key.team.is_some() => Ok(TeamReader {
                user: key
                    .permissions
                    .contains(&Permission::ReadPrivate)
                    .then_some(key.user),
                team: key.team,
            }),
            _ => Reader::from_request(req, &mut Payload::None)
                .into_inner()
                .map(|reader| TeamReader {
                    user: reader.0,
                    team: None,
                }),
        })
    }
}

/// [`TeamReader`] on a route of `session::CONFIRMED_BY_HANDLER`: `confirm` is the signed-in session the
/// middleware did not look up. The handler passes it to its statement, which checks the
/// session's row; when that row says the session ended, the handler calls [`Self::ended`] and
/// reads as nobody, which is what a revoked token reads as everywhere else.
#[derive(Debug, Clone, Copy)]
pub struct SessionReader {
    pub reader: TeamReader,
    pub confirm: Option<SessionId>,
}

impl SessionReader {
    /// The session turned out revoked: the middleware then removes the cookie, as for a token
    /// refused up front. Returns the reader the request continues as (nobody).
    pub fn ended(&self, req: &HttpRequest) -> TeamReader {
        req.extensions_mut()
            .insert(AuthState::Failed(AuthFailure::Revoked));
        TeamReader {
            user: None,
            team: None,
        }
    }
}

impl FromRequest for SessionReader {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let unconfirmed = match req.extensions().get::<AuthState>() {
            Some(AuthState::Unconfirmed(a)) => Some((a.current().id, a.current().session_id)),
            _ => None,
        };
        ready(match unconfirmed {
            Some((user, session)) => Ok(SessionReader {
                reader: TeamReader {
                    user: Some(user),
                    team: None,
                },
                confirm: Some(session),
            }),
            None => TeamReader::from_request(req, &mut Payload::None)
                .into_inner()
                .map(|reader| SessionReader {
                    reader,
                    confirm: None,
                }),
        })
    }
}
