//! Signs a token with an Ed25519 key in the cluster and verifies it twice: by the cluster,
//! and offline with the public key fetched once (what a service checking tokens would do).
//!
//! ```sh
//! source tessera-dev/env.sh
//! cargo run -p tessera-client --example sign_token -- token-signer '{"sub":"alice","exp":1900000000}'
//! ```

use tessera_client::{verify_offline, Client};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [key, claims] = args.as_slice() else {
        return Err("usage: sign_token KEY CLAIMS".into());
    };
    let client = Client::from_env()?;
    if client.describe_key(key).await.is_err() {
        client.create_key(key, "ED25519", "signs tokens").await?;
    }
    let signed = client.sign(key, claims.as_bytes(), false, "").await?;
    println!(
        "signed with {} v{} ({})",
        signed.key_id, signed.version, signed.algorithm
    );

    let by_cluster = client
        .verify(
            key,
            claims.as_bytes(),
            false,
            &signed.signature,
            "",
            signed.version,
        )
        .await?;
    let public = client.get_public_key(key, signed.version).await?;
    let offline = verify_offline(
        &public.public_key,
        &public.spec,
        &signed.algorithm,
        claims.as_bytes(),
        false,
        &signed.signature,
    )?;
    let tampered = verify_offline(
        &public.public_key,
        &public.spec,
        &signed.algorithm,
        b"{\"sub\":\"mallory\"}",
        false,
        &signed.signature,
    )?;
    println!("valid by the cluster: {}", by_cluster.valid);
    println!("valid offline: {offline}; another payload: {tampered}");
    Ok(())
}
