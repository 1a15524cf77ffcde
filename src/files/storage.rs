//! Where file bytes live: a directory on this node, or an S3-compatible store (aws-sdk-s3 with
//! rustls, built from `[storage.s3]` alone: no `aws-config` credential chain). Keys are made by
//! `files` only (`<id>.<ext>`, `<id>_<W>x<H>.<ext>`), never taken from a request.

use std::path::PathBuf;
use std::time::Duration;

use aws_sdk_s3::config::{
    BehaviorVersion, Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation,
};
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use secrecy::ExposeSecret;

use crate::config::{StorageBackend, StorageSettings};

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("file storage failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("S3 failed: {0}")]
    S3(String),
}

fn s3_error(error: impl std::fmt::Display) -> StorageError {
    StorageError::S3(error.to_string())
}

#[derive(Clone)]
pub enum Storage {
    Local {
        dir: PathBuf,
    },
    S3 {
        client: aws_sdk_s3::Client,
        bucket: String,
        url_ttl: Duration,
    },
}

impl Storage {
    pub fn from_settings(settings: &StorageSettings) -> Result<Self, StorageError> {
        match settings.backend {
            StorageBackend::Local => {
                let dir = PathBuf::from(&settings.local_dir);
                std::fs::create_dir_all(&dir)?;
                Ok(Storage::Local { dir })
            }
            StorageBackend::S3 => {
                let s3 = &settings.s3;
                let credentials = Credentials::new(
                    &s3.access_key_id,
                    s3.secret_access_key.expose_secret(),
                    None,
                    None,
                    "vrooli-config",
                );
                let mut config = aws_sdk_s3::Config::builder()
                    .behavior_version(BehaviorVersion::latest())
                    .region(Region::new(s3.region.clone()))
                    .credentials_provider(credentials)
                    .force_path_style(s3.path_style)
                    // S3-compatible stores refuse the newer default CRC32 trailers.
                    .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
                    .response_checksum_validation(ResponseChecksumValidation::WhenRequired);
                if !s3.endpoint.is_empty() {
                    config = config.endpoint_url(&s3.endpoint);
                }
                Ok(Storage::S3 {
                    client: aws_sdk_s3::Client::from_conf(config.build()),
                    bucket: s3.bucket.clone(),
                    url_ttl: Duration::from_secs(settings.url_ttl_secs),
                })
            }
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Storage::Local { .. } => "local",
            Storage::S3 { .. } => "s3",
        }
    }

    pub async fn put(
        &self,
        key: &str,
        bytes: Vec<u8>,
        content_type: &str,
    ) -> Result<(), StorageError> {
        match self {
            Storage::Local { dir } => {
                // Written aside, then renamed: a reader never sees half a file.
                let path = dir.join(key);
                let partial = dir.join(format!("{key}.partial"));
                tokio::fs::write(&partial, bytes).await?;
                tokio::fs::rename(&partial, &path).await?;
                Ok(())
            }
            Storage::S3 { client, bucket, .. } => client
                .put_object()
                .bucket(bucket)
                .key(key)
                .content_type(content_type)
                .body(ByteStream::from(bytes))
                .send()
                .await
                .map(drop)
                .map_err(s3_error),
        }
    }

    /// The bytes of `key` (the local backend serves files itself).
    pub async fn get(&self, key: &str) -> Result<Vec<u8>, StorageError> {
        match self {
            Storage::Local { dir } => Ok(tokio::fs::read(dir.join(key)).await?),
            Storage::S3 { client, bucket, .. } => {
                let object = client
                    .get_object()
                    .bucket(bucket)
                    .key(key)
                    .send()
                    .await
                    .map_err(s3_error)?;
                let bytes = object.body.collect().await.map_err(s3_error)?;
                Ok(bytes.into_bytes().to_vec())
            }
        }
    }

    /// A short-lived URL that downloads `key` straight from the store; `None` for the local
    /// backend (which serves the bytes through the server).
    pub async fn presigned(&self, key: &str) -> Result<Option<String>, StorageError> {
        match self {
            Storage::Local { .. } => Ok(None),
            Storage::S3 {
                client,
                bucket,
                url_ttl,
            } => {
                let config = PresigningConfig::expires_in(*url_ttl).map_err(s3_error)?;
                let request = client
                    .get_object()
                    .bucket(bucket)
                    .key(key)
                    .presigned(config)
                    .await
                    .map_err(s3_error)?;
                Ok(Some(request.uri().to_owned()))
            }
        }
    }

    /// Deletes `key`; one already gone is not an error.
    pub async fn delete(&self, key: &str) -> Result<(), StorageError> {
        match self {
            Storage::Local { dir } => match tokio::fs::remove_file(dir.join(key)).await {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
                _ => Ok(()),
            },
            Storage::S3 { client, bucket, .. } => client
                .delete_object()
                .bucket(bucket)
                .key(key)
                .send()
                .await
                .map(drop)
                .map_err(s3_error),
        }
    }

    /// The health check: the directory is writable, or the bucket answers.
    pub async fn probe(&self) -> Result<(), StorageError> {
        match self {
            Storage::Local { dir } => {
                let probe = dir.join(".health");
                tokio::fs::write(&probe, b"ok").await?;
                tokio::fs::remove_file(&probe).await?;
                Ok(())
            }
            Storage::S3 { client, bucket, .. } => client
                .head_bucket()
                .bucket(bucket)
                .send()
                .await
                .map(drop)
                .map_err(s3_error),
        }
    }
}
