use std::collections::BTreeMap;

use tessera_crypto::spec::KeySpec;
use tessera_crypto::KeyVersion;

use super::*;
use crate::command::NewKey;
use crate::ids::{CallerId, RequestId};
use crate::key::{ImportToken, KeyOrigin, KeyState, Unusable, VersionState};

fn request(id: &str, command: Command) -> Request {
    Request {
        request_id: RequestId::parse(id).unwrap(),
        caller: CallerId::of("admin"),
        fingerprint: [id.len() as u8; 32],
        bindings: Vec::new(),
        command,
    }
}

/// A clock reading from `node_id` in a cluster of as many voters as have reported so far.
fn clock(node_id: u64, at_ms: u64) -> Request {
    request(
        "clock",
        Command::ReportClock {
            node_id: NodeId::new(node_id),
            at_ms,
            voters: 1,
        },
    )
}

fn init() -> Command {
    Command::InitSeal(SealConfig {
        shares: 5,
        threshold: 3,
        sealed_root_key: vec![1; 60],
        sealed_keyring: vec![2; 80],
        initialized_at_ms: 1,
    })
}

fn id(byte: u8) -> KeyId {
    KeyId::from_random_bytes([byte; 16])
}

fn new_key(byte: u8, name: &str) -> NewKey {
    NewKey {
        key_id: id(byte),
        name: KeyName::parse(name).unwrap(),
        spec: KeySpec::Aes256Gcm,
        origin: KeyOrigin::Tessera,
        description: String::new(),
        sealed_material: Some(vec![byte; 61]),
        rotation_period_ms: None,
        exportable: false,
        tags: BTreeMap::new(),
        at_ms: 10,
        created_by: "admin".into(),
    }
}

fn create(byte: u8, name: &str) -> Command {
    Command::CreateKey(new_key(byte, name))
}

fn rotate(byte: u8, version: u32) -> Command {
    Command::RotateKey {
        key_id: id(byte),
        version: KeyVersion::new(version),
        sealed_material: vec![version as u8; 61],
        at_ms: 20 + u64::from(version),
    }
}

/// Schedules key `byte` for deletion `window_ms` after `at_ms`.
fn schedule_deletion(byte: u8, window_ms: u64, at_ms: u64) -> Command {
    Command::ScheduleKeyDeletion {
        key_id: id(byte),
        window_ms,
        at_ms,
    }
}

/// An initialised state with key 1 ("app"), applied from index 1.
fn with_key() -> (State, u64) {
    let mut s = State::new();
    s.apply(1, &request("i", init()));
    s.apply(2, &request("c1", create(1, "app")));
    (s, 3)
}

/// Version `version` of key `byte`, which must both exist.
fn stored_version(s: &State, byte: u8, version: u32) -> &crate::key::KeyVersionRecord {
    s.key(&id(byte))
        .unwrap()
        .versions
        .get(KeyVersion::new(version))
        .unwrap()
}

/// The rows written since the state's changes were last taken, as a store holds them.
fn changed_rows(s: &mut State) -> BTreeMap<Vec<u8>, Vec<u8>> {
    s.take_changes()
        .unwrap()
        .into_iter()
        .filter_map(|change| Some((change.key, change.value?)))
        .collect()
}

fn apply_ok(s: &mut State, index: u64, command: Command) -> Response {
    let response = s.apply(index, &request(&format!("r{index}"), command));
    assert!(
        !matches!(response, Response::Rejected(_)),
        "expected success, got {response:?}"
    );
    response
}

fn apply_err(s: &mut State, index: u64, command: Command) -> ApplyError {
    match s.apply(index, &request(&format!("r{index}"), command)) {
        Response::Rejected(e) => e,
        other => panic!("expected a rejection, got {other:?}"),
    }
}

#[test]
fn key_commands_need_init() {
    let mut s = State::new();
    assert_eq!(
        s.apply(1, &request("a", create(1, "k"))),
        Response::Rejected(ApplyError::NotInitialized)
    );
    assert!(matches!(
        s.apply(2, &request("b", init())),
        Response::Initialized { .. }
    ));
    assert_eq!(
        s.apply(3, &request("c", init())),
        Response::Rejected(ApplyError::AlreadyInitialized)
    );
}

#[test]
fn invalid_seal_config_is_rejected() {
    let mut s = State::new();
    let bad = Command::InitSeal(SealConfig {
        shares: 2,
        threshold: 3,
        sealed_root_key: vec![],
        sealed_keyring: vec![],
        initialized_at_ms: 0,
    });
    assert!(matches!(
        s.apply(1, &request("a", bad)),
        Response::Rejected(ApplyError::InvalidSealConfig { .. })
    ));
    assert!(!s.is_initialized());
}

#[test]
fn create_then_rotate() {
    let (mut s, i) = with_key();
    let Response::Key(k) = apply_ok(&mut s, i, rotate(1, 2)) else {
        panic!("expected key")
    };
    assert_eq!(k.primary_version, KeyVersion::new(2));
    assert_eq!(k.versions.len(), 2);
    assert_eq!(
        apply_err(&mut s, i + 1, rotate(1, 2)),
        ApplyError::VersionConflict {
            key_id: id(1),
            proposed: KeyVersion::new(2),
            latest: KeyVersion::new(2)
        }
    );
}

