//! The VAPID key when none is configured: made once, at first start, into `auth.key_dir`
//! (`vapid-p256.key`, the base64url scalar, owner-only), and read from there on every start
//! after — as the token keys are — so that browsers subscribed before a restart stay reachable.
//!
//! ```text
//! push.vapid_private_key set ─▶ that key
//! empty, push.generate_vapid_key ─▶ key_dir/vapid-p256.key (made if missing) ─▶ that key
//! empty, generation off ─▶ push off (subscribing answers 503 PushNotConfigured)
//! ```
//!
//! Several nodes must sign with one key (a browser subscribed through one node is sent to by
//! any): give them the same `push.vapid_private_key`, or the same key directory.

use std::path::Path;

use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use secrecy::{ExposeSecret, SecretString};
use web_push_native::p256;

use crate::config::PushSettings;

pub const FILE: &str = "vapid-p256.key";

#[derive(Debug, thiserror::Error)]
pub enum VapidKeyError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("generating a P-256 key failed")]
    Generate,
}

/// The push settings with the key to sign with: the configured one, else the kept one (made
/// now if there is none), else none (push off).
pub fn resolve(settings: &PushSettings, key_dir: &Path) -> Result<PushSettings, VapidKeyError> {
    if !settings.vapid_private_key.expose_secret().is_empty() || !settings.generate_vapid_key {
        return Ok(settings.clone());
    }
    let path = key_dir.join(FILE);
    let io = |source| VapidKeyError::Io {
        path: path.display().to_string(),
        source,
    };
    let key = match std::fs::read_to_string(&path) {
        Ok(kept) => kept.trim().to_owned(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(key_dir).map_err(io)?;
            if write_private(&path, &generate()?).map_err(io)? {
                tracing::warn!(
                    file = %path.display(),
                    "generated a VAPID key for Web Push; give every node the same \
                     push.vapid_private_key (or key directory) when running several"
                );
            }
            // Ours, or the one another node sharing the directory put there first.
            std::fs::read_to_string(&path)
                .map_err(io)?
                .trim()
                .to_owned()
        }
        Err(e) => return Err(io(e)),
    };
    let mut resolved = settings.clone();
    resolved.vapid_private_key = SecretString::from(key);
    Ok(resolved)
}

/// A random P-256 scalar, base64url (a random 32 bytes is a valid scalar but for a chance of
/// about 2^-32; those draws are drawn again).
fn generate() -> Result<String, VapidKeyError> {
    let random = SystemRandom::new();
    for _ in 0..8 {
        let mut bytes = [0u8; 32];
        random
            .fill(&mut bytes)
            .map_err(|_| VapidKeyError::Generate)?;
        if p256::SecretKey::from_slice(&bytes).is_ok() {
            return Ok(URL_SAFE_NO_PAD.encode(bytes));
        }
    }
    Err(VapidKeyError::Generate)
}

/// Puts the key at `path` readable by its owner alone, whole or not at all: written aside, then
/// linked into place, which fails if another process put one there first (then `false`).
fn write_private(path: &Path, key: &str) -> std::io::Result<bool> {
    use std::io::Write;
    let aside = path.with_extension(format!("{}.tmp", std::process::id()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let written = options.open(&aside).and_then(|mut file| {
        file.write_all(key.as_bytes())
            .and_then(|()| file.sync_all())
    });
    let linked = written.and_then(|()| std::fs::hard_link(&aside, path));
    let _ = std::fs::remove_file(&aside);
    match linked {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> PushSettings {
        crate::config::Settings::load(&crate::config::Sources::default())
            .unwrap()
            .push
    }

    #[test]
    fn a_key_is_made_once_and_kept() {
        let dir = std::env::temp_dir().join(format!("vrooli-vapid-{}", rand::random::<u64>()));
        let first = resolve(&settings(), &dir).unwrap();
        let again = resolve(&settings(), &dir).unwrap();
        let key = first.vapid_private_key.expose_secret().to_owned();
        assert_eq!(key, again.vapid_private_key.expose_secret());
        let raw = URL_SAFE_NO_PAD.decode(&key).unwrap();
        assert!(p256::SecretKey::from_slice(&raw).is_ok());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.join(FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_configured_key_or_generation_off_makes_no_file() {
        let dir = std::env::temp_dir().join(format!("vrooli-vapid-{}", rand::random::<u64>()));
        let mut off = settings();
        off.generate_vapid_key = false;
        assert!(
            resolve(&off, &dir)
                .unwrap()
                .vapid_private_key
                .expose_secret()
                .is_empty()
        );
        let mut given = settings();
        given.vapid_private_key = SecretString::from("configured".to_owned());
        assert_eq!(
            resolve(&given, &dir)
                .unwrap()
                .vapid_private_key
                .expose_secret(),
            "configured"
        );
        assert!(!dir.exists());
    }
}
