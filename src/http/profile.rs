//! The caller's own profile and notification settings:
//! - `GET /profile` · `PUT /profile {name?, handle?, bio?, theme?, languages?,
//!   notificationSettings?}` (`""` clears handle, bio and theme);
//! - `PUT /profile/email {currentPassword, newPassword?, emailsCreate?, emailsDelete?,
//!   primaryEmailId?}` (signed in with a session, not an API key; `auth::credentials`);
//! - `DELETE /profile {password}` (a session; the original's `user/deleteOne`): the account is
//!   marked deleted, signed out everywhere, and purged `auth.deleted_account_days` later;
//! - `GET /notificationSettings` · `PUT /notificationSettings` (the whole settings object).
//!
//! Every field is checked before anything is written; a taken handle (any case) is 409
//! `HandleTaken` and changes nothing.

use actix_web::{HttpResponse, delete, get, put, web};
use serde::Deserialize;
use utoipa::ToSchema;

use crate::domain::{ChatName, Handle};
use crate::errors::Code;
use crate::files::Purpose;
use crate::http::auth::session::{ReadPrivate, Require, WritePrivate};
use crate::http::error::ApiError;
use crate::http::reply::{Envelope, ok};
use crate::ids::{FileId, UserId};
use crate::notifications::NotificationSettings;
use crate::profile::{Profile, ProfileChange, rules};
use crate::state::AppState;

pub fn config(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(get_profile)
        .service(update_profile)
        .service(update_credentials)
        .service(delete_account)
        .service(get_settings)
        .service(update_settings);
}

fn invalid(message: &'static str) -> ApiError {
    ApiError::of(Code::InvalidProfile, message)
}

async fn profile_of(state: &AppState, user: UserId) -> Result<Profile, ApiError> {
    state
        .people
        .profiles
        .get(user)
        .await?
        .ok_or_else(|| ApiError::of(Code::UserNotFound, "No such user"))
}

/// The caller's profile, with their email addresses and notification settings.
#[utoipa::path(
    tag = "profile",
    responses((status = 200, description = "The profile", body = Envelope<Profile>)),
)]
#[get("/profile")]
pub async fn get_profile(
    caller: Require<ReadPrivate>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    Ok(ok(profile_of(&state, caller.user).await?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct UpdateProfile {
    /// 1 to 128 characters.
    #[schema(max_length = 128)]
    name: Option<String>,
    /// 3 to 16 letters, digits or underscores, unique in any case; `""` removes it.
    handle: Option<String>,
    /// At most 2,048 characters; `""` removes it.
    #[schema(max_length = 2048)]
    bio: Option<String>,
    /// A theme name (letters, digits, `-`, `_`; at most 32), e.g. `light`, `dark`; `""` removes it.
    theme: Option<String>,
    /// Language tags in order of preference (e.g. `en`, `pt-BR`), at most 20.
    languages: Option<Vec<String>>,
    notification_settings: Option<NotificationSettings>,
    /// One of the caller's `profile` uploads (`POST /file`); `""` removes it.
    #[schema(value_type = Option<String>)]
    profile_image_id: Option<String>,
    /// One of the caller's `banner` uploads; `""` removes it.
    #[schema(value_type = Option<String>)]
    banner_image_id: Option<String>,
}

/// `Some(None)` for `""` (clear), the checked text otherwise.
fn clearable(
    value: Option<String>,
    check: impl Fn(&str) -> Result<String, ApiError>,
) -> Result<Option<Option<String>>, ApiError> {
    value
        .map(|v| {
            let v = v.trim();
            if v.is_empty() {
                Ok(None)
            } else {
                check(v).map(Some)
            }
        })
        .transpose()
}

fn check(body: UpdateProfile) -> Result<ProfileChange, ApiError> {
    let name = body
        .name
        .map(|n| {
            ChatName::parse(&n)
                .ok()
                .map(ChatName::into_string)
                .filter(|n| !n.is_empty())
                .ok_or_else(|| ApiError::of(Code::InvalidName, "A name is 1 to 128 characters"))
        })
        .transpose()?;
    let handle = clearable(body.handle, |h| {
        Handle::parse(h)
            .map(|h| h.as_str().to_owned())
            .map_err(|_| {
                ApiError::of(
                    Code::InvalidHandle,
                    "A handle is 3 to 16 letters, digits or underscores",
                )
            })
    })?;
    let bio = clearable(body.bio, |b| {
        rules::check_bio(b).map_err(invalid)?;
        Ok(b.to_owned())
    })?;
    let theme = clearable(body.theme, |t| {
        rules::check_theme(t).map_err(invalid)?;
        Ok(t.to_owned())
    })?;
    if let Some(languages) = &body.languages {
        rules::check_languages(languages).map_err(invalid)?;
    }
    Ok(ProfileChange {
        name,
        handle,
        bio,
        theme,
        languages: body.languages,
        notification_settings: body.notification_settings,
        profile_image: image_id(body.profile_image_id)?,
        banner_image: image_id(body.banner_image_id)?,
    })
}

/// `""` clears; otherwise a file id (checked to be the caller's by the handler).
fn image_id(value: Option<String>) -> Result<Option<Option<FileId>>, ApiError> {
    value
        .map(|v| match v.trim() {
            "" => Ok(None),
            id => id
                .parse::<i64>()
                .map(|id| Some(FileId(id)))
                .map_err(|_| ApiError::of(Code::InvalidId, "A file id is a decimal number")),
        })
        .transpose()
}

/// Changes the caller's profile: all of it, or nothing when a field is refused.
#[utoipa::path(
    tag = "profile",
    request_body = UpdateProfile,
    responses((status = 200, description = "The profile", body = Envelope<Profile>)),
)]
#[put("/profile")]
pub async fn update_profile(
    caller: Require<WritePrivate>,
    state: web::Data<AppState>,
    body: web::Json<UpdateProfile>,
) -> Result<HttpResponse, ApiError> {
    let change = check(body.into_inner())?;
    for (file, purpose) in [
        (change.profile_image, Purpose::Profile),
        (change.banner_image, Purpose::Banner),
    ] {
        if let Some(Some(file)) = file
            && !state.files.is_own(file, caller.user, purpose).await?
        {
            return Err(invalid(match purpose {
                Purpose::Profile => "profileImageId names none of your profile images",
                _ => "bannerImageId names none of your banner images",
            }));
        }
    }
    state
        .people
        .profiles
        .update(caller.user, change)
        .await?
        .map(ok)
        .ok_or_else(|| ApiError::of(Code::UserNotFound, "No such user"))
}

/// What reaches the caller: every notice, by email, per category.
#[utoipa::path(
    tag = "profile",
    responses((status = 200, description = "The settings", body = Envelope<NotificationSettings>)),
)]
#[get("/notificationSettings")]
pub async fn get_settings(
    caller: Require<ReadPrivate>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    Ok(ok(profile_of(&state, caller.user)
        .await?
        .notification_settings))
}