#[test]
fn version_conflict_is_not_remembered_so_the_retry_applies() {
    let (mut s, _) = with_key();
    s.apply(3, &request("other", rotate(1, 2)));
    assert!(matches!(
        s.apply(4, &request("mine", rotate(1, 2))),
        Response::Rejected(ApplyError::VersionConflict { latest, .. }) if latest == KeyVersion::new(2)
    ));
    let Response::Key(after) = s.apply(5, &request("mine", rotate(1, 3))) else {
        panic!("the retry with the next version must apply")
    };
    assert_eq!(after.primary_version, KeyVersion::new(3));
    // Now the id is remembered: a repeat returns the same result.
    assert_eq!(
        s.apply(6, &request("mine", rotate(1, 4))),
        Response::Key(after)
    );
}

#[test]
fn duplicate_names_and_ids_are_rejected() {
    let (mut s, _) = with_key();
    assert!(matches!(
        s.apply(3, &request("c2", create(2, "app"))),
        Response::Rejected(ApplyError::KeyNameTaken { .. })
    ));
    assert!(matches!(
        s.apply(4, &request("c3", create(1, "other"))),
        Response::Rejected(ApplyError::KeyIdTaken { .. })
    ));
    assert_eq!(s.key_count(), 1);
}

#[test]
fn retried_request_returns_first_result_and_creates_one_key() {
    let mut s = State::new();
    s.apply(1, &request("i", init()));
    let first = s.apply(2, &request("same", create(1, "app")));
    // A retry carries fresh proposer material but the same id and fingerprint.
    let again = s.apply(3, &request("same", create(2, "app")));
    assert_eq!(first, again);
    assert_eq!(s.key_count(), 1);
}

#[test]
fn a_remembered_response_is_returned_and_encoded_exactly_as_first_applied() {
    let mut s = State::new();
    s.apply(1, &request("i", init()));
    let req = request("same", create(1, "app"));
    let first = s.apply(2, &req);
    assert!(matches!(first, Response::Key(_)));
    let record = s.dedup().get(&req.caller, &req.request_id).unwrap();
    let entry = crate::dedup::DedupEntry {
        caller: req.caller,
        request_id: req.request_id.clone(),
        index: 2,
        applied_at_ms: record.applied_at_ms(),
        fingerprint: req.fingerprint,
        response: first.clone(),
    };
    assert_eq!(record.to_entry().unwrap(), entry);
    // Rows and snapshots encode the kept entry with the bytes of the full one.
    assert_eq!(
        postcard::to_allocvec(&record).unwrap(),
        postcard::to_allocvec(&entry).unwrap()
    );
    assert_eq!(
        s.dedup()
            .check(&req.caller, &req.request_id, &req.fingerprint),
        crate::dedup::DedupHit::Retry(Box::new(first))
    );
}

#[test]
fn reused_request_id_with_other_fingerprint_is_rejected() {
    let (mut s, _) = with_key();
    let mut other = request("c1", create(2, "other"));
    other.fingerprint = [0xee; 32];
    assert!(matches!(
        s.apply(3, &other),
        Response::Rejected(ApplyError::RequestIdReused { .. })
    ));
    assert_eq!(s.key_count(), 1);
}

#[test]
fn resolve_by_id_name_and_alias() {
    let (mut s, i) = with_key();
    assert!(s.resolve(&KeyRef::Id(id(1))).is_some());
    assert_eq!(
        s.resolve(&KeyRef::parse("app").unwrap()).map(|k| &k.key_id),
        Some(&id(1))
    );
    assert!(s.resolve(&KeyRef::parse("nope").unwrap()).is_none());
    assert!(s.resolve(&KeyRef::parse("alias/front").unwrap()).is_none());
    apply_ok(
        &mut s,
        i,
        Command::CreateAlias {
            alias: AliasName::parse("front").unwrap(),
            key_id: id(1),
        },
    );
    assert_eq!(
        s.resolve(&KeyRef::parse("alias/front").unwrap())
            .map(|k| &k.key_id),
        Some(&id(1))
    );
    let meta = s.metadata(s.key(&id(1)).unwrap());
    assert_eq!(meta.aliases, vec![AliasName::parse("front").unwrap()]);
}

#[test]
fn enable_disable_and_state_checks() {
    let (mut s, i) = with_key();
    apply_ok(&mut s, i, Command::DisableKey { key_id: id(1) });
    let key = s.key(&id(1)).unwrap();
    assert_eq!(key.state, KeyState::Disabled);
    assert!(matches!(key.primary(), Err(Unusable::Disabled { .. })));
    assert!(matches!(
        apply_err(&mut s, i + 1, rotate(1, 2)),
        ApplyError::InvalidKeyState { .. }
    ));
    apply_ok(&mut s, i + 2, Command::EnableKey { key_id: id(1) });
    assert!(s.key(&id(1)).unwrap().primary().is_ok());
}

