//! Ports for clusters whose port layout is fixed by a base (`tessera dev --base-port`).

use std::net::TcpListener;

use tessera_launcher::cluster::{base_ports, ops_port};
use tessera_launcher::config::loopback;

/// Tries before giving up on finding a free layout.
const TRIES: usize = 64;

/// A base port whose whole `tessera dev` layout for `nodes` nodes (API ports `base..`, cluster
/// ports `base + 100..`, ops ports `base + 200..`) is free. The base is a port the kernel just handed out for port 0
/// (never a fixed range other processes may probe too); every port of the layout is bound at
/// once, so none is taken between two checks, and released only on return.
///
/// # Panics
/// If no free layout turns up.
pub fn dev_base_port(nodes: u64) -> u16 {
    for _ in 0..TRIES {
        let base = TcpListener::bind(loopback(0))
            .and_then(|l| l.local_addr())
            .expect("bind port 0")
            .port();
        let held: Option<Vec<TcpListener>> = (1..=nodes)
            .map(|id| Some((base_ports(base, id).ok()?, ops_port(base, id).ok()?)))
            .collect::<Option<Vec<_>>>()
            .and_then(|ports| {
                ports
                    .into_iter()
                    .flat_map(|((api, cluster), ops)| [api, cluster, ops])
                    .map(|port| TcpListener::bind(loopback(port)).ok())
                    .collect()
            });
        if held.is_some() {
            return base;
        }
    }
    panic!("no free port layout for {nodes} dev nodes after {TRIES} tries");
}
