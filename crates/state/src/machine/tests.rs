use std::collections::BTreeMap;

use tessera_crypto::spec::KeySpec;

use super::*;
use crate::command::NewKey;
use crate::ids::RequestId;
use crate::key::{ImportToken, KeyOrigin, KeyState, Unusable, VersionState};

fn request(id: &str, command: Command) -> Request {
    Request {
        request_id: RequestId::parse(id).unwrap(),
        fingerprint: [id.len() as u8; 32],
        command,
    }
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
        version,
        sealed_material: vec![version as u8; 61],
        at_ms: 20 + u64::from(version),
    }
}

/// An initialised state with key 1 ("app"), applied from index 1.
fn with_key() -> (State, u64) {
    let mut s = State::new();
    s.apply(1, &request("i", init()));
    s.apply(2, &request("c1", create(1, "app")));
    (s, 3)
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
    assert_eq!(k.primary_version, 2);
    assert_eq!(k.versions.len(), 2);
    assert_eq!(
        apply_err(&mut s, i + 1, rotate(1, 2)),
        ApplyError::VersionConflict {
            key_id: id(1),
            proposed: 2,
            latest: 2
        }
    );
}

#[test]
fn version_conflict_is_not_remembered_so_the_retry_applies() {
    let (mut s, _) = with_key();
    s.apply(3, &request("other", rotate(1, 2)));
    assert!(matches!(
        s.apply(4, &request("mine", rotate(1, 2))),
        Response::Rejected(ApplyError::VersionConflict { latest: 2, .. })
    ));
    let Response::Key(after) = s.apply(5, &request("mine", rotate(1, 3))) else {
        panic!("the retry with the next version must apply")
    };
    assert_eq!(after.primary_version, 3);
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
    apply_ok(
        &mut s,
        i,
        Command::CreateAlias {
            alias: AliasName::parse("doomed").unwrap(),
            key_id: id(1),
        },
    );
    apply_ok(
        &mut s,
        i + 1,
        Command::ScheduleKeyDeletion {
            key_id: id(1),
            deletion_date_ms: 1000,
        },
    );
    let key = s.key(&id(1)).unwrap();
    assert!(matches!(
        key.decryptable(1),
        Err(Unusable::PendingDeletion {
            deletion_date_ms: 1000,
            ..
        })
    ));
    assert_eq!(s.due_deletions(999), Vec::<KeyId>::new());
    assert_eq!(s.due_deletions(1000), vec![id(1)]);
    apply_ok(&mut s, i + 2, Command::CancelKeyDeletion { key_id: id(1) });
    assert_eq!(s.key(&id(1)).unwrap().state, KeyState::Disabled);
    assert_eq!(s.key(&id(1)).unwrap().deletion_date_ms, None);
    assert!(matches!(
        apply_err(
            &mut s,
            i + 3,
            Command::DestroyKey {
                key_id: id(1),
                at_ms: 5000
            }
        ),
        ApplyError::InvalidKeyState { .. }
    ));
    apply_ok(
        &mut s,
        i + 4,
        Command::ScheduleKeyDeletion {
            key_id: id(1),
            deletion_date_ms: 1000,
        },
    );
    assert_eq!(
        apply_err(
            &mut s,
            i + 5,
            Command::DestroyKey {
                key_id: id(1),
                at_ms: 999
            }
        ),
        ApplyError::DeletionNotDue {
            key_id: id(1),
            deletion_date_ms: 1000
        }
    );
    apply_ok(
        &mut s,
        i + 6,
        Command::DestroyKey {
            key_id: id(1),
            at_ms: 1000,
        },
    );
    assert_eq!(s.key_count(), 0);
    assert!(s.resolve(&KeyRef::parse("app").unwrap()).is_none());
    assert_eq!(s.aliases().count(), 0);
    // The name is free again.
    apply_ok(&mut s, i + 7, create(2, "app"));
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
            version: 3,
            enabled: false,
        },
        Command::DestroyKeyVersion {
            key_id: id(1),
            version: 3,
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
            version: 2,
            enabled: false,
        },
    );
    assert!(matches!(
        s.key(&id(1)).unwrap().decryptable(2),
        Err(Unusable::VersionDisabled { version: 2, .. })
    ));
    apply_ok(
        &mut s,
        i + 4,
        Command::SetMinDecryptionVersion {
            key_id: id(1),
            version: 2,
        },
    );
    assert!(matches!(
        s.key(&id(1)).unwrap().decryptable(1),
        Err(Unusable::BelowMinimum {
            version: 1,
            min: 2,
            ..
        })
    ));
    assert!(matches!(
        apply_err(
            &mut s,
            i + 5,
            Command::SetMinDecryptionVersion {
                key_id: id(1),
                version: 4
            }
        ),
        ApplyError::InvalidMinDecryptionVersion { .. }
    ));
    apply_ok(
        &mut s,
        i + 6,
        Command::DestroyKeyVersion {
            key_id: id(1),
            version: 1,
            at_ms: 77,
        },
    );
    let key = s.key(&id(1)).unwrap();
    let v1 = key.versions.get(&1).unwrap();
    assert_eq!(v1.state, VersionState::Destroyed);
    assert_eq!(
        v1.sealed_material, None,
        "destroyed material is gone from the state"
    );
    assert_eq!(v1.destroyed_at_ms, Some(77));
    assert!(matches!(
        key.exportable_version(1),
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
                version: 1,
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
    assert_eq!(s.due_rotations(110), vec![(id(1), 2)]);
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
        version: 1,
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
    assert_eq!(key.primary_version, 1);
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
            version: 1,
            at_ms: 1,
        },
        Command::SetMinDecryptionVersion {
            key_id: id(1),
            version: 9,
        },
        Command::EnableKey { key_id: id(9) },
    ]
    .into_iter()
    .enumerate()
    {
        let response = s.apply(i + n as u64, &request("same-id", command));
        assert!(matches!(response, Response::Rejected(_)), "{response:?}");
    }
    // Only the dedup entry for the first remembered rejection differs.
    let mut after = s.clone();
    after.dedup = crate::dedup::DedupTable::default();
    let mut reference = State::decode_snapshot(&before).unwrap();
    reference.dedup = crate::dedup::DedupTable::default();
    assert_eq!(
        after.encode_snapshot().unwrap(),
        reference.encode_snapshot().unwrap()
    );
}

