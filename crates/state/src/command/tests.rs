//! The log encoding of requests and results: entries and de-duplication rows written before
//! batches existed still decode, and the batch variants sit after every earlier variant.

use super::*;

/// A `RotateKey` request as the build before batches encoded it (postcard bytes captured
/// from that build).
const OLD_ROTATE_REQUEST: &str = "057265712d31a172cedcae47474b615c54d510a5d84a8dea3032e95858\
7430b413538be3f333070707070707070707070707070707070707070707070707070707070707070700022430313\
031303130312d303130312d343130312d383130312d30313031303130313031303102040909090980d095ffbc31";

/// `Response::Rejected(ApplyError::StaleRootKey)`, the last variants before batches, from the
/// same build.
const OLD_LAST_REJECTION: &str = "0627";

/// Every command that carries a key version, as the build before `KeyVersion` encoded them
/// (postcard bytes captured from that build, where versions were bare `u32`s).
const OLD_VERSION_COMMANDS: &str = "\
    05082430333033303330332d303330332d343330332d383330332d303330333033303330333033ab02092430\
    333033303330332d303330332d343330332d383330332d3033303330333033303330338001000a2430333033\
    303330332d303330332d343330332d383330332d303330333033303330333033ab0207132430333033303330\
    332d303330332d343330332d383330332d303330333033303330333033017401010108200100243033303330\
    3330332d303330332d343330332d383330332d303330333033303330333033ac020202020202020202020202\
    0202020202020202020202020202020202020202020103";

/// Every refusal that carries a key version, from the same build.
const OLD_VERSION_REJECTIONS: &str = "\
    0506062430333033303330332d303330332d343330332d383330332d303330333033303330333033ad02ae02\
    060a2430333033303330332d303330332d343330332d383330332d3033303330333033303330339003060b24\
    30333033303330332d303330332d343330332d383330332d303330333033303330333033ac02096465737472\
    6f796564060c2430333033303330332d303330332d343330332d383330332d303330333033303330333033ab\
    02060d2430333033303330332d303330332d343330332d383330332d30333033303330333033303300ac02";

fn old_request() -> Request {
    Request {
        request_id: RequestId::parse("req-1").unwrap(),
        caller: CallerId::of("app"),
        fingerprint: [7; 32],
        bindings: Vec::new(),
        command: Command::RotateKey {
            key_id: KeyId::from_random_bytes([1; 16]),
            version: KeyVersion::new(2),
            sealed_material: vec![9; 4],
            at_ms: 1_700_000_000_000,
        },
    }
}

#[test]
fn requests_and_results_written_before_batches_still_decode() {
    let bytes = hex::decode(OLD_ROTATE_REQUEST).unwrap();
    let request: Request = postcard::from_bytes(&bytes).unwrap();
    assert_eq!(request, old_request());
    assert_eq!(postcard::to_allocvec(&request).unwrap(), bytes);

    let bytes = hex::decode(OLD_LAST_REJECTION).unwrap();
    let response: Response = postcard::from_bytes(&bytes).unwrap();
    assert_eq!(response, Response::Rejected(ApplyError::StaleRootKey));
}

#[test]
fn the_batch_variants_are_appended_after_every_earlier_one() {
    // postcard writes an enum's variant index as a varint before its fields.
    let batch = postcard::to_allocvec(&Command::Batch(Vec::new())).unwrap();
    let rekey = postcard::to_allocvec(&Command::Rekey {
        previous_root_key_digest: [0; 32],
        shares: 1,
        threshold: 1,
        sealed_root_key: Vec::new(),
    })
    .unwrap();
    assert_eq!(batch.first().copied(), rekey.first().map(|i| i + 1));

    let batch = postcard::to_allocvec(&Response::Batch(Vec::new())).unwrap();
    let rekeyed = postcard::to_allocvec(&Response::Rekeyed {
        sealed_root_key_digest: [0; 32],
    })
    .unwrap();
    assert_eq!(batch.first().copied(), rekeyed.first().map(|i| i + 1));

    let nested = postcard::to_allocvec(&ApplyError::NestedBatch).unwrap();
    assert_eq!(nested, vec![0x28], "one after StaleRootKey (0x27)");
}

