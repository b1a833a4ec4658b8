//! Who leads: a sealed node of an initialised cluster cannot do the leader's work (seal new key
//! material for the rotation job), so it hands leadership to an unsealed voter and does not
//! campaign while an unsealed voter can win.
//!
//! openraft 0.9 has no leadership transfer, so it is built from what it offers:
//!
//! - **Election timer.** A node that *yields* (sealed, in an initialised cluster) turns its own
//!   election timer off (`runtime_config().elect(false)`): it still votes, but never becomes a
//!   candidate, so only unsealed voters campaign. Before `Init` no node yields. The only voter
//!   of a one-voter cluster never yields its timer. A yielding node that has had no contact
//!   with a leader (no lease) for [`Timing::sealed_campaign_delay`] turns its timer back on, so
//!   a cluster whose nodes are all sealed still elects a leader.
//! - **Handover.** A yielding leader first stops taking writes (forwarded writes are answered
//!   `NotLeader`, and the follower retries with backoff), so its log stops growing. One
//!   heartbeat interval later it asks its voters, most up to date first, to campaign
//!   (`TimeoutNow` on the cluster port). A voter accepts only if it is unsealed, follows this
//!   leader in this term and has the leader's whole log; it then starts an election at once
//!   (`trigger().elect()`), with a log at least as up to date as everyone's. The old leader
//!   votes for it as soon as its own leader lease (`election_timeout_max` after it was
//!   elected) has run out; before that, it steps down when the candidate's higher term rejects
//!   its next heartbeat, and votes for the candidate's next round. While a voter is catching up
//!   the leader asks again every heartbeat interval. A handover that has not completed after
//!   [`Timing::handover_window`] is given up: the leader takes writes again and retries one
//!   window later. When no voter can take over, the sealed leader stays leader, takes writes,
//!   and probes again every [`Timing::probe_interval`].

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use openraft::ServerState;
use tokio::sync::watch;

use crate::lease::{Lease, LeaseState};
use crate::network::Peers;
use crate::raft_node::RaftSettings;
use crate::rpc::{TimeoutNowReply, TimeoutNowRequest};
use crate::state_machine::SharedState;
use crate::typ::{NodeId, Raft, RaftMetrics};

/// Timing of the leadership supervisor, derived from the Raft settings.
#[derive(Clone, Copy, Debug)]
pub struct Timing {
    /// How often the supervisor looks again when nothing changes: the heartbeat interval.
    pub tick: Duration,
    /// How long a yielding node goes without leader contact before it campaigns anyway:
    /// four maximum election timeouts, two to three election rounds of the unsealed voters.
    pub sealed_campaign_delay: Duration,
    /// Pause between probes of a sealed leader that found no voter to take over.
    pub probe_interval: Duration,
    /// How long one handover attempt may refuse writes before the leader serves again.
    pub handover_window: Duration,
    /// Bound on one `TimeoutNow` call.
    pub call_timeout: Duration,
}

impl Timing {
    /// The timing for `settings`.
    pub fn new(settings: &RaftSettings) -> Self {
        Self {
            tick: settings.heartbeat,
            sealed_campaign_delay: settings.election_timeout_max.saturating_mul(4),
            probe_interval: settings.election_timeout_min,
            handover_window: settings.election_timeout_max.saturating_mul(2),
            call_timeout: settings.election_timeout_min,
        }
    }
}

/// This node's standing for leadership, shared by the supervisor, the cluster service and
/// the write path.
#[derive(Debug)]
pub struct Leadership {
    sealed: watch::Sender<bool>,
    refuse_writes_until: Mutex<Option<Instant>>,
    shared: Arc<SharedState>,
}

impl Leadership {
    /// A node that starts sealed, as every node does.
    pub fn new(shared: Arc<SharedState>) -> Self {
        Self {
            sealed: watch::Sender::new(true),
            refuse_writes_until: Mutex::new(None),
            shared,
        }
    }

