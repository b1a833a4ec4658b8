//! Failover demo against `tessera dev --nodes 3`: encrypts and decrypts in a loop while you
//! kill nodes; calls keep succeeding as long as a majority is up.
//!
//! ```sh
//! source tessera-dev/env.sh   # TESSERA_ADDR lists every node
//! cargo run -p tessera-client --example failover &
//! kill -9 "$(cat tessera-dev/node1.pid)"
//! ```

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use tessera_client::{ClientBuilder, RetryPolicy};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let client = ClientBuilder::from_env()
        .request_timeout(Duration::from_secs(5))
        .retry(RetryPolicy {
            retry_for: Duration::from_secs(20),
            ..RetryPolicy::default()
        })
        .build()?;
    if client.describe_key("failover-demo").await.is_err() {
        client
            .create_key("failover-demo", "", "failover example")
            .await?;
    }
    let context = BTreeMap::new();
    for i in 0u64.. {
        let started = Instant::now();
        let record = format!("record {i}");
        let sealed = client
            .encrypt_envelope("failover-demo", record.as_bytes(), &context)
            .await?;
        let plain = client.decrypt_envelope(&sealed, &context).await?;
        if plain.as_slice() != record.as_bytes() {
            return Err(format!("record {i} came back different").into());
        }
        println!("{record}: ok in {:?}", started.elapsed());
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    Ok(())
}