#[test]
fn a_batch_round_trips_with_its_requests_in_order() {
    let mut second = old_request();
    second.request_id = RequestId::parse("req-2").unwrap();
    let batch = Request::batch(vec![old_request(), second]);
    let bytes = postcard::to_allocvec(&batch).unwrap();
    let decoded: Request = postcard::from_bytes(&bytes).unwrap();
    assert_eq!(decoded, batch);
    // The envelope's id is a valid one (ids are validated again when decoded).
    assert_eq!(decoded.request_id.as_str(), "batch");
}

#[test]
fn commands_and_refusals_keep_the_bytes_they_had_with_bare_version_numbers() {
    let key_id = KeyId::from_random_bytes([3; 16]);
    let commands = vec![
        Command::SetMinDecryptionVersion {
            key_id: key_id.clone(),
            version: KeyVersion::new(299),
        },
        Command::SetVersionEnabled {
            key_id: key_id.clone(),
            version: KeyVersion::new(128),
            enabled: false,
        },
        Command::DestroyKeyVersion {
            key_id: key_id.clone(),
            version: KeyVersion::new(299),
            at_ms: 7,
        },
        Command::ImportKeyMaterial {
            key_id: key_id.clone(),
            token_id: "t".into(),
            version: KeyVersion::FIRST,
            sealed_material: vec![1],
            at_ms: 8,
        },
        Command::ResealBlobs {
            blobs: vec![ResealedBlob {
                target: BlobRef::KeyVersion {
                    key_id: key_id.clone(),
                    version: KeyVersion::new(300),
                },
                previous_digest: [2; 32],
                sealed: vec![3],
            }],
        },
    ];
    let bytes = hex::decode(OLD_VERSION_COMMANDS).unwrap();
    assert_eq!(postcard::to_allocvec(&commands).unwrap(), bytes);
    assert_eq!(
        postcard::from_bytes::<Vec<Command>>(&bytes).unwrap(),
        commands
    );

    let rejections = vec![
        Response::Rejected(ApplyError::VersionConflict {
            key_id: key_id.clone(),
            proposed: KeyVersion::new(301),
            latest: KeyVersion::new(302),
        }),
        Response::Rejected(ApplyError::VersionNotFound {
            key_id: key_id.clone(),
            version: KeyVersion::new(400),
        }),
        Response::Rejected(ApplyError::PrimaryVersion {
            key_id: key_id.clone(),
            version: KeyVersion::new(300),
            operation: "destroyed".into(),
        }),
        Response::Rejected(ApplyError::VersionDestroyed {
            key_id: key_id.clone(),
            version: KeyVersion::new(299),
        }),
        Response::Rejected(ApplyError::InvalidMinDecryptionVersion {
            key_id,
            requested: KeyVersion::NONE,
            primary: KeyVersion::new(300),
        }),
    ];
    let bytes = hex::decode(OLD_VERSION_REJECTIONS).unwrap();
    assert_eq!(postcard::to_allocvec(&rejections).unwrap(), bytes);
    assert_eq!(
        postcard::from_bytes::<Vec<Response>>(&bytes).unwrap(),
        rejections
    );
}

/// `ReportClock { node_id: 300, at_ms: 1_700_000_000_000, voters: 3 }` as the build with bare
/// `u64` node ids encoded it: variant 20, then the three varints.
const OLD_REPORT_CLOCK: &str = "14ac0280d095ffbc3103";

#[test]
fn a_clock_report_keeps_the_bytes_it_had_with_a_bare_node_id() {
    let command = Command::ReportClock {
        node_id: NodeId::new(300),
        at_ms: 1_700_000_000_000,
        voters: 3,
    };
    let bytes = postcard::to_allocvec(&command).unwrap();
    assert_eq!(bytes, hex::decode(OLD_REPORT_CLOCK).unwrap());
    // The same fields with a plain `u64` where the id is: identical bytes.
    assert_eq!(
        bytes,
        postcard::to_allocvec(&(20u32, 300u64, 1_700_000_000_000u64, 3u32)).unwrap()
    );
    assert_eq!(postcard::from_bytes::<Command>(&bytes).unwrap(), command);
}
