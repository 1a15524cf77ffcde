//! `POST /resource/import`: the original's exported routines (`{id, resourceType, isPrivate,
//! versions: [{id, versionLabel, resourceSubType, config, translations}]}`, the shape of its
//! `docs/ai-creation/routine/staged/*.json`) created with new ids, in one transaction.
//!
//! ```text
//! new ids for every resource and version ─▶ rewrite each step's subroutineId (and each
//! `subroutine` node's versionId) that points inside the set: a resource id means its latest
//! version ─▶ a reference to neither the set nor a stored version ─▶ 422 naming it, nothing
//! written ─▶ rows ─▶ each version's graph checked: one that cannot run here yet (Code, Web, a
//! Generate without a prompt), or cannot complete as stored (it calls one that cannot run, or
//! needs a value nothing provides: `completes.rs`), is stored and listed as not runnable, with
//! the reason
//! ```

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;

use super::{RoutineError, RoutineService, load_graph};
use crate::ids::{PublicId, ResourceId, ResourceVersionId, UserId};

/// An id as the original exports it: a string or a number.
fn id_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A routine as the original exports it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExportedResource {
    /// Its id in the original: a string or a number.
    id: Value,
    /// Always `"Routine"` (the default).
    #[schema(example = "Routine")]
    #[serde(default = "routine")]
    resource_type: String,
    /// Its name (a data export has it); else the versions' translations name it.
    #[serde(default)]
    name: Option<String>,
    /// Default true.
    #[serde(default = "yes")]
    is_private: bool,
    /// At least one.
    versions: Vec<ExportedVersion>,
}

/// One version of an exported routine.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExportedVersion {
    /// Its id in the original: a string or a number.
    id: Value,
    /// Kept to its first 32 characters.
    version_label: String,
    /// The original's kind: `RoutineMultiStep` (a graph), `RoutineGenerate`, `RoutineApi`, …
    resource_sub_type: String,
    /// The config holding the graph: free-form JSON, checked by the routine graph checker
    /// after the import (a version that cannot run here yet is stored and listed in
    /// `notRunnable`). References to other routines inside the import are rewritten.
    #[serde(default)]
    #[schema(value_type = Object)]
    config: Value,
    /// The first English name (else any) names the routine.
    #[serde(default)]
    translations: Vec<Translation>,
    /// Which version becomes the latest (else the highest `versionIndex`, else the last).
    #[serde(default)]
    is_latest: Option<bool>,
    #[serde(default)]
    version_index: Option<i64>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct Translation {
    #[serde(default)]
    language: String,
    #[serde(default)]
    name: Option<String>,
}

// Fields (and map keys) are in alphabetical order, as the `serde_json::Value` this replaced
// wrote them: the answer stays byte for byte the same.
/// What an import answers.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImportOutcome {
    /// Each imported routine's original id → its new routine and latest version.
    pub imported: BTreeMap<String, ImportedRoutine>,
    /// Versions stored that cannot run here yet, with the reason.
    pub not_runnable: Vec<NotRunnable>,
    /// Each imported version's original id → its new id.
    pub versions: BTreeMap<String, ResourceVersionId>,
}

/// An imported routine's new ids.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImportedRoutine {
    pub resource_id: ResourceId,
    /// Its latest version.
    pub version_id: ResourceVersionId,
}

/// A version stored by an import that cannot run (yet), or cannot complete as stored.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct NotRunnable {
    /// Why, as the graph checker says it, or what makes it stop before its end (a call into a
    /// version that cannot run, a value nothing provides).
    pub reason: String,
    /// The routine's original id.
    pub resource_id: Option<String>,
    /// The version's original id.
    pub version_id: Option<String>,
}

fn yes() -> bool {
    true
}

fn routine() -> String {
    "Routine".into()
}

