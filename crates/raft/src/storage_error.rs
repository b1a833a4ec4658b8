//! Short constructors for openraft's [`StorageError`], which wraps a `StorageIOError` naming
//! what was being read or written.

use openraft::storage::SnapshotSignature;
use openraft::{AnyError, StorageIOError};

use crate::typ::{NodeId, StorageError};

type Sig = Option<SnapshotSignature<NodeId>>;

macro_rules! constructors {
    ($($name:ident),* $(,)?) => {
        $(
            pub(crate) fn $name<E: std::error::Error + 'static>(e: &E) -> StorageError {
                StorageIOError::<NodeId>::$name(AnyError::new(e)).into()
            }
        )*
    };
}

constructors!(
    read,
    write,
    read_logs,
    write_logs,
    write_vote,
    read_state_machine,
    write_state_machine,
);

pub(crate) fn read_snapshot<E: std::error::Error + 'static>(sig: Sig, e: &E) -> StorageError {
    StorageIOError::<NodeId>::read_snapshot(sig, AnyError::new(e)).into()
}

pub(crate) fn write_snapshot<E: std::error::Error + 'static>(sig: Sig, e: &E) -> StorageError {
    StorageIOError::<NodeId>::write_snapshot(sig, AnyError::new(e)).into()
}
