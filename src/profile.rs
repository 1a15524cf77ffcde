//! A user's own profile: what others see (name, handle, bio) and what only they see (theme,
//! languages, email addresses, notification settings). HTTP → `http::profile` → here →
//! PostgreSQL. Handles stay unique in any case through `users_handle_key`.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgPool;

use crate::ids::{EmailId, FileId, UserId};
use crate::notifications::NotificationSettings;

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Profile {
    pub id: UserId,
    pub handle: Option<String>,
    pub name: String,
    pub bio: Option<String>,
    pub theme: Option<String>,
    pub languages: Vec<String>,
    pub emails: Vec<ProfileEmail>,
    pub notification_settings: NotificationSettings,
    /// The uploaded profile image (`GET /api/v2/file/{id}` and its variants).
    pub profile_image_id: Option<FileId>,
    pub banner_image_id: Option<FileId>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProfileEmail {
    pub id: EmailId,
    pub email_address: String,
    pub verified: bool,
    /// Where notices by email go (without one, the oldest verified address).
    pub is_primary: bool,
}

/// A change to a profile; `None` leaves a field as it is, `Some(None)` clears it.
#[derive(Default)]
pub struct ProfileChange {
    pub name: Option<String>,
    pub handle: Option<Option<String>>,
    pub bio: Option<Option<String>>,
    pub theme: Option<Option<String>>,
    pub languages: Option<Vec<String>>,
    pub notification_settings: Option<NotificationSettings>,
    /// A file already checked to be the user's profile (banner) image; `Some(None)` clears.
    pub profile_image: Option<Option<FileId>>,
    pub banner_image: Option<Option<FileId>>,
}

#[derive(Clone)]
pub struct Profiles {
    pool: PgPool,
}

type Row = (
    UserId,
    Option<String>,
    String,
    Option<String>,
    Option<String>,
    Vec<String>,
    serde_json::Value,
    Option<FileId>,
    Option<FileId>,
    DateTime<Utc>,
    DateTime<Utc>,
);

impl Profiles {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    /// `None` when the account is gone.
    pub async fn get(&self, user: UserId) -> Result<Option<Profile>, sqlx::Error> {
        let row: Option<Row> = sqlx::query_as(
            "SELECT id, handle, name, bio, theme, languages, notification_settings,
                    profile_image_id, banner_image_id, created_at, updated_at
               FROM users WHERE id = $1 AND status <> 'Deleted'",
        )
        .bind(user)
        .fetch_optional(&self.pool)
        .await?;
        let Some((
            id,
            handle,
            name,
            bio,
            theme,
            languages,
            settings,
            profile_image_id,
            banner_image_id,
            created_at,
            updated_at,
        )) = row
        else {
            return Ok(None);
        };
        let emails = sqlx::query_as(
            "SELECT id, email_address, verified_at IS NOT NULL AS verified, is_primary
               FROM emails WHERE user_id = $1 ORDER BY id",
        )
        .bind(user)
        .fetch_all(&self.pool)
        .await?;
        Ok(Some(Profile {
            id,
            handle,
            name,
            bio,
            theme,
            languages,
            emails,
            notification_settings: NotificationSettings::from_stored(&settings),
            profile_image_id,
            banner_image_id,
            created_at,
            updated_at,
        }))
    }

    /// Applies `change` in one statement: all of it or, on a taken handle, none of it.
    pub async fn update(
        &self,
        user: UserId,
        change: ProfileChange,
    ) -> Result<Option<Profile>, sqlx::Error> {
        let settings = change
            .notification_settings
            .as_ref()
            .map(serde_json::to_value)
            .transpose()
            .map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
        sqlx::query(
            "UPDATE users SET name = COALESCE($2, name),
                    handle = CASE WHEN $3 THEN $4 ELSE handle END,
                    bio = CASE WHEN $5 THEN $6 ELSE bio END,
                    theme = CASE WHEN $7 THEN $8 ELSE theme END,
                    languages = COALESCE($9, languages),
                    notification_settings = COALESCE($10, notification_settings),
                    profile_image_id = CASE WHEN $11 THEN $12 ELSE profile_image_id END,
                    banner_image_id = CASE WHEN $13 THEN $14 ELSE banner_image_id END
              WHERE id = $1 AND status <> 'Deleted'",
        )
        .bind(user)
        .bind(&change.name)
        .bind(change.handle.is_some())
        .bind(change.handle.flatten())
        .bind(change.bio.is_some())
        .bind(change.bio.flatten())
        .bind(change.theme.is_some())
        .bind(change.theme.flatten())
        .bind(&change.languages)
        .bind(settings)
        .bind(change.profile_image.is_some())
        .bind(change.profile_image.flatten())
        .bind(change.banner_image.is_some())
        .bind(change.banner_image.flatten())
        .execute(&self.pool)
        .await?;
        self.get(user).await
    }
}

/// What a bio, theme and languages must be, wherever they come from (the profile route, a data
/// import).
pub mod rules {
    /// The longest bio (the column's size).
    const MAX_BIO_CHARS: usize = 2048;
    /// Languages a profile may list, and the longest tag (BCP 47 tags are at most 35).
    const MAX_LANGUAGES: usize = 20;
    const MAX_LANGUAGE_CHARS: usize = 35;
    const MAX_THEME_CHARS: usize = 32;

    pub fn check_bio(bio: &str) -> Result<(), &'static str> {
        if bio.chars().count() > MAX_BIO_CHARS {
            return Err("A bio is at most 2,048 characters");
        }
        Ok(())
    }

    pub fn check_theme(theme: &str) -> Result<(), &'static str> {
        let ok = theme.len() <= MAX_THEME_CHARS
            && theme
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !ok {
            return Err("A theme is at most 32 letters, digits, '-' or '_'");
        }
        Ok(())
    }

    pub fn check_languages(languages: &[String]) -> Result<(), &'static str> {
        let ok = languages.len() <= MAX_LANGUAGES
            && languages.iter().all(|l| {
                (2..=MAX_LANGUAGE_CHARS).contains(&l.len())
                    && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            });
        if !ok {
            return Err("languages are at most 20 tags such as \"en\" or \"pt-BR\"");
        }
        Ok(())
    }
}
