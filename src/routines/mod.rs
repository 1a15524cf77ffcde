//! Routines: stored as a `resources` row (type Routine) and its `resource_versions` (the config
//! JSON holding the graph). Every write parses and checks the graph (`graph.rs`; the original's
//! `Sequential` and single-step kinds in `sequential.rs`) and the routine versions it calls.
//!
//! ```text
//! POST /resource ─▶ RoutineService::create ─▶ load_graph (check) ─▶ subroutines exist? ─▶ rows
//! POST /resourceVersion ─▶ add_version (the new one is latest)
//! PUT /resourceVersion/{id} ─▶ update (only while no run has used it: runs keep snapshots, but
//!                              a version someone ran stays what they ran)
//! GET /resourceVersion/{id} ─▶ version (owner, team members, or anyone when it is public)
//! ```
//!
//! Who may read and change a routine, a person's or a team's: `access.rs`.

pub(crate) mod access;
mod check;
mod completes;
mod errors;
pub mod graph;
mod import;
mod read;
mod sequential;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use sqlx::{PgConnection, PgPool};

pub use errors::RoutineError;
pub use graph::{Graph, GraphError, GraphLimits};
pub use import::{ExportedResource, ImportOutcome};

use crate::ids::{PublicId, ResourceId, ResourceVersionId, Snowflake, TeamId, UserId};
use crate::teams::{TeamError, TeamPermission};
use access::{CAN_READ, CAN_WRITE};

/// A routine version as the API shows it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct RoutineVersion {
    pub id: ResourceVersionId,
    pub resource_id: ResourceId,
    pub name: String,
    pub is_private: bool,
    pub owner_id: Option<UserId>,
    /// The team whose routine it is (then it has no owner).
    pub team_id: Option<TeamId>,
    pub version_label: String,
    pub resource_sub_type: String,
    pub config: Value,
    pub is_latest: bool,
    #[serde(serialize_with = "crate::domain::rfc3339::utc")]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "crate::domain::rfc3339::utc")]
    pub updated_at: DateTime<Utc>,
}

const COLUMNS: &str =
    "v.id, v.resource_id, r.name, r.is_private, r.owner_id, r.team_id, v.version_label,
    v.resource_sub_type, v.config, v.is_latest, v.created_at, v.updated_at";

/// A new routine (its first version).
pub struct NewRoutine {
    /// A team's routine (its makers need `ManageRoutines` there), else the caller's own.
    pub team: Option<TeamId>,
    pub name: String,
    pub is_private: bool,
    pub version_label: String,
    pub sub_type: String,
    pub config: Value,
}

#[derive(Clone)]
pub struct RoutineService {
    pool: PgPool,
    ids: std::sync::Arc<Snowflake>,
    limits: GraphLimits,
    /// The most resources one import may hold.
    max_import: usize,
}

/// The graph of a version's config, parsed and checked: `config.graph` when there is one (by its
/// `__type`: `Graph-1.0` or the original's `Sequential`), else the single-step kind.
pub fn load_graph(
    sub_type: &str,
    config: &Value,
    limits: GraphLimits,
) -> Result<Graph, GraphError> {
    let graph = match config.get("graph") {
        Some(graph) if !graph.is_null() => {
            match graph.get("__type").and_then(Value::as_str).unwrap_or("") {
                "Graph-1.0" => graph::parse_graph_1(graph.get("schema").unwrap_or(&Value::Null))?,
                "Sequential" => sequential::parse(graph)?,
                other => return Err(GraphError::Unsupported(other.to_owned())),
            }
        }
        _ => sequential::single_step(sub_type, config)?,
    };
    check::check(&graph, limits)?;
    Ok(Graph {
        optional_inputs: optional_inputs(config),
        ..graph
    })
}

/// The fields of the version's form (`config.formInput.schema.elements`, the original's
/// shape) marked `isRequired: false`. An element that does not say stays required.
fn optional_inputs(config: &Value) -> std::collections::BTreeSet<String> {
    let elements = config
        .pointer("/formInput/schema/elements")
        .and_then(Value::as_array);
    elements
        .into_iter()
        .flatten()
        .filter(|e| e.get("isRequired") == Some(&Value::Bool(false)))
        .filter_map(|e| e.get("fieldName").and_then(Value::as_str))
        .map(str::to_owned)
        .collect()
}

fn check_label(label: &str) -> Result<(), RoutineError> {
    if label.is_empty() || label.chars().count() > 32 || label.chars().any(char::is_control) {
        return Err(RoutineError::Invalid(
            "versionLabel is 1-32 characters, no control characters".into(),
        ));
    }
    Ok(())
}

impl RoutineService {
    pub fn new(
        pool: PgPool,
        ids: std::sync::Arc<Snowflake>,
        limits: GraphLimits,
        max_import: usize,
    ) -> Self {
        Self {
            pool,
            ids,
            limits,
            max_import,
        }
    }

    pub fn limits(&self) -> GraphLimits {
        self.limits
    }