/// The places in a config that name another routine: `(node, id)`, mutable.
fn references(config: &mut Value) -> Vec<(String, &mut Value)> {
    // Read with `get_mut` only: indexing a `Value` mutably would add the keys it looks for.
    let Some(graph) = config.get_mut("graph") else {
        return Vec::new();
    };
    let kind = graph
        .get("__type")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let Some(schema) = graph.get_mut("schema") else {
        return Vec::new();
    };
    let (list, field) = match kind.as_str() {
        "Sequential" => ("steps", "subroutineId"),
        "Graph-1.0" => ("nodes", "versionId"),
        _ => return Vec::new(),
    };
    let mut found = Vec::new();
    if let Some(items) = schema.get_mut(list).and_then(Value::as_array_mut) {
        for item in items {
            if list == "nodes" && item.get("kind").and_then(Value::as_str) != Some("subroutine") {
                continue;
            }
            let node = item
                .get("id")
                .and_then(Value::as_str)
                .unwrap_or("?")
                .to_owned();
            if let Some(id) = item.get_mut(field) {
                found.push((node, id));
            }
        }
    }
    found
}

impl RoutineService {
    /// Imports `resources` for `owner`; the map from old ids to new ones, and what was stored
    /// but cannot run here yet.
    pub async fn import(
        &self,
        owner: UserId,
        resources: Vec<ExportedResource>,
    ) -> Result<ImportOutcome, RoutineError> {
        if resources.is_empty() || resources.len() > self.max_import {
            return Err(RoutineError::Invalid(format!(
                "an import holds 1 to {} resources",
                self.max_import
            )));
        }
        let mut tx = self.pool.begin().await?;
        let outcome = self.import_in(&mut tx, owner, resources).await?;
        tx.commit().await?;
        Ok(outcome)
    }