    /// Records whether this node is sealed.
    pub fn set_sealed(&self, sealed: bool) {
        self.sealed.send_if_modified(|current| {
            let changed = *current != sealed;
            *current = sealed;
            changed
        });
    }

    /// Whether this node yields leadership: it is sealed and the cluster is initialised (before
    /// `Init` every node is sealed, and one of them must lead to run it).
    pub fn yields(&self) -> bool {
        self.is_sealed() && self.shared.read().state.is_initialized()
    }

    /// Whether this node is sealed.
    pub fn is_sealed(&self) -> bool {
        *self.sealed.borrow()
    }

    /// Whether this node, as a leader handing over, refuses new writes right now.
    pub fn refuses_writes(&self) -> bool {
        self.lock_refusal()
            .is_some_and(|until| Instant::now() < until)
    }

    fn set_refusal(&self, until: Option<Instant>) {
        *self.lock_refusal() = until;
    }

    fn lock_refusal(&self) -> std::sync::MutexGuard<'_, Option<Instant>> {
        self.refuse_writes_until
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Answers a leader's request to take over: campaigns at once if this node is unsealed,
    /// follows that leader in that term and has its whole log. (Only the leader of an
    /// initialised cluster asks, so a sealed node declines even before it has applied `Init`.)
    pub async fn answer_timeout_now(
        &self,
        raft: &Raft,
        request: &TimeoutNowRequest,
    ) -> TimeoutNowReply {
        if self.is_sealed() {
            return TimeoutNowReply::Sealed;
        }
        let (state, leader, term, last_log_index) = {
            let m = raft.metrics();
            let m = m.borrow();
            (
                m.state,
                m.current_leader,
                m.current_term,
                m.last_log_index.unwrap_or(0),
            )
        };
        if state != ServerState::Follower
            || leader != Some(request.leader_id)
            || term != request.term
        {
            return TimeoutNowReply::NotFollowing;
        }
        if last_log_index < request.last_log_index {
            return TimeoutNowReply::Behind { last_log_index };
        }
        match raft.trigger().elect().await {
            Ok(()) => {
                tracing::info!(
                    leader = request.leader_id.get(),
                    term,
                    "the sealed leader asked this node to take over; campaigning"
                );
                TimeoutNowReply::Campaigning
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot campaign: the Raft core has stopped");
                TimeoutNowReply::Stopped
            }
        }
    }
}

/// Decides whether a node's election timer runs.
#[derive(Debug)]
struct ElectionGate {
    last_contact: Instant,
    enabled: Option<bool>,
}

impl ElectionGate {
    fn new(now: Instant) -> Self {
        Self {
            last_contact: now,
            enabled: None,
        }
    }

    /// The new timer setting, if it changes: on unless the node yields, and on for a yielding
    /// node that is the only voter or has been out of contact with any leader for `delay`.
    fn update(
        &mut self,
        now: Instant,
        in_contact: bool,
        yields: bool,
        sole_voter: bool,
        delay: Duration,
    ) -> Option<bool> {
        if in_contact {
            self.last_contact = now;
        }
        let out_of_contact = now.saturating_duration_since(self.last_contact) >= delay;
        let enable = !yields || sole_voter || out_of_contact;
        (self.enabled != Some(enable)).then(|| {
            self.enabled = Some(enable);
            enable
        })
    }
}

/// What a probe of the voters found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Probe {
    /// This voter started an election.
    Campaigning(NodeId),
    /// A voter could take over once it has the leader's whole log.
    CatchingUp,
    /// No voter can take over (all yield, or none answered).
    NoneEligible,
}

/// The handover state of a yielding leader.
#[derive(Debug, Default)]
struct Handover {
    /// The end of the current attempt (writes are refused until then).
    attempt_until: Option<Instant>,
    /// No probe before this instant.
    next_probe: Option<Instant>,
}

impl Handover {
    /// Probe at the next opportunity (this node was just sealed).
    fn probe_now(&mut self) {
        self.next_probe = None;
    }

