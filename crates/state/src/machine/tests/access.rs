//! The access commands through `apply`, and the access model through rows and snapshots.

use super::*;
use crate::policy::{
    AccessRequest, Action, AllowedBy, Budget, ContextConstraint, Decision, DenyReason, Format,
    Glob, Grant, GrantId, GrantProblem, Identity, PolicyDocument, PolicyName, PresentedCertificate,
    RateLimitRule, RevokedCertificate,
};

fn who(s: &str) -> Identity {
    Identity::parse(s).unwrap()
}

fn initialize(admin: &str) -> Command {
    let Command::InitSeal(seal) = init() else {
        unreachable!("init() is InitSeal")
    };
    Command::Initialize {
        seal,
        admin: who(admin),
    }
}

fn name(s: &str) -> PolicyName {
    PolicyName::parse(s).unwrap()
}

fn put(policy: &str, text: &str) -> Command {
    Command::PutPolicy {
        name: name(policy),
        document: PolicyDocument::parse(text, Format::Json).unwrap(),
    }
}

fn grant(grant_id: &str, key: u8, grantee: &str, expires_at_ms: Option<u64>) -> Grant {
    Grant {
        grant_id: GrantId::parse(grant_id).unwrap(),
        key_id: id(key),
        grantee: who(grantee),
        actions: vec![Action::Decrypt],
        constraint: Some(ContextConstraint::Subset(BTreeMap::from([(
            "tenant".to_owned(),
            "t1".to_owned(),
        )]))),
        expires_at_ms,
        created_by: who("root"),
    }
}

fn ask(s: &State, identity: &str, action: Action, key: u8) -> Decision {
    let key = s.key(&id(key)).map(|k| s.key_attributes(k));
    s.authorize(&AccessRequest {
        identity: who(identity),
        certificate: None,
        action,
        key,
        context: BTreeMap::from([("tenant".to_owned(), "t1".to_owned())]),
    })
}

const ADMIN: Decision = Decision::Allow {
    by: AllowedBy::Admin,
};
const NO_MATCH: Decision = Decision::Deny {
    reason: DenyReason::NoMatch,
};

/// Initialised by `root`, with key 1 ("app"), applied from index 1.
fn initialized() -> (State, u64) {
    let mut s = State::new();
    apply_ok(&mut s, 1, initialize("root"));
    apply_ok(&mut s, 2, create(1, "app"));
    (s, 3)
}

#[test]
fn the_initialiser_is_bound_to_admin_atomically_with_the_seal() {
    let (mut s, i) = initialized();
    assert!(s.is_initialized());
    assert_eq!(s.access().admins().collect::<Vec<_>>(), [&who("root")]);
    assert_eq!(ask(&s, "root", Action::Seal, 1), ADMIN);
    assert_eq!(ask(&s, "root", Action::PutPolicy, 1), ADMIN);
    assert_eq!(ask(&s, "someone", Action::Encrypt, 1), NO_MATCH);
    // A second initialisation binds nobody.
    assert_eq!(
        apply_err(&mut s, i, initialize("intruder")),
        ApplyError::AlreadyInitialized
    );
    assert_eq!(ask(&s, "intruder", Action::Seal, 1), NO_MATCH);
    // A refused initialisation binds nobody either.
    let mut fresh = State::new();
    let Command::Initialize { mut seal, admin } = initialize("root") else {
        unreachable!()
    };
    seal.threshold = 9;
    assert!(matches!(
        apply_err(&mut fresh, 1, Command::Initialize { seal, admin }),
        ApplyError::InvalidSealConfig { .. }
    ));
    assert_eq!(fresh.access().admins().count(), 0);
    // The older InitSeal binds nobody.
    let mut legacy = State::new();
    apply_ok(&mut legacy, 1, init());
    assert_eq!(legacy.access().admins().count(), 0);
}

