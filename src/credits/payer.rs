//! Whose account pays: a person, or the team a chat or run belongs to. Shown as the user id or
//! `team:<id>`, which names the starting grant's ledger key.

use crate::ids::{TeamId, UserId};

/// Whose account pays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Payer {
    User(UserId),
    Team(TeamId),
}

impl Payer {
    /// The team when there is one, else the person.
    pub fn of(user: UserId, team: Option<TeamId>) -> Self {
        team.map_or(Payer::User(user), Payer::Team)
    }
}

impl std::fmt::Display for Payer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Payer::User(user) => write!(f, "{user}"),
            Payer::Team(team) => write!(f, "team:{team}"),
        }
    }
}