    /// [`Self::import`] inside the caller's transaction and without its count limit (a data
    /// import is bounded by its bytes instead).
    pub async fn import_in(
        &self,
        tx: &mut sqlx::PgConnection,
        owner: UserId,
        mut resources: Vec<ExportedResource>,
    ) -> Result<ImportOutcome, RoutineError> {
        // New ids first, so references inside the set can be rewritten in any order.
        let mut resource_ids: HashMap<String, (ResourceId, ResourceVersionId)> = HashMap::new();
        let mut version_ids: HashMap<String, ResourceVersionId> = HashMap::new();
        for resource in &resources {
            if resource.resource_type != "Routine" {
                return Err(RoutineError::NotARoutine);
            }
            let old = id_text(&resource.id)
                .ok_or_else(|| RoutineError::Invalid("every resource needs its id".into()))?;
            if resource.versions.is_empty() {
                return Err(RoutineError::Invalid(format!(
                    "resource {old} has no versions"
                )));
            }
            let new_resource = ResourceId(self.ids.next_id());
            let mut latest = None;
            for (i, version) in resource.versions.iter().enumerate() {
                let old_version = id_text(&version.id).ok_or_else(|| {
                    RoutineError::Invalid(format!("a version of resource {old} has no id"))
                })?;
                let new_version = ResourceVersionId(self.ids.next_id());
                if version_ids
                    .insert(old_version.clone(), new_version)
                    .is_some()
                {
                    return Err(RoutineError::Invalid(format!(
                        "version {old_version} appears twice"
                    )));
                }
                let rank = (
                    version.is_latest == Some(true),
                    version.version_index.unwrap_or(i as i64),
                );
                if latest.is_none_or(|(r, _)| rank > r) {
                    latest = Some((rank, new_version));
                }
            }
            let Some((_, latest)) = latest else {
                return Err(RoutineError::Invalid(format!(
                    "resource {old} has no versions"
                )));
            };
            if resource_ids
                .insert(old.clone(), (new_resource, latest))
                .is_some()
            {
                return Err(RoutineError::Invalid(format!(
                    "resource {old} appears twice"
                )));
            }
        }
        // Rewrite references; one to neither the set nor a stored version is refused.
        for resource in &mut resources {
            let old = id_text(&resource.id).unwrap_or_default();
            for version in &mut resource.versions {
                let old_version = id_text(&version.id).unwrap_or_default();
                for (node, reference) in references(&mut version.config) {
                    let target = id_text(reference).unwrap_or_default();
                    let rewritten = version_ids
                        .get(&target)
                        .copied()
                        .or_else(|| resource_ids.get(&target).map(|(_, latest)| *latest));
                    if let Some(new) = rewritten {
                        *reference = json!(new.to_string());
                        continue;
                    }
                    let stored: Option<bool> = match target.parse::<i64>() {
                        Ok(id) => {
                            sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                                "SELECT {}
                                   FROM resource_versions v JOIN resources r ON r.id = v.resource_id
                                  WHERE v.id = $1",
                                super::access::CAN_READ
                            )))
                            .bind(id)
                            .bind(owner)
                            .fetch_optional(&mut *tx)
                            .await?
                        }
                        Err(_) => None,
                    };
                    if stored != Some(true) {
                        return Err(RoutineError::MissingReference(format!(
                            "resource {old}, version {old_version}, step {node:?}: {target:?} is neither imported nor stored"
                        )));
                    }
                }
            }
        }
        for resource in &resources {
            let old = id_text(&resource.id).unwrap_or_default();
            let (new_resource, latest) = resource_ids[&old];
            let name = resource
                .name
                .clone()
                .filter(|n| !n.trim().is_empty())
                .or_else(|| {
                    resource
                        .versions
                        .iter()
                        .flat_map(|v| &v.translations)
                        .filter(|t| t.name.as_deref().is_some_and(|n| !n.trim().is_empty()))
                        .min_by_key(|t| t.language != "en")
                        .and_then(|t| t.name.clone())
                })
                .unwrap_or_else(|| "Imported routine".into());
            sqlx::query(
                "INSERT INTO resources (id, public_id, resource_type, owner_id, name, is_private)
                 VALUES ($1, $2, 'Routine', $3, $4, $5)",
            )
            .bind(new_resource)
            .bind(PublicId::generate().as_str())
            .bind(owner)
            .bind(name.trim().chars().take(128).collect::<String>())
            .bind(resource.is_private)
            .execute(&mut *tx)
            .await?;
            for version in &resource.versions {
                let new_version = version_ids[&id_text(&version.id).unwrap_or_default()];
                let label = version.version_label.chars().take(32).collect::<String>();
                let inserted = sqlx::query(
                    "INSERT INTO resource_versions
                        (id, resource_id, version_label, resource_sub_type, config, is_latest)
                     VALUES ($1, $2, $3, $4, $5, $6)
                     ON CONFLICT (resource_id, version_label) DO NOTHING",
                )
                .bind(new_version)
                .bind(new_resource)
                .bind(&label)
                .bind(&version.resource_sub_type)
                .bind(&version.config)
                .bind(new_version == latest)
                .execute(&mut *tx)
                .await?;
                if inserted.rows_affected() == 0 {
                    return Err(RoutineError::LabelInUse(label));
                }
            }
        }
        // Stored as they are; what cannot run here yet is said, not refused: a graph the
        // checker refuses, and then what cannot complete as stored (`completes.rs`).
        let mut graphs = HashMap::new();
        for resource in &resources {
            for version in &resource.versions {
                let new = version_ids[&id_text(&version.id).unwrap_or_default()];
                let graph = load_graph(&version.resource_sub_type, &version.config, self.limits)
                    .map_err(|error| error.to_string());
                graphs.insert(new.0.to_string(), graph);
            }
        }
        let blocked = super::completes::blockers(&graphs);
        let mut not_runnable = Vec::new();
        for resource in &resources {
            for version in &resource.versions {
                let new = version_ids[&id_text(&version.id).unwrap_or_default()]
                    .0
                    .to_string();
                let reason = match &graphs[&new] {
                    Err(reason) => reason,
                    Ok(_) => match blocked.get(&new) {
                        Some(reason) => reason,
                        None => continue,
                    },
                };
                not_runnable.push(NotRunnable {
                    reason: reason.clone(),
                    resource_id: id_text(&resource.id),
                    version_id: id_text(&version.id),
                });
            }
        }
        let imported = resource_ids
            .into_iter()
            .map(|(old, (resource_id, version_id))| {
                (
                    old,
                    ImportedRoutine {
                        resource_id,
                        version_id,
                    },
                )
            })
            .collect();
        Ok(ImportOutcome {
            imported,
            not_runnable,
            versions: version_ids.into_iter().collect(),
        })
    }
}
