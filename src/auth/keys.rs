//! The Ed25519 key pair that signs session tokens. Loaded from `auth.private_key_file` and
//! `auth.public_key_file` (PEM) so every node verifies every other node's tokens; without them,
//! a pair is generated once into `auth.key_dir` and reused on restart (one-node development).

use std::path::Path;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use jsonwebtoken::{DecodingKey, EncodingKey};

use crate::config::AuthSettings;

/// SubjectPublicKeyInfo header of an Ed25519 key (RFC 8410): the DER prefix before the 32 bytes.
const ED25519_SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("reading {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("writing {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} is not an Ed25519 PEM key: {source}")]
    Parse {
        path: String,
        source: jsonwebtoken::errors::Error,
    },
    #[error("generating an Ed25519 key pair failed")]
    Generate,
}

pub struct TokenKeys {
    pub encoding: EncodingKey,
    pub decoding: DecodingKey,
}

impl TokenKeys {
    pub fn load(settings: &AuthSettings) -> Result<Self, KeyError> {
        if !settings.private_key_file.is_empty() {
            return Self::from_files(
                Path::new(&settings.private_key_file),
                Path::new(&settings.public_key_file),
            );
        }
        let private = settings.key_dir.join("token-ed25519.pem");
        let public = settings.key_dir.join("token-ed25519.pub.pem");
        if !private.exists() || !public.exists() {
            generate_into(&private, &public)?;
            tracing::warn!(dir = %settings.key_dir.display(), "generated a token signing key pair; give every node the same auth.private_key_file / auth.public_key_file when running several");
        }
        Self::from_files(&private, &public)
    }

    fn from_files(private: &Path, public: &Path) -> Result<Self, KeyError> {
        let read = |path: &Path| {
            std::fs::read(path).map_err(|source| KeyError::Read {
                path: path.display().to_string(),
                source,
            })
        };
        let encoding =
            EncodingKey::from_ed_pem(&read(private)?).map_err(|source| KeyError::Parse {
                path: private.display().to_string(),
                source,
            })?;
        let decoding =
            DecodingKey::from_ed_pem(&read(public)?).map_err(|source| KeyError::Parse {
                path: public.display().to_string(),
                source,
            })?;
        Ok(Self { encoding, decoding })
    }
}

/// Writes a fresh pair as PKCS#8 and SPKI PEM files (the private one readable by its owner only).
pub fn generate_into(private: &Path, public: &Path) -> Result<(), KeyError> {
    let pkcs8 =
        Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).map_err(|_| KeyError::Generate)?;
    let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).map_err(|_| KeyError::Generate)?;
    let mut spki = ED25519_SPKI_PREFIX.to_vec();
    spki.extend_from_slice(pair.public_key().as_ref());
    let write = |path: &Path, label: &str, der: &[u8]| {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|source| KeyError::Write {
                path: dir.display().to_string(),
                source,
            })?;
        }
        let pem = format!(
            "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
            STANDARD.encode(der)
        );
        std::fs::write(path, pem).map_err(|source| KeyError::Write {
            path: path.display().to_string(),
            source,
        })
    };
    write(private, "PRIVATE KEY", pkcs8.as_ref())?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(private, std::fs::Permissions::from_mode(0o600));
    }
    write(public, "PUBLIC KEY", &spki)
}