#[test]
fn policies_are_versioned_and_admin_is_reserved() {
    let mut fresh = State::new();
    let doc =
        r#"{"statements":[{"effect":"allow","identities":["app"],"actions":["kms:Encrypt"]}]}"#;
    assert_eq!(
        apply_err(&mut fresh, 1, put("p", doc)),
        ApplyError::NotInitialized
    );
    let (mut s, i) = initialized();
    assert_eq!(
        apply_ok(&mut s, i, put("p", doc)),
        Response::PolicyStored {
            name: name("p"),
            version: 1
        }
    );
    assert_eq!(
        apply_ok(&mut s, i + 1, put("p", doc)),
        Response::PolicyStored {
            name: name("p"),
            version: 2
        }
    );
    assert!(ask(&s, "app", Action::Encrypt, 1).is_allowed());
    assert_eq!(
        apply_err(&mut s, i + 2, put("admin", doc)),
        ApplyError::ReservedPolicyName {
            name: name("admin")
        }
    );
    assert_eq!(
        apply_err(
            &mut s,
            i + 3,
            Command::DeletePolicy {
                name: name("admin")
            }
        ),
        ApplyError::ReservedPolicyName {
            name: name("admin")
        }
    );
    apply_ok(&mut s, i + 4, Command::DeletePolicy { name: name("p") });
    assert_eq!(ask(&s, "app", Action::Encrypt, 1), NO_MATCH);
    assert_eq!(
        apply_err(&mut s, i + 5, Command::DeletePolicy { name: name("p") }),
        ApplyError::PolicyNotFound { name: name("p") }
    );
}

#[test]
fn the_number_of_policies_is_bounded() {
    let (mut s, mut i) = initialized();
    let doc =
        r#"{"statements":[{"effect":"allow","identities":["app"],"actions":["kms:Encrypt"]}]}"#;
    for n in 0..crate::policy::MAX_POLICIES {
        apply_ok(&mut s, i, put(&format!("p{n}"), doc));
        i += 1;
    }
    assert!(matches!(
        apply_err(&mut s, i, put("one-more", doc)),
        ApplyError::TooManyPolicies { .. }
    ));
    apply_ok(&mut s, i + 1, put("p0", doc));
}

#[test]
fn grants_allow_until_cluster_time_reaches_their_expiry() {
    let (mut s, i) = initialized();
    s.apply(i, &clock(1, 1_000));
    assert_eq!(ask(&s, "app", Action::Decrypt, 1), NO_MATCH);
    apply_ok(
        &mut s,
        i + 1,
        Command::CreateGrant(grant("g1", 1, "app", Some(2_000))),
    );
    assert_eq!(
        ask(&s, "app", Action::Decrypt, 1),
        Decision::Allow {
            by: AllowedBy::Grant(GrantId::parse("g1").unwrap())
        }
    );
    assert_eq!(ask(&s, "app", Action::Encrypt, 1), NO_MATCH, "not granted");
    s.apply(i + 2, &clock(1, 2_000));
    assert_eq!(ask(&s, "app", Action::Decrypt, 1), NO_MATCH, "expired");
    assert_eq!(
        apply_err(
            &mut s,
            i + 3,
            Command::CreateGrant(grant("g2", 1, "app", Some(2_000)))
        ),
        ApplyError::InvalidGrant {
            grant_id: GrantId::parse("g2").unwrap(),
            problem: GrantProblem::AlreadyExpired {
                expires_at_ms: 2_000,
                now_ms: 2_000
            }
        }
    );
}

#[test]
fn grant_commands_are_checked() {
    let (mut s, i) = initialized();
    assert_eq!(
        apply_err(&mut s, i, Command::CreateGrant(grant("g1", 9, "app", None))),
        ApplyError::KeyNotFound { key_id: id(9) }
    );
    let mut cluster_wide = grant("g1", 1, "app", None);
    cluster_wide.actions = vec![Action::Decrypt, Action::Seal];
    assert_eq!(
        apply_err(&mut s, i + 1, Command::CreateGrant(cluster_wide)),
        ApplyError::InvalidGrant {
            grant_id: GrantId::parse("g1").unwrap(),
            problem: GrantProblem::NotGrantable {
                action: Action::Seal
            }
        }
    );
    apply_ok(
        &mut s,
        i + 2,
        Command::CreateGrant(grant("g1", 1, "app", None)),
    );
    assert_eq!(
        apply_err(
            &mut s,
            i + 3,
            Command::CreateGrant(grant("g1", 1, "b", None))
        ),
        ApplyError::GrantIdTaken {
            grant_id: GrantId::parse("g1").unwrap()
        }
    );
    let revoke = || Command::RevokeGrant {
        grant_id: GrantId::parse("g1").unwrap(),
    };
    apply_ok(&mut s, i + 4, revoke());
    assert_eq!(ask(&s, "app", Action::Decrypt, 1), NO_MATCH);
    assert_eq!(
        apply_err(&mut s, i + 5, revoke()),
        ApplyError::GrantNotFound {
            grant_id: GrantId::parse("g1").unwrap()
        }
    );
}

