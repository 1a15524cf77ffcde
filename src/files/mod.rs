//! Uploaded files: profile and banner images (public, with variants) and chat attachments
//! (read by those who may read the chat).
//!
//! ```text
//! POST /file (multipart) ─▶ kinds::sniff (the bytes decide) ─▶ allowed for the purpose?
//!   ─▶ images::prepare on a blocking thread (raster kinds: size from the header and, for a
//!      GIF, every frame's descriptor (gif.rs), decode
//!      limits, EXIF orientation, metadata dropped, variants) ─▶ files row Uploading (naming
//!      every object) ─▶ objects stored (storage.rs: local dir or S3) ─▶ Ready
//!   (a failed store deletes what it stored and the row; what a crash leaves, the orphan job
//!   finds by the row)
//! GET /file/{id}[/{W}x{H}] ─▶ who may read it ─▶ the bytes (local) or a redirect to a
//!   presigned URL (S3)
//! files.delete-orphans (hourly) ─▶ stale Uploading rows, profile/banner images no profile
//!   names after storage.orphan_after_hours, attachments of deleted chats
//! ```

mod gif;
pub mod images;
pub mod kinds;
pub mod orphans;
pub mod storage;

use crate::errors::{Code, ErrorCode, Told};
use std::sync::Arc;

use serde::Serialize;
use sqlx::PgPool;

use crate::config::StorageSettings;
use crate::ids::{ChatId, FileId, Snowflake, UserId};
use images::PictureError;
use kinds::Kind;
pub use storage::{Storage, StorageError};

/// What an upload is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Profile,
    Banner,
    Attachment,
}

