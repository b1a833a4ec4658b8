//! The workload: concurrent clients creating, rotating, disabling and enabling keys,
//! encrypting, decrypting and re-encrypting, reading key metadata linearizably, and allowing
//! then revoking the unprivileged `app` identity's `kms:Encrypt` on keys while `app` encrypts —
//! each operation recorded as invoke + ok/fail/info. An [`AccessProber`] revokes `app`'s
//! access on a key of its own and uses it through every node after the lease window, so every
//! run tests revocation on every node.
//!
//! Each client sends one operation at a time to a node of its choosing (through that node's
//! client proxy, so partitions can cut clients off too) and retries a create whose outcome is
//! unknown under the same request id, which is what the idempotency checker looks at.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use base64::Engine;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tessera_client::{Client, PolicyFormat};
use tessera_state::KeyVersion;
use tokio::sync::watch;

use crate::history::{ErrorInfo, EventKind, OkValue, Op, Recorder};

mod probe;
pub use probe::{AccessProber, PROBE_KEY};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// Most ciphertexts kept for later decrypt and re-encrypt operations.
const CIPHERTEXT_POOL: usize = 256;

/// How many keys take most of the load (the first created).
const HOT_KEYS: usize = 4;

/// How many times a create with an unknown outcome is retried under its request id.
const CREATE_RETRIES: usize = 3;

/// What is shared between clients: the keys and some ciphertexts to work on.
#[derive(Default)]
pub struct Pools {
    keys: Mutex<Vec<String>>,
    ciphertexts: Mutex<Vec<(String, String, String)>>,
}