#[test]
fn destroying_a_key_drops_its_grants_and_their_rows() {
    let (mut s, i) = initialized();
    apply_ok(&mut s, i, Command::CreateGrant(grant("g1", 1, "app", None)));
    apply_ok(&mut s, i + 1, schedule_deletion(1, 10, 0));
    s.take_changes().unwrap();
    s.apply(i + 2, &clock(1, 1_000));
    apply_ok(&mut s, i + 3, Command::DestroyKey { key_id: id(1) });
    assert_eq!(s.access().grants().count(), 0);
    let changes = s.take_changes().unwrap();
    assert!(changes
        .iter()
        .any(|c| c.key == b"grant/g1" && c.value.is_none()));
    State::from_rows(s.all_rows().unwrap()).unwrap();
}

#[test]
fn revoked_certificates_are_denied_and_keep_their_first_time() {
    let (mut s, i) = initialized();
    s.apply(i, &clock(1, 500));
    let certificate = RevokedCertificate::fingerprint_hex(&"ab".repeat(32)).unwrap();
    let revoke = || Command::RevokeCertificate {
        certificate: certificate.clone(),
    };
    let Response::CertificateRevoked(first) = apply_ok(&mut s, i + 1, revoke()) else {
        panic!("revoked")
    };
    assert_eq!(first.revoked_at_ms, 500);
    s.apply(i + 2, &clock(1, 900));
    assert_eq!(
        apply_ok(&mut s, i + 3, revoke()),
        Response::CertificateRevoked(first)
    );
    let request = AccessRequest {
        identity: who("root"),
        certificate: Some(PresentedCertificate {
            serial: crate::policy::CertificateSerial::from_hex("01").unwrap(),
            fingerprint: [0xab; 32],
        }),
        action: Action::Status,
        key: None,
        context: BTreeMap::new(),
    };
    assert_eq!(
        s.authorize(&request),
        Decision::Deny {
            reason: DenyReason::RevokedCertificate
        }
    );
}

#[test]
fn rows_and_snapshots_carry_the_access_model() {
    let (mut s, i) = initialized();
    apply_ok(
        &mut s,
        i,
        put(
            "p",
            r#"{"statements":[{"effect":"deny","identities":["app*"],"actions":["kms:Sign"],"keys":["alias/*"],
                "conditions":{"context":[{"key":"x","present":true}],"tags":[{"key":"t","glob":"a*"}]}}]}"#,
        ),
    );
    apply_ok(
        &mut s,
        i + 1,
        Command::CreateGrant(grant("g1", 1, "app", Some(9))),
    );
    apply_ok(
        &mut s,
        i + 2,
        Command::RevokeCertificate {
            certificate: RevokedCertificate::Serial(
                crate::policy::CertificateSerial::from_hex("0102").unwrap(),
            ),
        },
    );
    let rows = changed_rows(&mut s);
    for key in [
        &b"admins"[..],
        b"policy/p",
        b"grant/g1",
        b"revoked/serial/0102",
    ] {
        assert!(rows.contains_key(key), "{}", String::from_utf8_lossy(key));
    }
    let from_rows = State::from_rows(rows).unwrap();
    let from_snapshot = State::decode_snapshot(&s.encode_snapshot().unwrap()).unwrap();
    for restored in [&from_rows, &from_snapshot] {
        assert_eq!(restored.digest().unwrap(), s.digest().unwrap());
        assert_eq!(restored.access().fingerprint(), s.access().fingerprint());
        assert_eq!(ask(restored, "root", Action::Seal, 1), ADMIN);
        assert!(ask(restored, "app", Action::Decrypt, 1).is_allowed());
        assert_eq!(
            restored.access().policy(&name("p")).unwrap(),
            s.access().policy(&name("p")).unwrap()
        );
    }
    // A grant on a key that is not there is corrupt state.
    let mut rows = s.all_rows().unwrap();
    rows.retain(|(k, _)| !k.starts_with(b"key/") && !k.starts_with(b"alias/"));
    assert!(matches!(
        State::from_rows(rows),
        Err(crate::error::Error::Corrupt { .. })
    ));
}

