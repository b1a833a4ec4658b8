//! The in-process network of a [`super::TestCluster`]: a [`Transport`] per node that hands each
//! cluster RPC to the receiving node's [`ClusterService`] (the handlers the cluster port runs),
//! with the faults a test sets: a node cut off from everyone, a fraction of a node's RPCs
//! failing, a delay on a node's RPCs.
//!
//! What a fault looks like to the sender mirrors the gRPC transport: a call that never reached
//! its peer (cut off, an injected failure, no node at that address) fails `UNAVAILABLE`, as a
//! refused connection does; a call whose answer was lost (the node was cut off while it ran),
//! or that took longer than its timeout, fails `DEADLINE_EXCEEDED`, so the sender knows it may
//! have been delivered.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tessera_proto::cluster::v1::cluster_server::Cluster;
use tessera_proto::cluster::v1::{JoinRequest, JoinResponse, RaftPayload};
use tonic::{Request, Response, Status};

use crate::membership_guard::node_identity;
use crate::network::PeerError;
use crate::service::ClusterService;
use crate::tls::InProcessPeer;
use crate::transport::{call_cluster_rpc, ClusterRpc, Transport};
use crate::typ::NodeId;

/// The in-process network between the nodes of one test cluster; clones share it.
#[derive(Clone, Default)]
pub struct Router {
    links: Arc<Mutex<Links>>,
}

#[derive(Default)]
struct Links {
    /// Cluster address → the node serving it.
    nodes: HashMap<String, Attached>,
    isolated: BTreeSet<NodeId>,
    failure_rate: BTreeMap<NodeId, f64>,
    delay: BTreeMap<NodeId, Duration>,
    draws: Draws,
    injected_failures: u64,
}

#[derive(Clone)]
struct Attached {
    id: NodeId,
    service: Arc<ClusterService>,
}

/// A call the router lets through: to whom, and after how long.
struct Route {
    to: NodeId,
    service: Arc<ClusterService>,
    delay: Duration,
}

impl Links {
    fn cut(&self, a: NodeId, b: NodeId) -> bool {
        self.isolated.contains(&a) || self.isolated.contains(&b)
    }

    fn route(&mut self, from: NodeId, addr: &str) -> Result<Route, Status> {
        let Some(Attached { id: to, service }) = self.nodes.get(addr).cloned() else {
            return Err(Status::unavailable(format!("no node serves {addr}")));
        };
        if self.cut(from, to) {
            return Err(Status::unavailable(format!(
                "node {from} and node {to} are cut off from each other"
            )));
        }
        let rate = |id| self.failure_rate.get(&id).copied().unwrap_or(0.0);
        let rate = rate(from).max(rate(to));
        if rate > 0.0 && self.draws.next_unit() < rate {
            self.injected_failures += 1;
            return Err(Status::unavailable(format!(
                "injected failure of a call from node {from} to node {to}"
            )));
        }
        let delay = |id| self.delay.get(&id).copied().unwrap_or_default();
        Ok(Route {
            to,
            service,
            delay: delay(from) + delay(to),
        })
    }
}

impl Router {
    /// An empty network.
    pub fn new() -> Self {
        Self::default()
    }

    fn links(&self) -> MutexGuard<'_, Links> {
        self.links.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The transport node `from` sends with.
    pub fn transport(&self, from: NodeId) -> Arc<dyn Transport> {
        Arc::new(Link {
            router: self.clone(),
            from,
        })
    }

    /// Makes node `id`'s `service` receive the calls sent to `addr`.
    pub fn attach(&self, addr: &str, id: NodeId, service: ClusterService) {
        self.links().nodes.insert(
            addr.to_owned(),
            Attached {
                id,
                service: Arc::new(service),
            },
        );
    }

    /// Stops delivering calls to `addr` (its node stopped).
    pub fn detach(&self, addr: &str) {
        self.links().nodes.remove(addr);
    }

    /// Cuts node `id` off from every other node, in both directions, until [`Self::heal`].
    pub fn isolate(&self, id: NodeId) {
        self.links().isolated.insert(id);
    }

    /// Whether node `id` is cut off by [`Self::isolate`].
    pub fn is_isolated(&self, id: NodeId) -> bool {
        self.links().isolated.contains(&id)
    }

    /// Reconnects node `id` (undoes [`Self::isolate`]).
    pub fn heal(&self, id: NodeId) {
        self.links().isolated.remove(&id);
    }