    /// Not a yielding leader (any more): accept writes, and probe at once next time.
    fn stop(&mut self, leadership: &Leadership) {
        if self.attempt_until.take().is_some() {
            leadership.set_refusal(None);
        }
        self.next_probe = None;
    }

    /// Whether it is time to probe. An attempt starts by refusing writes, and probes one tick
    /// later, once the writes accepted before are in the log (so a voter that has the log the
    /// probe names has everything). An attempt that ran out of time is given up.
    fn due(&mut self, now: Instant, leadership: &Leadership, timing: &Timing) -> bool {
        if self.attempt_until.is_some_and(|until| now >= until) {
            tracing::warn!(
                window = ?timing.handover_window,
                "no unsealed voter took over leadership in time; accepting writes again and \
                 trying later"
            );
            self.attempt_until = None;
            leadership.set_refusal(None);
            self.next_probe = Some(now + timing.handover_window);
            return false;
        }
        if self.next_probe.is_some_and(|at| now < at) {
            return false;
        }
        if self.attempt_until.is_none() {
            let until = now + timing.handover_window;
            self.attempt_until = Some(until);
            leadership.set_refusal(Some(until));
            self.next_probe = Some(now + timing.tick);
            return false;
        }
        true
    }

    /// Records a probe's outcome: keep refusing writes while a voter catches up or campaigns,
    /// accept them again if no voter can take over.
    fn record(&mut self, now: Instant, probe: Probe, leadership: &Leadership, timing: &Timing) {
        match probe {
            // Its election ends this leadership within a heartbeat; if it fizzles, ask again.
            Probe::Campaigning(_) => self.next_probe = Some(now + timing.probe_interval),
            Probe::CatchingUp => self.next_probe = Some(now + timing.tick),
            Probe::NoneEligible => {
                self.attempt_until = None;
                leadership.set_refusal(None);
                self.next_probe = Some(now + timing.probe_interval);
            }
        }
    }
}

/// The voters a leader may hand over to, most up to date first, with their cluster addresses.
fn handover_targets(m: &RaftMetrics) -> Vec<(NodeId, String)> {
    let membership = m.membership_config.membership();
    let mut targets: Vec<(Option<u64>, NodeId, String)> = membership
        .voter_ids()
        .filter(|id| *id != m.id)
        .filter_map(|id| {
            let matched = m
                .replication
                .as_ref()
                .and_then(|r| r.get(&id).copied().flatten())
                .map(|l| l.index);
            membership
                .get_node(&id)
                .map(|n| (matched, id, n.cluster_addr.clone()))
        })
        .collect();
    targets.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    targets
        .into_iter()
        .map(|(_, id, addr)| (id, addr))
        .collect()
}

/// Asks the voters in turn to take over until one campaigns.
async fn probe(raft: &Raft, peers: &Peers, timing: &Timing) -> Probe {
    let (request, targets) = {
        let m = raft.metrics();
        let m = m.borrow();
        (
            TimeoutNowRequest {
                leader_id: m.id,
                term: m.current_term,
                last_log_index: m.last_log_index.unwrap_or(0),
            },
            handover_targets(&m),
        )
    };
    let mut catching_up = false;
    for (target, addr) in targets {
        match peers
            .timeout_now(&addr, &request, timing.call_timeout)
            .await
        {
            Ok(TimeoutNowReply::Campaigning) => {
                tracing::info!(
                    target = target.get(),
                    "this leader is sealed; an unsealed voter is taking over leadership"
                );
                return Probe::Campaigning(target);
            }
            Ok(TimeoutNowReply::Behind { .. }) => catching_up = true,
            Ok(reply) => tracing::debug!(
                target = target.get(),
                ?reply,
                "voter cannot take over leadership"
            ),
            Err(e) => {
                tracing::debug!(target = target.get(), error = %e, "cannot ask a voter to take over")
            }
        }
    }
    if catching_up {
        Probe::CatchingUp
    } else {
        Probe::NoneEligible
    }
}

