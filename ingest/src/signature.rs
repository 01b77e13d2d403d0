//! Webhook signatures, all HMACs over the raw body:
//! GitHub's `X-Hub-Signature-256: sha256=<hex>` (and, only when enabled, the legacy SHA-1
//! `X-Hub-Signature: sha1=<hex>`), and CircleCI's `circleci-signature: v1=<hex>` (SHA-256).
//!
//! Comparisons are constant-time (`Mac::verify_slice`), and any one of several configured
//! secrets may match, so a secret can be rotated without refusing deliveries in between.

use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::Sha256;

use hudstream_runtime::Secret;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("missing X-Hub-Signature-256 header")]
    Missing,
    #[error("X-Hub-Signature-256 must be 'sha256=' followed by 64 hex digits")]
    Malformed,
    #[error("X-Hub-Signature-256 does not match the body for any configured secret")]
    Mismatch,
    #[error("X-Hub-Signature (SHA-1) does not match the body for any configured secret")]
    Sha1Mismatch,
    #[error("X-Hub-Signature must be 'sha1=' followed by 40 hex digits")]
    Sha1Malformed,
    #[error("missing circleci-signature header")]
    CircleCiMissing,
    #[error(
        "circleci-signature has no v1 signature that matches the body for any configured secret"
    )]
    CircleCiMismatch,
}

fn matches<M: Mac + hmac::digest::KeyInit>(
    secrets: &[Secret],
    body: &[u8],
    expected: &[u8],
) -> bool {
    secrets.iter().any(|secret| {
        let Ok(mut mac) = <M as hmac::digest::KeyInit>::new_from_slice(secret.expose().as_bytes())
        else {
            return false;
        };
        mac.update(body);
        mac.verify_slice(expected).is_ok()
    })
}

/// Checks the legacy `X-Hub-Signature: sha1=<hex>` value (only used when explicitly enabled).
pub fn verify_sha1(secrets: &[Secret], header: &str, body: &[u8]) -> Result<(), SignatureError> {
    let hex_digest = header
        .trim()
        .strip_prefix("sha1=")
        .ok_or(SignatureError::Sha1Malformed)?;
    if hex_digest.len() != 40 {
        return Err(SignatureError::Sha1Malformed);
    }
    let expected = hex::decode(hex_digest).map_err(|_| SignatureError::Sha1Malformed)?;
    if matches::<Hmac<Sha1>>(secrets, body, &expected) {
        Ok(())
    } else {
        Err(SignatureError::Sha1Mismatch)
    }
}

/// Checks CircleCI's `circleci-signature` header: comma-separated `version=hex` pairs, of which
/// a `v1` (HMAC-SHA256) one must match.
pub fn verify_circleci(
    secrets: &[Secret],
    header: Option<&str>,
    body: &[u8],
) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::CircleCiMissing)?;
    let ok = header
        .split(',')
        .filter_map(|part| part.trim().strip_prefix("v1="))
        .filter_map(|h| hex::decode(h.trim()).ok())
        .any(|expected| expected.len() == 32 && matches::<Hmac<Sha256>>(secrets, body, &expected));
    if ok {
        Ok(())
    } else {
        Err(SignatureError::CircleCiMismatch)
    }
}