impl Purpose {
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "profile" => Some(Purpose::Profile),
            "banner" => Some(Purpose::Banner),
            "attachment" => Some(Purpose::Attachment),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::Profile => "profile",
            Purpose::Banner => "banner",
            Purpose::Attachment => "attachment",
        }
    }

    fn sizes(self) -> &'static [(u32, u32)] {
        match self {
            Purpose::Profile => images::PROFILE,
            Purpose::Banner => images::BANNER,
            Purpose::Attachment => &[],
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error(
        "this kind of file is not taken (allowed: txt, pdf, doc(x), xls(x), ppt(x), heic, png, jpg, gif, webp, tiff, bmp; svg for profile and banner images)"
    )]
    UnsupportedType,
    #[error("a profile or banner image must be an image")]
    NotAnImage,
    #[error("an SVG is taken for profile and banner images only")]
    SvgNotAllowed,
    #[error(transparent)]
    Picture(#[from] PictureError),
    #[error("an attachment names its chat (chatId)")]
    ChatRequired,
    #[error("no such chat")]
    ChatNotFound,
    #[error("only those who may write in the chat attach files to it")]
    NotAllowed,
    #[error("no such file")]
    NotFound,
    #[error("no such size of this file")]
    NoSuchVariant,
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Sql(#[from] sqlx::Error),
}

impl ErrorCode for FileError {
    fn told(&self) -> Told {
        let code = match self {
            FileError::UnsupportedType | FileError::NotAnImage | FileError::SvgNotAllowed => {
                Code::UnsupportedFileType
            }
            FileError::Picture(images::PictureError::TooLarge { .. }) => Code::ImageTooLarge,
            FileError::Picture(_) => Code::InvalidImage,
            FileError::ChatRequired => Code::MissingChatId,
            FileError::ChatNotFound => Code::ChatNotFound,
            FileError::NotAllowed => Code::NotAllowed,
            FileError::NotFound | FileError::NoSuchVariant => Code::FileNotFound,
            FileError::Storage(_) => return Told::ours(Code::StorageUnavailable),
            FileError::Sql(e) => return e.told(),
        };
        Told::says(code, self)
    }
}

/// An upload as its answer shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StoredFile {
    pub id: FileId,
    /// Where it is read (`GET`): the bytes, or a redirect to them.
    pub url: String,
    pub content_type: String,
    pub size: i64,
    pub variants: Vec<Variant>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Variant {
    pub width: u32,
    pub height: u32,
    pub url: String,
}

/// What `GET` of a file's URL gives.
pub enum Download {
    Bytes {
        content_type: String,
        bytes: Vec<u8>,
        /// An SVG is served sandboxed (it may hold script).
        svg: bool,
    },
    Redirect(String),
}

/// The stored row of a file.
#[derive(sqlx::FromRow)]
struct Row {
    id: FileId,
    purpose: String,
    chat_id: Option<ChatId>,
    content_type: String,
    extension: String,
    variants: sqlx::types::Json<Vec<(u32, u32)>>,
}

fn key(id: FileId, extension: &str, size: Option<(u32, u32)>) -> String {
    match size {
        Some((w, h)) => format!("{id}_{w}x{h}.{extension}"),
        None => format!("{id}.{extension}"),
    }
}

fn url(id: FileId, size: Option<(u32, u32)>) -> String {
    match size {
        Some((w, h)) => format!("/api/v2/file/{id}/{w}x{h}"),
        None => format!("/api/v2/file/{id}"),
    }
}

#[derive(Clone)]
pub struct FileService {
    pool: PgPool,
    ids: Arc<Snowflake>,
    storage: Storage,
    settings: Arc<StorageSettings>,
}

impl FileService {
    pub fn new(
        pool: PgPool,
        ids: Arc<Snowflake>,
        settings: &StorageSettings,
    ) -> Result<Self, StorageError> {
        Ok(Self {
            pool,
            ids,
            storage: Storage::from_settings(settings)?,
            settings: Arc::new(settings.clone()),
        })
    }

    pub fn storage(&self) -> &Storage {
        &self.storage
    }

    /// What an upload form may hold: the file's bytes, the number of fields, a text field's bytes.
    pub fn form_limits(&self) -> (usize, usize, usize) {
        let s = &self.settings;
        (s.max_file_bytes, s.max_form_fields, s.max_text_field_bytes)
    }

    /// Checks, prepares and stores one upload of `owner`.
    pub async fn upload(
        &self,
        owner: UserId,
        purpose: Purpose,
        chat: Option<ChatId>,
        bytes: Vec<u8>,
    ) -> Result<StoredFile, FileError> {
        let kind: Kind = kinds::sniff(&bytes).ok_or(FileError::UnsupportedType)?;
        match purpose {
            Purpose::Profile | Purpose::Banner if !kind.image => return Err(FileError::NotAnImage),
            Purpose::Attachment if kind == kinds::SVG => return Err(FileError::SvgNotAllowed),
            _ => {}
        }
        if purpose == Purpose::Attachment {
            let chat = chat.ok_or(FileError::ChatRequired)?;
            let access = crate::chat::access::chat_access(&self.pool, chat, Some(owner))
                .await?
                .filter(|a| a.can_read())
                .ok_or(FileError::ChatNotFound)?;
            if !access.can_write() {
                return Err(FileError::NotAllowed);
            }
        }
        let chat = chat.filter(|_| purpose == Purpose::Attachment);
        // Pictures are decoded, turned upright, stripped and resized off the async threads.
        let (stored, dimensions, variants) = if kind.raster {
            let (max_pixels, max_decode) = (
                self.settings.max_image_pixels,
                self.settings.max_decode_bytes,
            );
            let sizes = purpose.sizes();
            let picture = tokio::task::spawn_blocking(move || {
                images::prepare(&bytes, kind.extension, sizes, max_pixels, max_decode)
            })
            .await
            .map_err(|e| PictureError::Unreadable(e.to_string()))??;
            (
                picture.original,
                Some((picture.width, picture.height)),
                picture.variants,
            )
        } else {
            // HEIC cannot be decoded here: kept as uploaded, without variants (as SVG, text and
            // documents).
            (bytes, None, Vec::new())
        };
        let id = FileId(self.ids.next_id());
        let sizes: Vec<(u32, u32)> = variants.iter().map(|(w, h, _)| (*w, *h)).collect();
        let size = stored.len() as i64;
        sqlx::query(
            "INSERT INTO files (id, owner_id, purpose, chat_id, content_type, extension, size,
                                width, height, variants)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(id)
        .bind(owner)
        .bind(purpose.as_str())
        .bind(chat)
        .bind(kind.content_type)
        .bind(kind.extension)
        .bind(size)
        .bind(dimensions.map(|(w, _)| w as i32))
        .bind(dimensions.map(|(_, h)| h as i32))
        .bind(sqlx::types::Json(&sizes))
        .execute(&self.pool)
        .await?;
        let mut objects = vec![(key(id, kind.extension, None), stored)];
        for (w, h, bytes) in variants {
            objects.push((key(id, kind.extension, Some((w, h))), bytes));
        }
        if let Err(error) = self.store_all(&objects, kind.content_type).await {
            self.remove(id, kind.extension, &sizes).await;
            return Err(error.into());
        }
        sqlx::query("UPDATE files SET status = 'Ready' WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(StoredFile {
            id,
            url: url(id, None),
            content_type: kind.content_type.to_owned(),
            size,
            variants: sizes
                .iter()
                .map(|&(width, height)| Variant {
                    width,
                    height,
                    url: url(id, Some((width, height))),
                })
                .collect(),
        })
    }

    async fn store_all(
        &self,
        objects: &[(String, Vec<u8>)],
        content_type: &str,
    ) -> Result<(), StorageError> {
        for (key, bytes) in objects {
            self.storage.put(key, bytes.clone(), content_type).await?;
        }
        Ok(())
    }

    /// Deletes a file's objects, then its row (best effort: what fails stays for the orphan
    /// job, which finds it by the row).
    pub(crate) async fn remove(&self, id: FileId, extension: &str, sizes: &[(u32, u32)]) -> bool {
        let mut keys = vec![key(id, extension, None)];
        keys.extend(sizes.iter().map(|s| key(id, extension, Some(*s))));
        for key in &keys {
            if let Err(error) = self.storage.delete(key).await {
                tracing::warn!(%error, key, "a file's object was not deleted; kept for later");
                return false;
            }
        }
        sqlx::query("DELETE FROM files WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await
            .is_ok()
    }

    /// The bytes (or where to fetch them) of file `id`, or one of its variants, for `reader`:
    /// profile and banner images are public; an attachment is read by those who may read its
    /// chat. Others get NotFound.
    pub async fn open(
        &self,
        id: FileId,
        size: Option<(u32, u32)>,
        reader: Option<UserId>,
    ) -> Result<Download, FileError> {
        let row: Row = sqlx::query_as(
            "SELECT id, purpose, chat_id, content_type, extension, variants FROM files
              WHERE id = $1 AND status = 'Ready'",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or(FileError::NotFound)?;
        if row.purpose == "attachment" {
            let chat = row.chat_id.ok_or(FileError::NotFound)?;
            let readable = crate::chat::access::chat_access(&self.pool, chat, reader)
                .await?
                .is_some_and(|a| a.can_read());
            if !readable {
                return Err(FileError::NotFound);
            }
        }
        if size.is_some_and(|s| !row.variants.0.contains(&s)) {
            return Err(FileError::NoSuchVariant);
        }
        let key = key(row.id, &row.extension, size);
        if let Some(url) = self.storage.presigned(&key).await? {
            return Ok(Download::Redirect(url));
        }
        Ok(Download::Bytes {
            svg: row.extension == "svg",
            content_type: row.content_type,
            bytes: self.storage.get(&key).await?,
        })
    }

    /// Whether `file` is `owner`'s ready upload for `purpose` (what a profile may name).
    pub async fn is_own(
        &self,
        file: FileId,
        owner: UserId,
        purpose: Purpose,
    ) -> Result<bool, sqlx::Error> {
        sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM files WHERE id = $1 AND owner_id = $2
                              AND purpose = $3 AND status = 'Ready')",
        )
        .bind(file)
        .bind(owner)
        .bind(purpose.as_str())
        .fetch_one(&self.pool)
        .await
    }

    pub(crate) fn pool(&self) -> &PgPool {
        &self.pool
    }

    pub(crate) fn orphan_after_hours(&self) -> u64 {
        self.settings.orphan_after_hours
    }
}
