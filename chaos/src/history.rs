//! What a run records: client operations (invoke, then ok / fail / info), node status samples
//! and fault events, each as JSON lines.
//!
//! An operation's outcome is `ok` (it happened, with this result), `fail` (it certainly did
//! not happen) or `info` (unknown: a timeout or a lost connection; a write may or may not have
//! been applied). Checkers treat `info` writes as possibly applied, never as lost.

use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use serde::{Deserialize, Serialize};
use tessera_state::KeyVersion;

use crate::schedule::FaultKind;

/// A client operation and its arguments. Keys are named by their (unique) names; binary data is
/// base64.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "f", rename_all = "snake_case")]
pub enum Op {
    /// Create a key; a retry reuses `request_id`.
    CreateKey {
        /// Key name.
        name: String,
        /// Client request id.
        request_id: String,
    },
    /// Rotate a key.
    RotateKey {
        /// Key name.
        name: String,
        /// Client request id.
        request_id: String,
    },
    /// Disable a key.
    DisableKey {
        /// Key name.
        name: String,
        /// Client request id.
        request_id: String,
    },
    /// Enable a key.
    EnableKey {
        /// Key name.
        name: String,
        /// Client request id.
        request_id: String,
    },
    /// Encrypt `plaintext` under a key.
    Encrypt {
        /// Key name.
        name: String,
        /// Base64 plaintext.
        plaintext: String,
    },
    /// Decrypt a ciphertext produced earlier under `name`; `plaintext` is what it must give.
    Decrypt {
        /// Key name the ciphertext was made under.
        name: String,
        /// Base64 ciphertext.
        ciphertext: String,
        /// Base64 expected plaintext.
        plaintext: String,
    },
    /// Re-encrypt a ciphertext made under `name` to the key's primary version.
    ReEncrypt {
        /// Key name.
        name: String,
        /// Base64 ciphertext.
        ciphertext: String,
        /// Base64 plaintext it holds.
        plaintext: String,
    },
    /// Read a key's metadata.
    Describe {
        /// Key name.
        name: String,
        /// Whether the read was linearizable (confirmed with the leader).
        linearizable: bool,
    },
    /// Put the key's access policy allowing identity `app` `kms:Encrypt` on it (admin client).
    AllowApp {
        /// Key name.
        name: String,
    },
    /// Revoke that access: put the key's access policy denying identity `app` `kms:Encrypt`
    /// on it (admin client).
    DenyApp {
        /// Key name.
        name: String,
    },
    /// Encrypt `plaintext` under a key as identity `app`.
    AppEncrypt {
        /// Key name.
        name: String,
        /// Base64 plaintext.
        plaintext: String,
    },
}

impl Op {
    /// The key the operation is about.
    pub fn key_name(&self) -> &str {
        match self {
            Self::CreateKey { name, .. }
            | Self::RotateKey { name, .. }
            | Self::DisableKey { name, .. }
            | Self::EnableKey { name, .. }
            | Self::Encrypt { name, .. }
            | Self::Decrypt { name, .. }
            | Self::ReEncrypt { name, .. }
            | Self::Describe { name, .. }
            | Self::AllowApp { name }
            | Self::DenyApp { name }
            | Self::AppEncrypt { name, .. } => name,
        }
    }

    /// Whether the operation changes the replicated state.
    pub fn is_write(&self) -> bool {
        self.class() == OpClass::Write
    }

    /// Whether the operation uses key material (and so must respect the key's state).
    pub fn is_crypto(&self) -> bool {
        self.class() == OpClass::Crypto
    }

    /// What the operation does, in one exhaustive match so a new operation must be classed.
    fn class(&self) -> OpClass {
        match self {
            Self::CreateKey { .. }
            | Self::RotateKey { .. }
            | Self::DisableKey { .. }
            | Self::EnableKey { .. }
            | Self::AllowApp { .. }
            | Self::DenyApp { .. } => OpClass::Write,
            Self::Encrypt { .. }
            | Self::Decrypt { .. }
            | Self::ReEncrypt { .. }
            | Self::AppEncrypt { .. } => OpClass::Crypto,
            Self::Describe { .. } => OpClass::Read,
        }
    }
}

