//! Routine endpoints (docs/ROUTINES.md, "The API"): create a routine with its first version, add and
//! edit versions, read one, list one's own. The graph is checked by `RoutineService` on every
//! write; a bad graph is 422 naming the node and the reason.

use actix_web::{HttpResponse, get, post, put, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::auth::readers::Reader;
use super::auth::session::{ReadPrivate, Require, WritePrivate};
use super::error::ApiError;
use super::openapi::ErrorEnvelope;
use super::paging::Relay;
use super::path::{Id, parse_id};
use super::reply::{Envelope, ok};
use crate::errors::Code;
use crate::ids::{ResourceId, ResourceVersionId, TeamId, UserId};
use crate::routines::{ExportedResource, ImportOutcome, NewRoutine, RoutineError, RoutineVersion};
use crate::state::AppState;

pub fn config(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(create_routine)
        .service(import_routines)
        .service(list_routines)
        .service(add_version)
        .service(get_version)
        .service(update_version);
}

/// `POST /resource`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CreateRoutineBody {
    /// Always `"Routine"` (422 `InvalidResourceType` otherwise).
    #[schema(example = "Routine")]
    resource_type: String,
    /// 1–128 characters, no control characters.
    name: String,
    /// Make it a team's routine (the caller needs `ManageRoutines` there, or to be an admin):
    /// its members read it, and those allowed change it. Default: the caller's own.
    team_id: Option<TeamId>,
    /// Default true.
    #[serde(default = "private")]
    #[schema(default = true)]
    is_private: bool,
    /// 1–32 characters, no control characters; default `1.0.0`.
    #[serde(default = "first_label")]
    #[schema(default = "1.0.0")]
    version_label: String,
    /// The original's kind: `RoutineMultiStep` (a graph, the default), `RoutineGenerate`,
    /// `RoutineApi`, …
    #[serde(default = "multi_step")]
    #[schema(default = "RoutineMultiStep")]
    resource_sub_type: String,
    /// The version's config. Free-form JSON holding the graph (`config.graph`) or, for a
    /// single-step kind, that step's settings; checked by the routine graph checker on every
    /// write (422 `InvalidRoutineGraph` naming the node, `GraphTypeUnsupported`,
    /// `NodeKindUnavailable`).
    #[schema(value_type = Object)]
    config: Value,
}

fn private() -> bool {
    true
}

fn first_label() -> String {
    "1.0.0".into()
}

fn multi_step() -> String {
    "RoutineMultiStep".into()
}

fn check_name(name: &str) -> Result<(), ApiError> {
    let length = name.trim().chars().count();
    if length == 0 || length > 128 || name.chars().any(char::is_control) {
        return Err(ApiError::of(
            Code::InvalidName,
            "A routine name is 1-128 characters, no control characters",
        ));
    }
    Ok(())
}

/// Create a routine with its first version.
///
/// The graph in `config` is checked, and every routine version it calls must exist and be the
/// caller's or public. The formats, node kinds and worked examples: docs/ROUTINES.md.
#[utoipa::path(
    tag = "routines",
    // Accepted as it is (tests/api/openapi.rs posts it): no team, no subroutine, and the model
    // left to `ai.default_model`, so it needs no id and no provider of the reader's server.
    request_body(content = CreateRoutineBody, example = json!({
        "resourceType": "Routine",
        "name": "Greet someone",
        "isPrivate": true,
        "versionLabel": "1.0.0",
        "resourceSubType": "RoutineMultiStep",
        "config": {"graph": {"__type": "Graph-1.0", "schema": {
            "start": "greet",
            "nodes": [{"id": "greet", "kind": "llm", "maxTokens": 100,
                       "prompt": "Greet {{input.name}} in one sentence.",
                       "outputs": {"greeting": "$.text"}}],
            "edges": [],
            "outputs": {"greeting": "nodes.greet.greeting"}}}}
    })),
    responses(
        (status = 200, description = "The routine's first version", body = Envelope<RoutineVersionView>),
        (status = 422, description = "The graph is refused (`InvalidRoutineGraph` naming the node and the reason, `GraphTypeUnsupported`, `NodeKindUnavailable`)", body = ErrorEnvelope),
    ),
)]
#[post("/resource")]
pub async fn create_routine(
    caller: Require<WritePrivate>,
    state: web::Data<AppState>,
    body: web::Json<CreateRoutineBody>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    if body.resource_type != "Routine" {
        return Err(RoutineError::NotARoutine.into());
    }
    check_name(&body.name)?;
    let version = state
        .runs
        .routines
        .create(
            caller.user,
            NewRoutine {
                team: body.team_id,
                name: body.name.trim().to_owned(),
                is_private: body.is_private,
                version_label: body.version_label,
                sub_type: body.resource_sub_type,
                config: body.config,
            },
        )
        .await?;
    Ok(ok(RoutineVersionView::from(version)))
}