#[test]
fn deletion_schedule_cancel_and_destroy() {
    let (mut s, i) = with_key();
    s.apply(i, &clock(1, 400));
    apply_ok(
        &mut s,
        i + 1,
        Command::CreateAlias {
            alias: AliasName::parse("doomed").unwrap(),
            key_id: id(1),
        },
    );
    apply_ok(&mut s, i + 2, schedule_deletion(1, 600, 300));
    let key = s.key(&id(1)).unwrap();
    assert!(matches!(
        key.decryptable(KeyVersion::new(1)),
        Err(Unusable::PendingDeletion {
            deletion_date_ms: 1000,
            ..
        })
    ));
    s.apply(i + 3, &clock(1, 999));
    assert_eq!(s.due_deletions(), Vec::<KeyId>::new());
    assert_eq!(
        apply_err(&mut s, i + 4, Command::DestroyKey { key_id: id(1) }),
        ApplyError::DeletionNotDue {
            key_id: id(1),
            deletion_date_ms: 1000
        }
    );
    s.apply(i + 5, &clock(1, 1000));
    assert_eq!(s.due_deletions(), vec![id(1)]);
    apply_ok(&mut s, i + 6, Command::CancelKeyDeletion { key_id: id(1) });
    assert_eq!(s.key(&id(1)).unwrap().state, KeyState::Disabled);
    assert_eq!(s.key(&id(1)).unwrap().deletion_date_ms, None);
    assert!(matches!(
        apply_err(&mut s, i + 7, Command::DestroyKey { key_id: id(1) }),
        ApplyError::InvalidKeyState { .. }
    ));
    apply_ok(&mut s, i + 8, schedule_deletion(1, 1000, 0));
    assert_eq!(s.key(&id(1)).unwrap().deletion_date_ms, Some(2000));
    s.apply(i + 9, &clock(1, 2000));
    apply_ok(&mut s, i + 10, Command::DestroyKey { key_id: id(1) });
    assert_eq!(s.key_count(), 0);
    assert!(s.resolve(&KeyRef::parse("app").unwrap()).is_none());
    assert_eq!(s.aliases().count(), 0);
    // The name is free again.
    apply_ok(&mut s, i + 11, create(2, "app"));
}

#[test]
fn one_node_clock_running_ahead_cannot_bring_destruction_forward() {
    const DAY: u64 = 24 * 3_600_000;
    let (mut s, i) = with_key();
    for node in 1..=3 {
        s.apply(i, &clock(node, 1_000 * DAY));
    }
    apply_ok(&mut s, i + 1, schedule_deletion(1, 7 * DAY, 1_000 * DAY));
    // The leader's clock jumps a year ahead; it reports and proposes destruction at once.
    s.apply(i + 2, &clock(1, 1_365 * DAY));
    assert_eq!(s.due_deletions(), Vec::<KeyId>::new());
    assert!(matches!(
        apply_err(&mut s, i + 3, Command::DestroyKey { key_id: id(1) }),
        ApplyError::DeletionNotDue { .. }
    ));
    // Its writes carry the skewed time too, and still cannot move cluster time.
    apply_ok(&mut s, i + 4, create(2, "other"));
    assert_eq!(s.clock().now_ms(), 1_000 * DAY);
    // Honest time passes; the key goes once an honest clock reaches the date.
    s.apply(i + 5, &clock(2, 1_006 * DAY));
    assert!(s.due_deletions().is_empty());
    s.apply(i + 6, &clock(2, 1_007 * DAY));
    assert_eq!(s.due_deletions(), vec![id(1)]);
    apply_ok(&mut s, i + 7, Command::DestroyKey { key_id: id(1) });
}

#[test]
fn a_proposer_clock_running_behind_cannot_shorten_the_window() {
    let (mut s, i) = with_key();
    s.apply(i, &clock(1, 50_000));
    apply_ok(&mut s, i + 1, schedule_deletion(1, 1_000, 0));
    assert_eq!(s.key(&id(1)).unwrap().deletion_date_ms, Some(51_000));
}

#[test]
fn a_write_prepared_on_a_stale_alias_is_refused_and_the_right_key_is_untouched() {
    // Key 1 and key 2; alias/prod points at key 1; both keys have a version 1 and 2.
    let (mut s, i) = with_key();
    apply_ok(&mut s, i, create(2, "second"));
    apply_ok(&mut s, i + 1, rotate(1, 2));
    apply_ok(&mut s, i + 2, rotate(2, 2));
    let prod = AliasName::parse("prod").unwrap();
    apply_ok(
        &mut s,
        i + 3,
        Command::CreateAlias {
            alias: prod.clone(),
            key_id: id(1),
        },
    );
    // A lagging node resolves alias/prod from a snapshot taken now...
    let stale = State::decode_snapshot(&s.encode_snapshot().unwrap()).unwrap();
    // ...while the alias moves to key 2 through another node.
    apply_ok(
        &mut s,
        i + 4,
        Command::UpdateAlias {
            alias: prod.clone(),
            key_id: id(2),
        },
    );
    let reference = KeyRef::Alias(prod.clone());
    let resolved = stale.resolve(&reference).unwrap().key_id.clone();
    assert_eq!(resolved, id(1));
    let destroy = Request {
        bindings: vec![KeyBinding {
            reference: reference.clone(),
            key_id: resolved,
        }],
        ..request(
            "destroy-v1",
            Command::DestroyKeyVersion {
                key_id: id(1),
                version: KeyVersion::new(1),
                at_ms: 99,
            },
        )
    };
    assert_eq!(
        s.apply(i + 5, &destroy),
        Response::Rejected(ApplyError::StaleReference {
            reference: reference.clone(),
            bound_to: id(1),
            now: Some(id(2)),
        })
    );
    let v1 = |s: &State, key| stored_version(s, key, 1).state;
    assert_eq!(
        v1(&s, 1),
        VersionState::Enabled,
        "the wrong key is untouched"
    );
    // The refusal is not remembered: the proposer resolves again and retries under the same
    // request id, which now destroys version 1 of the key the alias names.
    let retry = Request {
        bindings: vec![KeyBinding {
            reference,
            key_id: id(2),
        }],
        ..request(
            "destroy-v1",
            Command::DestroyKeyVersion {
                key_id: id(2),
                version: KeyVersion::new(1),
                at_ms: 99,
            },
        )
    };
    apply_ok_request(&mut s, i + 6, &retry);
    assert_eq!(v1(&s, 2), VersionState::Destroyed);
    assert_eq!(v1(&s, 1), VersionState::Enabled);
}

