//! Group commit: a `Command::Batch` applies each of its requests exactly as if it were an entry
//! of its own (de-duplication, bindings, rejection), in order, and deterministically.

use proptest::prelude::*;

use super::*;

/// The results of a batch, which must be a `Response::Batch`.
fn parts(response: Response) -> Vec<Response> {
    match response {
        Response::Batch(parts) => parts,
        other => panic!("expected a batch result, got {other:?}"),
    }
}

/// Applies `requests` as one batch entry at `index` and returns their results.
fn apply_batch(s: &mut State, index: u64, requests: Vec<Request>) -> Vec<Response> {
    parts(s.apply(index, &Request::batch(requests)))
}

/// A state holding one key, and the results of `requests` applied to it as one batch entry.
fn batch_on_key(requests: Vec<Request>) -> (State, u64, Vec<Response>) {
    let (mut s, index) = with_key();
    let results = apply_batch(&mut s, index, requests);
    (s, index, results)
}

fn key_named(s: &State, name: &str) -> Option<KeyId> {
    s.resolve(&KeyRef::parse(name).unwrap())
        .map(|k| k.key_id.clone())
}

#[test]
fn each_request_of_a_batch_gets_its_own_result_in_order() {
    let (s, _, results) = batch_on_key(vec![
        request("a", create(2, "first")),
        request("b", create(3, "second")),
        request("c", rotate(1, 2)),
    ]);
    assert_eq!(results.len(), 3);
    assert!(matches!(&results[0], Response::Key(k) if k.key_id == id(2)));
    assert!(matches!(&results[1], Response::Key(k) if k.key_id == id(3)));
    assert!(matches!(&results[2], Response::Key(k) if k.primary_version == KeyVersion::new(2)));
    assert_eq!(key_named(&s, "first"), Some(id(2)));
    assert_eq!(key_named(&s, "second"), Some(id(3)));
}

#[test]
fn a_rejected_request_does_not_affect_its_neighbours() {
    let (mut s, index, results) = batch_on_key(vec![
        request("a", create(2, "first")),
        // The name is taken: refused, and nothing of it is kept.
        request("bb", create(3, "app")),
        request("ccc", create(4, "third")),
    ]);
    assert!(matches!(&results[0], Response::Key(k) if k.key_id == id(2)));
    assert_eq!(
        results[1],
        Response::Rejected(ApplyError::KeyNameTaken {
            name: KeyName::parse("app").unwrap()
        })
    );
    assert!(matches!(&results[2], Response::Key(k) if k.key_id == id(4)));
    assert!(s.key(&id(3)).is_none());
    assert_eq!(s.key_count(), 3);
    // The refusal is not remembered for its id: its retry (alone, later) applies.
    let caller = CallerId::of("admin");
    assert!(s
        .dedup()
        .get(&caller, &RequestId::parse("bb").unwrap())
        .is_none());
    let retry = s.apply(index + 1, &request("bb", create(3, "renamed")));
    assert!(matches!(retry, Response::Key(k) if k.key_id == id(3)));
}

#[test]
fn a_retry_inside_the_same_batch_gets_the_first_result_and_applies_once() {
    // The same request id and fingerprint twice (a client retry that reached the leader
    // while its first attempt was still queued), the retry carrying fresh material.
    let (mut s, index, results) = batch_on_key(vec![
        request("r", create(2, "once")),
        request("r", create(9, "once")),
    ]);
    assert_eq!(results[0], results[1]);
    assert!(matches!(&results[1], Response::Key(k) if k.key_id == id(2)));
    assert!(s.key(&id(9)).is_none());
    assert_eq!(s.key_count(), 2);
    // A retry in a later entry still gets the first result.
    assert_eq!(
        s.apply(index + 1, &request("r", create(7, "once"))),
        results[0]
    );
}

#[test]
fn a_reused_request_id_inside_a_batch_is_rejected_alone() {
    let mut reused = request("r", create(3, "other"));
    reused.fingerprint = [0xee; 32];
    let (s, _, results) = batch_on_key(vec![
        request("r", create(2, "kept")),
        reused,
        request("s", create(4, "also-kept")),
    ]);
    assert!(matches!(&results[0], Response::Key(_)));
    assert_eq!(
        results[1],
        Response::Rejected(ApplyError::RequestIdReused {
            request_id: RequestId::parse("r").unwrap()
        })
    );
    assert!(matches!(&results[2], Response::Key(_)));
    assert!(s.key(&id(3)).is_none());
}

