//! `[storage]`: where uploaded files and their image variants are kept (`src/files/`).

use secrecy::SecretString;
use serde::Deserialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StorageBackend {
    /// A directory on this node (one node runs with nothing else).
    Local,
    /// An S3-compatible store shared by every node.
    S3,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageSettings {
    pub backend: StorageBackend,
    /// The local backend's directory (made at start-up).
    pub local_dir: String,
    /// The largest file `POST /file` takes (413 `BodyTooLarge` beyond).
    pub max_file_bytes: usize,
    /// Fields an upload form may have, and the longest of its text fields (`purpose`,
    /// `chatId`): 400 `InvalidBody` beyond.
    pub max_form_fields: usize,
    pub max_text_field_bytes: usize,
    /// An image with more pixels than this (width × height, read from its header before it is
    /// decoded) is refused: a decompression bomb is never decoded.
    pub max_image_pixels: u64,
    /// Memory an image may take while it is decoded.
    pub max_decode_bytes: u64,
    /// Presigned S3 downloads live this long.
    pub url_ttl_secs: u64,
    /// A profile or banner image no profile names this long after its upload is deleted.
    pub orphan_after_hours: u64,
    pub s3: S3Settings,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3Settings {
    /// The store's URL (empty: AWS's own for the region).
    pub endpoint: String,
    pub bucket: String,
    pub region: String,
    pub access_key_id: String,
    pub secret_access_key: SecretString,
    /// `https://endpoint/bucket/key` rather than `https://bucket.endpoint/key` (most
    /// S3-compatible stores need it).
    pub path_style: bool,
}