#[test]
fn a_name_reused_by_a_new_key_is_a_stale_reference() {
    let (mut s, i) = with_key();
    let reference = KeyRef::parse("app").unwrap();
    s.apply(i, &clock(1, 10));
    apply_ok(&mut s, i + 1, schedule_deletion(1, 0, 0));
    apply_ok(&mut s, i + 2, Command::DestroyKey { key_id: id(1) });
    apply_ok(&mut s, i + 3, create(2, "app"));
    let disable = Request {
        bindings: vec![KeyBinding {
            reference: reference.clone(),
            key_id: id(1),
        }],
        ..request("d", Command::DisableKey { key_id: id(1) })
    };
    assert!(matches!(
        s.apply(i + 4, &disable),
        Response::Rejected(ApplyError::StaleReference { now: Some(_), .. })
    ));
    assert_eq!(s.key(&id(2)).unwrap().state, KeyState::Enabled);
}

#[test]
fn refused_writes_are_not_remembered_and_evict_nothing() {
    let (mut s, i) = with_key();
    s.apply(i, &clock(1, 60_000));
    apply_ok(&mut s, i + 1, rotate(1, 2));
    let remembered = RequestId::parse(&format!("r{}", i + 1)).unwrap();
    let admin = CallerId::of("admin");
    assert!(s.dedup().get(&admin, &remembered).is_some());
    let before = s.dedup().len();
    for n in 0..(crate::dedup::DEDUP_CAPACITY_PER_CALLER as u64 + 10) {
        let response = s.apply(
            i + 2 + n,
            &request(&format!("flood-{n}"), Command::EnableKey { key_id: id(9) }),
        );
        assert!(matches!(response, Response::Rejected(_)));
    }
    assert_eq!(s.dedup().len(), before);
    assert!(s.dedup().get(&admin, &remembered).is_some());
}

fn apply_ok_request(s: &mut State, index: u64, request: &Request) -> Response {
    let response = s.apply(index, request);
    assert!(
        !matches!(response, Response::Rejected(_)),
        "expected success, got {response:?}"
    );
    response
}

#[test]
fn versions_min_decryption_disable_and_destroy() {
    let (mut s, i) = with_key();
    apply_ok(&mut s, i, rotate(1, 2));
    apply_ok(&mut s, i + 1, rotate(1, 3));
    // The primary version can be neither disabled nor destroyed.
    for command in [
        Command::SetVersionEnabled {
            key_id: id(1),
            version: KeyVersion::new(3),
            enabled: false,
        },
        Command::DestroyKeyVersion {
            key_id: id(1),
            version: KeyVersion::new(3),
            at_ms: 1,
        },
    ] {
        assert!(matches!(
            apply_err(&mut s, i + 2, command),
            ApplyError::PrimaryVersion { .. }
        ));
    }
    apply_ok(
        &mut s,
        i + 3,
        Command::SetVersionEnabled {
            key_id: id(1),
            version: KeyVersion::new(2),
            enabled: false,
        },
    );
    assert!(matches!(
        s.key(&id(1)).unwrap().decryptable(KeyVersion::new(2)),
        Err(Unusable::VersionDisabled { version, .. }) if version == KeyVersion::new(2)
    ));
    apply_ok(
        &mut s,
        i + 4,
        Command::SetMinDecryptionVersion {
            key_id: id(1),
            version: KeyVersion::new(2),
        },
    );
    assert!(matches!(
        s.key(&id(1)).unwrap().decryptable(KeyVersion::new(1)),
        Err(Unusable::BelowMinimum { version, min, .. })
            if version == KeyVersion::FIRST && min == KeyVersion::new(2)
    ));
    assert!(matches!(
        apply_err(
            &mut s,
            i + 5,
            Command::SetMinDecryptionVersion {
                key_id: id(1),
                version: KeyVersion::new(4)
            }
        ),
        ApplyError::InvalidMinDecryptionVersion { .. }
    ));
    apply_ok(
        &mut s,
        i + 6,
        Command::DestroyKeyVersion {
            key_id: id(1),
            version: KeyVersion::new(1),
            at_ms: 77,
        },
    );
    let key = s.key(&id(1)).unwrap();
    let v1 = key.versions.get(KeyVersion::new(1)).unwrap();
    assert_eq!(v1.state, VersionState::Destroyed);
    assert_eq!(
        v1.sealed_material, None,
        "destroyed material is gone from the state"
    );
    assert_eq!(v1.destroyed_at_ms, Some(77));
    assert!(matches!(
        key.exportable_version(KeyVersion::new(1)),
        Err(Unusable::VersionDestroyed { .. })
    ));
    assert!(!s
        .encode_snapshot()
        .unwrap()
        .windows(61)
        .any(|w| w == [1u8; 61]));
    assert!(matches!(
        apply_err(
            &mut s,
            i + 7,
            Command::SetVersionEnabled {
                key_id: id(1),
                version: KeyVersion::new(1),
                enabled: true
            }
        ),
        ApplyError::VersionDestroyed { .. }
    ));
}