#[test]
fn a_binding_made_stale_by_an_earlier_request_of_the_batch_is_refused() {
    let (mut s, index) = with_key();
    apply_ok(
        &mut s,
        index,
        Command::CreateAlias {
            alias: AliasName::parse("alias/main").unwrap(),
            key_id: id(1),
        },
    );
    let mut disable_via_alias = request("d", Command::DisableKey { key_id: id(1) });
    disable_via_alias.bindings = vec![KeyBinding {
        reference: KeyRef::parse("alias/main").unwrap(),
        key_id: id(1),
    }];
    let batch = vec![
        request("c", create(2, "next")),
        // Moves the alias the next request was prepared against.
        request(
            "u",
            Command::UpdateAlias {
                alias: AliasName::parse("alias/main").unwrap(),
                key_id: id(2),
            },
        ),
        disable_via_alias,
    ];
    let results = apply_batch(&mut s, index + 1, batch);
    assert!(matches!(&results[1], Response::Alias { key_id, .. } if *key_id == id(2)));
    assert!(matches!(
        &results[2],
        Response::Rejected(ApplyError::StaleReference { now: Some(now), .. }) if *now == id(2)
    ));
    assert_eq!(s.key(&id(1)).unwrap().state, KeyState::Enabled);
}

#[test]
fn a_batch_inside_a_batch_is_rejected_without_effect() {
    let (mut s, index) = with_key();
    let before = s.encode_snapshot().unwrap();
    let results = apply_batch(
        &mut s,
        index,
        vec![Request::batch(vec![request("x", create(2, "inner"))])],
    );
    assert_eq!(results, vec![Response::Rejected(ApplyError::NestedBatch)]);
    assert!(s.key(&id(2)).is_none());
    assert_eq!(s.encode_snapshot().unwrap(), before);
}

#[test]
fn requests_of_one_batch_share_its_index_in_the_deduplication_table() {
    let (mut s, index) = with_key();
    let batch: Vec<Request> = (0..50u8)
        .map(|n| request(&format!("k{n}"), create(10 + n, &format!("k-{n}"))))
        .collect();
    s.apply(index, &Request::batch(batch));
    let caller = CallerId::of("admin");
    for n in 0..50 {
        let entry = s
            .dedup()
            .get(&caller, &RequestId::parse(&format!("k{n}")).unwrap())
            .unwrap();
        assert_eq!(entry.index(), index);
    }
    // Rebuilt from its rows, the table holds the same entries (none lost to the shared index).
    let rebuilt = State::from_rows(s.all_rows().unwrap()).unwrap();
    assert_eq!(rebuilt.dedup(), s.dedup());
    assert_eq!(rebuilt.dedup().len(), s.dedup().len());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// A log cut into batches gives every request the result it gets applied one entry at a
    /// time, and replicas applying the batched log (directly, or restored from its rows) end
    /// byte-identical.
    #[test]
    fn a_batched_log_applies_like_its_parts(
        log in super::determinism::requests(),
        sizes in prop::collection::vec(1usize..12, 1..40),
    ) {
        let mut single = State::new();
        let expected: Vec<Response> = log
            .iter()
            .enumerate()
            .map(|(i, req)| single.apply(i as u64 + 1, req))
            .collect();

        let mut a = State::new();
        let mut b = State::new();
        let mut got = Vec::new();
        let mut rest = log.as_slice();
        let mut index = 0;
        for size in sizes.iter().cycle() {
            if rest.is_empty() {
                break;
            }
            let (chunk, tail) = rest.split_at((*size).min(rest.len()));
            rest = tail;
            index += 1;
            let batch = Request::batch(chunk.to_vec());
            let ra = a.apply(index, &batch);
            prop_assert_eq!(&ra, &b.apply(index, &batch));
            got.extend(parts(ra));
        }
        prop_assert_eq!(got, expected);
        prop_assert_eq!(a.key_count(), single.key_count());
        let bytes = a.encode_snapshot().unwrap();
        prop_assert_eq!(&bytes, &b.encode_snapshot().unwrap());
        let from_rows = State::from_rows(a.all_rows().unwrap()).unwrap();
        prop_assert_eq!(&bytes, &from_rows.encode_snapshot().unwrap());
    }
}
