//! `GET /api/v2/credits?teamId`: the caller's credit balance, or a team's to its members
//! (`crate::credits`: who pays is the `Payer`). A team's API key reads its team's account.
//!
//! caller (`RequireTeam`) ─▶ the team asked, if any (`TeamService::require`: members only)
//!   ─▶ `Credits::balance(payer)` ─▶ `{"balance"}`

use actix_web::{HttpResponse, get, web};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::errors::Code;
use crate::http::auth::session::{ReadPrivate, RequireTeam};
use crate::http::error::ApiError;
use crate::http::path::parse_id;
use crate::http::reply::{Envelope, ok};
use crate::ids::TeamId;
use crate::state::AppState;

pub fn config(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(credits);
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct CreditsQuery {
    /// A team the caller belongs to: its account (which pays for bots in its chats and for its
    /// runs) instead of the caller's.
    #[param(value_type = Option<TeamId>)]
    team_id: Option<String>,
}

/// The caller's credit balance, or a team's to its members.
#[utoipa::path(
    tag = "credits",
    params(CreditsQuery),
    responses((status = 200, description = "The balance", body = Envelope<Balance>)),
)]
#[get("/credits")]
pub async fn credits(
    caller: RequireTeam<ReadPrivate>,
    state: web::Data<AppState>,
    query: web::Query<CreditsQuery>,
) -> Result<HttpResponse, ApiError> {
    let asked = query
        .team_id
        .as_deref()
        .map(parse_id::<TeamId>)
        .transpose()?;
    if asked.is_some() {
        caller.within(asked)?;
    }
    // A team's key reads its team's account.
    let payer = match asked.or(caller.team) {
        None => crate::credits::Payer::User(caller.user),
        Some(team) => {
            let access = state
                .people
                .teams
                .require(team, Some(caller.user), None)
                .await?;
            if !access.member {
                return Err(ApiError::of(
                    Code::NotATeamMember,
                    "Only members see a team's credits",
                ));
            }
            crate::credits::Payer::Team(team)
        }
    };
    let balance = state.money.credits.balance(payer).await?;
    Ok(ok(Balance {
        balance: balance.to_string(),
    }))
}

/// `GET /credits`: `{"balance"}`.
#[derive(Serialize, ToSchema)]
pub struct Balance {
    /// Credits, as a decimal string (a 64-bit integer).
    #[schema(example = "1500000")]
    balance: String,
}
