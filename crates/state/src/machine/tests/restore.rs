//! `RestoreSnapshot`: all or nothing, guarded by what the proposer saw, rows rewritten.

use std::collections::BTreeMap;

use super::*;
use crate::machine::seal_digest;

/// Persists `state`'s pending changes into `rows` (as the Raft state machine does).
fn persist(state: &mut State, rows: &mut BTreeMap<Vec<u8>, Vec<u8>>) {
    for change in state.take_changes().unwrap() {
        match change.value {
            Some(value) => rows.insert(change.key, value),
            None => rows.remove(&change.key),
        };
    }
}

fn restore(body: Vec<u8>, replaces: Option<[u8; 32]>) -> Command {
    Command::RestoreSnapshot { body, replaces }
}

/// A source state with key 1, an alias on it and a rotated version, and its snapshot.
fn source() -> (State, Vec<u8>) {
    let (mut s, index) = with_key();
    apply_ok(&mut s, index, rotate(1, 2));
    apply_ok(
        &mut s,
        index + 1,
        Command::CreateAlias {
            alias: AliasName::parse("alias/front").unwrap(),
            key_id: id(1),
        },
    );
    let body = s.encode_snapshot().unwrap();
    (s, body)
}

#[test]
fn a_fresh_target_takes_the_whole_state_but_not_its_clock() {
    let (mut source, _) = source();
    source.apply(20, &clock(9, 5_000));
    assert_eq!(source.clock().now_ms(), 5_000);
    let body = source.encode_snapshot().unwrap();
    let mut target = State::new();
    let mut rows = BTreeMap::new();
    persist(&mut target, &mut rows);
    let response = apply_ok(&mut target, 2, restore(body, None));
    assert_eq!(
        response,
        Response::Restored {
            keys: 1,
            sealed_root_key_digest: seal_digest(&source).unwrap(),
        }
    );
    assert_eq!(
        target.clock().now_ms(),
        0,
        "the source's clock readings stay behind"
    );
    let key = target.key(&id(1)).unwrap();
    assert_eq!(key.versions.len(), 2);
    assert_eq!(target.aliases().count(), 1);
    assert_eq!(target.seal_config(), source.seal_config());
    persist(&mut target, &mut rows);
    let reloaded = State::from_rows(rows).unwrap();
    assert_eq!(
        reloaded.encode_snapshot().unwrap(),
        target.encode_snapshot().unwrap()
    );
}

#[test]
fn restoring_over_the_same_cluster_deletes_what_the_backup_lacks() {
    let (mut target, body) = source();
    let mut rows = BTreeMap::new();
    persist(&mut target, &mut rows);
    apply_ok(&mut target, 10, create(2, "later"));
    target.apply(11, &clock(9, 5_000));
    persist(&mut target, &mut rows);
    let replaces = seal_digest(&target);
    apply_ok(&mut target, 12, restore(body, replaces));
    assert!(target.key(&id(2)).is_none());
    assert_eq!(
        target.clock().now_ms(),
        5_000,
        "the target keeps its own clock"
    );
    persist(&mut target, &mut rows);
    let reloaded = State::from_rows(rows).unwrap();
    assert!(reloaded.key(&id(2)).is_none());
    assert!(reloaded.key(&id(1)).is_some());
    assert_eq!(
        reloaded.encode_snapshot().unwrap(),
        target.encode_snapshot().unwrap()
    );
}

#[test]
fn a_target_that_changed_since_the_proposal_is_left_unchanged() {
    let (_, body) = source();
    let (mut target, _) = with_key();
    target.take_changes().unwrap();
    let before = target.encode_snapshot().unwrap();
    // Prepared while the target looked uninitialised, applied after an init.
    assert_eq!(
        apply_err(&mut target, 10, restore(body.clone(), None)),
        ApplyError::RestoreTargetChanged
    );
    // Prepared against another seal.
    assert_eq!(
        apply_err(&mut target, 11, restore(body, Some([9; 32]))),
        ApplyError::RestoreTargetChanged
    );
    assert_eq!(target.encode_snapshot().unwrap(), before);
    assert!(target.take_changes().unwrap().is_empty());
}

#[test]
fn an_undecodable_or_uninitialised_body_is_refused_without_effect() {
    let (_, mut body) = source();
    let mut target = State::new();
    let before = target.encode_snapshot().unwrap();
    body.truncate(body.len() - 1);
    assert_eq!(
        apply_err(&mut target, 1, restore(body, None)),
        ApplyError::RestoreBodyInvalid
    );
    let empty = State::new().encode_snapshot().unwrap();
    assert_eq!(
        apply_err(&mut target, 2, restore(empty, None)),
        ApplyError::RestoreBodyInvalid
    );
    assert_eq!(target.encode_snapshot().unwrap(), before);
    assert!(!target.is_initialized());
}
