//! Rotates a key and re-encrypts stored ciphertexts under its new primary version without the
//! plaintext leaving the cluster (e.g. after a suspected exposure, before raising the minimum
//! decryption version).
//!
//! ```sh
//! source tessera-dev/env.sh
//! cargo run -p tessera-client --example rotate_reencrypt -- records
//! ```

use std::collections::BTreeMap;

use tessera_client::Client;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let key = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "records".to_owned());
    let client = Client::from_env()?;
    if client.describe_key(&key).await.is_err() {
        client.create_key(&key, "", "rotation example").await?;
    }
    let context = BTreeMap::from([("table".to_owned(), "customers".to_owned())]);

    // What an application has stored.
    let mut stored = Vec::new();
    for row in ["alice", "bob", "carol"] {
        stored.push(
            client
                .encrypt(&key, row.as_bytes(), &context)
                .await?
                .ciphertext,
        );
    }

    let rotated = client.rotate_key(&key).await?;
    println!(
        "{} now encrypts with version {}",
        rotated.name, rotated.primary_version
    );

    for ciphertext in &mut stored {
        let moved = client
            .re_encrypt(ciphertext, &context, "", &context)
            .await?;
        println!("v{} -> v{}", moved.source_version, moved.version);
        *ciphertext = moved.ciphertext;
    }
    for ciphertext in &stored {
        let plain = client.decrypt(ciphertext, &context).await?;
        println!(
            "{} (v{})",
            String::from_utf8_lossy(&plain.plaintext),
            plain.version
        );
    }
    Ok(())
}
