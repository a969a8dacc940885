//! What checking one token costs inside the proxy's verifier, without the
//! proxy: `prism_auth::Verifier::verify` on tokens never seen before (the
//! `proxy-auth-fresh` path's case) and on one remembered token (the
//! `proxy-auth` path's), beside `jsonwebtoken::decode` alone (the signature
//! and claims check the verifier wraps), and beside the signature check
//! alone with `ring` (the crypto rustls already builds), for each algorithm
//! the bench signs with. Run with
//! `cargo run --release -p prism-bench --example verify_cost`.

use std::time::{Duration, Instant};

use base64::Engine;

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use prism_auth::{IssuerSettings, Verifier, VerifierSettings};
use prism_harness::jwt::{AUDIENCE, SigningKey, TestIssuer};
use serde_json::{Map, Value, json};

/// Tokens checked per algorithm and case.
const CALLS: usize = 2000;

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    // Before anything signs: the process's signature checks go through ring,
    // as in the proxy.
    prism_auth::install_crypto();
    println!("{CALLS} calls each; µs per call (p50 / p99)");
    println!(
        "{:<6} {:>22} {:>22} {:>22} {:>22}",
        "alg", "verify, new token", "verify, remembered", "decode alone", "ring signature"
    );
    for alg in [Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA] {
        let key = SigningKey::generate(alg, "k1")?;
        let issuer = TestIssuer::start(key.clone()).await?;
        let verifier = Verifier::start(VerifierSettings {
            issuers: vec![IssuerSettings {
                issuer: issuer.issuer().to_string(),
                audiences: vec![AUDIENCE.to_string()],
                jwks_uri: None,
                ca_file: None,
            }],
            ..VerifierSettings::default()
        })?;
        let mint = |n: usize| {
            key.sign(&issuer.claims(
                "prism-bench",
                Duration::from_secs(3600),
                json!({ "jti": n.to_string(), "groups": ["bench"] }),
            ))
        };
        // The keys arrive in the background; wait for them.
        let deadline = Instant::now() + Duration::from_secs(20);
        while verifier.verify(&mint(usize::MAX)).await.is_err() {
            anyhow::ensure!(Instant::now() < deadline, "no keys from the issuer");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }

        let fresh: Vec<String> = (0..CALLS).map(mint).collect();
        let mut new_token = Vec::with_capacity(CALLS);
        for token in &fresh {
            let t = Instant::now();
            verifier.verify(token).await?;
            new_token.push(t.elapsed());
        }
        let mut remembered = Vec::with_capacity(CALLS);
        for _ in 0..CALLS {
            let t = Instant::now();
            verifier.verify(&fresh[0]).await?;
            remembered.push(t.elapsed());
        }
        let decoding = match alg {
            Algorithm::RS256 => DecodingKey::from_rsa_pem(&key.public_pem)?,
            Algorithm::ES256 => DecodingKey::from_ec_pem(&key.public_pem)?,
            _ => DecodingKey::from_ed_pem(&key.public_pem)?,
        };
        let mut validation = Validation::new(alg);
        validation.set_audience(&[AUDIENCE]);
        let mut decode = Vec::with_capacity(CALLS);
        for token in &fresh {
            let t = Instant::now();
            jsonwebtoken::decode::<Map<String, Value>>(token, &decoding, &validation)?;
            decode.push(t.elapsed());
        }
        let mut ring_check = Vec::with_capacity(CALLS);
        let public = ring_public_key(alg, &key.public_pem)?;
        for token in &fresh {
            let (message, signature) = token.rsplit_once('.').expect("three parts");
            let signature = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(signature)?;
            let t = Instant::now();
            public
                .verify(message.as_bytes(), &signature)
                .map_err(|_| anyhow::anyhow!("ring refused a good {alg:?} signature"))?;
            ring_check.push(t.elapsed());
        }
        println!(
            "{:<6} {:>22} {:>22} {:>22} {:>22}",
            format!("{alg:?}"),
            quantiles(&mut new_token),
            quantiles(&mut remembered),
            quantiles(&mut decode),
            quantiles(&mut ring_check)
        );
    }
    Ok(())
}

/// The key of a `SubjectPublicKeyInfo` PEM as ring takes it: an RSA-2048
/// key's `RSAPublicKey` after its fixed 24-byte SPKI header, a P-256 point
/// (the last 65 bytes), an Ed25519 key (the last 32).
fn ring_public_key(
    alg: Algorithm,
    pem: &[u8],
) -> anyhow::Result<ring::signature::UnparsedPublicKey<Vec<u8>>> {
    use ring::signature;
    let body: String = String::from_utf8(pem.to_vec())?
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    let der = base64::engine::general_purpose::STANDARD.decode(body)?;
    let (algorithm, key): (&'static dyn signature::VerificationAlgorithm, &[u8]) = match alg {
        Algorithm::RS256 => (&signature::RSA_PKCS1_2048_8192_SHA256, &der[24..]),
        Algorithm::ES256 => (&signature::ECDSA_P256_SHA256_FIXED, &der[der.len() - 65..]),
        _ => (&signature::ED25519, &der[der.len() - 32..]),
    };
    Ok(signature::UnparsedPublicKey::new(algorithm, key.to_vec()))
}

fn quantiles(samples: &mut [Duration]) -> String {
    samples.sort_unstable();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q) as usize].as_secs_f64() * 1e6;
    format!("{:.1} / {:.1}", at(0.5), at(0.99))
}