/// Import routines exported by the original server.
///
/// Every resource and version gets a new id; references between them are rewritten. A
/// reference to neither the import nor a stored version is 422 `ReferenceNotFound`, and
/// nothing is written. Versions whose graph cannot run here yet are stored anyway and listed
/// in `notRunnable`.
#[utoipa::path(
    tag = "routines",
    request_body = Vec<ExportedResource>,
    responses((status = 200, description = "The new ids, and what cannot run yet", body = Envelope<ImportOutcome>)),
)]
#[post("/resource/import")]
pub async fn import_routines(
    caller: Require<WritePrivate>,
    state: web::Data<AppState>,
    body: web::Json<Vec<ExportedResource>>,
) -> Result<HttpResponse, ApiError> {
    Ok(ok(state
        .runs
        .routines
        .import(caller.user, body.into_inner())
        .await?))
}

/// `POST /resourceVersion`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AddVersionBody {
    /// The caller's routine.
    resource_id: ResourceId,
    /// 1–32 characters, no control characters; unique within the routine (409
    /// `VersionLabelInUse`).
    version_label: String,
    /// Default: the latest version's.
    resource_sub_type: Option<String>,
    /// The version's config: free-form JSON holding the graph, checked by the routine graph
    /// checker (as for `POST /resource`).
    #[schema(value_type = Object)]
    config: Value,
}

/// Add a version to one's routine; it becomes the latest.
#[utoipa::path(
    tag = "routines",
    request_body = AddVersionBody,
    responses(
        (status = 200, description = "The new version", body = Envelope<RoutineVersionView>),
        (status = 422, description = "The graph is refused (`InvalidRoutineGraph` naming the node and the reason, `GraphTypeUnsupported`, `NodeKindUnavailable`)", body = ErrorEnvelope),
    ),
)]
#[post("/resourceVersion")]
pub async fn add_version(
    caller: Require<WritePrivate>,
    state: web::Data<AppState>,
    body: web::Json<AddVersionBody>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let version = state
        .runs
        .routines
        .add_version(
            caller.user,
            body.resource_id,
            &body.version_label,
            body.resource_sub_type.as_deref(),
            body.config,
        )
        .await?;
    Ok(ok(RoutineVersionView::from(version)))
}

/// `PUT /resourceVersion/{id}`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateVersionBody {
    /// The new config: free-form JSON holding the graph, checked by the routine graph checker
    /// (as for `POST /resource`).
    #[schema(value_type = Object)]
    config: Value,
}

/// Replace a version's config.
///
/// Only while no run has used the version: a version someone ran stays what they ran.
#[utoipa::path(
    tag = "routines",
    params(("id" = ResourceVersionId, Path, description = "The routine version's id")),
    request_body = UpdateVersionBody,
    responses(
        (status = 200, description = "The version", body = Envelope<RoutineVersionView>),
        (status = 409, description = "The version has been run (`VersionHasRuns`): add a new version instead", body = ErrorEnvelope),
    ),
)]
#[put("/resourceVersion/{id}")]
pub async fn update_version(
    caller: Require<WritePrivate>,
    state: web::Data<AppState>,
    Id(id): Id<ResourceVersionId>,
    body: web::Json<UpdateVersionBody>,
) -> Result<HttpResponse, ApiError> {
    let version = state
        .runs
        .routines
        .update(caller.user, id, body.into_inner().config)
        .await?;
    Ok(ok(RoutineVersionView::from(version)))
}

