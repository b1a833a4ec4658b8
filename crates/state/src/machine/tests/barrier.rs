//! Barrier rotation, re-seal, retirement and rekey: every change is compare-and-set.

use sha2::{Digest, Sha256};
use tessera_crypto::{barrier, KeyVersion, SecretKey256};

use super::*;
use crate::barrier::{blob_term, BarrierTerms, BlobRef, ResealedBlob};

fn digest(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// A real barrier blob under `term` (the state reads only its header).
fn blob(term: u32, fill: u8) -> Vec<u8> {
    barrier::seal(
        &SecretKey256::from_bytes([fill; 32]),
        term,
        b"aad",
        &[fill; 32],
        &mut tessera_crypto::os_rng(),
    )
    .unwrap()
}

fn keyring(s: &State) -> Vec<u8> {
    s.seal_config().unwrap().sealed_keyring.clone()
}

fn rotate_barrier(s: &State, term: u32, fill: u8) -> Command {
    Command::RotateBarrier {
        previous_keyring_digest: digest(&keyring(s)),
        term,
        sealed_keyring: vec![fill; 80],
    }
}

fn retire(s: &State, fill: u8) -> Command {
    Command::RetireBarrierTerms {
        previous_keyring_digest: digest(&keyring(s)),
        sealed_keyring: vec![fill; 80],
    }
}

/// Initialised, key 1 with version 1 and key 2 with versions 1 and 2, all under term 1.
fn with_term_one_blobs() -> (State, u64) {
    let mut s = State::new();
    apply_ok(&mut s, 1, init());
    let mut first = new_key(1, "one");
    first.sealed_material = Some(blob(1, 1));
    apply_ok(&mut s, 2, Command::CreateKey(first));
    let mut second = new_key(2, "two");
    second.sealed_material = Some(blob(1, 2));
    apply_ok(&mut s, 3, Command::CreateKey(second));
    apply_ok(
        &mut s,
        4,
        Command::RotateKey {
            key_id: id(2),
            version: KeyVersion::new(2),
            sealed_material: blob(1, 3),
            at_ms: 30,
        },
    );
    (s, 5)
}

fn resealed(s: &State, target: BlobRef, term: u32) -> ResealedBlob {
    let stale = s
        .stale_blobs(usize::MAX)
        .into_iter()
        .find(|b| b.target == target)
        .unwrap();
    ResealedBlob {
        target,
        previous_digest: digest(&stale.sealed),
        sealed: blob(term, 9),
    }
}

fn version(key: u8, version: u32) -> BlobRef {
    BlobRef::KeyVersion {
        key_id: id(key),
        version: KeyVersion::new(version),
    }
}

#[test]
fn rotate_barrier_is_compare_and_set_on_the_keyring() {
    let (mut s, i) = with_term_one_blobs();
    assert_eq!(s.barrier_terms(), BarrierTerms::default());
    let stale = rotate_barrier(&s, 2, 7);
    assert_eq!(
        apply_ok(&mut s, i, stale.clone()),
        Response::Barrier(BarrierTerms {
            active: 2,
            oldest: 1
        })
    );
    assert_eq!(keyring(&s), vec![7; 80]);
    // The same rotation again (prepared against the keyring it replaced) is refused.
    let before = s.digest().unwrap();
    assert_eq!(
        apply_err(&mut s, i + 1, stale),
        ApplyError::StaleKeyring { active: 2 }
    );
    // So is a term that does not follow the active one.
    assert_eq!(
        {
            let c = rotate_barrier(&s, 4, 8);
            apply_err(&mut s, i + 2, c)
        },
        ApplyError::StaleKeyring { active: 2 }
    );
    assert_eq!(s.digest().unwrap(), before);
    assert!(ApplyError::StaleKeyring { active: 2 }.is_transient());
}

#[test]
fn reseal_replaces_old_blobs_all_or_nothing() {
    let (mut s, i) = with_term_one_blobs();
    {
        let c = rotate_barrier(&s, 2, 7);
        apply_ok(&mut s, i, c)
    };
    assert_eq!(s.blobs_left_by_term(), BTreeMap::from([(1, 3)]));
    let stale = s.stale_blobs(2);
    assert_eq!(stale.len(), 2);
    assert_eq!(
        stale.first().unwrap().aad,
        crate::key::version_aad(&id(1), KeyVersion::FIRST, KeySpec::Aes256Gcm)
    );

    let good = resealed(&s, version(1, 1), 2);
    let mut changed = resealed(&s, version(2, 1), 2);
    changed.previous_digest = [0; 32];
    let before = s.digest().unwrap();
    assert_eq!(
        apply_err(
            &mut s,
            i + 1,
            Command::ResealBlobs {
                blobs: vec![good.clone(), changed]
            }
        ),
        ApplyError::StaleReseal {
            target: version(2, 1)
        }
    );
    // Not even the good blob of the refused batch was written.
    assert_eq!(s.digest().unwrap(), before);

    let mut not_active = resealed(&s, version(2, 1), 1);
    not_active.sealed = blob(1, 4);
    assert_eq!(
        apply_err(
            &mut s,
            i + 2,
            Command::ResealBlobs {
                blobs: vec![not_active]
            }
        ),
        ApplyError::ResealNotActive {
            target: version(2, 1),
            term: Some(1),
            active: 2
        }
    );

    let all = vec![
        good,
        resealed(&s, version(2, 1), 2),
        resealed(&s, version(2, 2), 2),
    ];
    assert_eq!(
        apply_ok(&mut s, i + 3, Command::ResealBlobs { blobs: all.clone() }),
        Response::Resealed { count: 3 }
    );
    assert!(s.blobs_left_by_term().is_empty());
    assert!(s.stale_blobs(10).is_empty());
    let stored = stored_version(&s, 2, 2);
    assert_eq!(stored.sealed_material.as_ref(), Some(&all[2].sealed));
    // A replay of the applied batch no longer matches the stored blobs.
    assert!(matches!(
        apply_err(&mut s, i + 4, Command::ResealBlobs { blobs: all }),
        ApplyError::StaleReseal { .. }
    ));
}

#[test]
fn reseal_never_brings_a_destroyed_version_back() {
    let (mut s, i) = with_term_one_blobs();
    {
        let c = rotate_barrier(&s, 2, 7);
        apply_ok(&mut s, i, c)
    };
    let prepared = resealed(&s, version(2, 1), 2);
    apply_ok(
        &mut s,
        i + 1,
        Command::DestroyKeyVersion {
            key_id: id(2),
            version: KeyVersion::new(1),
            at_ms: 40,
        },
    );
    assert_eq!(
        apply_err(
            &mut s,
            i + 2,
            Command::ResealBlobs {
                blobs: vec![prepared]
            }
        ),
        ApplyError::StaleReseal {
            target: version(2, 1)
        }
    );
    let destroyed = stored_version(&s, 2, 1);
    assert_eq!(destroyed.state, VersionState::Destroyed);
    assert_eq!(destroyed.sealed_material, None);
    assert_eq!(s.blobs_left_by_term(), BTreeMap::from([(1, 2)]));
}

#[test]
fn retire_is_refused_while_blobs_use_old_terms() {
    let (mut s, i) = with_term_one_blobs();
    {
        let c = rotate_barrier(&s, 2, 7);
        apply_ok(&mut s, i, c)
    };
    {
        let c = rotate_barrier(&s, 3, 8);
        apply_ok(&mut s, i + 1, c)
    };
    let blobs = vec![resealed(&s, version(1, 1), 3)];
    apply_ok(&mut s, i + 2, Command::ResealBlobs { blobs });
    let before = s.digest().unwrap();
    let error = {
        let c = retire(&s, 9);
        apply_err(&mut s, i + 3, c)
    };
    assert_eq!(
        error,
        ApplyError::BarrierTermsInUse {
            active: 3,
            blobs: 2,
            oldest_in_use: 1
        }
    );
    assert!(error.to_string().contains("2 blob(s)"), "{error}");
    assert_eq!(s.digest().unwrap(), before);

    let blobs = vec![
        resealed(&s, version(2, 1), 3),
        resealed(&s, version(2, 2), 3),
    ];
    apply_ok(&mut s, i + 4, Command::ResealBlobs { blobs });
    assert_eq!(
        {
            let c = retire(&s, 9);
            apply_ok(&mut s, i + 5, c)
        },
        Response::Barrier(BarrierTerms {
            active: 3,
            oldest: 3
        })
    );
    // Material a lagging proposer sealed under a retired term is refused (and re-prepared).
    let late = Command::RotateKey {
        key_id: id(1),
        version: KeyVersion::new(2),
        sealed_material: blob(2, 5),
        at_ms: 50,
    };
    let error = apply_err(&mut s, i + 6, late);
    assert_eq!(error, ApplyError::RetiredBarrierTerm { term: 2, oldest: 3 });
    assert!(error.is_transient());
    apply_ok(
        &mut s,
        i + 7,
        Command::RotateKey {
            key_id: id(1),
            version: KeyVersion::new(2),
            sealed_material: blob(3, 5),
            at_ms: 50,
        },
    );
}

#[test]
fn rekey_is_compare_and_set_on_the_sealed_root_key() {
    let (mut s, i) = with_term_one_blobs();
    let old_root = s.seal_config().unwrap().sealed_root_key.clone();
    let rekey = |root: &[u8], shares, threshold, fill| Command::Rekey {
        previous_root_key_digest: digest(root),
        shares,
        threshold,
        sealed_root_key: vec![fill; 60],
    };
    assert_eq!(
        apply_err(&mut s, i, rekey(&old_root, 2, 3, 7)),
        ApplyError::InvalidSealConfig {
            shares: 2,
            threshold: 3
        }
    );
    assert_eq!(
        apply_ok(&mut s, i + 1, rekey(&old_root, 3, 2, 7)),
        Response::Rekeyed {
            sealed_root_key_digest: digest(&[7; 60])
        }
    );
    let seal = s.seal_config().unwrap();
    assert_eq!((seal.shares, seal.threshold), (3, 2));
    assert_eq!(seal.sealed_root_key, vec![7; 60]);
    // A second rekey prepared against the replaced root key is refused.
    assert_eq!(
        apply_err(&mut s, i + 2, rekey(&old_root, 5, 3, 8)),
        ApplyError::StaleRootKey
    );
    assert_eq!(s.seal_config().unwrap().sealed_root_key, vec![7; 60]);
}

#[test]
fn barrier_terms_survive_rows_and_snapshots_and_format_3_still_decodes() {
    let (mut s, i) = with_term_one_blobs();
    let v4_before = s.encode_snapshot().unwrap();
    {
        let c = rotate_barrier(&s, 2, 7);
        apply_ok(&mut s, i, c)
    };
    let rows = changed_rows(&mut s);
    assert!(rows.contains_key(&b"barrier"[..]));
    let from_rows = State::from_rows(rows).unwrap();
    let from_snapshot = State::decode_snapshot(&s.encode_snapshot().unwrap()).unwrap();
    let all_rows = State::from_rows(s.all_rows().unwrap()).unwrap();
    for restored in [&from_rows, &from_snapshot, &all_rows] {
        assert_eq!(restored.barrier_terms().active, 2);
        assert_eq!(restored.digest().unwrap(), s.digest().unwrap());
    }
    // Format 3: the same body without the trailing barrier terms (two one-byte varints).
    assert_eq!(v4_before.get(4), Some(&crate::snapshot::SNAPSHOT_FORMAT_V4));
    let mut v3 = v4_before.get(..v4_before.len() - 2).unwrap().to_vec();
    v3[4] = crate::snapshot::SNAPSHOT_FORMAT_V3;
    let restored = State::decode_snapshot(&v3).unwrap();
    assert_eq!(restored.barrier_terms(), BarrierTerms::default());
    assert_eq!(restored.encode_snapshot().unwrap(), v4_before);
}

#[test]
fn import_token_keys_are_resealed_too() {
    let (mut s, i) = with_term_one_blobs();
    let mut external = new_key(5, "byok");
    external.origin = KeyOrigin::External;
    external.sealed_material = None;
    apply_ok(&mut s, i, Command::CreateKey(external));
    let token = ImportToken {
        token_id: "t1".into(),
        public_key: vec![1; 32],
        sealed_private_key: blob(1, 6),
        expires_at_ms: u64::MAX,
    };
    apply_ok(
        &mut s,
        i + 1,
        Command::CreateImportToken {
            key_id: id(5),
            token,
        },
    );
    // Before any rotation nothing is stale, and nothing is scanned.
    assert!(s.blobs_left_by_term().is_empty());
    let c = rotate_barrier(&s, 2, 7);
    apply_ok(&mut s, i + 2, c);
    assert_eq!(s.blobs_left_by_term(), BTreeMap::from([(1, 4)]));
    let target = BlobRef::ImportToken {
        key_id: id(5),
        token_id: "t1".into(),
    };
    let stale = s
        .stale_blobs(usize::MAX)
        .into_iter()
        .find(|b| b.target == target)
        .unwrap();
    assert_eq!(stale.aad, crate::key::import_token_aad(&id(5), "t1"));
    let blobs = vec![resealed(&s, target, 2)];
    apply_ok(&mut s, i + 3, Command::ResealBlobs { blobs });
    let stored = s.key(&id(5)).unwrap().import_token.as_ref().unwrap();
    assert_eq!(blob_term(&stored.sealed_private_key), Some(2));
    assert_eq!(s.blobs_left_by_term(), BTreeMap::from([(1, 3)]));
}
