//! What handlers tell the audit record about the request they serve.
//!
//! The audit layer runs each request's handler inside a task-local scope; handlers (through
//! the few `Node` methods every request passes) note the request id, the key and version
//! acted on and the caller-supplied values. Outside a scope (background jobs) notes are
//! dropped. Values are kept in memory only until the record is built, when they become HMACs.

use std::cell::RefCell;
use std::future::Future;

use tessera_crypto::AuditKey;
use tessera_state::KeyVersion;

use super::record::HashedValue;

/// Most caller-supplied values one record keeps (a batch of 256 items with contexts would
/// otherwise make records of hundreds of kilobytes); further ones are not recorded.
pub const MAX_VALUES: usize = 64;

/// The notes of one request.
#[derive(Debug, Default)]
pub struct Notes {
    /// The client's request id.
    pub request_id: Option<String>,
    /// The first key acted on.
    pub key_id: Option<String>,
    /// The version of that key that was opened.
    pub key_version: Option<KeyVersion>,
    values: Vec<(&'static str, String)>,
}

impl Notes {
    /// The values as HMACs under `key`, or (without a key: the node is sealed) nothing and
    /// the number left out.
    pub fn hashed(&self, key: Option<&AuditKey>) -> (Vec<HashedValue>, u32) {
        match key {
            Some(key) => (
                self.values
                    .iter()
                    .map(|(field, value)| HashedValue {
                        field,
                        hmac: hex::encode(key.hmac(value.as_bytes())),
                    })
                    .collect(),
                0,
            ),
            None => (
                Vec::new(),
                u32::try_from(self.values.len()).unwrap_or(u32::MAX),
            ),
        }
    }

    /// Whether any caller-supplied value was noted.
    pub fn has_values(&self) -> bool {
        !self.values.is_empty()
    }
}

tokio::task_local! {
    static NOTES: RefCell<Notes>;
}

/// Runs `future` with an empty set of notes, returning its output and the notes taken.
pub async fn scope<F: Future>(future: F) -> (F::Output, Notes) {
    NOTES
        .scope(RefCell::new(Notes::default()), async {
            let output = future.await;
            let notes = NOTES.try_with(RefCell::take).unwrap_or_default();
            (output, notes)
        })
        .await
}

fn with(f: impl FnOnce(&mut Notes)) {
    // Outside a request (a background job) there is nothing to note into.
    let _ = NOTES.try_with(|notes| {
        if let Ok(mut notes) = notes.try_borrow_mut() {
            f(&mut notes);
        }
    });
}

/// Notes the client's request id.
pub fn request_id(id: &str) {
    with(|n| {
        n.request_id.get_or_insert_with(|| id.to_owned());
    });
}

/// Notes a key the request acts on (the first one stays).
pub fn key(key_id: &str) {
    with(|n| {
        n.key_id.get_or_insert_with(|| key_id.to_owned());
    });
}

/// Notes the version of `key_id` the request opened (kept for the first key only).
pub fn key_version(key_id: &str, version: KeyVersion) {
    with(|n| {
        if n.key_id.get_or_insert_with(|| key_id.to_owned()) == key_id {
            n.key_version.get_or_insert(version);
        }
    });
}

/// Notes a caller-supplied value (recorded as its HMAC only). Repeats are kept once.
pub fn value(field: &'static str, value: &str) {
    with(|n| {
        if n.values.len() < MAX_VALUES && !n.values.iter().any(|(f, v)| *f == field && v == value) {
            n.values.push((field, value.to_owned()));
        }
    });
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[tokio::test]
    async fn notes_belong_to_their_scope_and_values_become_hmacs() {
        key("outside");
        let ((), notes) = scope(async {
            request_id("r-1");
            key_version("k1", KeyVersion::new(3));
            key("k2");
            value("context_value", "tenant-a");
            value("context_value", "tenant-a");
        })
        .await;
        assert_eq!(notes.request_id.as_deref(), Some("r-1"));
        assert_eq!(notes.key_id.as_deref(), Some("k1"));
        assert_eq!(notes.key_version, Some(KeyVersion::new(3)));
        let root = tessera_crypto::SecretKey256::generate(&mut tessera_crypto::os_rng());
        let audit_key = AuditKey::derive(&root).unwrap();
        let (hashed, omitted) = notes.hashed(Some(&audit_key));
        assert_eq!(omitted, 0);
        assert_eq!(hashed.len(), 1);
        assert_eq!(hashed[0].hmac, hex::encode(audit_key.hmac(b"tenant-a")));
        assert_eq!(notes.hashed(None), (Vec::new(), 1));
    }
}
