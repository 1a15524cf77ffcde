//! `publicId`: the 12-character handle of a shareable row that can go in a URL without
//! revealing how many rows exist (Snowflake ids leak creation time and rate).

use rand::Rng;

const ALPHABET: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
pub const LENGTH: usize = 12;

#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize, sqlx::Type)]
#[sqlx(transparent)]
#[serde(transparent)]
pub struct PublicId(String);

impl PublicId {
    /// A fresh random id: 36^12 ≈ 4.7e18 values, so collisions are left to the unique index.
    pub fn generate() -> Self {
        let mut rng = rand::rng();
        let id = (0..LENGTH)
            .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
            .collect();
        Self(id)
    }

    pub fn parse(text: &str) -> Option<Self> {
        (text.len() == LENGTH && text.bytes().all(|b| ALPHABET.contains(&b)))
            .then(|| Self(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_parse() {
        for _ in 0..100 {
            let id = PublicId::generate();
            assert_eq!(PublicId::parse(id.as_str()), Some(id));
        }
        assert_eq!(PublicId::parse("ABCDEFGHIJKL"), None);
        assert_eq!(PublicId::parse("abc"), None);
    }
}
