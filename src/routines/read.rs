//! Reading routines: one version (by its id, or what a run of an id starts: the version, or a
//! routine's latest), and a page of someone's or a team's latest versions. Who may read is
//! `access::CAN_READ`.

use super::access::CAN_READ;
use super::{COLUMNS, RoutineError, RoutineService, RoutineVersion};
use crate::ids::{ResourceVersionId, TeamId, UserId};
use crate::teams::TeamError;

impl RoutineService {
    /// A version `reader` may see (`access::CAN_READ`). Others get `VersionNotFound`.
    pub async fn version(
        &self,
        version: ResourceVersionId,
        reader: Option<UserId>,
    ) -> Result<RoutineVersion, RoutineError> {
        sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM resource_versions v JOIN resources r ON r.id = v.resource_id
              WHERE v.id = $1 AND {CAN_READ}"
        )))
        .bind(version)
        .bind(reader)
        .fetch_optional(&self.pool)
        .await?
        .ok_or(RoutineError::VersionNotFound)
    }

    /// What `id` names for a run, as `reader` may see it: a routine version, or a routine (then
    /// its latest version). Ids are unique across both (one Snowflake generator), so at most one
    /// matches. Others get `VersionNotFound`.
    pub async fn version_to_run(
        &self,
        id: i64,
        reader: Option<UserId>,
    ) -> Result<ResourceVersionId, RoutineError> {
        sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT v.id FROM resource_versions v JOIN resources r ON r.id = v.resource_id
              WHERE (v.id = $1 OR (r.id = $1 AND v.is_latest)) AND {CAN_READ}
              LIMIT 1"
        )))
        .bind(id)
        .bind(reader)
        .fetch_optional(&self.pool)
        .await?
        .ok_or(RoutineError::VersionNotFound)
    }

    /// The latest version of each of `owner`'s routines (or, with `team`, of that team's, for
    /// its members), newest first; `take + 1` rows.
    pub async fn list(
        &self,
        owner: UserId,
        team: Option<TeamId>,
        take: i64,
        before: Option<i64>,
    ) -> Result<Vec<RoutineVersion>, RoutineError> {
        let mut conn = self.pool.acquire().await?;
        if let Some(team) = team {
            let access = crate::teams::require_in(&mut conn, team, Some(owner), None).await?;
            if !access.member {
                return Err(RoutineError::Team(TeamError::NotAllowed));
            }
        }
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM resource_versions v JOIN resources r ON r.id = v.resource_id
              WHERE CASE WHEN $4::BIGINT IS NULL THEN r.owner_id = $1 ELSE r.team_id = $4 END
                AND v.is_latest AND ($2::BIGINT IS NULL OR r.id < $2)
              ORDER BY r.id DESC LIMIT $3"
        )))
        .bind(owner)
        .bind(before)
        .bind(take + 1)
        .bind(team)
        .fetch_all(&mut *conn)
        .await?)
    }
}
