//! Stripe's webhook signature (`Stripe-Signature: t=<unix seconds>,v1=<hex>,v1=…`): an
//! HMAC-SHA256 of `<t>.<raw body>` with the endpoint's secret. The body is checked as it came,
//! byte for byte, before it is parsed; the comparison is constant-time (`aws_lc_rs::hmac::verify`);
//! a timestamp further than the tolerance from now, either way, is refused, so a captured
//! delivery cannot be replayed later.

use aws_lc_rs::hmac;

/// Why a delivery is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("no Stripe-Signature header, or one without t= and v1=")]
    Malformed,
    #[error("the signature's timestamp is outside the tolerance")]
    Stale,
    #[error("no v1 signature matches the body")]
    Mismatch,
}

/// Checks `header` against `body`, signed with `secret`, at `now` (unix seconds).
pub fn verify(
    header: &str,
    body: &[u8],
    secret: &str,
    now: i64,
    tolerance_secs: i64,
) -> Result<(), SignatureError> {
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", t)) => timestamp = t.parse::<i64>().ok(),
            Some(("v1", v)) => signatures.extend(from_hex(v)),
            _ => {}
        }
    }
    let (Some(timestamp), false) = (timestamp, signatures.is_empty()) else {
        return Err(SignatureError::Malformed);
    };
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    let mut signed = timestamp.to_string().into_bytes();
    signed.push(b'.');
    signed.extend_from_slice(body);
    if !signatures
        .iter()
        .any(|sig| hmac::verify(&key, &signed, sig).is_ok())
    {
        return Err(SignatureError::Mismatch);
    }
    // After the comparison: a bad signature says Mismatch whatever its age.
    if (now - timestamp).abs() > tolerance_secs {
        return Err(SignatureError::Stale);
    }
    Ok(())
}

fn from_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// A header as Stripe makes it (used by the tests of this module; the API tests sign with
/// Stripe's own library).
#[cfg(test)]
fn sign(body: &[u8], secret: &str, timestamp: i64) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    let mut signed = timestamp.to_string().into_bytes();
    signed.push(b'.');
    signed.extend_from_slice(body);
    let tag = hmac::sign(&key, &signed);
    let hex: String = tag.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    format!("t={timestamp},v1={hex}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signed_body_passes_and_anything_else_is_refused() {
        let body = br#"{"id":"evt_1","type":"checkout.session.completed"}"#;
        let header = sign(body, "whsec_test", 1_000_000);
        assert_eq!(verify(&header, body, "whsec_test", 1_000_100, 300), Ok(()));
        // Another secret, a changed body, a stale or future timestamp, a bad header.
        assert_eq!(
            verify(&header, body, "whsec_other", 1_000_100, 300),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(&header, b"{\"id\":\"evt_2\"}", "whsec_test", 1_000_100, 300),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(&header, body, "whsec_test", 1_000_301, 300),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            verify(&header, body, "whsec_test", 999_699, 300),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            verify("v1=abcd", body, "whsec_test", 1_000_000, 300),
            Err(SignatureError::Malformed)
        );
        // Several v1 signatures (during a secret's rotation): one matching is enough.
        let rotated = format!("t=1000000,v1=00ff,{}", &header[10..]);
        assert_eq!(verify(&rotated, body, "whsec_test", 1_000_000, 300), Ok(()));
    }
}