/// What an operation does to the cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum OpClass {
    /// Changes the replicated state.
    Write,
    /// Uses key material.
    Crypto,
    /// Reads key metadata.
    Read,
}

/// The phase of an operation event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// The client sent the request.
    Invoke,
    /// It completed with a result.
    Ok,
    /// It certainly did not take effect.
    Fail,
    /// Its outcome is unknown.
    Info,
}

/// What a successful operation returned.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct OkValue {
    /// Key id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
    /// Version used (crypto) or primary version (writes, describe).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<KeyVersion>,
    /// Key state (writes, describe).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// Base64 ciphertext (encrypt, re-encrypt).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ciphertext: Option<String>,
    /// Base64 plaintext (decrypt).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plaintext: Option<String>,
}

/// Why an operation failed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorInfo {
    /// gRPC status name.
    pub code: String,
    /// Stable Tessera code, when the server sent one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tessera_code: Option<String>,
    /// Message.
    pub message: String,
}

/// One line of `history.jsonl`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// Position in the history.
    pub index: u64,
    /// Microseconds since the run started (harness clock).
    pub time_us: u64,
    /// The client that issued it.
    pub process: u32,
    /// The node it was sent to.
    pub node: u64,
    /// Phase.
    #[serde(rename = "type")]
    pub kind: EventKind,
    /// The operation (repeated on completion events).
    pub op: Op,
    /// Result of an `ok` event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<OkValue>,
    /// Error of a `fail` or `info` event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorInfo>,
}

/// One line of `statuses.jsonl`: what a node reported about itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusSample {
    /// Microseconds since the run started.
    pub time_us: u64,
    /// The node.
    pub node: u64,
    /// Raft term.
    pub term: u64,
    /// leader, follower, candidate, learner or shutdown.
    pub role: String,
    /// The leader the node knows of.
    pub leader_id: Option<u64>,
    /// Applied index.
    pub applied_index: u64,
    /// State digest at `applied_index`.
    pub state_digest: String,
}

/// One line of `faults.jsonl`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultEvent {
    /// Microseconds since the run started.
    pub time_us: u64,
    /// Fault kind, written as its [`FaultKind::event_name`] (kill, pause, partition, delay,
    /// drop, disk, restart).
    #[serde(with = "event_name")]
    pub fault: FaultKind,
    /// Whether the fault starts or ends.
    pub phase: Phase,
    /// Human-readable detail (which nodes, which links, parameters).
    pub detail: String,
    /// Nodes affected.
    pub nodes: Vec<u64>,
}

/// Whether a fault event starts or ends a fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// The fault is applied.
    Start,
    /// The fault is undone.
    End,
}

/// A fault kind as its event name ([`FaultKind::event_name`]), in `faults.jsonl` and the report.
pub(crate) mod event_name {
    use serde::de::Error as _;
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::schedule::FaultKind;

    pub fn serialize<S: Serializer>(kind: &FaultKind, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(kind.event_name())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<FaultKind, D::Error> {
        let name = String::deserialize(deserializer)?;
        FaultKind::from_event_name(&name)
            .ok_or_else(|| D::Error::custom(format!("unknown fault {name:?}")))
    }
}

/// Thread-safe recorder of a run, with one clock for every record.
#[derive(Clone)]
pub struct Recorder {
    started: Instant,
    inner: Arc<Mutex<Records>>,
}

/// Everything recorded.
#[derive(Clone, Debug, Default)]
pub struct Records {
    /// Operation events, in index order.
    pub events: Vec<Event>,
    /// Status samples.
    pub statuses: Vec<StatusSample>,
    /// Fault events.
    pub faults: Vec<FaultEvent>,
}

impl Default for Recorder {
    fn default() -> Self {
        Self::new()
    }
}

impl Recorder {
    /// A recorder whose clock starts now.
    pub fn new() -> Self {
        Self {
            started: Instant::now(),
            inner: Arc::new(Mutex::new(Records::default())),
        }
    }

