//! The HMAC-SHA256 signature of a webhook body: what the sender computes with the shared
//! secret, carried in a header as `sha256=<hex>` (GitHub's form) or as bare hex.
//!
//! The comparison goes through `hmac::Mac::verify_slice`, which takes the same time however
//! many leading bytes match, so the answer does not leak the expected signature.

use axum::http::{HeaderMap, HeaderName};
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Why a webhook's signature was not accepted (every variant is a 401).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// The request has no signature header.
    #[error("missing signature header `{0}`")]
    Missing(HeaderName),
    /// The header is not `sha256=<64 hex digits>` or 64 hex digits.
    #[error("signature header `{0}` is not `sha256=<hex>` or hex")]
    Malformed(HeaderName),
    /// The signature is well formed but was not made with this source's secret over this
    /// body.
    #[error("signature in `{0}` does not match the body")]
    Mismatch(HeaderName),
}

/// Checks that `headers[header]` is the HMAC-SHA256 of `body` keyed with `secret`.
pub fn verify(
    secret: &[u8],
    body: &[u8],
    headers: &HeaderMap,
    header: &HeaderName,
) -> Result<(), SignatureError> {
    let value = headers
        .get(header)
        .ok_or_else(|| SignatureError::Missing(header.clone()))?;
    let given = value
        .to_str()
        .ok()
        .and_then(parse)
        .ok_or_else(|| SignatureError::Malformed(header.clone()))?;
    // HMAC takes keys of any length, so this cannot fail; treat it as a mismatch if it did.
    let mut mac = Hmac::<Sha256>::new_from_slice(secret)
        .map_err(|_| SignatureError::Mismatch(header.clone()))?;
    mac.update(body);
    mac.verify_slice(&given)
        .map_err(|_| SignatureError::Mismatch(header.clone()))
}

/// The digest bytes of `sha256=<hex>` or `<hex>`; `None` unless exactly 32 bytes.
fn parse(value: &str) -> Option<Vec<u8>> {
    let value = value.trim();
    let hex_digits = match value.split_once('=') {
        Some((scheme, digits)) if scheme.eq_ignore_ascii_case("sha256") => digits,
        Some(_) => return None,
        None => value,
    };
    hex::decode(hex_digits)
        .ok()
        .filter(|bytes| bytes.len() == 32)
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    /// `sha256=<hex>` of `body` keyed with `secret`: what a sender puts in the header.
    fn sign(secret: &[u8], body: &[u8]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret).unwrap();
        mac.update(body);
        format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
    }

    const HEADER: HeaderName = HeaderName::from_static("x-signature-256");

    fn with_signature(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(HEADER, HeaderValue::from_str(value).unwrap());
        headers
    }

    // RFC 4231, test case 2.
    const RFC_KEY: &[u8] = b"Jefe";
    const RFC_DATA: &[u8] = b"what do ya want for nothing?";
    const RFC_MAC: &str = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843";

    #[test]
    fn signing_matches_the_rfc_4231_vector() {
        assert_eq!(sign(RFC_KEY, RFC_DATA), format!("sha256={RFC_MAC}"));
    }

    #[test]
    fn prefixed_and_bare_hex_both_verify() {
        for value in [
            format!("sha256={RFC_MAC}"),
            RFC_MAC.to_owned(),
            RFC_MAC.to_uppercase(),
            format!("SHA256={RFC_MAC}"),
        ] {
            assert_eq!(
                verify(RFC_KEY, RFC_DATA, &with_signature(&value), &HEADER),
                Ok(()),
                "{value}"
            );
        }
    }

    #[test]
    fn a_missing_header_is_reported_as_missing() {
        assert_eq!(
            verify(RFC_KEY, RFC_DATA, &HeaderMap::new(), &HEADER),
            Err(SignatureError::Missing(HEADER))
        );
    }

    #[test]
    fn another_body_or_secret_does_not_match() {
        let headers = with_signature(&sign(RFC_KEY, RFC_DATA));
        assert_eq!(
            verify(RFC_KEY, b"what do ya want for nothing!", &headers, &HEADER),
            Err(SignatureError::Mismatch(HEADER))
        );
        assert_eq!(
            verify(b"jefe", RFC_DATA, &headers, &HEADER),
            Err(SignatureError::Mismatch(HEADER))
        );
    }

    #[test]
    fn malformed_values_are_refused_before_comparing() {
        for value in [
            "",
            "sha1=5bdcc146bf60754e6a042426089575c75a003f08",
            "sha256=not-hex",
            "sha256=5bdcc146",
            &format!("sha256={RFC_MAC}00"),
        ] {
            assert_eq!(
                verify(RFC_KEY, RFC_DATA, &with_signature(value), &HEADER),
                Err(SignatureError::Malformed(HEADER)),
                "{value:?}"
            );
        }
    }
}