#[test]
fn aliases_create_repoint_delete() {
    let (mut s, i) = with_key();
    apply_ok(&mut s, i, create(2, "second"));
    let alias = AliasName::parse("svc").unwrap();
    apply_ok(
        &mut s,
        i + 1,
        Command::CreateAlias {
            alias: alias.clone(),
            key_id: id(1),
        },
    );
    assert!(matches!(
        apply_err(
            &mut s,
            i + 2,
            Command::CreateAlias {
                alias: alias.clone(),
                key_id: id(2)
            }
        ),
        ApplyError::AliasExists { .. }
    ));
    apply_ok(
        &mut s,
        i + 3,
        Command::UpdateAlias {
            alias: alias.clone(),
            key_id: id(2),
        },
    );
    assert_eq!(
        s.resolve(&KeyRef::Alias(alias.clone())).unwrap().key_id,
        id(2)
    );
    assert!(s.metadata(s.key(&id(1)).unwrap()).aliases.is_empty());
    let mut hmac = new_key(3, "mac");
    hmac.spec = KeySpec::HmacSha256;
    apply_ok(&mut s, i + 4, Command::CreateKey(hmac));
    assert!(matches!(
        apply_err(
            &mut s,
            i + 5,
            Command::UpdateAlias {
                alias: alias.clone(),
                key_id: id(3)
            }
        ),
        ApplyError::AliasUsageMismatch { .. }
    ));
    apply_ok(
        &mut s,
        i + 6,
        Command::DeleteAlias {
            alias: alias.clone(),
        },
    );
    assert!(matches!(
        apply_err(&mut s, i + 7, Command::DeleteAlias { alias }),
        ApplyError::AliasNotFound { .. }
    ));
}

#[test]
fn tags_and_listing_with_filters_and_pages() {
    let (mut s, i) = with_key();
    for (n, name) in ["b-key", "c-key", "d-key"].iter().enumerate() {
        apply_ok(&mut s, i + n as u64, create(10 + n as u8, name));
    }
    apply_ok(
        &mut s,
        i + 10,
        Command::TagKey {
            key_id: id(11),
            tags: BTreeMap::from([("team".into(), "pay".into())]),
        },
    );
    apply_ok(&mut s, i + 11, Command::DisableKey { key_id: id(12) });
    let all = s.list_keys(&KeyFilter::default(), None, 2);
    let names: Vec<&str> = all.keys.iter().map(|k| k.name.as_str()).collect();
    assert_eq!(names, ["app", "b-key"]);
    let rest = s.list_keys(&KeyFilter::default(), all.next_after.as_ref(), 2);
    let names: Vec<&str> = rest.keys.iter().map(|k| k.name.as_str()).collect();
    assert_eq!(names, ["c-key", "d-key"]);
    assert!(rest.next_after.is_none());
    let tagged = s.list_keys(
        &KeyFilter {
            tag: Some(("team".into(), Some("pay".into()))),
            ..KeyFilter::default()
        },
        None,
        10,
    );
    assert_eq!(tagged.keys.len(), 1);
    let disabled = s.list_keys(
        &KeyFilter {
            state: Some(KeyState::Disabled),
            ..KeyFilter::default()
        },
        None,
        10,
    );
    assert_eq!(disabled.keys.first().unwrap().key_id, id(12));
    apply_ok(
        &mut s,
        i + 12,
        Command::UntagKey {
            key_id: id(11),
            tag_keys: vec!["team".into()],
        },
    );
    assert!(s.key(&id(11)).unwrap().tags.is_empty());
    let too_many = (0..51).map(|n| (format!("t{n}"), String::new())).collect();
    assert!(matches!(
        apply_err(
            &mut s,
            i + 13,
            Command::TagKey {
                key_id: id(11),
                tags: too_many
            }
        ),
        ApplyError::InvalidTags { .. }
    ));
}

#[test]
fn an_oversized_tag_key_is_echoed_cut_in_the_rejection() {
    let (mut s, i) = with_key();
    let huge = "k".repeat(1 << 20);
    let rejection = apply_err(
        &mut s,
        i,
        Command::TagKey {
            key_id: id(1),
            tags: BTreeMap::from([(huge, "v".into())]),
        },
    );
    assert!(matches!(rejection, ApplyError::InvalidTags { .. }));
    let message = rejection.to_string();
    assert!(message.len() < 300, "{} bytes", message.len());
    assert!(message.contains("must be 1..=128 bytes"), "{message}");
}

#[test]
fn rotation_schedule() {
    let (mut s, i) = with_key();
    apply_ok(
        &mut s,
        i,
        Command::SetRotationPeriod {
            key_id: id(1),
            period_ms: Some(100),
        },
    );
    // Version 1 was created at 10: due at 110.
    assert!(s.due_rotations(109).is_empty());
    assert_eq!(s.due_rotations(110), vec![(id(1), KeyVersion::new(2))]);
    apply_ok(&mut s, i + 1, rotate(1, 2)); // created at 22: due at 122
    assert!(s.due_rotations(121).is_empty());
    apply_ok(&mut s, i + 2, Command::DisableKey { key_id: id(1) });
    assert!(
        s.due_rotations(10_000).is_empty(),
        "disabled keys do not rotate"
    );
    assert!(matches!(
        apply_err(
            &mut s,
            i + 3,
            Command::SetRotationPeriod {
                key_id: id(1),
                period_ms: Some(0)
            }
        ),
        ApplyError::InvalidRotationPeriod { .. }
    ));
}

