//! Node ids keep the bytes they had as bare `u64`s in everything Raft stores and sends: the
//! same structures built with a `u64` node id type encode identically, and their bytes decode
//! to the typed values.

use std::collections::{BTreeMap, BTreeSet};

use openraft::raft::{AppendEntriesRequest, VoteRequest};
use openraft::{CommittedLeaderId, EntryPayload, Membership};
use tessera_state::{CallerId, Command, Request, RequestId};

use super::*;
use crate::codec;

openraft::declare_raft_types!(
    /// [`TypeConfig`] with node ids as the bare `u64`s they were.
    Bare:
        D = tessera_state::Request,
        R = tessera_state::Response,
        NodeId = u64,
        Node = NodeInfo,
        Entry = openraft::Entry<Bare>,
        SnapshotData = Cursor<Vec<u8>>,
        AsyncRuntime = openraft::TokioRuntime,
);

/// Encodes both, asserts the bytes are equal and that they decode to `typed`; returns them.
fn same_bytes<T, U>(typed: &T, bare: &U) -> Vec<u8>
where
    T: Serialize + serde::de::DeserializeOwned + PartialEq + fmt::Debug,
    U: Serialize,
{
    let bytes = codec::encode("typed", typed).unwrap();
    assert_eq!(bytes, codec::encode("bare", bare).unwrap());
    assert_eq!(&codec::decode::<T>("typed", &bytes).unwrap(), typed);
    bytes
}

fn info(n: u64) -> NodeInfo {
    NodeInfo {
        api_addr: format!("10.0.0.{n}:7000"),
        cluster_addr: format!("10.0.0.{n}:7001"),
        region: "eu".into(),
        zone: format!("eu-{n}"),
    }
}

fn membership(voters: &[u64], learners: &[u64]) -> Membership<NodeId, NodeInfo> {
    let config = vec![voters
        .iter()
        .copied()
        .map(NodeId::new)
        .collect::<BTreeSet<_>>()];
    let nodes = voters
        .iter()
        .chain(learners)
        .map(|n| (NodeId::new(*n), info(*n)))
        .collect::<BTreeMap<_, _>>();
    Membership::new(config, nodes)
}

fn bare_membership(voters: &[u64], learners: &[u64]) -> Membership<u64, NodeInfo> {
    let config = vec![voters.iter().copied().collect::<BTreeSet<_>>()];
    let nodes = voters
        .iter()
        .chain(learners)
        .map(|n| (*n, info(*n)))
        .collect::<BTreeMap<_, _>>();
    Membership::new(config, nodes)
}

fn log_id(term: u64, node: u64, index: u64) -> LogId {
    LogId::new(CommittedLeaderId::new(term, NodeId::new(node)), index)
}

fn bare_log_id(term: u64, node: u64, index: u64) -> openraft::LogId<u64> {
    openraft::LogId::new(CommittedLeaderId::new(term, node), index)
}

#[test]
fn votes_and_log_ids_keep_their_bytes() {
    let vote = Vote::new_committed(7, NodeId::new(300));
    let bytes = same_bytes(&vote, &openraft::Vote::<u64>::new_committed(7, 300));
    // Term, node id (varint 300), committed.
    assert_eq!(bytes, [7, 0xac, 0x02, 1]);
    same_bytes(
        &Vote::new(9, NodeId::new(1)),
        &openraft::Vote::<u64>::new(9, 1),
    );

    let bytes = same_bytes(&log_id(7, 300, 1000), &bare_log_id(7, 300, 1000));
    // Term, node id, index (varint 1000).
    assert_eq!(bytes, [7, 0xac, 0x02, 0xe8, 0x07]);
    same_bytes(
        &log_id(u64::MAX, u64::MAX, u64::MAX),
        &bare_log_id(u64::MAX, u64::MAX, u64::MAX),
    );
}