/// Replaces the caller's notification settings (unknown categories or fields are refused).
#[utoipa::path(
    tag = "profile",
    request_body = NotificationSettings,
    responses((status = 200, description = "The settings", body = Envelope<NotificationSettings>)),
)]
#[put("/notificationSettings")]
pub async fn update_settings(
    caller: Require<WritePrivate>,
    state: web::Data<AppState>,
    body: web::Json<NotificationSettings>,
) -> Result<HttpResponse, ApiError> {
    let change = ProfileChange {
        notification_settings: Some(body.into_inner()),
        ..ProfileChange::default()
    };
    let profile = state
        .people
        .profiles
        .update(caller.user, change)
        .await?
        .ok_or_else(|| ApiError::of(Code::UserNotFound, "No such user"))?;
    Ok(ok(profile.notification_settings))
}

/// Addresses one change may add.
const MAX_NEW_EMAILS: usize = 5;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct UpdateCredentials {
    #[schema(value_type = String, format = Password)]
    current_password: secrecy::SecretString,
    /// A new password (within the configured length bounds): every other session ends.
    #[schema(value_type = Option<String>, format = Password)]
    new_password: Option<secrecy::SecretString>,
    /// Addresses to add (at most 5); each gets a verification mail.
    #[serde(default)]
    emails_create: Vec<String>,
    /// Ids of the caller's addresses to remove (one always stays).
    #[serde(default)]
    emails_delete: Vec<crate::ids::EmailId>,
    /// A verified address of the caller's to make primary.
    primary_email_id: Option<crate::ids::EmailId>,
}

/// Changes the caller's password and email addresses, with their current password.
#[utoipa::path(
    tag = "profile",
    request_body = UpdateCredentials,
    responses((status = 200, description = "The profile", body = Envelope<Profile>)),
    security(("cookie" = []), ("bearer" = [])),
)]
#[put("/profile/email")]
pub async fn update_credentials(
    caller: crate::http::auth::session::AuthUser,
    state: web::Data<AppState>,
    body: web::Json<UpdateCredentials>,
) -> Result<HttpResponse, ApiError> {
    use crate::auth::credentials::CredentialsChange;
    let body = body.into_inner();
    if let Some(password) = &body.new_password {
        crate::http::auth::check_password_rules(&state, password)?;
    }
    if body.emails_create.len() > MAX_NEW_EMAILS {
        return Err(ApiError::of(
            Code::InvalidEmail,
            "At most 5 addresses are added at once",
        ));
    }
    let add = body
        .emails_create
        .iter()
        .map(|e| crate::http::auth::parse_email(e))
        .collect::<Result<Vec<_>, _>>()?;
    let change = CredentialsChange {
        current_password: body.current_password,
        new_password: body.new_password,
        add,
        remove: body.emails_delete,
        primary: body.primary_email_id,
    };
    state
        .auth
        .sessions
        .change_credentials(
            &state.infra.ids,
            &state.infra.jobs,
            caller.id,
            caller.session_id,
            change,
        )
        .await?;
    Ok(ok(profile_of(&state, caller.id).await?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeleteAccount {
    #[schema(value_type = String, format = Password)]
    password: secrecy::SecretString,
}

/// Deletes the caller's account, with their password: signed out everywhere at once, their
/// API keys stopped, the account purged `auth.deleted_account_days` later.
#[utoipa::path(
    tag = "profile",
    request_body = DeleteAccount,
    responses((status = 200, description = "The account was deleted", body = Envelope<crate::http::bodies::Deleted<UserId>>)),
    security(("cookie" = []), ("bearer" = [])),
)]
#[delete("/profile")]
pub async fn delete_account(
    caller: crate::http::auth::session::AuthUser,
    state: web::Data<AppState>,
    body: web::Json<DeleteAccount>,
) -> Result<HttpResponse, ApiError> {
    state
        .auth
        .sessions
        .delete_account(caller.id, body.into_inner().password)
        .await?;
    let removal = crate::http::auth::session::removal_cookie(state.auth.sessions.settings());
    let mut response = ok(crate::http::bodies::Deleted::new(caller.id));
    response.add_cookie(&removal).map_err(ApiError::internal)?;
    Ok(response)
}