#[test]
fn import_flow_with_tokens() {
    let mut s = State::new();
    s.apply(1, &request("i", init()));
    let mut external = new_key(5, "byok");
    external.origin = KeyOrigin::External;
    external.sealed_material = None;
    apply_ok(&mut s, 2, Command::CreateKey(external));
    let key = s.key(&id(5)).unwrap();
    assert_eq!(key.state, KeyState::PendingImport);
    assert!(matches!(key.primary(), Err(Unusable::PendingImport { .. })));
    assert!(matches!(
        apply_err(&mut s, 3, rotate(5, 1)),
        ApplyError::WrongOrigin { .. }
    ));
    let token = ImportToken {
        token_id: "t1".into(),
        public_key: vec![9; 32],
        sealed_private_key: vec![8; 60],
        expires_at_ms: 500,
    };
    apply_ok(
        &mut s,
        4,
        Command::CreateImportToken {
            key_id: id(5),
            token: token.clone(),
        },
    );
    let import = |token_id: &str, at_ms| Command::ImportKeyMaterial {
        key_id: id(5),
        token_id: token_id.into(),
        version: KeyVersion::new(1),
        sealed_material: vec![7; 61],
        at_ms,
    };
    assert!(matches!(
        apply_err(&mut s, 5, import("t0", 100)),
        ApplyError::ImportTokenInvalid { .. }
    ));
    assert!(matches!(
        apply_err(&mut s, 6, import("t1", 500)),
        ApplyError::ImportTokenExpired { .. }
    ));
    apply_ok(&mut s, 7, import("t1", 499));
    let key = s.key(&id(5)).unwrap();
    assert_eq!(key.state, KeyState::Enabled);
    assert_eq!(key.primary_version, KeyVersion::new(1));
    assert!(key.import_token.is_none(), "a token is used once");
    assert!(matches!(
        apply_err(&mut s, 8, import("t1", 100)),
        ApplyError::ImportTokenInvalid { .. }
    ));
    // A key generated by Tessera refuses import tokens.
    apply_ok(&mut s, 9, create(6, "generated"));
    assert!(matches!(
        apply_err(
            &mut s,
            10,
            Command::CreateImportToken {
                key_id: id(6),
                token
            }
        ),
        ApplyError::WrongOrigin { .. }
    ));
}

#[test]
fn refused_commands_change_nothing() {
    let (mut s, i) = with_key();
    let before = s.encode_snapshot().unwrap();
    let _ = s.take_changes().unwrap();
    for (n, command) in [
        rotate(1, 5),
        Command::DestroyKeyVersion {
            key_id: id(1),
            version: KeyVersion::new(1),
            at_ms: 1,
        },
        Command::SetMinDecryptionVersion {
            key_id: id(1),
            version: KeyVersion::new(9),
        },
        Command::EnableKey { key_id: id(9) },
    ]
    .into_iter()
    .enumerate()
    {
        let response = s.apply(i + n as u64, &request("same-id", command));
        assert!(matches!(response, Response::Rejected(_)), "{response:?}");
    }
    // Refusals are not even remembered for their request id.
    assert_eq!(s.encode_snapshot().unwrap(), before);
    assert!(s.take_changes().unwrap().is_empty());
}

mod access;
mod barrier;
mod batch;
mod restore;

mod determinism {
    //! Random command sequences: two states fed the same log, and a third rebuilt from a
    //! snapshot midway (and a fourth from persisted rows), must end byte-identical.

    use proptest::prelude::*;

    use super::*;

    fn key_id_strategy() -> impl Strategy<Value = KeyId> {
        (0u8..4).prop_map(id)
    }

    /// Versions 1 to 4, the ones a generated log creates.
    fn version_strategy() -> impl Strategy<Value = KeyVersion> {
        (1u32..5).prop_map(KeyVersion::new)
    }

