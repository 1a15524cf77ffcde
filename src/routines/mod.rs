//! Routines: stored as a `resources` row (type Routine) and its `resource_versions` (the config
//! JSON holding the graph). Every write parses and checks the graph (`graph.rs`; the original's
//! `Sequential` and single-step kinds in `sequential.rs`) and the routine versions it calls.
//!
//! ```text
//! POST /resource ─▶ RoutineService::create ─▶ load_graph (check) ─▶ subroutines exist? ─▶ rows
//! POST /resourceVersion ─▶ add_version (the new one is latest)
//! PUT /resourceVersion/{id} ─▶ update (only while no run has used it: runs keep snapshots, but
//!                              a version someone ran stays what they ran)
//! GET /resourceVersion/{id} ─▶ version (owner, or anyone when the routine is public)
//! ```

mod check;
pub mod graph;
mod import;
mod sequential;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use sqlx::{PgConnection, PgPool};

pub use graph::{Graph, GraphError, GraphLimits};
pub use import::{ExportedResource, ImportOutcome};

use crate::ids::{PublicId, ResourceId, ResourceVersionId, Snowflake, UserId};

/// A routine version as the API shows it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct RoutineVersion {
    pub id: ResourceVersionId,
    pub resource_id: ResourceId,
    pub name: String,
    pub is_private: bool,
    pub owner_id: Option<UserId>,
    pub version_label: String,
    pub resource_sub_type: String,
    pub config: Value,
    pub is_latest: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const COLUMNS: &str = "v.id, v.resource_id, r.name, r.is_private, r.owner_id, v.version_label,
    v.resource_sub_type, v.config, v.is_latest, v.created_at, v.updated_at";

#[derive(Debug, thiserror::Error)]
pub enum RoutineError {
    #[error(transparent)]
    Graph(#[from] GraphError),
    #[error("node {node:?}: routine version {version} does not exist")]
    MissingSubroutine { node: String, version: String },
    #[error("resourceType must be \"Routine\"")]
    NotARoutine,
    #[error("no such routine")]
    ResourceNotFound,
    #[error("no such routine version")]
    VersionNotFound,
    #[error("this version has been run; add a new version instead")]
    VersionHasRuns,
    #[error("this routine already has a version {0:?}")]
    LabelInUse(String),
    #[error("{0}")]
    Invalid(String),
    /// An import names a routine it neither holds nor finds stored.
    #[error("{0}")]
    MissingReference(String),
    #[error(transparent)]
    Sql(#[from] sqlx::Error),
}

/// A new routine (its first version).
pub struct NewRoutine {
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

/// The graph of a version's config: `config.graph` when there is one, else the single-step kind.
pub fn load_graph(
    sub_type: &str,
    config: &Value,
    limits: GraphLimits,
) -> Result<Graph, GraphError> {
    match config.get("graph") {
        Some(graph) if !graph.is_null() => graph::parse(graph, limits),
        _ => {
            let graph = sequential::single_step(sub_type, config)?;
            check::check(&graph, limits)?;
            Ok(graph)
        }
    }
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
                        sqlx::query_scalar(
                            "SELECT NOT r.is_private OR r.owner_id = $2
                               FROM resource_versions v JOIN resources r ON r.id = v.resource_id
                              WHERE v.id = $1",
                        )
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
        self.check(&mut tx, owner, &new.sub_type, &new.config)
            .await?;
        let resource = ResourceId(self.ids.next_id());
        sqlx::query(
            "INSERT INTO resources (id, public_id, resource_type, owner_id, name, is_private)
             VALUES ($1, $2, 'Routine', $3, $4, $5)",
        )
        .bind(resource)
        .bind(PublicId::generate().as_str())
        .bind(owner)
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

    /// Adds a version to the owner's routine; it becomes the latest.
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
        let latest: Option<Option<String>> = sqlx::query_scalar(
            "SELECT (SELECT resource_sub_type FROM resource_versions
                      WHERE resource_id = r.id AND is_latest)
               FROM resources r WHERE r.id = $1 AND r.owner_id = $2 FOR UPDATE",
        )
        .bind(resource)
        .bind(owner)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(latest_type) = latest else {
            return Err(RoutineError::ResourceNotFound);
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
        let found: Option<(String, bool)> = sqlx::query_as(
            "SELECT v.resource_sub_type,
                    EXISTS (SELECT 1 FROM runs WHERE resource_version_id = v.id)
               FROM resource_versions v JOIN resources r ON r.id = v.resource_id
              WHERE v.id = $1 AND r.owner_id = $2 FOR UPDATE OF v",
        )
        .bind(version)
        .bind(owner)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((sub_type, has_runs)) = found else {
            return Err(RoutineError::VersionNotFound);
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

    /// A version `reader` may see: theirs, or a public routine's. Others get `VersionNotFound`.
    pub async fn version(
        &self,
        version: ResourceVersionId,
        reader: Option<UserId>,
    ) -> Result<RoutineVersion, RoutineError> {
        sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM resource_versions v JOIN resources r ON r.id = v.resource_id
              WHERE v.id = $1 AND (NOT r.is_private OR r.owner_id = $2)"
        )))
        .bind(version)
        .bind(reader)
        .fetch_optional(&self.pool)
        .await?
        .ok_or(RoutineError::VersionNotFound)
    }

    /// The latest version of each of `owner`'s routines, newest first; `take + 1` rows.
    pub async fn list(
        &self,
        owner: UserId,
        take: i64,
        before: Option<i64>,
    ) -> Result<Vec<RoutineVersion>, sqlx::Error> {
        sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM resource_versions v JOIN resources r ON r.id = v.resource_id
              WHERE r.owner_id = $1 AND v.is_latest AND ($2::BIGINT IS NULL OR r.id < $2)
              ORDER BY r.id DESC LIMIT $3"
        )))
        .bind(owner)
        .bind(before)
        .bind(take + 1)
        .fetch_all(&self.pool)
        .await
    }
}
