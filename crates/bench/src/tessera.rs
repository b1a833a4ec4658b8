//! The Tessera side of the workloads: the keys they use and one [`Op`] per API call.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;
use tessera_client::Client;
use tessera_launcher::LocalCluster;

use crate::load::{over, Op, OpError};
use crate::Error;

/// The crypto calls measured against the echo reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CryptoCall {
    /// Encrypt with an AES-256-GCM key.
    Encrypt,
    /// Decrypt a ciphertext of the payload.
    Decrypt,
    /// Generate an AES-256 data key.
    GenerateDataKey,
    /// Sign with an ECDSA P-256 key.
    Sign,
    /// MAC with an HMAC-SHA256 key.
    Mac,
}

impl CryptoCall {
    /// Every call, in report order.
    pub const ALL: [Self; 5] = [
        Self::Encrypt,
        Self::Decrypt,
        Self::GenerateDataKey,
        Self::Sign,
        Self::Mac,
    ];

    /// The name used in workload names.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Encrypt => "encrypt",
            Self::Decrypt => "decrypt",
            Self::GenerateDataKey => "generate-data-key",
            Self::Sign => "sign",
            Self::Mac => "mac",
        }
    }
}

/// Keys and inputs the crypto workloads share.
#[derive(Debug)]
pub struct Fixture {
    /// The request payload.
    pub payload: Arc<Vec<u8>>,
    encrypt_key: String,
    sign_key: String,
    mac_key: String,
    ciphertext: Arc<Vec<u8>>,
}

impl Fixture {
    /// Creates the keys (through `admin`) and a ciphertext of `payload` to decrypt.
    ///
    /// # Errors
    /// [`Error::Client`] if a call fails.
    pub async fn create(admin: &Client, payload: Vec<u8>) -> Result<Self, Error> {
        let encrypt_key = admin
            .create_key("bench-aes", "AES256_GCM", "tessera bench")
            .await?
            .key_id;
        let sign_key = admin
            .create_key("bench-ecdsa", "ECDSA_P256", "tessera bench")
            .await?
            .key_id;
        let mac_key = admin
            .create_key("bench-hmac", "HMAC_SHA256", "tessera bench")
            .await?
            .key_id;
        let ciphertext = admin
            .encrypt(&encrypt_key, &payload, &BTreeMap::new())
            .await?
            .ciphertext;
        Ok(Self {
            payload: Arc::new(payload),
            encrypt_key,
            sign_key,
            mac_key,
            ciphertext: Arc::new(ciphertext),
        })
    }

    /// The id of the AES key.
    #[must_use]
    pub fn encrypt_key(&self) -> &str {
        &self.encrypt_key
    }
}

/// `k` clients with the admin certificate, client `i` connected to `endpoints[i % n]` only
/// (one HTTP/2 connection each).
///
/// # Errors
/// [`Error::Launcher`] if the certificates cannot be read.
pub fn clients(
    cluster: &LocalCluster,
    endpoints: &[String],
    k: usize,
) -> Result<Vec<Arc<Client>>, Error> {
    (0..k.max(1))
        .map(|i| {
            let endpoint = endpoints
                .get(i % endpoints.len().max(1))
                .cloned()
                .unwrap_or_default();
            Ok(Arc::new(cluster.admin(vec![endpoint])?))
        })
        .collect()
}

/// The [`Op`] of `call` with the fixture's keys and payload.
pub fn crypto_op(clients: Vec<Arc<Client>>, call: CryptoCall, fixture: &Fixture) -> Op {
    let payload = fixture.payload.clone();
    let ciphertext = fixture.ciphertext.clone();
    let key = Arc::new(match call {
        CryptoCall::Encrypt | CryptoCall::Decrypt | CryptoCall::GenerateDataKey => {
            fixture.encrypt_key.clone()
        }
        CryptoCall::Sign => fixture.sign_key.clone(),
        CryptoCall::Mac => fixture.mac_key.clone(),
    });
    over(clients, move |client, _| {
        let payload = payload.clone();
        let ciphertext = ciphertext.clone();
        let key = key.clone();
        async move {
            let context = BTreeMap::new();
            match call {
                CryptoCall::Encrypt => client.encrypt(&key, &payload, &context).await.map(drop),
                CryptoCall::Decrypt => client.decrypt(&ciphertext, &context).await.map(drop),
                CryptoCall::GenerateDataKey => client
                    .generate_data_key(&key, "AES_256", &context)
                    .await
                    .map(drop),
                CryptoCall::Sign => client.sign(&key, &payload, false, "").await.map(drop),
                CryptoCall::Mac => client.generate_mac(&key, &payload, "").await.map(drop),
            }?;
            Ok(())
        }
    })
}

/// Creates key `<prefix>-<seq>` (AES-256-GCM).
pub fn create_key_op(clients: Vec<Arc<Client>>, prefix: &str) -> Op {
    let prefix = Arc::new(prefix.to_owned());
    over(clients, move |client, seq| {
        let name = format!("{prefix}-{seq}");
        async move {
            client.create_key(&name, "AES256_GCM", "").await?;
            Ok(())
        }
    })
}

/// Rotates key `keys[seq % len]`.
pub fn rotate_key_op(clients: Vec<Arc<Client>>, keys: Arc<Vec<String>>) -> Op {
    over(clients, move |client, seq| {
        let key = crate::pick(&keys, seq).cloned();
        async move {
            let key = key.ok_or(OpError::NoConnection)?;
            client.rotate_key(&key).await?;
            Ok(())
        }
    })
}

/// A policy document of `statements` statements: every one but the last names other
/// identities and keys (half of them deny statements, which are checked on every request,
/// an administrator's included); the last lets `app` encrypt with any key.
#[must_use]
pub fn policy_document(statements: usize) -> String {
    let mut list: Vec<serde_json::Value> = (1..statements)
        .map(|i| {
            serde_json::json!({
                "sid": format!("other-{i}"),
                "effect": if i % 2 == 0 { "deny" } else { "allow" },
                "identities": [format!("service-{i}")],
                "actions": ["kms:Encrypt", "kms:Decrypt"],
                "keys": [format!("other-key-{i}")],
            })
        })
        .collect();
    list.push(serde_json::json!({
        "sid": "app-encrypts",
        "effect": "allow",
        "identities": ["app"],
        "actions": ["kms:Encrypt"],
        "keys": ["*"],
    }));
    serde_json::json!({ "statements": list }).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_has_the_statements_asked_for() {
        let doc: serde_json::Value = serde_json::from_str(&policy_document(50)).unwrap();
        assert_eq!(doc["statements"].as_array().unwrap().len(), 50);
    }
}