    fn command_strategy() -> impl Strategy<Value = Command> {
        let name = (0u8..5).prop_map(|n| KeyName::parse(&format!("key-{n}")).unwrap());
        let alias = (0u8..3).prop_map(|n| AliasName::parse(&format!("a{n}")).unwrap());
        let spec = prop_oneof![
            Just(KeySpec::Aes256Gcm),
            Just(KeySpec::HmacSha256),
            Just(KeySpec::Ed25519)
        ];
        prop_oneof![
            (key_id_strategy(), name, spec, any::<bool>(), 0u64..1000).prop_map(
                |(key_id, name, spec, external, at_ms)| {
                    Command::CreateKey(NewKey {
                        key_id,
                        name,
                        spec,
                        origin: if external {
                            KeyOrigin::External
                        } else {
                            KeyOrigin::Tessera
                        },
                        description: "d".into(),
                        sealed_material: (!external).then(|| vec![at_ms as u8; 40]),
                        rotation_period_ms: None,
                        exportable: external,
                        tags: BTreeMap::new(),
                        at_ms,
                        created_by: "p".into(),
                    })
                }
            ),
            (key_id_strategy(), version_strategy(), 0u64..1000).prop_map(
                |(key_id, version, at_ms)| Command::RotateKey {
                    key_id,
                    version,
                    sealed_material: vec![version.get() as u8; 40],
                    at_ms,
                }
            ),
            key_id_strategy().prop_map(|key_id| Command::EnableKey { key_id }),
            key_id_strategy().prop_map(|key_id| Command::DisableKey { key_id }),
            (key_id_strategy(), 0u64..2000, 0u64..2000).prop_map(|(key_id, window_ms, at_ms)| {
                Command::ScheduleKeyDeletion {
                    key_id,
                    window_ms,
                    at_ms,
                }
            }),
            key_id_strategy().prop_map(|key_id| Command::CancelKeyDeletion { key_id }),
            key_id_strategy().prop_map(|key_id| Command::DestroyKey { key_id }),
            (1u64..4, 0u64..3000, 1u32..4).prop_map(|(node_id, at_ms, voters)| {
                Command::ReportClock {
                    node_id: NodeId::new(node_id),
                    at_ms,
                    voters,
                }
            }),
            (key_id_strategy(), (0u32..5).prop_map(KeyVersion::new)).prop_map(
                |(key_id, version)| { Command::SetMinDecryptionVersion { key_id, version } }
            ),
            (key_id_strategy(), version_strategy(), any::<bool>()).prop_map(
                |(key_id, version, enabled)| Command::SetVersionEnabled {
                    key_id,
                    version,
                    enabled,
                }
            ),
            (key_id_strategy(), version_strategy(), 0u64..1000).prop_map(
                |(key_id, version, at_ms)| Command::DestroyKeyVersion {
                    key_id,
                    version,
                    at_ms,
                }
            ),
            (key_id_strategy(), "[a-z]{0,3}", "[a-z]{0,3}").prop_map(|(key_id, k, v)| {
                Command::TagKey {
                    key_id,
                    tags: BTreeMap::from([(format!("t{k}"), v)]),
                }
            }),
            (key_id_strategy(), prop::option::of(0u64..500))
                .prop_map(|(key_id, period_ms)| Command::SetRotationPeriod { key_id, period_ms }),
            (alias.clone(), key_id_strategy())
                .prop_map(|(alias, key_id)| Command::CreateAlias { alias, key_id }),
            (alias.clone(), key_id_strategy())
                .prop_map(|(alias, key_id)| Command::UpdateAlias { alias, key_id }),
            alias.prop_map(|alias| Command::DeleteAlias { alias }),
            (key_id_strategy(), 0u64..1000).prop_map(|(key_id, expires_at_ms)| {
                Command::CreateImportToken {
                    key_id,
                    token: ImportToken {
                        token_id: format!("t{expires_at_ms}"),
                        public_key: vec![1; 32],
                        sealed_private_key: vec![2; 40],
                        expires_at_ms,
                    },
                }
            }),
            (
                key_id_strategy(),
                0u64..1000,
                (1u32..3).prop_map(KeyVersion::new)
            )
                .prop_map(|(key_id, t, version)| {
                    Command::ImportKeyMaterial {
                        key_id,
                        token_id: format!("t{t}"),
                        version,
                        sealed_material: vec![3; 40],
                        at_ms: t.saturating_sub(1),
                    }
                }),
            access_command_strategy(),
        ]
    }

    /// The access commands: policies, grants (some expiring within the generated cluster
    /// times), certificate revocations and rate-limit rules.
    fn access_command_strategy() -> impl Strategy<Value = Command> {
        use crate::policy::{
            Action, CertificateSerial, Format, Grant, GrantId, Identity, PolicyDocument,
            PolicyName, RevokedCertificate,
        };
        let policy = (0u8..3).prop_map(|n| PolicyName::parse(&format!("p{n}")).unwrap());
        let grant_id = (0u8..3).prop_map(|n| GrantId::parse(&format!("g{n}")).unwrap());
        prop_oneof![
            (policy.clone(), any::<bool>(), 0u8..2).prop_map(|(name, deny, who)| {
                let effect = if deny { "deny" } else { "allow" };
                let text = format!(
                    r#"{{"statements":[{{"effect":"{effect}","identities":["id-{who}*"],"actions":["kms:Encrypt"]}}]}}"#
                );
                Command::PutPolicy {
                    name,
                    document: PolicyDocument::parse(&text, Format::Json).unwrap(),
                }
            }),
            policy.prop_map(|name| Command::DeletePolicy { name }),
            (grant_id.clone(), key_id_strategy(), prop::option::of(0u64..3000)).prop_map(
                |(grant_id, key_id, expires_at_ms)| Command::CreateGrant(Grant {
                    grant_id,
                    key_id,
                    grantee: Identity::parse("id-1").unwrap(),
                    actions: vec![Action::Decrypt],
                    constraint: None,
                    expires_at_ms,
                    created_by: Identity::parse("root").unwrap(),
                })
            ),
            grant_id.prop_map(|grant_id| Command::RevokeGrant { grant_id }),
            (0u8..3, any::<bool>()).prop_map(|(n, by_serial)| Command::RevokeCertificate {
                certificate: if by_serial {
                    RevokedCertificate::Serial(CertificateSerial::from_bytes(&[n]).unwrap())
                } else {
                    RevokedCertificate::Fingerprint([n; 32])
                },
            }),
            (0u8..3, 0u32..3).prop_map(|(n, per_second)| {
                Command::PutRateLimit(crate::policy::RateLimitRule {
                    identity: crate::policy::Glob::new(&format!("id-{n}*")),
                    crypto: Some(crate::policy::Budget {
                        per_second,
                        burst: per_second,
                    }),
                    keys: None,
                    operator: None,
                })
            }),
            (0u8..3).prop_map(|n| Command::DeleteRateLimit {
                identity: crate::policy::Glob::new(&format!("id-{n}*")),
            }),
        ]
    }

