//! Requests shared by the Raft integration tests.

use tessera_state::{CallerId, Command, Request, RequestId, SealConfig};

/// The write `init` proposes, from `caller`: a seal configuration of `shares` shares and
/// `threshold` (with stand-in sealed keys), after which keys can be created.
pub fn init_seal(caller: &str, shares: u8, threshold: u8) -> Request {
    Request {
        request_id: RequestId::parse("init").unwrap(),
        caller: CallerId::of(caller),
        fingerprint: [0; 32],
        bindings: Vec::new(),
        command: Command::InitSeal(SealConfig {
            shares,
            threshold,
            sealed_root_key: vec![1; 60],
            sealed_keyring: vec![2; 80],
            initialized_at_ms: 1,
        }),
    }
}
