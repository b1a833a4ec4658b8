//! Every parser of untrusted bytes in Tessera, behind one function per input kind.
//!
//! The fuzz targets in the workspace's `fuzz/` directory (cargo-fuzz, libFuzzer) call these
//! functions, and `tests/corpus.rs` runs them over the committed corpus and over mutations of
//! valid inputs on every `cargo test`, so the property holds on stable Rust too: whatever the
//! bytes, a parser returns an error; it never panics, hangs or allocates without bound.
//!
//! The inputs, and where they come from:
//! - [`ciphertext`]: customer ciphertexts (`Decrypt`, `ReEncrypt`);
//! - [`sealed_blob`]: barrier-sealed blobs and the sealed keyring (a node's disk);
//! - [`share`]: unseal shares typed by operators;
//! - [`import_material`]: BYOK import (wrapped key material, wrapping public keys);
//! - [`snapshot`]: state snapshots (cluster port, backups);
//! - [`cluster_message`]: postcard-decoded messages on the cluster port;
//! - [`policy_document`]: policy documents (`PutPolicy`).

use tessera_crypto::{barrier, ciphertext as customer, wrap, EncryptionContext, KeySpec};
use tessera_crypto::{KeyVersion, Keyring, SecretKey256, UnsealShare};
use tessera_raft::codec::decode;
use tessera_raft::rpc::{ForwardReply, ReadIndexReply, TimeoutNowReply, TimeoutNowRequest};
use tessera_raft::typ::TypeConfig;
use tessera_raft::NodeId;
use tessera_state::policy::{Format, PolicyDocument};
use tessera_state::State;

/// A fixed key: the parsers must refuse garbage before (or by) authentication, whatever key.
fn fixed_key() -> SecretKey256 {
    SecretKey256::from_bytes([7; 32])
}

/// A customer ciphertext: header parsing and decryption with a context.
pub fn ciphertext(data: &[u8]) {
    let _ = customer::parse_header(data);
    let context = EncryptionContext::from_pairs([("tenant", "a")]);
    let _ = customer::decrypt(&fixed_key(), data, &context);
}

/// A barrier-sealed blob and a serialized keyring.
pub fn sealed_blob(data: &[u8]) {
    let _ = barrier::blob_term(data);
    let _ = barrier::open(&fixed_key(), b"fuzz", data);
    let _ = Keyring::from_bytes(data);
}

/// An unseal share as typed by an operator.
pub fn share(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = UnsealShare::decode(text);
    }
}

/// BYOK import: a wrapped key blob, a wrapping public key in any accepted form, and raw
/// material checked against every key spec.
pub fn import_material(data: &[u8]) {
    let _ = wrap::unwrap(&fixed_key(), b"fuzz", data);
    let _ = wrap::parse_x25519_public_key(data);
    for spec in KeySpec::ALL {
        let _ = spec.validate_material(data);
    }
}

/// A state snapshot.
pub fn snapshot(data: &[u8]) {
    let _ = State::decode_snapshot(data);
}

/// Every message type the cluster port decodes, requests and replies.
pub fn cluster_message(data: &[u8]) {
    let _ = decode::<openraft::raft::AppendEntriesRequest<TypeConfig>>("fuzz", data);
    let _ = decode::<openraft::raft::VoteRequest<NodeId>>("fuzz", data);
    let _ = decode::<openraft::raft::InstallSnapshotRequest<TypeConfig>>("fuzz", data);
    let _ = decode::<tessera_state::Request>("fuzz", data);
    let _ = decode::<TimeoutNowRequest>("fuzz", data);
    let _ = decode::<TimeoutNowReply>("fuzz", data);
    let _ = decode::<ForwardReply>("fuzz", data);
    let _ = decode::<ReadIndexReply>("fuzz", data);
}

/// A policy document in either format.
pub fn policy_document(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = PolicyDocument::parse(text, Format::Json);
        let _ = PolicyDocument::parse(text, Format::Toml);
    }
}

/// A fuzz target: takes any bytes, must never panic.
pub type Target = fn(&[u8]);

/// The targets by name, as the fuzz directory and the corpus test name them.
pub const TARGETS: &[(&str, Target)] = &[
    ("ciphertext", ciphertext),
    ("sealed_blob", sealed_blob),
    ("share", share),
    ("import_material", import_material),
    ("snapshot", snapshot),
    ("cluster_message", cluster_message),
    ("policy_document", policy_document),
];

/// Valid inputs for every target, the starting points of the corpus: the fuzzers and the
/// corpus test mutate them, so the checks past the first byte are reached too.
///
/// # Panics
/// Never on these fixed inputs; a panic means an encoder refused its own valid input.
#[allow(clippy::expect_used)]
pub fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;
    let mut rng = ChaCha20Rng::seed_from_u64(7);
    let key = fixed_key();
    let context = EncryptionContext::from_pairs([("tenant", "a")]);
    let key_id = "0b6b8f4e-2f4c-4c1e-9a51-5a1f3b2c7d10";
    let ciphertext = customer::encrypt(
        &key,
        key_id,
        KeyVersion::FIRST,
        &context,
        b"hello",
        &mut rng,
    )
    .expect("encrypting a fixed input");
    let sealed = barrier::seal(&key, 1, b"fuzz", b"secret", &mut rng).expect("sealing");
    let keyring = Keyring::new(fixed_key()).to_bytes().as_slice().to_vec();
    let shares = tessera_crypto::shamir::split(&key, 2, 3, &mut rng).expect("splitting");
    let share = shares
        .first()
        .map(|s| s.encode().as_bytes().to_vec())
        .expect("three shares");
    let (_, public) = wrap::generate_wrapping_key(&mut rng);
    let wrapped = wrap::wrap(&public, b"fuzz", &[1; 32], &mut rng).expect("wrapping");
    let snapshot = State::new()
        .encode_snapshot()
        .expect("encoding an empty state");
    let vote = openraft::raft::VoteRequest::<NodeId>::new(
        openraft::Vote::new(3, NodeId::new(1)),
        Some(openraft::LogId::new(
            openraft::CommittedLeaderId::new(2, NodeId::new(1)),
            9,
        )),
    );
    let vote = tessera_raft::codec::encode("fuzz", &vote).expect("encoding a vote");
    let policy = br#"{"statements":[{"effect":"allow","identities":["app-*"],"actions":["kms:Encrypt"],"keys":["alias/app-*"],"conditions":{"context_equals":{"tenant":"a"}}}]}"#;
    vec![
        ("ciphertext", ciphertext),
        ("sealed_blob", sealed),
        ("sealed_blob", keyring),
        ("share", share),
        ("import_material", wrapped),
        (
            "import_material",
            tessera_crypto::wrap::x25519_public_key_der(&public),
        ),
        ("snapshot", snapshot),
        ("cluster_message", vote),
        ("policy_document", policy.to_vec()),
    ]
}