impl Pools {
    fn keys(&self) -> Vec<String> {
        self.keys
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn add_key(&self, name: String) {
        self.keys
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(name);
    }

    fn add_ciphertext(&self, rng: &mut ChaCha8Rng, entry: (String, String, String)) {
        let mut pool = self
            .ciphertexts
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if pool.len() < CIPHERTEXT_POOL {
            pool.push(entry);
        } else {
            let at = rng.random_range(0..pool.len());
            if let Some(slot) = pool.get_mut(at) {
                *slot = entry;
            }
        }
    }

    fn ciphertext(&self, rng: &mut ChaCha8Rng) -> Option<(String, String, String)> {
        let pool = self
            .ciphertexts
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if pool.is_empty() {
            return None;
        }
        pool.get(rng.random_range(0..pool.len())).cloned()
    }
}

/// One client's connections (one per node, per identity).
pub struct Worker {
    /// Client number.
    pub process: u32,
    /// `(node id, admin client through that node's proxy)`.
    pub clients: Vec<(u64, Client)>,
    /// `(node id, `app` client through that node's proxy)`.
    pub app_clients: Vec<(u64, Client)>,
}

/// Whether an error means "certainly not applied" (`Fail`) or "unknown" (`Info`).
fn classify(op: &Op, error: &tessera_client::Error) -> EventKind {
    use tessera_client::Code;
    if !op.is_write() {
        return EventKind::Fail;
    }
    match error {
        tessera_client::Error::Connect { .. } => EventKind::Info,
        e => match (e.tessera_code(), e.code()) {
            // The audit trail fails a request after its handler ran: a write may be applied.
            (Some("WRITE_OUTCOME_UNKNOWN" | "RAFT_STOPPED" | "AUDIT_UNAVAILABLE"), _) => {
                EventKind::Info
            }
            (Some(_), _) => EventKind::Fail,
            (
                None,
                Code::DeadlineExceeded | Code::Cancelled | Code::Unknown | Code::Unavailable,
            ) => EventKind::Info,
            (None, _) => EventKind::Fail,
        },
    }
}

fn error_info(error: &tessera_client::Error) -> ErrorInfo {
    ErrorInfo {
        code: error.code_name().to_owned(),
        tessera_code: error.tessera_code().map(str::to_owned),
        message: error.to_string(),
    }
}

/// Runs `op` against `client` and records it.
async fn record<F, Fut>(
    recorder: &Recorder,
    process: u32,
    node: u64,
    op: Op,
    call: F,
) -> Option<OkValue>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<OkValue, tessera_client::Error>>,
{
    recorder.invoke(process, node, &op);
    match call().await {
        Ok(value) => {
            recorder.complete(process, node, EventKind::Ok, &op, Some(value.clone()), None);
            Some(value)
        }
        Err(e) => {
            let kind = classify(&op, &e);
            recorder.complete(process, node, kind, &op, None, Some(error_info(&e)));
            None
        }
    }
}

/// The `ok` value of a crypto call that used `version` of key `key_id`; the caller adds the
/// ciphertext or plaintext it returned.
fn crypto_value(key_id: String, version: u32) -> OkValue {
    OkValue {
        key_id: Some(key_id),
        version: Some(KeyVersion::new(version)),
        ..OkValue::default()
    }
}

fn key_value(key: &tessera_client::proto::Key) -> OkValue {
    OkValue {
        key_id: Some(key.key_id.clone()),
        version: Some(KeyVersion::new(key.primary_version)),
        state: Some(key.state.clone()),
        ..OkValue::default()
    }
}

/// Sends a rotate, disable or enable.
async fn key_write(client: &Client, op: &Op) -> Result<OkValue, tessera_client::Error> {
    let key = match op {
        Op::RotateKey { name, request_id } => client.rotate_key_with_id(name, request_id).await,
        Op::DisableKey { name, request_id } => client.disable_key_with_id(name, request_id).await,
        Op::EnableKey { name, request_id } => client.enable_key_with_id(name, request_id).await,
        _ => {
            return Err(tessera_client::Error::Config {
                reason: "not a key state write".into(),
            })
        }
    };
    key.map(|k| key_value(&k))
}

/// Puts the access policy of key `name` (policy `app-NAME`): one statement allowing or
/// denying identity `app` `kms:Encrypt` on the key. Both directions replace the same policy, so
/// the last one applied decides.
async fn app_policy(client: &Client, op: &Op) -> Result<OkValue, tessera_client::Error> {
    let (name, effect) = match op {
        Op::AllowApp { name } => (name, "allow"),
        Op::DenyApp { name } => (name, "deny"),
        _ => {
            return Err(tessera_client::Error::Config {
                reason: "not an access policy write".into(),
            })
        }
    };
    let document = serde_json::json!({ "statements": [{
        "sid": "app-encrypt",
        "effect": effect,
        "identities": ["app"],
        "actions": ["kms:Encrypt"],
        "keys": [name],
    }]});
    client
        .put_policy(
            &format!("app-{name}"),
            &document.to_string(),
            PolicyFormat::Json,
        )
        .await?;
    Ok(OkValue::default())
}

/// Encrypts under key `name` through `client` and records `op` (an encrypt as either
/// identity); returns the base64 ciphertext on success.
async fn encrypt(
    recorder: &Recorder,
    process: u32,
    node: u64,
    client: &Client,
    op: Op,
    plaintext: &str,
) -> Option<String> {
    let name = op.key_name().to_owned();
    let bytes = B64.decode(plaintext).unwrap_or_default();
    let value = record(recorder, process, node, op, || async {
        let out = client.encrypt(&name, &bytes, &Default::default()).await?;
        Ok(OkValue {
            ciphertext: Some(B64.encode(&out.ciphertext)),
            ..crypto_value(out.key_id, out.version)
        })
    })
    .await;
    value.and_then(|v| v.ciphertext)
}

/// Creates a key under a fixed request id, retrying while the outcome is unknown. Returns
/// whether the key certainly exists.
pub async fn create_key(
    recorder: &Recorder,
    process: u32,
    node: u64,
    client: &Client,
    name: &str,
    request_id: &str,
) -> bool {
    for _ in 0..CREATE_RETRIES {
        let op = Op::CreateKey {
            name: name.to_owned(),
            request_id: request_id.to_owned(),
        };
        recorder.invoke(process, node, &op);
        match client.create_key_with_id(name, "", "", request_id).await {
            Ok(key) => {
                recorder.complete(
                    process,
                    node,
                    EventKind::Ok,
                    &op,
                    Some(key_value(&key)),
                    None,
                );
                return true;
            }
            Err(e) => {
                let kind = classify(&op, &e);
                recorder.complete(process, node, kind, &op, None, Some(error_info(&e)));
                if kind == EventKind::Fail {
                    return false;
                }
            }
        }
    }
    false
}

impl Worker {
    /// Runs operations until `stop` turns true.
    pub async fn run(
        self,
        recorder: Recorder,
        pools: Arc<Pools>,
        seed: u64,
        mut stop: watch::Receiver<bool>,
    ) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ (u64::from(self.process) << 40));
        let mut created = 0u32;
        while !*stop.borrow() {
            let Some((node, client)) = self
                .clients
                .get(rng.random_range(0..self.clients.len().max(1)))
            else {
                return;
            };
            // Most operations go to the first keys (created before the faults), so writes and
            // reads contend on them; the rest spread over every key created since.
            let keys = pools.keys();
            let range = if rng.random_bool(0.8) {
                HOT_KEYS.min(keys.len())
            } else {
                keys.len()
            };
            let Some(name) = keys.get(rng.random_range(0..range.max(1))).cloned() else {
                return;
            };
            // Mix (percent): create 4, rotate 6, disable 2, enable 2, encrypt 40, decrypt 23,
            // re-encrypt 7, linearizable describe 10, allow app 1, deny app 1, encrypt as app
            // 4. State changes are rare enough that a disabled key (or a revoked `app`) stays
            // so for longer than a lease window, so a node that still serves it is caught.
            let roll = rng.random_range(0..100u32);
            let p = self.process;
            let request_id = format!("w{p}-{}", rng.random::<u64>());
            match roll {
                0..=3 => {
                    created += 1;
                    let fresh = format!("c{p}-{created}");
                    if create_key(
                        &recorder,
                        p,
                        *node,
                        client,
                        &fresh,
                        &format!("create-{p}-{created}"),
                    )
                    .await
                    {
                        pools.add_key(fresh);
                    }
                }
                4..=13 => {
                    let (name, request_id) = (name.clone(), request_id.clone());
                    let op = match roll {
                        4..=9 => Op::RotateKey { name, request_id },
                        10..=11 => Op::DisableKey { name, request_id },
                        _ => Op::EnableKey { name, request_id },
                    };
                    record(&recorder, p, *node, op.clone(), || key_write(client, &op)).await;
                }
                14..=53 => {
                    let plaintext = B64.encode(rng.random::<[u8; 16]>());
                    let op = Op::Encrypt {
                        name: name.clone(),
                        plaintext: plaintext.clone(),
                    };
                    if let Some(ciphertext) =
                        encrypt(&recorder, p, *node, client, op, &plaintext).await
                    {
                        pools.add_ciphertext(&mut rng, (name, ciphertext, plaintext));
                    }
                }
                54..=76 => {
                    let Some((key, ciphertext, plaintext)) = pools.ciphertext(&mut rng) else {
                        continue;
                    };
                    let bytes = B64.decode(&ciphertext).unwrap_or_default();
                    let op = Op::Decrypt {
                        name: key,
                        ciphertext,
                        plaintext,
                    };
                    record(&recorder, p, *node, op, || async {
                        let out = client.decrypt(&bytes, &Default::default()).await?;
                        Ok(OkValue {
                            plaintext: Some(B64.encode(&out.plaintext)),
                            ..crypto_value(out.key_id, out.version)
                        })
                    })
                    .await;
                }
                77..=83 => {
                    let Some((key, ciphertext, plaintext)) = pools.ciphertext(&mut rng) else {
                        continue;
                    };
                    let bytes = B64.decode(&ciphertext).unwrap_or_default();
                    let op = Op::ReEncrypt {
                        name: key.clone(),
                        ciphertext,
                        plaintext: plaintext.clone(),
                    };
                    let value = record(&recorder, p, *node, op, || async {
                        let none = Default::default();
                        let out = client.re_encrypt(&bytes, &none, "", &none).await?;
                        Ok(OkValue {
                            ciphertext: Some(B64.encode(&out.ciphertext)),
                            ..crypto_value(out.key_id, out.version)
                        })
                    })
                    .await;
                    if let Some(ciphertext) = value.and_then(|v| v.ciphertext) {
                        pools.add_ciphertext(&mut rng, (key, ciphertext, plaintext));
                    }
                }
                94..=95 => {
                    let op = if roll == 94 {
                        Op::AllowApp { name }
                    } else {
                        Op::DenyApp { name }
                    };
                    record(&recorder, p, *node, op.clone(), || app_policy(client, &op)).await;
                }
                96..=99 => {
                    // The `app` connection to the same node: its ciphertexts are not kept, the
                    // outcome (ok or ACCESS_DENIED) is what matters.
                    let Some((_, app)) = self.app_clients.iter().find(|(id, _)| id == node) else {
                        continue;
                    };
                    let plaintext = B64.encode(rng.random::<[u8; 16]>());
                    let op = Op::AppEncrypt {
                        name,
                        plaintext: plaintext.clone(),
                    };
                    encrypt(&recorder, p, *node, app, op, &plaintext).await;
                }
                _ => {
                    let op = Op::Describe {
                        name: name.clone(),
                        linearizable: true,
                    };
                    record(&recorder, p, *node, op, || async {
                        client
                            .describe_key_linearizable(&name)
                            .await
                            .map(|k| key_value(&k))
                    })
                    .await;
                }
            }
            // A little think time keeps a 2-core machine responsive.
            let pause = Duration::from_millis(rng.random_range(2..20));
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = stop.changed() => {}
            }
        }
    }
}

/// Creates the initial keys through `client` (node `node`) and seeds the pool with them.
pub async fn seed_keys(recorder: &Recorder, pools: &Pools, node: u64, client: &Client, count: u32) {
    for i in 0..count {
        let name = format!("k{i}");
        if create_key(recorder, 0, node, client, &name, &format!("seed-{i}")).await {
            pools.add_key(name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(code: tessera_client::Code, tessera_code: &str) -> tessera_client::Error {
        tessera_client::Error::Status {
            code,
            message: String::new(),
            tessera_code: Some(tessera_code.to_owned()),
        }
    }

    #[test]
    fn a_write_whose_audit_record_failed_has_an_unknown_outcome() {
        let create = Op::CreateKey {
            name: "k".into(),
            request_id: "r".into(),
        };
        assert_eq!(
            classify(
                &create,
                &refused(tessera_client::Code::Unavailable, "AUDIT_UNAVAILABLE")
            ),
            EventKind::Info
        );
        assert_eq!(
            classify(
                &create,
                &refused(tessera_client::Code::ResourceExhausted, "RATE_LIMITED")
            ),
            EventKind::Fail
        );
    }
}