fn limit(pattern: &str, per_second: u32) -> RateLimitRule {
    RateLimitRule {
        identity: Glob::new(pattern),
        crypto: Some(Budget {
            per_second,
            burst: per_second,
        }),
        keys: None,
        operator: None,
    }
}

#[test]
fn rate_limit_rules_are_stored_replaced_deleted_and_validated() {
    let (mut s, i) = initialized();
    let before = s.access().rate_limits_fingerprint();
    assert_eq!(
        apply_ok(&mut s, i, Command::PutRateLimit(limit("batch-*", 50))),
        Response::RateLimitStored(limit("batch-*", 50))
    );
    apply_ok(&mut s, i + 1, Command::PutRateLimit(limit("batch-7", 70)));
    assert_ne!(s.access().rate_limits_fingerprint(), before);
    let for_id = |s: &State, id: &str| {
        s.access()
            .rate_limit_for(id)
            .and_then(|r| r.crypto)
            .map(|b| b.per_second)
    };
    assert_eq!(for_id(&s, "batch-7"), Some(70));
    assert_eq!(for_id(&s, "batch-1"), Some(50));
    assert_eq!(for_id(&s, "app"), None);
    // Replacing keeps one rule per pattern.
    apply_ok(&mut s, i + 2, Command::PutRateLimit(limit("batch-*", 5)));
    assert_eq!(s.access().rate_limits().count(), 2);
    assert_eq!(for_id(&s, "batch-1"), Some(5));
    let mut bad = limit("app", 1);
    bad.crypto = None;
    assert!(matches!(
        apply_err(&mut s, i + 3, Command::PutRateLimit(bad)),
        ApplyError::InvalidRateLimit {
            problem: crate::policy::RateLimitProblem::NoClass,
            ..
        }
    ));
    apply_ok(
        &mut s,
        i + 4,
        Command::DeleteRateLimit {
            identity: Glob::new("batch-7"),
        },
    );
    assert_eq!(for_id(&s, "batch-7"), Some(5));
    assert!(matches!(
        apply_err(
            &mut s,
            i + 5,
            Command::DeleteRateLimit {
                identity: Glob::new("batch-7"),
            },
        ),
        ApplyError::RateLimitNotFound { .. }
    ));
}

#[test]
fn the_number_of_rate_limit_rules_is_bounded() {
    let (mut s, mut i) = initialized();
    for n in 0..crate::policy::MAX_RATE_LIMIT_RULES {
        apply_ok(
            &mut s,
            i,
            Command::PutRateLimit(limit(&format!("id-{n}"), 1)),
        );
        i += 1;
    }
    assert!(matches!(
        apply_err(&mut s, i, Command::PutRateLimit(limit("one-more", 1))),
        ApplyError::TooManyRateLimits { max: 256 }
    ));
    // Replacing an existing rule is still possible.
    apply_ok(&mut s, i + 1, Command::PutRateLimit(limit("id-0", 2)));
}

#[test]
fn rate_limit_rules_survive_rows_and_snapshots_and_format_2_still_decodes() {
    let (mut s, i) = initialized();
    let v2 = s.encode_snapshot().unwrap();
    apply_ok(&mut s, i, Command::PutRateLimit(limit("batch-*", 50)));
    let rows = changed_rows(&mut s);
    assert!(rows.contains_key(&b"ratelimit/batch-*"[..]));
    let from_rows = State::from_rows(rows).unwrap();
    let from_snapshot = State::decode_snapshot(&s.encode_snapshot().unwrap()).unwrap();
    for restored in [&from_rows, &from_snapshot] {
        assert_eq!(restored.digest().unwrap(), s.digest().unwrap());
        assert_eq!(
            restored.access().rate_limits_fingerprint(),
            s.access().rate_limits_fingerprint()
        );
    }
    // Format 2: the same body without the rule list (one trailing zero-length vector) and
    // the barrier terms (two one-byte varints).
    let (last, body) = v2.get(..v2.len() - 2).unwrap().split_last().unwrap();
    assert_eq!(*last, 0);
    let mut old = body.to_vec();
    old[4] = crate::snapshot::SNAPSHOT_FORMAT_V2;
    let restored = State::decode_snapshot(&old).unwrap();
    assert_eq!(restored.access().rate_limits().count(), 0);
    assert_eq!(restored.encode_snapshot().unwrap(), v2);
}