/// Checks `header` (the value of `X-Hub-Signature-256`) against `body` for every secret.
pub fn verify_sha256(
    secrets: &[Secret],
    header: Option<&str>,
    body: &[u8],
) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?.trim();
    let hex_digest = header
        .strip_prefix("sha256=")
        .ok_or(SignatureError::Malformed)?;
    if hex_digest.len() != 64 {
        return Err(SignatureError::Malformed);
    }
    let expected = hex::decode(hex_digest).map_err(|_| SignatureError::Malformed)?;
    if matches::<Hmac<Sha256>>(secrets, body, &expected) {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// The `X-Hub-Signature-256` value GitHub would send for `body` (used by `hudstream feed`).
pub fn sign_sha256(secret: &Secret, body: &[u8]) -> String {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.expose().as_bytes())
        .expect("HMAC takes any key length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    // GitHub's published test vector (docs: "Testing the webhook payload validation").
    const SECRET: &str = "It's a Secret to Everybody";
    const SIG: &str = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";

    #[test]
    fn accepts_githubs_published_test_vector() {
        let secrets = [Secret::new(SECRET)];
        assert_eq!(verify_sha256(&secrets, Some(SIG), b"Hello, World!"), Ok(()));
        assert_eq!(sign_sha256(&secrets[0], b"Hello, World!"), SIG);
    }

    #[test]
    fn accepts_any_configured_secret_during_rotation() {
        let secrets = [Secret::new("new secret"), Secret::new(SECRET)];
        assert_eq!(verify_sha256(&secrets, Some(SIG), b"Hello, World!"), Ok(()));
    }

    #[test]
    fn refuses_missing_malformed_and_wrong_signatures() {
        let secrets = [Secret::new(SECRET)];
        assert_eq!(
            verify_sha256(&secrets, None, b"x"),
            Err(SignatureError::Missing)
        );
        assert_eq!(
            verify_sha256(&secrets, Some("sha1=abc"), b"x"),
            Err(SignatureError::Malformed)
        );
        assert_eq!(
            verify_sha256(&secrets, Some("sha256=zz"), b"x"),
            Err(SignatureError::Malformed)
        );
        assert_eq!(
            verify_sha256(&secrets, Some(SIG), b"Hello, World?"),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_sha256(&[], Some(SIG), b"Hello, World!"),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn legacy_sha1_verifies_the_computed_vector() {
        // signature-test-vectors.json: HMAC-SHA1 of the same secret and payload.
        let secrets = [Secret::new(SECRET)];
        assert_eq!(
            verify_sha1(
                &secrets,
                "sha1=01dc10d0c83e72ed246219cdd91669667fe2ca59",
                b"Hello, World!"
            ),
            Ok(())
        );
        assert_eq!(
            verify_sha1(
                &secrets,
                "sha1=01dc10d0c83e72ed246219cdd91669667fe2ca5a",
                b"Hello, World!"
            ),
            Err(SignatureError::Sha1Mismatch)
        );
        assert_eq!(
            verify_sha1(&secrets, "sha256=01", b"x"),
            Err(SignatureError::Sha1Malformed)
        );
    }

    #[test]
    fn circleci_v1_signatures_verify_among_other_versions() {
        let secrets = [Secret::new(SECRET)];
        let v1 = SIG.trim_start_matches("sha256=");
        assert_eq!(
            verify_circleci(&secrets, Some(&format!("v1={v1}")), b"Hello, World!"),
            Ok(())
        );
        assert_eq!(
            verify_circleci(
                &secrets,
                Some(&format!("v2=abcd, v1={v1}")),
                b"Hello, World!"
            ),
            Ok(())
        );
        assert_eq!(
            verify_circleci(&secrets, Some(&format!("v1={v1}")), b"Hello"),
            Err(SignatureError::CircleCiMismatch)
        );
        assert_eq!(
            verify_circleci(&secrets, None, b"x"),
            Err(SignatureError::CircleCiMissing)
        );
    }

    proptest! {
        #[test]
        fn a_signature_verifies_only_its_own_body(body in proptest::collection::vec(any::<u8>(), 0..512), flip in any::<usize>()) {
            let secret = Secret::new(SECRET);
            let sig = sign_sha256(&secret, &body);
            prop_assert_eq!(verify_sha256(std::slice::from_ref(&secret), Some(&sig), &body), Ok(()));
            if !body.is_empty() {
                let mut changed = body.clone();
                changed[flip % body.len()] ^= 0x01;
                prop_assert_eq!(verify_sha256(&[secret], Some(&sig), &changed), Err(SignatureError::Mismatch));
            }
        }

        #[test]
        fn never_panics_on_arbitrary_headers(header in ".{0,100}", body in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = verify_sha256(&[Secret::new(SECRET)], Some(&header), &body);
        }
    }
}
