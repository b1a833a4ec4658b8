//! Envelope-encrypts a file of any size, then decrypts it again, with one frame in memory.
//!
//! ```sh
//! source tessera-dev/env.sh && tessera key create --name backups
//! cargo run -p tessera-client --example envelope_file -- backups big.tar big.tar.tsr big.restored
//! ```

use std::collections::BTreeMap;

use tessera_client::Client;
use tokio::fs::File;
use tokio::io::BufWriter;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [key, input, sealed, restored] = args.as_slice() else {
        return Err("usage: envelope_file KEY INPUT SEALED RESTORED".into());
    };
    let client = Client::from_env()?;
    // The context is bound to the data key: decryption needs the same pairs.
    let context = BTreeMap::from([("file".to_owned(), input.clone())]);

    let mut reader = File::open(input).await?;
    let mut writer = BufWriter::new(File::create(sealed).await?);
    let summary = client
        .encrypt_stream(key, &context, &mut reader, &mut writer)
        .await?;
    println!(
        "encrypted {} bytes in {} frames under {}",
        summary.plaintext_bytes, summary.frames, summary.key_id
    );

    let mut reader = File::open(sealed).await?;
    let mut writer = BufWriter::new(File::create(restored).await?);
    let summary = client
        .decrypt_stream(&context, &mut reader, &mut writer)
        .await?;
    println!("decrypted {} bytes", summary.plaintext_bytes);
    Ok(())
}