#[test]
fn memberships_keep_their_bytes() {
    same_bytes(
        &membership(&[1, 2, 3], &[4]),
        &bare_membership(&[1, 2, 3], &[4]),
    );
    same_bytes(
        &StoredMembership::new(Some(log_id(2, 1, 5)), membership(&[1, 300], &[])),
        &openraft::StoredMembership::new(
            Some(bare_log_id(2, 1, 5)),
            bare_membership(&[1, 300], &[]),
        ),
    );
    same_bytes(
        &SnapshotMeta {
            last_log_id: Some(log_id(3, 2, 40)),
            last_membership: StoredMembership::new(
                Some(log_id(2, 1, 5)),
                membership(&[1, 2], &[3]),
            ),
            snapshot_id: "3-40".into(),
        },
        &openraft::SnapshotMeta::<u64, NodeInfo> {
            last_log_id: Some(bare_log_id(3, 2, 40)),
            last_membership: openraft::StoredMembership::new(
                Some(bare_log_id(2, 1, 5)),
                bare_membership(&[1, 2], &[3]),
            ),
            snapshot_id: "3-40".into(),
        },
    );
}

#[test]
fn log_entries_and_cluster_messages_keep_their_bytes() {
    let report = Request {
        request_id: RequestId::parse("clock-1").unwrap(),
        caller: CallerId::of("node-3"),
        fingerprint: [5; 32],
        bindings: Vec::new(),
        command: Command::ReportClock {
            node_id: NodeId::new(3),
            at_ms: 1_700_000_000_000,
            voters: 3,
        },
    };
    let entries = vec![
        Entry {
            log_id: log_id(4, 1, 10),
            payload: EntryPayload::Membership(membership(&[1, 2, 3], &[])),
        },
        Entry {
            log_id: log_id(4, 1, 11),
            payload: EntryPayload::Normal(report.clone()),
        },
        Entry {
            log_id: log_id(4, 1, 12),
            payload: EntryPayload::Blank,
        },
    ];
    let bare_entries = vec![
        openraft::Entry::<Bare> {
            log_id: bare_log_id(4, 1, 10),
            payload: EntryPayload::Membership(bare_membership(&[1, 2, 3], &[])),
        },
        openraft::Entry::<Bare> {
            log_id: bare_log_id(4, 1, 11),
            payload: EntryPayload::Normal(report),
        },
        openraft::Entry::<Bare> {
            log_id: bare_log_id(4, 1, 12),
            payload: EntryPayload::Blank,
        },
    ];
    for (entry, bare) in entries.iter().zip(&bare_entries) {
        assert_eq!(
            codec::encode("entry", entry).unwrap(),
            codec::encode("bare entry", bare).unwrap()
        );
    }
    let append = AppendEntriesRequest::<TypeConfig> {
        vote: Vote::new_committed(4, NodeId::new(1)),
        prev_log_id: Some(log_id(4, 1, 9)),
        entries,
        leader_commit: Some(log_id(3, 2, 8)),
    };
    let bare_append = AppendEntriesRequest::<Bare> {
        vote: openraft::Vote::new_committed(4, 1),
        prev_log_id: Some(bare_log_id(4, 1, 9)),
        entries: bare_entries,
        leader_commit: Some(bare_log_id(3, 2, 8)),
    };
    let bytes = codec::encode("append", &append).unwrap();
    assert_eq!(bytes, codec::encode("bare append", &bare_append).unwrap());
    let decoded: AppendEntriesRequest<TypeConfig> = codec::decode("append", &bytes).unwrap();
    assert_eq!(decoded.vote, append.vote);
    assert_eq!(decoded.prev_log_id, append.prev_log_id);
    assert_eq!(decoded.entries, append.entries);
    assert_eq!(decoded.leader_commit, append.leader_commit);

    same_bytes(
        &VoteRequest::new(Vote::new(5, NodeId::new(2)), Some(log_id(4, 1, 12))),
        &VoteRequest::<u64>::new(openraft::Vote::new(5, 2), Some(bare_log_id(4, 1, 12))),
    );
}

#[test]
fn leadership_rpcs_keep_their_bytes() {
    let ask = crate::rpc::TimeoutNowRequest {
        leader_id: NodeId::new(300),
        term: 7,
        last_log_index: 1000,
    };
    let bytes = same_bytes(&ask, &(300u64, 7u64, 1000u64));
    assert_eq!(bytes, [0xac, 0x02, 7, 0xe8, 0x07]);
    let hint = crate::rpc::LeaderHint {
        leader_id: Some(NodeId::new(2)),
        leader: Some(info(2)),
    };
    same_bytes(&hint, &(Some(2u64), Some(info(2))));
}
