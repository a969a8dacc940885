//! Token signatures checked with `ring` (the crypto rustls already builds):
//! a `jsonwebtoken` crypto provider whose verifiers are ring's, with
//! signing left to the RustCrypto provider (only tests sign). ring checks an
//! RS256 signature in ≈30 µs and an ES256 one in ≈70 µs where the RustCrypto
//! crates take ≈300 µs — the first use of a token is dominated by this (see
//! BENCHMARKS.md "Auth").

use jsonwebtoken::{
    Algorithm, AlgorithmFamily, DecodingKey, DecodingKeyKind,
    crypto::{CryptoProvider, JwtVerifier, KeyUtils, rust_crypto},
    errors::{Error, ErrorKind},
    signature,
};
use ring::signature::{self as ring_sig, RsaPublicKeyComponents, UnparsedPublicKey};

static PROVIDER: CryptoProvider = CryptoProvider {
    signer_factory: RUST_CRYPTO.signer_factory,
    verifier_factory: new_verifier,
    key_utils: KeyUtils {
        rsa_pub_components_from_private_key: RUST_CRYPTO
            .key_utils
            .rsa_pub_components_from_private_key,
        rsa_pub_components_from_public_key: RUST_CRYPTO
            .key_utils
            .rsa_pub_components_from_public_key,
        ec_pub_components_from_private_key: RUST_CRYPTO
            .key_utils
            .ec_pub_components_from_private_key,
        ed_pub_components_from_private_key: RUST_CRYPTO
            .key_utils
            .ed_pub_components_from_private_key,
        compute_digest: RUST_CRYPTO.key_utils.compute_digest,
    },
};
const RUST_CRYPTO: &CryptoProvider = &rust_crypto::DEFAULT_PROVIDER;

/// Makes ring check every signature in this process. Idempotent; a process
/// that already used `jsonwebtoken` keeps the provider it had (still
/// correct, only slower).
pub fn install() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        if PROVIDER.install_default().is_err() {
            tracing::debug!("a jsonwebtoken crypto provider was already in use");
        }
    });
}

enum Key {
    Rsa {
        n: Vec<u8>,
        e: Vec<u8>,
    },
    RsaDer(Vec<u8>),
    /// An uncompressed EC point, or an Ed25519 public key.
    Raw(Vec<u8>),
}

struct RingVerifier {
    alg: Algorithm,
    key: Key,
}

fn new_verifier(alg: &Algorithm, key: &DecodingKey) -> Result<Box<dyn JwtVerifier>, Error> {
    if key.family() != alg.family() || key.family() == AlgorithmFamily::Hmac {
        return Err(ErrorKind::InvalidAlgorithm.into());
    }
    let key = match (key.family(), key.kind()) {
        (AlgorithmFamily::Rsa, DecodingKeyKind::RsaModulusExponent { n, e }) => Key::Rsa {
            n: n.clone(),
            e: e.clone(),
        },
        (AlgorithmFamily::Rsa, DecodingKeyKind::SecretOrDer(der)) => Key::RsaDer(der.clone()),
        (_, DecodingKeyKind::SecretOrDer(raw)) => Key::Raw(raw.clone()),
        _ => return Err(ErrorKind::InvalidKeyFormat.into()),
    };
    Ok(Box::new(RingVerifier { alg: *alg, key }))
}

/// ring's RSA parameters for an RSA algorithm.
fn rsa(alg: Algorithm) -> Option<&'static ring_sig::RsaParameters> {
    Some(match alg {
        Algorithm::RS256 => &ring_sig::RSA_PKCS1_2048_8192_SHA256,
        Algorithm::RS384 => &ring_sig::RSA_PKCS1_2048_8192_SHA384,
        Algorithm::RS512 => &ring_sig::RSA_PKCS1_2048_8192_SHA512,
        Algorithm::PS256 => &ring_sig::RSA_PSS_2048_8192_SHA256,
        Algorithm::PS384 => &ring_sig::RSA_PSS_2048_8192_SHA384,
        Algorithm::PS512 => &ring_sig::RSA_PSS_2048_8192_SHA512,
        _ => return None,
    })
}

impl signature::Verifier<Vec<u8>> for RingVerifier {
    fn verify(&self, message: &[u8], sig: &Vec<u8>) -> Result<(), signature::Error> {
        let checked = match (&self.key, rsa(self.alg)) {
            (Key::Rsa { n, e }, Some(params)) => {
                RsaPublicKeyComponents { n, e }.verify(params, message, sig)
            }
            (Key::RsaDer(der), Some(params)) => {
                UnparsedPublicKey::new(params, der).verify(message, sig)
            }
            (Key::Raw(raw), None) => {
                let params: &'static dyn ring_sig::VerificationAlgorithm = match self.alg {
                    Algorithm::ES256 => &ring_sig::ECDSA_P256_SHA256_FIXED,
                    Algorithm::ES384 => &ring_sig::ECDSA_P384_SHA384_FIXED,
                    Algorithm::EdDSA => &ring_sig::ED25519,
                    _ => return Err(signature::Error::new()),
                };
                UnparsedPublicKey::new(params, raw).verify(message, sig)
            }
            _ => return Err(signature::Error::new()),
        };
        checked.map_err(|_| signature::Error::new())
    }
}

impl JwtVerifier for RingVerifier {
    fn algorithm(&self) -> Algorithm {
        self.alg
    }
}

#[cfg(test)]
mod tests {
    use jsonwebtoken::{EncodingKey, Header, Validation, jwk::Jwk};
    use serde_json::json;

    use super::*;

    /// A fixed Ed25519 test key (PKCS#8), so the test needs no key generation.
    const ED25519_PKCS8_PEM: &str = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIHbsN1vvp2K8a4iSMWAZKMmTYmIjPCtlCUp5YjTYSmBu\n-----END PRIVATE KEY-----\n";

    #[test]
    fn ring_verifies_what_rustcrypto_signs_and_refuses_a_changed_message() {
        install();
        let encoding = EncodingKey::from_ed_pem(ED25519_PKCS8_PEM.as_bytes()).unwrap();
        let jwk = Jwk::from_encoding_key(&encoding, Algorithm::EdDSA).unwrap();
        let decoding = DecodingKey::from_jwk(&jwk).unwrap();
        let claims = json!({"sub": "a", "exp": 4_000_000_000u64});
        let token =
            jsonwebtoken::encode(&Header::new(Algorithm::EdDSA), &claims, &encoding).unwrap();
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.validate_aud = false;
        jsonwebtoken::decode::<serde_json::Value>(&token, &decoding, &validation).unwrap();

        let forged = jsonwebtoken::encode(
            &Header::new(Algorithm::EdDSA),
            &json!({"sub": "b", "exp": 4_000_000_000u64}),
            &encoding,
        )
        .unwrap();
        let (_, forged_sig) = forged.rsplit_once('.').unwrap();
        let (body, _) = token.rsplit_once('.').unwrap();
        let spliced = format!("{body}.{forged_sig}");
        let err = jsonwebtoken::decode::<serde_json::Value>(&spliced, &decoding, &validation)
            .unwrap_err();
        assert_eq!(*err.kind(), ErrorKind::InvalidSignature);
    }
}
