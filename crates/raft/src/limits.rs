//! How large a message on the cluster port may be, and the openraft settings that keep every
//! legitimate message below that.
//!
//! Both sides of the cluster port (the tonic server and every client) refuse a message larger
//! than [`MAX_CLUSTER_MESSAGE_BYTES`] before reading its body: tonic checks the length prefix
//! and answers `OUT_OF_RANGE`, so a peer cannot make a node allocate without bound.
//!
//! Sizing. The largest legitimate messages are:
//!
//! - an `AppendEntries` batch: at most [`MAX_PAYLOAD_ENTRIES`] entries of at most
//!   [`MAX_ENTRY_BYTES`] each (about 28 MiB);
//! - one `InstallSnapshot` chunk: [`SNAPSHOT_CHUNK_BYTES`] of data plus the snapshot metadata
//!   (a few hundred bytes per member);
//! - a forwarded write (one entry) and its reply (one key's metadata), both far smaller.
//!
//! The cap is more than twice the largest of these. The one entry that may exceed
//! [`MAX_ENTRY_BYTES`] is a backup restore (`Command::RestoreSnapshot`), whose body is at most
//! [`tessera_state::backup::MAX_BACKUP_BODY_BYTES`]; the cap also holds a full batch of
//! ordinary entries plus two restore entries (an operator runs one restore at a time; a second
//! in the same batch would be a retry).

/// Entries per `AppendEntries` (openraft's `max_payload_entries`, its default).
pub const MAX_PAYLOAD_ENTRIES: u64 = 300;

/// Snapshot data per `InstallSnapshot` chunk (openraft's `snapshot_max_chunk_size`, its
/// default).
pub const SNAPSHOT_CHUNK_BYTES: u64 = 3 * 1024 * 1024;

/// Upper bound of one encoded log entry, from the API's input limits. The largest command is a
/// `CreateKey`: a description of at most 8 KiB, at most 50 tags of at most 128 + 256 bytes
/// (19.2 KiB), the caller identity taken from a client certificate (a TLS handshake message,
/// at most 64 KiB), a key name and request id of at most 128 bytes each and sealed material
/// of at most 97 bytes; with the fixed-size fields that is under 93 KiB.
pub const MAX_ENTRY_BYTES: usize = 96 * 1024;

/// The largest message either side of the cluster port accepts or sends: 64 MiB.
pub const MAX_CLUSTER_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

/// The largest legitimate message, from the limits above.
const LARGEST_LEGITIMATE_MESSAGE: usize = {
    // Lossless: both are small constants.
    let batch = MAX_PAYLOAD_ENTRIES as usize * MAX_ENTRY_BYTES;
    let chunk = SNAPSHOT_CHUNK_BYTES as usize + 64 * 1024;
    if batch > chunk {
        batch
    } else {
        chunk
    }
};

const _: () = assert!(MAX_CLUSTER_MESSAGE_BYTES >= 2 * LARGEST_LEGITIMATE_MESSAGE);

/// Bound of one restore entry: the body plus the request's other fields (as for any entry).
const MAX_RESTORE_ENTRY_BYTES: usize =
    tessera_state::backup::MAX_BACKUP_BODY_BYTES + MAX_ENTRY_BYTES;

const _: () = assert!(
    MAX_CLUSTER_MESSAGE_BYTES
        >= MAX_PAYLOAD_ENTRIES as usize * MAX_ENTRY_BYTES + 2 * MAX_RESTORE_ENTRY_BYTES
);