    /// Checks a config: its graph, and that every routine version it calls exists and may be
    /// used by `user` (theirs, or public).
    async fn check(
        &self,
        conn: &mut PgConnection,
        user: UserId,
        sub_type: &str,
        config: &Value,
    ) -> Result<Graph, RoutineError> {
        let graph = load_graph(sub_type, config, self.limits)?;
        for node in &graph.nodes {
            if let graph::Kind::Subroutine { version_id, .. } = &node.kind {
                let usable: Option<bool> = match version_id.parse::<i64>() {
                    Ok(id) => {
                        sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                            "SELECT {CAN_READ}
                               FROM resource_versions v JOIN resources r ON r.id = v.resource_id
                              WHERE v.id = $1"
                        )))
                        .bind(id)
                        .bind(user)
                        .fetch_optional(&mut *conn)
                        .await?
                    }
                    Err(_) => None,
                };
                if usable != Some(true) {
                    return Err(RoutineError::MissingSubroutine {
                        node: node.id.clone(),
                        version: version_id.clone(),
                    });
                }
            }
        }
        Ok(graph)
    }

    /// Creates a routine and its first version.
    pub async fn create(
        &self,
        owner: UserId,
        new: NewRoutine,
    ) -> Result<RoutineVersion, RoutineError> {
        check_label(&new.version_label)?;
        let mut tx = self.pool.begin().await?;
        if let Some(team) = new.team {
            crate::teams::require_in(
                &mut tx,
                team,
                Some(owner),
                Some(TeamPermission::ManageRoutines),
            )
            .await?;
        }
        self.check(&mut tx, owner, &new.sub_type, &new.config)
            .await?;
        let resource = ResourceId(self.ids.next_id());
        sqlx::query(
            "INSERT INTO resources (id, public_id, resource_type, owner_id, team_id, name, is_private)
             VALUES ($1, $2, 'Routine', $3, $4, $5, $6)",
        )
        .bind(resource)
        .bind(PublicId::generate().as_str())
        .bind(new.team.is_none().then_some(owner))
        .bind(new.team)
        .bind(&new.name)
        .bind(new.is_private)
        .execute(&mut *tx)
        .await?;
        let version = ResourceVersionId(self.ids.next_id());
        sqlx::query(
            "INSERT INTO resource_versions (id, resource_id, version_label, resource_sub_type, config)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(version)
        .bind(resource)
        .bind(&new.version_label)
        .bind(&new.sub_type)
        .bind(&new.config)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        self.version(version, Some(owner)).await
    }

    /// Adds a version to a routine `owner` may change; it becomes the latest.
    pub async fn add_version(
        &self,
        owner: UserId,
        resource: ResourceId,
        label: &str,
        sub_type: Option<&str>,
        config: Value,
    ) -> Result<RoutineVersion, RoutineError> {
        check_label(label)?;
        let mut tx = self.pool.begin().await?;
        // Locks the routine: two versions added at once take turns.
        let latest: Option<Option<String>> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT (SELECT resource_sub_type FROM resource_versions
                      WHERE resource_id = r.id AND is_latest)
               FROM resources r WHERE r.id = $1 AND {CAN_WRITE} FOR UPDATE OF r"
        )))
        .bind(resource)
        .bind(owner)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(latest_type) = latest else {
            return Err(self
                .refusal(
                    &mut tx,
                    "r.id = $1",
                    resource.0,
                    owner,
                    RoutineError::ResourceNotFound,
                )
                .await);
        };
        let sub_type = sub_type
            .map(str::to_owned)
            .or(latest_type)
            .unwrap_or_else(|| "RoutineMultiStep".into());
        self.check(&mut tx, owner, &sub_type, &config).await?;
        sqlx::query(
            "UPDATE resource_versions SET is_latest = false WHERE resource_id = $1 AND is_latest",
        )
        .bind(resource)
        .execute(&mut *tx)
        .await?;
        let version = ResourceVersionId(self.ids.next_id());
        let inserted = sqlx::query(
            "INSERT INTO resource_versions (id, resource_id, version_label, resource_sub_type, config)
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (resource_id, version_label) DO NOTHING",
        )
        .bind(version)
        .bind(resource)
        .bind(label)
        .bind(&sub_type)
        .bind(&config)
        .execute(&mut *tx)
        .await?;
        if inserted.rows_affected() == 0 {
            return Err(RoutineError::LabelInUse(label.to_owned()));
        }
        tx.commit().await?;
        self.version(version, Some(owner)).await
    }

    /// Replaces a version's config while nobody has run it.
    pub async fn update(
        &self,
        owner: UserId,
        version: ResourceVersionId,
        config: Value,
    ) -> Result<RoutineVersion, RoutineError> {
        let mut tx = self.pool.begin().await?;
        let found: Option<(String, bool)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT v.resource_sub_type,
                    EXISTS (SELECT 1 FROM runs WHERE resource_version_id = v.id)
               FROM resource_versions v JOIN resources r ON r.id = v.resource_id
              WHERE v.id = $1 AND {CAN_WRITE} FOR UPDATE OF v"
        )))
        .bind(version)
        .bind(owner)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((sub_type, has_runs)) = found else {
            return Err(self
                .refusal(
                    &mut tx,
                    "v.id = $1",
                    version.0,
                    owner,
                    RoutineError::VersionNotFound,
                )
                .await);
        };
        if has_runs {
            return Err(RoutineError::VersionHasRuns);
        }
        self.check(&mut tx, owner, &sub_type, &config).await?;
        sqlx::query("UPDATE resource_versions SET config = $2 WHERE id = $1")
            .bind(version)
            .bind(&config)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        self.version(version, Some(owner)).await
    }

    /// Why a write found nothing it may change: the routine exists and `user` may read it (a
    /// team member without `ManageRoutines`: not allowed), or not (`missing`).
    async fn refusal(
        &self,
        conn: &mut PgConnection,
        which: &'static str,
        id: i64,
        user: UserId,
        missing: RoutineError,
    ) -> RoutineError {
        let readable: Result<Option<bool>, sqlx::Error> =
            sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                "SELECT {CAN_READ} FROM resources r
                   LEFT JOIN resource_versions v ON v.resource_id = r.id
                  WHERE {which} LIMIT 1"
            )))
            .bind(id)
            .bind(user)
            .fetch_optional(conn)
            .await;
        match readable {
            Ok(Some(true)) => RoutineError::Team(TeamError::NotAllowed),
            Ok(_) => missing,
            Err(e) => RoutineError::Sql(e),
        }
    }
}
