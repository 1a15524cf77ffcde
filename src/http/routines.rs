//! Routine endpoints (RUNS.md, "Routines"): create a routine with its first version, add and
//! edit versions, read one, list one's own. The graph is checked by `RoutineService` on every
//! write; a bad graph is 422 naming the node and the reason.

use actix_web::{HttpResponse, web};
use serde::Deserialize;
use serde_json::Value;

use super::auth::session::{ReadPrivate, Reader, Require, WritePrivate};
use super::path::Id;
use super::{ApiError, Code, ok};
use crate::ids::{ResourceId, ResourceVersionId};
use crate::routines::{GraphError, NewRoutine, RoutineError};
use crate::state::AppState;

pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/resource").route(web::post().to(create)))
        .service(web::resource("/resource/import").route(web::post().to(import)))
        .service(web::resource("/resources").route(web::get().to(list)))
        .service(web::resource("/resourceVersion").route(web::post().to(add_version)))
        .service(
            web::resource("/resourceVersion/{id}")
                .route(web::get().to(get_version))
                .route(web::put().to(update_version)),
        );
}

impl From<RoutineError> for ApiError {
    fn from(error: RoutineError) -> Self {
        let message = error.to_string();
        match error {
            RoutineError::Graph(GraphError::Unsupported(_)) => {
                ApiError::of(Code::GraphTypeUnsupported, message)
            }
            RoutineError::Graph(GraphError::Unavailable { .. }) => {
                ApiError::of(Code::NodeKindUnavailable, message)
            }
            RoutineError::Graph(GraphError::Invalid { .. })
            | RoutineError::MissingSubroutine { .. } => {
                ApiError::of(Code::InvalidRoutineGraph, message)
            }
            RoutineError::NotARoutine => ApiError::of(Code::InvalidResourceType, message),
            RoutineError::ResourceNotFound => ApiError::of(Code::ResourceNotFound, message),
            RoutineError::VersionNotFound => ApiError::of(Code::ResourceVersionNotFound, message),
            RoutineError::VersionHasRuns => ApiError::of(Code::VersionHasRuns, message),
            RoutineError::LabelInUse(_) => ApiError::of(Code::VersionLabelInUse, message),
            RoutineError::Invalid(_) => ApiError::of(Code::InvalidBody, message),
            RoutineError::MissingReference(_) => ApiError::of(Code::ReferenceNotFound, message),
            RoutineError::Sql(error) => error.into(),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CreateBody {
    resource_type: String,
    name: String,
    #[serde(default = "private")]
    is_private: bool,
    #[serde(default = "first_label")]
    version_label: String,
    #[serde(default = "multi_step")]
    resource_sub_type: String,
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

/// `POST /resource {resourceType: "Routine", name, isPrivate?, versionLabel?, resourceSubType?,
/// config}`: a routine and its first version.
pub async fn create(
    caller: Require<WritePrivate>,
    state: web::Data<AppState>,
    body: web::Json<CreateBody>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    if body.resource_type != "Routine" {
        return Err(RoutineError::NotARoutine.into());
    }
    check_name(&body.name)?;
    let version = state
        .routines
        .create(
            caller.user,
            NewRoutine {
                name: body.name.trim().to_owned(),
                is_private: body.is_private,
                version_label: body.version_label,
                sub_type: body.resource_sub_type,
                config: body.config,
            },
        )
        .await?;
    Ok(ok(version_body(&version)))
}

/// `POST /resource/import [{id, resourceType, isPrivate, versions: [...]}]`: the original's
/// exported routines, created with new ids; the map from old ids to new ones.
pub async fn import(
    caller: Require<WritePrivate>,
    state: web::Data<AppState>,
    body: web::Json<Vec<crate::routines::ExportedResource>>,
) -> Result<HttpResponse, ApiError> {
    Ok(ok(state
        .routines
        .import(caller.user, body.into_inner())
        .await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct VersionBody {
    resource_id: ResourceId,
    version_label: String,
    resource_sub_type: Option<String>,
    config: Value,
}

/// `POST /resourceVersion {resourceId, versionLabel, resourceSubType?, config}`.
pub async fn add_version(
    caller: Require<WritePrivate>,
    state: web::Data<AppState>,
    body: web::Json<VersionBody>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let version = state
        .routines
        .add_version(
            caller.user,
            body.resource_id,
            &body.version_label,
            body.resource_sub_type.as_deref(),
            body.config,
        )
        .await?;
    Ok(ok(version_body(&version)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateBody {
    config: Value,
}

/// `PUT /resourceVersion/{id} {config}`: only while no run has used the version.
pub async fn update_version(
    caller: Require<WritePrivate>,
    state: web::Data<AppState>,
    Id(id): Id<ResourceVersionId>,
    body: web::Json<UpdateBody>,
) -> Result<HttpResponse, ApiError> {
    let version = state
        .routines
        .update(caller.user, id, body.into_inner().config)
        .await?;
    Ok(ok(version_body(&version)))
}

pub async fn get_version(
    reader: Reader,
    state: web::Data<AppState>,
    Id(id): Id<ResourceVersionId>,
) -> Result<HttpResponse, ApiError> {
    let version = state.routines.version(id, reader.0).await?;
    Ok(ok(version_body(&version)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ListQuery {
    resource_type: Option<String>,
    take: Option<i64>,
    after: Option<String>,
}

/// `GET /resources?resourceType=Routine&take&after`: the caller's routines (latest versions).
pub async fn list(
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
    let rows = state.routines.list(caller.user, take, after).await?;
    let rows: Vec<Value> = rows.iter().map(version_body).collect();
    Ok(ok(super::paging::relay(rows, take, |v| {
        v["resourceId"].as_str().unwrap_or_default().to_owned()
    })))
}

/// A version as the original answers it, with `versionId` beside the resource's `id`.
fn version_body(version: &crate::routines::RoutineVersion) -> Value {
    let mut body = serde_json::to_value(version).unwrap_or(Value::Null);
    body["versionId"] = body["id"].clone();
    body["id"] = body["resourceId"].clone();
    body
}