/// Runs for the node's lifetime: keeps the election timer and the handover in line with the
/// seal state (see the module documentation).
pub async fn supervise(
    raft: Raft,
    peers: Peers,
    lease: Arc<Lease>,
    leadership: Arc<Leadership>,
    timing: Timing,
) {
    let mut metrics = raft.metrics();
    let mut sealed = leadership.sealed.subscribe();
    let mut gate = ElectionGate::new(Instant::now());
    let mut handover = Handover::default();
    loop {
        let now = Instant::now();
        let (state, sole_voter, applied) = {
            let m = metrics.borrow_and_update();
            (
                m.state,
                m.membership_config.membership().voter_ids().eq([m.id]),
                m.last_applied.map_or(0, |l| l.index),
            )
        };
        let yields = leadership.yields();
        let in_contact =
            state == ServerState::Leader || lease.check(now, applied) != LeaseState::Expired;
        let delay = timing.sealed_campaign_delay;
        if let Some(enable) = gate.update(now, in_contact, yields, sole_voter, delay) {
            raft.runtime_config().elect(enable);
            match (enable, yields && !sole_voter) {
                (true, false) => tracing::info!("election timer on"),
                (true, true) => tracing::warn!(
                    ?delay,
                    "no leader in contact for a while; this sealed node campaigns as well"
                ),
                (false, _) => tracing::info!(
                    "election timer off: this node is sealed; it votes, but leaves campaigning \
                     to unsealed voters"
                ),
            }
        }
        if state == ServerState::Leader && yields {
            if handover.due(now, &leadership, &timing) {
                let found = probe(&raft, &peers, &timing).await;
                handover.record(Instant::now(), found, &leadership, &timing);
            }
        } else {
            handover.stop(&leadership);
        }
        tokio::select! {
            changed = metrics.changed() => if changed.is_err() { return },
            changed = sealed.changed() => {
                if changed.is_err() {
                    return;
                }
                handover.probe_now();
            }
            () = tokio::time::sleep(timing.tick) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    const DELAY: Duration = Duration::from_secs(8);

    #[test]
    fn a_sealed_node_does_not_campaign_while_in_contact_with_a_leader() {
        let t0 = Instant::now();
        let mut gate = ElectionGate::new(t0);
        assert_eq!(gate.update(t0, true, false, false, DELAY), Some(true));
        // Sealed: the timer goes off, and stays off while a leader is in contact.
        assert_eq!(gate.update(t0, true, true, false, DELAY), Some(false));
        let later = t0 + DELAY * 3;
        assert_eq!(gate.update(later, true, true, false, DELAY), None);
        // Unsealed again: on at once.
        assert_eq!(gate.update(later, true, false, false, DELAY), Some(true));
        assert_eq!(gate.update(later, false, false, false, DELAY), None);
    }

    #[test]
    fn a_sealed_node_campaigns_after_a_long_time_without_a_leader() {
        let t0 = Instant::now();
        let mut gate = ElectionGate::new(t0);
        assert_eq!(gate.update(t0, false, true, false, DELAY), Some(false));
        let almost = t0 + DELAY - Duration::from_millis(1);
        assert_eq!(gate.update(almost, false, true, false, DELAY), None);
        assert_eq!(
            gate.update(t0 + DELAY, false, true, false, DELAY),
            Some(true)
        );
        // A leader again: off.
        assert_eq!(
            gate.update(t0 + DELAY, true, true, false, DELAY),
            Some(false)
        );
    }

    #[test]
    fn the_only_voter_always_campaigns() {
        let t0 = Instant::now();
        let mut gate = ElectionGate::new(t0);
        assert_eq!(gate.update(t0, false, true, true, DELAY), Some(true));
    }

    fn timing() -> Timing {
        Timing::new(&RaftSettings::default())
    }

    fn store() -> crate::state_machine::StateMachineStore {
        let db = sled::Config::new().temporary(true).open().unwrap();
        crate::state_machine::StateMachineStore::open(&crate::durable::DurableDb::temporary(db))
            .unwrap()
    }

    fn leadership() -> Leadership {
        Leadership::new(store().shared())
    }

    /// Applies `InitSeal` to `store`, as `operator init` does.
    async fn initialise(store: &mut crate::state_machine::StateMachineStore) {
        use openraft::storage::RaftStateMachine;
        let request = tessera_state::Request {
            request_id: tessera_state::RequestId::parse("init").unwrap(),
            caller: tessera_state::CallerId::of("admin"),
            fingerprint: [0; 32],
            bindings: Vec::new(),
            command: tessera_state::Command::InitSeal(tessera_state::SealConfig {
                shares: 1,
                threshold: 1,
                sealed_root_key: vec![1],
                sealed_keyring: vec![2],
                initialized_at_ms: 0,
            }),
        };
        let entry = crate::typ::Entry {
            log_id: openraft::LogId::new(openraft::CommittedLeaderId::new(1, NodeId::new(1)), 1),
            payload: openraft::EntryPayload::Normal(request),
        };
        store.apply([entry]).await.unwrap();
    }

    #[test]
    fn a_handover_refuses_writes_first_and_probes_a_tick_later() {
        let timing = timing();
        let leadership = leadership();
        let mut handover = Handover::default();
        let t0 = Instant::now();
        assert!(!handover.due(t0, &leadership, &timing));
        assert!(leadership.refuses_writes());
        assert!(!handover.due(t0 + timing.tick / 2, &leadership, &timing));
        assert!(handover.due(t0 + timing.tick, &leadership, &timing));
    }

    #[test]
    fn a_handover_refuses_writes_for_a_bounded_window_then_gives_up() {
        let timing = timing();
        let leadership = leadership();
        let mut handover = Handover::default();
        let t0 = Instant::now();
        assert!(!handover.due(t0, &leadership, &timing));
        let t1 = t0 + timing.tick;
        assert!(handover.due(t1, &leadership, &timing));
        handover.record(t1, Probe::CatchingUp, &leadership, &timing);
        assert!(leadership.refuses_writes());
        assert!(!handover.due(t1, &leadership, &timing));
        let t2 = t1 + timing.tick;
        assert!(handover.due(t2, &leadership, &timing));
        handover.record(t2, Probe::Campaigning(NodeId::new(2)), &leadership, &timing);
        // The window runs from the start of the attempt, not from the latest probe.
        assert_eq!(handover.attempt_until, Some(t0 + timing.handover_window));
        let end = t0 + timing.handover_window;
        assert!(!handover.due(end, &leadership, &timing));
        assert!(!leadership.refuses_writes());
        assert_eq!(handover.next_probe, Some(end + timing.handover_window));
    }

    #[test]
    fn without_a_voter_to_take_over_the_sealed_leader_accepts_writes_again() {
        let timing = timing();
        let leadership = leadership();
        let mut handover = Handover::default();
        let t0 = Instant::now();
        handover.due(t0, &leadership, &timing);
        let t1 = t0 + timing.tick;
        assert!(handover.due(t1, &leadership, &timing));
        handover.record(t1, Probe::NoneEligible, &leadership, &timing);
        assert!(!leadership.refuses_writes());
        assert!(!handover.due(t1, &leadership, &timing));
        // The next attempt starts a probe interval later.
        assert!(!handover.due(t1 + timing.probe_interval, &leadership, &timing));
        assert!(leadership.refuses_writes());
        // No longer a sealed leader: writes are accepted, and a new attempt starts at once.
        handover.stop(&leadership);
        assert!(!leadership.refuses_writes());
        assert_eq!(handover.next_probe, None);
        assert_eq!(handover.attempt_until, None);
    }

    #[tokio::test]
    async fn only_a_sealed_node_of_an_initialised_cluster_yields() {
        let mut store = store();
        let leadership = Leadership::new(store.shared());
        assert!(!leadership.yields(), "before Init every node may lead");
        initialise(&mut store).await;
        assert!(leadership.yields(), "nodes start sealed");
        leadership.set_sealed(false);
        assert!(!leadership.yields());
        leadership.set_sealed(true);
        assert!(leadership.yields());
    }
}