    fn reference_strategy() -> impl Strategy<Value = KeyRef> {
        prop_oneof![
            (0u8..5).prop_map(|n| KeyRef::Name(KeyName::parse(&format!("key-{n}")).unwrap())),
            (0u8..3).prop_map(|n| KeyRef::Alias(AliasName::parse(&format!("a{n}")).unwrap())),
        ]
    }

    pub(super) fn requests() -> impl Strategy<Value = Vec<Request>> {
        let one = (
            command_strategy(),
            0u8..40,
            0u8..2,
            0u8..2,
            prop::option::of((reference_strategy(), key_id_strategy())),
        );
        prop::collection::vec(one, 1..120).prop_map(|commands| {
            let Command::InitSeal(seal) = init() else {
                unreachable!("init() is InitSeal")
            };
            let admin = crate::policy::Identity::parse("root").unwrap();
            let mut out = vec![request("init", Command::Initialize { seal, admin })];
            out.extend(
                commands
                    .into_iter()
                    .map(|(command, rid, fingerprint, caller, binding)| Request {
                        // A small id pool, and fingerprints drawn independently of the id, make
                        // retries (same id and fingerprint) and id reuse (same id, other
                        // fingerprint) happen, for two callers that share the id space.
                        request_id: RequestId::parse(&format!("req-{rid}")).unwrap(),
                        caller: CallerId::of(&format!("caller-{caller}")),
                        fingerprint: [fingerprint; 32],
                        bindings: binding
                            .map(|(reference, key_id)| KeyBinding { reference, key_id })
                            .into_iter()
                            .collect(),
                        command,
                    }),
            );
            out
        })
    }

    /// Applies a log and collects what kinds of results it produced.
    fn outcomes(log: &[Request]) -> (bool, bool, bool) {
        let mut s = State::new();
        let (mut reused, mut retried, mut stale) = (false, false, false);
        for (i, req) in log.iter().enumerate() {
            let before = s
                .dedup()
                .check(&req.caller, &req.request_id, &req.fingerprint);
            retried |= matches!(before, crate::dedup::DedupHit::Retry(_));
            match s.apply(i as u64 + 1, req) {
                Response::Rejected(ApplyError::RequestIdReused { .. }) => reused = true,
                Response::Rejected(ApplyError::StaleReference { .. }) => stale = true,
                _ => {}
            }
        }
        (reused, retried, stale)
    }

    #[test]
    fn the_generated_logs_exercise_reuse_retries_and_stale_references() {
        use proptest::strategy::ValueTree;
        use proptest::test_runner::TestRunner;
        let mut runner = TestRunner::deterministic();
        let strategy = requests();
        let (mut reused, mut retried, mut stale) = (0, 0, 0);
        for _ in 0..96 {
            let log = strategy.new_tree(&mut runner).unwrap().current();
            let (r, t, s) = outcomes(&log);
            reused += usize::from(r);
            retried += usize::from(t);
            stale += usize::from(s);
        }
        assert!(reused > 10, "request id reuse in {reused} of 96 logs");
        assert!(retried > 10, "retries in {retried} of 96 logs");
        assert!(stale > 10, "stale references in {stale} of 96 logs");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(96))]

        #[test]
        fn replicas_and_snapshot_restores_end_byte_identical(log in requests(), cut in 0usize..120) {
            let cut = cut.min(log.len());
            let mut a = State::new();
            let mut b = State::new();
            let mut rows: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
            let mut restored = None;
            for (i, req) in log.iter().enumerate() {
                let index = i as u64 + 1;
                if i == cut {
                    restored = Some(State::decode_snapshot(&a.encode_snapshot().unwrap()).unwrap());
                }
                let ra = a.apply(index, req);
                let rb = b.apply(index, req);
                prop_assert_eq!(&ra, &rb);
                if let Some(r) = restored.as_mut() {
                    prop_assert_eq!(&r.apply(index, req), &ra);
                }
                for change in a.take_changes().unwrap() {
                    match change.value {
                        Some(v) => { rows.insert(change.key, v); }
                        None => { rows.remove(&change.key); }
                    }
                }
            }
            let restored = restored.unwrap_or_else(|| State::decode_snapshot(&a.encode_snapshot().unwrap()).unwrap());
            let from_rows = State::from_rows(rows).unwrap();
            let from_all_rows = State::from_rows(a.all_rows().unwrap()).unwrap();
            prop_assert_eq!(&a.encode_snapshot().unwrap(), &from_all_rows.encode_snapshot().unwrap());
            let bytes = a.encode_snapshot().unwrap();
            prop_assert_eq!(&bytes, &b.encode_snapshot().unwrap());
            prop_assert_eq!(&bytes, &restored.encode_snapshot().unwrap());
            prop_assert_eq!(&bytes, &from_rows.encode_snapshot().unwrap());
            prop_assert_eq!(a.digest().unwrap(), from_rows.digest().unwrap());
        }
    }
}
