//! The id of one node of a Tessera cluster.
//!
//! A node id names a Raft member: it is in the node's configuration file, in the `node-<id>`
//! identity of its cluster certificate, in every vote, log id and membership Raft replicates,
//! in the clock readings of the replicated state and in audit records. A distinct type keeps
//! it from being confused with the other integers next to it (terms, log indexes, ports,
//! counts, key versions) while its encodings stay those of a plain `u64`: serde sees it as
//! transparent, so postcard, JSON and TOML write exactly the inner number, and protobuf
//! fields carry it as `uint64`, converted where a message is built or read.
//!
//! The type lives here rather than in the Raft crate because the replicated
//! [`crate::Command::ReportClock`] carries one and this crate must not depend on Raft; the
//! Raft crate uses it as its Raft implementation's node id type.

use serde::{Deserialize, Serialize};

/// A node id. Configuration accepts ids from 1 up; the [`Default`] 0 names no node (it is
/// there because the Raft implementation requires a default for its node id type).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct NodeId(u64);

tessera_crypto::number_newtype!(
    NodeId(u64),
    "logs, errors and the `node-<id>` certificate identity"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn it_shows_parses_and_converts_as_the_bare_number() {
        let id = NodeId::new(258);
        assert_eq!(id.get(), 258);
        assert_eq!(id.to_string(), "258");
        assert_eq!(format!("node-{id}"), "node-258");
        assert_eq!("258".parse::<NodeId>(), Ok(id));
        assert!("node-2".parse::<NodeId>().is_err());
        assert!("-1".parse::<NodeId>().is_err());
        assert!("18446744073709551616".parse::<NodeId>().is_err());
        assert_eq!(u64::from(NodeId::from(7)), 7);
        assert_eq!(NodeId::default(), NodeId::new(0));
        assert!(NodeId::new(2) < NodeId::new(10));
    }

    #[test]
    fn it_encodes_as_the_bare_number() {
        for number in [0, 1, 127, 128, 300, u64::MAX] {
            let id = NodeId::new(number);
            assert_eq!(
                postcard::to_allocvec(&id).unwrap(),
                postcard::to_allocvec(&number).unwrap()
            );
            assert_eq!(
                serde_json::to_string(&id).unwrap(),
                serde_json::to_string(&number).unwrap()
            );
            assert_eq!(
                postcard::from_bytes::<NodeId>(&postcard::to_allocvec(&number).unwrap()).unwrap(),
                id
            );
        }
        assert_eq!(
            postcard::to_allocvec(&NodeId::new(300)).unwrap(),
            [0xac, 0x02]
        );
        assert_eq!(serde_json::from_str::<NodeId>("3").unwrap(), NodeId::new(3));
        let readings = std::collections::BTreeMap::from([(NodeId::new(3), 5u64)]);
        assert_eq!(serde_json::to_string(&readings).unwrap(), r#"{"3":5}"#);
    }
}