/// One routine version: the caller's, or a public routine's (others are 404).
#[utoipa::path(
    tag = "routines",
    params(("id" = ResourceVersionId, Path, description = "The routine version's id")),
    responses((status = 200, description = "The version", body = Envelope<RoutineVersionView>)),
    security((), ("cookie" = []), ("bearer" = []), ("apiKey" = [])),
)]
#[get("/resourceVersion/{id}")]
pub async fn get_version(
    reader: Reader,
    state: web::Data<AppState>,
    Id(id): Id<ResourceVersionId>,
) -> Result<HttpResponse, ApiError> {
    let version = state.runs.routines.version(id, reader.0).await?;
    Ok(ok(RoutineVersionView::from(version)))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// `Routine`, the only kind (422 `InvalidResourceType` otherwise).
    resource_type: Option<String>,
    /// A team's routines instead of the caller's (members only).
    #[param(value_type = Option<TeamId>)]
    team_id: Option<String>,
    /// Page size, 1–100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    take: Option<i64>,
    /// The `endCursor` of the previous page.
    after: Option<String>,
}

/// The caller's routines (each one's latest version), newest first.
#[utoipa::path(
    tag = "routines",
    params(ListQuery),
    responses((status = 200, description = "A page of routines, cursors being routine ids", body = Envelope<Relay<RoutineVersionView>>)),
)]
#[get("/resources")]
pub async fn list_routines(
    caller: Require<ReadPrivate>,
    state: web::Data<AppState>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    if query
        .resource_type
        .as_deref()
        .is_some_and(|t| t != "Routine")
    {
        return Err(RoutineError::NotARoutine.into());
    }
    let (take, after) = super::paging::params(query.take, query.after.as_deref())?;
    let team = query
        .team_id
        .as_deref()
        .map(parse_id::<TeamId>)
        .transpose()?;
    let rows = state
        .runs
        .routines
        .list(caller.user, team, take, after)
        .await?;
    let rows: Vec<RoutineVersionView> = rows.into_iter().map(RoutineVersionView::from).collect();
    Ok(ok(super::paging::relay(rows, take, |v| {
        v.resource_id.to_string()
    })))
}

// Fields are in alphabetical order, as the `serde_json::Value` this replaced wrote them: the
// answer stays byte for byte the same.
/// A routine version as the original answers it: `id` is the routine's (the resource's), and
/// `versionId` the version's.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RoutineVersionView {
    /// The version's config: free-form JSON holding the graph (`config.graph`) or a single-step
    /// kind's settings, as the routine graph checker accepted it.
    #[schema(value_type = Object)]
    config: Value,
    created_at: DateTime<Utc>,
    /// The routine's id (the same as `resourceId`).
    id: ResourceId,
    /// Whether this is the routine's latest version.
    is_latest: bool,
    is_private: bool,
    name: String,
    owner_id: Option<UserId>,
    resource_id: ResourceId,
    resource_sub_type: String,
    /// The team whose routine it is (then `ownerId` is null).
    team_id: Option<TeamId>,
    updated_at: DateTime<Utc>,
    version_id: ResourceVersionId,
    version_label: String,
}

impl From<RoutineVersion> for RoutineVersionView {
    fn from(version: RoutineVersion) -> Self {
        Self {
            config: version.config,
            created_at: version.created_at,
            id: version.resource_id,
            is_latest: version.is_latest,
            is_private: version.is_private,
            name: version.name,
            owner_id: version.owner_id,
            resource_id: version.resource_id,
            resource_sub_type: version.resource_sub_type,
            team_id: version.team_id,
            updated_at: version.updated_at,
            version_id: version.id,
            version_label: version.version_label,
        }
    }
}