mod determinism {
    //! Random command sequences: two states fed the same log, and a third rebuilt from a
    //! snapshot midway (and a fourth from persisted rows), must end byte-identical.

    use proptest::prelude::*;

    use super::*;

    fn key_id_strategy() -> impl Strategy<Value = KeyId> {
        (0u8..4).prop_map(id)
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
            (key_id_strategy(), 1u32..5, 0u64..1000).prop_map(|(key_id, version, at_ms)| {
                Command::RotateKey {
                    key_id,
                    version,
                    sealed_material: vec![version as u8; 40],
                    at_ms,
                }
            }),
            key_id_strategy().prop_map(|key_id| Command::EnableKey { key_id }),
            key_id_strategy().prop_map(|key_id| Command::DisableKey { key_id }),
            (key_id_strategy(), 0u64..2000).prop_map(|(key_id, deletion_date_ms)| {
                Command::ScheduleKeyDeletion {
                    key_id,
                    deletion_date_ms,
                }
            }),
            key_id_strategy().prop_map(|key_id| Command::CancelKeyDeletion { key_id }),
            (key_id_strategy(), 0u64..2000)
                .prop_map(|(key_id, at_ms)| Command::DestroyKey { key_id, at_ms }),
            (key_id_strategy(), 0u32..5).prop_map(|(key_id, version)| {
                Command::SetMinDecryptionVersion { key_id, version }
            }),
            (key_id_strategy(), 1u32..5, any::<bool>()).prop_map(|(key_id, version, enabled)| {
                Command::SetVersionEnabled {
                    key_id,
                    version,
                    enabled,
                }
            }),
            (key_id_strategy(), 1u32..5, 0u64..1000).prop_map(|(key_id, version, at_ms)| {
                Command::DestroyKeyVersion {
                    key_id,
                    version,
                    at_ms,
                }
            }),
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
            (key_id_strategy(), 0u64..1000, 1u32..3).prop_map(|(key_id, t, version)| {
                Command::ImportKeyMaterial {
                    key_id,
                    token_id: format!("t{t}"),
                    version,
                    sealed_material: vec![3; 40],
                    at_ms: t.saturating_sub(1),
                }
            }),
        ]
    }

    fn requests() -> impl Strategy<Value = Vec<Request>> {
        prop::collection::vec((command_strategy(), 0u8..40), 1..120).prop_map(|commands| {
            let mut out = vec![request("init", init())];
            out.extend(commands.into_iter().map(|(command, rid)| Request {
                // A small id pool makes retries and id reuse happen.
                request_id: RequestId::parse(&format!("req-{rid}")).unwrap(),
                fingerprint: [rid % 3; 32],
                command,
            }));
            out
        })
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
