use super::*;

fn backup() -> Backup {
    Backup {
        cluster_id: [7; CLUSTER_ID_LEN],
        terms: vec![1, 2],
        applied_index: 42,
        body: State::new().encode_snapshot().unwrap(),
    }
}

#[test]
fn a_backup_round_trips_with_its_documented_layout() {
    let b = backup();
    let bytes = b.encode().unwrap();
    assert_eq!(bytes.get(..5).unwrap(), b"TBAK\x01");
    assert_eq!(bytes.get(5..37).unwrap(), &[7; 32]);
    assert_eq!(bytes.get(37..41).unwrap(), &2u32.to_be_bytes());
    assert_eq!(bytes.get(41..49).unwrap(), &[0, 0, 0, 1, 0, 0, 0, 2]);
    assert_eq!(bytes.get(49..57).unwrap(), &42u64.to_be_bytes());
    let body_len = b.body.len();
    assert_eq!(bytes.get(57..65).unwrap(), &(body_len as u64).to_be_bytes());
    assert_eq!(bytes.len(), 65 + body_len + 32);
    let content = bytes.get(..65 + body_len).unwrap();
    assert_eq!(
        bytes.get(65 + body_len..).unwrap(),
        Sha256::digest(content).as_slice()
    );
    assert_eq!(Backup::decode(&bytes).unwrap(), b);
}

#[test]
fn every_flipped_byte_is_refused() {
    let bytes = backup().encode().unwrap();
    for at in 0..bytes.len() {
        let mut flipped = bytes.clone();
        *flipped.get_mut(at).unwrap() ^= 0x01;
        assert!(Backup::decode(&flipped).is_err(), "byte {at}");
    }
    // A flip in the body or the checksum is a checksum mismatch.
    let mut flipped = bytes.clone();
    *flipped.get_mut(66).unwrap() ^= 0x80;
    assert_eq!(Backup::decode(&flipped), Err(BackupError::ChecksumMismatch));
    let mut flipped = bytes;
    *flipped.last_mut().unwrap() ^= 0x80;
    assert_eq!(Backup::decode(&flipped), Err(BackupError::ChecksumMismatch));
}

#[test]
fn every_truncation_is_refused_and_named() {
    let bytes = backup().encode().unwrap();
    for len in 0..bytes.len() {
        let err = Backup::decode(bytes.get(..len).unwrap()).unwrap_err();
        assert_eq!(err.code(), "SNAPSHOT_TRUNCATED", "length {len}: {err}");
        assert!(err.to_string().starts_with("SNAPSHOT_TRUNCATED: "));
    }
    let mut longer = bytes;
    longer.push(0);
    assert_eq!(
        Backup::decode(&longer),
        Err(BackupError::TrailingBytes { extra: 1 })
    );
}

#[test]
fn other_files_and_newer_formats_are_refused() {
    assert_eq!(
        Backup::decode(b"TSNP\x03 not a backup"),
        Err(BackupError::NotABackup)
    );
    let mut newer = backup().encode().unwrap();
    *newer.get_mut(4).unwrap() = BACKUP_FORMAT_V1 + 1;
    let err = Backup::decode(&newer).unwrap_err();
    assert_eq!(err, BackupError::UnsupportedFormat { version: 2 });
    assert_eq!(err.code(), "SNAPSHOT_FORMAT_UNSUPPORTED");
}

#[test]
fn header_limits_hold_in_both_directions() {
    let mut big = backup();
    big.body = vec![0; MAX_BACKUP_BODY_BYTES + 1];
    assert!(matches!(big.encode(), Err(BackupError::TooLarge { .. })));
    let mut bytes = backup().encode().unwrap();
    bytes
        .get_mut(57..65)
        .unwrap()
        .copy_from_slice(&u64::MAX.to_be_bytes());
    assert!(matches!(
        Backup::decode(&bytes),
        Err(BackupError::TooLarge { .. })
    ));
    let mut unordered = backup();
    unordered.terms = vec![2, 1];
    assert!(matches!(
        unordered.encode(),
        Err(BackupError::BadTerms { .. })
    ));
    unordered.terms = Vec::new();
    assert!(matches!(
        unordered.encode(),
        Err(BackupError::BadTerms { .. })
    ));
}

#[test]
fn the_body_must_be_an_initialised_state() {
    assert_eq!(backup().state().unwrap_err(), BackupError::Uninitialized);
    let mut garbage = backup();
    garbage.body = b"TSNP\x03\xff".to_vec();
    assert_eq!(garbage.state().unwrap_err().code(), "SNAPSHOT_CORRUPT");
}