    /// Microseconds since the run started.
    pub fn now_us(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_micros()).unwrap_or(u64::MAX)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Records> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records an invocation; returns its event index.
    pub fn invoke(&self, process: u32, node: u64, op: &Op) -> u64 {
        self.complete(process, node, EventKind::Invoke, op, None, None)
    }

    /// Records a completion (and, for [`Self::invoke`], an invocation); returns its event
    /// index.
    pub fn complete(
        &self,
        process: u32,
        node: u64,
        kind: EventKind,
        op: &Op,
        value: Option<OkValue>,
        error: Option<ErrorInfo>,
    ) -> u64 {
        let time_us = self.now_us();
        let mut records = self.lock();
        let index = records.events.len() as u64;
        records.events.push(Event {
            index,
            time_us,
            process,
            node,
            kind,
            op: op.clone(),
            value,
            error,
        });
        index
    }

    /// Records a status sample (its `time_us` is set here).
    pub fn status(&self, mut sample: StatusSample) {
        sample.time_us = self.now_us();
        self.lock().statuses.push(sample);
    }

    /// Records a fault event.
    pub fn fault(&self, fault: FaultKind, phase: Phase, detail: String, nodes: Vec<u64>) {
        let time_us = self.now_us();
        self.lock().faults.push(FaultEvent {
            time_us,
            fault,
            phase,
            detail,
            nodes,
        });
    }

    /// A copy of everything recorded so far.
    pub fn snapshot(&self) -> Records {
        self.lock().clone()
    }
}

/// Writes records as JSON lines.
///
/// # Errors
/// An I/O error if the file cannot be written.
pub fn write_jsonl<T: Serialize>(path: &Path, records: &[T]) -> std::io::Result<()> {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    for record in records {
        serde_json::to_writer(&mut out, record).map_err(std::io::Error::other)?;
        out.write_all(b"\n")?;
    }
    out.flush()
}

/// Reads JSON lines written by [`write_jsonl`].
///
/// # Errors
/// An I/O error, or a line that does not parse.
pub fn read_jsonl<T: for<'de> Deserialize<'de>>(path: &Path) -> std::io::Result<Vec<T>> {
    let text = std::fs::read_to_string(path)?;
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).map_err(std::io::Error::other))
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn fault_events_keep_their_json_lines() {
        use super::{FaultEvent, FaultKind, Phase};
        let line = r#"{"time_us":7,"fault":"restart","phase":"end","detail":"back","nodes":[2]}"#;
        let event: FaultEvent = serde_json::from_str(line).unwrap();
        assert_eq!(event.fault, FaultKind::Rolling);
        assert_eq!(event.phase, Phase::End);
        assert_eq!(serde_json::to_string(&event).unwrap(), line);
        for kind in FaultKind::ALL {
            let json = serde_json::to_string(&FaultEvent {
                time_us: 0,
                fault: kind,
                phase: Phase::Start,
                detail: String::new(),
                nodes: Vec::new(),
            })
            .unwrap();
            assert!(json.contains(&format!(
                r#""fault":"{}","phase":"start""#,
                kind.event_name()
            )));
        }
        let unknown = line.replace("restart", "reboot");
        assert!(serde_json::from_str::<FaultEvent>(&unknown).is_err());
    }

    use super::*;

    #[test]
    fn events_round_trip_as_json_lines() {
        let recorder = Recorder::new();
        let op = Op::Encrypt {
            name: "k".into(),
            plaintext: "aGk=".into(),
        };
        recorder.invoke(1, 2, &op);
        recorder.complete(
            1,
            2,
            EventKind::Fail,
            &op,
            None,
            Some(ErrorInfo {
                code: "FAILED_PRECONDITION".into(),
                tessera_code: Some("KEY_DISABLED".into()),
                message: "key k is disabled".into(),
            }),
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.jsonl");
        let records = recorder.snapshot();
        write_jsonl(&path, &records.events).unwrap();
        let back: Vec<Event> = read_jsonl(&path).unwrap();
        assert_eq!(back, records.events);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains(r#""type":"invoke""#), "{text}");
        assert!(text.contains(r#""f":"encrypt""#), "{text}");
    }
}