    /// Makes `rate` (0 to 1) of the calls to or from node `id` fail before they are delivered.
    /// Which calls fail follows a fixed pseudo-random sequence; 0 turns failures off.
    pub fn fail(&self, id: NodeId, rate: f64) {
        let mut links = self.links();
        if rate > 0.0 {
            links.failure_rate.insert(id, rate.min(1.0));
        } else {
            links.failure_rate.remove(&id);
        }
    }

    /// Delays every call to or from node `id` by `delay` before it is delivered (the delays of
    /// both ends add up); zero turns it off. openraft gives an AppendEntries one heartbeat
    /// interval: a longer delay fails every one of them, which cuts the follower off.
    pub fn delay(&self, id: NodeId, delay: Duration) {
        let mut links = self.links();
        if delay.is_zero() {
            links.delay.remove(&id);
        } else {
            links.delay.insert(id, delay);
        }
    }

    /// How many calls [`Self::fail`] has failed so far.
    pub fn injected_failures(&self) -> u64 {
        self.links().injected_failures
    }

    /// Routes a call from `from` to `addr`, waits out its delay, and checks that the two are
    /// still connected when it would arrive.
    async fn reach(&self, from: NodeId, addr: &str) -> Result<Route, Status> {
        let route = self.links().route(from, addr)?;
        tokio::time::sleep(route.delay).await;
        if self.links().cut(from, route.to) {
            return Err(Status::unavailable(format!(
                "node {from} and node {} were cut off while the call was in flight",
                route.to
            )));
        }
        Ok(route)
    }

    /// Fails an answer that node `to` gave while it was cut off from `from`: the call ran there,
    /// but its answer is lost.
    fn answer<T>(&self, from: NodeId, to: NodeId, answer: T) -> Result<T, Status> {
        if self.links().cut(from, to) {
            Err(Status::deadline_exceeded(format!(
                "the answer of node {to} to node {from} was lost: they were cut off"
            )))
        } else {
            Ok(answer)
        }
    }
}

/// One node's sending side of the [`Router`].
struct Link {
    router: Router,
    from: NodeId,
}

impl Link {
    /// A request as node `from`'s mutual-TLS connection would deliver it.
    fn request<T>(&self, message: T) -> Request<T> {
        let mut request = Request::new(message);
        request
            .extensions_mut()
            .insert(InProcessPeer(node_identity(self.from)));
        request
    }

    /// Sends `message` to the node at `addr` and runs `handle` (its handler) on it there,
    /// within `timeout`; the answer is lost if the two nodes were cut off while it ran.
    async fn exchange<T, U, F>(
        &self,
        addr: &str,
        timeout: Duration,
        message: T,
        handle: impl FnOnce(Arc<ClusterService>, Request<T>) -> F,
    ) -> Result<U, PeerError>
    where
        F: std::future::Future<Output = Result<Response<U>, Status>>,
    {
        let request = self.request(message);
        let exchange = async {
            let route = self.router.reach(self.from, addr).await?;
            let answer = handle(route.service, request).await?;
            self.router.answer(self.from, route.to, answer.into_inner())
        };
        let answered = tokio::time::timeout(timeout, exchange)
            .await
            .unwrap_or_else(|_| {
                Err(Status::deadline_exceeded(format!(
                    "no answer from {addr} within {timeout:?}"
                )))
            });
        answered.map_err(|status| PeerError::from_status(addr, status))
    }
}

#[tonic::async_trait]
impl Transport for Link {
    async fn call(
        &self,
        addr: &str,
        rpc: ClusterRpc,
        payload: RaftPayload,
        timeout: Duration,
    ) -> Result<RaftPayload, PeerError> {
        self.exchange(addr, timeout, payload, |service, request| async move {
            call_cluster_rpc!(service, rpc, request)
        })
        .await
    }

    async fn join(
        &self,
        addr: &str,
        request: JoinRequest,
        timeout: Duration,
    ) -> Result<JoinResponse, PeerError> {
        self.exchange(addr, timeout, request, |service, request| async move {
            service.join(request).await
        })
        .await
    }
}

/// SplitMix64: a fixed, seedless sequence of draws in [0, 1), so a failure rate fails the same
/// share of calls in every run.
#[derive(Default)]
struct Draws(u64);

impl Draws {
    fn next_unit(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        // The top 53 bits, exactly representable in an f64.
        (z >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_fail_about_the_share_of_calls_asked_for() {
        let mut draws = Draws::default();
        let failed = (0..10_000).filter(|_| draws.next_unit() < 0.3).count();
        assert!((2_800..3_200).contains(&failed), "{failed}");
    }
}
