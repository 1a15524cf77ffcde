//! An email address, checked for shape only (one `@`, a dotted domain, no spaces, at most 254
//! bytes): whether it exists is for the verification mail to find out.
//!
//! Stored and compared in one form, so addresses that look the same are the same account: the
//! local part in Unicode NFC and lower case, the domain in IDNA's ASCII form (UTS #46, which
//! also lower-cases and normalises it): `José@Exämple.org` written with a combining accent and
//! with a precomposed one are both `josé@xn--exmple-cua.org`.

use unicode_normalization::UnicodeNormalization;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an email address")]
pub struct InvalidEmail;

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(transparent)]
pub struct EmailAddress(String);

impl EmailAddress {
    pub fn parse(text: &str) -> Result<Self, InvalidEmail> {
        let text = text.trim();
        if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(InvalidEmail);
        }
        let (local, domain) = text.split_once('@').ok_or(InvalidEmail)?;
        let local: String = local.nfc().collect::<String>().to_lowercase();
        let domain = idna::domain_to_ascii(domain).map_err(|_| InvalidEmail)?;
        let text = format!("{local}@{domain}");
        let text = text.as_str();
        let ok = text.len() <= 254
            && !local.is_empty()
            && local.len() <= 64
            && !domain.contains('@')
            && domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !text.chars().any(|c| c.is_whitespace() || c.is_control());
        if ok {
            Ok(Self(text.to_owned()))
        } else {
            Err(InvalidEmail)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_and_rejects() {
        assert!(EmailAddress::parse("admin@vrooli.local").is_ok());
        assert_eq!(
            EmailAddress::parse(" Sam.Doe@Example.ORG ")
                .unwrap()
                .as_str(),
            "sam.doe@example.org"
        );
        // Precomposed é (NFC) and e + combining acute (NFD) are one address; so is the domain
        // in Unicode and in punycode.
        let nfc = EmailAddress::parse("jos\u{e9}@ex\u{e4}mple.org").unwrap();
        let nfd = EmailAddress::parse("jose\u{301}@exa\u{308}mple.org").unwrap();
        let puny = EmailAddress::parse("JOS\u{c9}@xn--exmple-cua.org").unwrap();
        assert_eq!(nfc, nfd);
        assert_eq!(nfc, puny);
        assert_eq!(nfc.as_str(), "jos\u{e9}@xn--exmple-cua.org");
        for bad in ["", "a", "a@b", "@b.c", "a@@b.c", "a b@c.d", "a@.c", "a@c."] {
            assert_eq!(EmailAddress::parse(bad), Err(InvalidEmail), "{bad}");
        }
    }
}
