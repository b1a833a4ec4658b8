//! The seeded fault schedule: which fault, when, for how long, on which nodes or links.
//!
//! The same seed, node count, duration and fault kinds give the same schedule. (What the
//! cluster does in response depends on timing, so runs are reproducible in schedule, not in
//! every interleaving.)

use std::fmt;
use std::time::Duration;

use rand::seq::SliceRandom;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

/// The kinds of fault the nemesis can inject.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// SIGKILL a node, restart it later (it comes back sealed and is unsealed).
    Kill,
    /// SIGSTOP a node for longer than the election timeout, then SIGCONT.
    Pause,
    /// Cut links: isolate a node, split majority/minority, one-way, or bridge.
    Partition,
    /// Add latency (fixed + jitter) to links.
    Delay,
    /// Cut connections on links at random.
    Drop,
    /// Restart every node in turn (SIGTERM, restart, unseal).
    Rolling,
    /// Fill a node's data filesystem until writes fail, then free it (needs root: each
    /// node's data is then on a size-limited tmpfs of its own).
    Disk,
}

impl FaultKind {
    /// Every kind.
    pub const ALL: [FaultKind; 7] = [
        Self::Kill,
        Self::Pause,
        Self::Partition,
        Self::Delay,
        Self::Drop,
        Self::Rolling,
        Self::Disk,
    ];

    /// The kind's name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Self::Kill => "kill",
            Self::Pause => "pause",
            Self::Partition => "partition",
            Self::Delay => "delay",
            Self::Drop => "drop",
            Self::Rolling => "rolling",
            Self::Disk => "disk",
        }
    }

    /// The name a fault event of this kind carries in `faults.jsonl`: the kind's name, except
    /// that a rolling restart records one `restart` interval per node.
    pub fn event_name(self) -> &'static str {
        match self {
            Self::Rolling => "restart",
            other => other.name(),
        }
    }

    /// The kind a `faults.jsonl` name stands for.
    pub fn from_event_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.event_name() == name)
    }

    /// Parses a comma-separated list; `all` means every kind.
    ///
    /// # Errors
    /// A message naming the unknown kind.
    pub fn parse_list(list: &str) -> Result<Vec<FaultKind>, String> {
        if list == "all" {
            return Ok(Self::ALL.to_vec());
        }
        list.split(',')
            .filter(|s| !s.is_empty())
            .map(|name| {
                Self::ALL
                    .into_iter()
                    .find(|k| k.name() == name)
                    .ok_or_else(|| {
                        format!("unknown fault {name:?}: use kill, pause, partition, delay, drop, rolling, disk or all")
                    })
            })
            .collect()
    }
}

/// Which node a process fault hits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    /// This node.
    Node(u64),
    /// Whichever node leads when the fault starts.
    Leader,
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Node(id) => write!(f, "node {id}"),
            Self::Leader => f.write_str("the leader"),
        }
    }
}

/// What a scheduled fault does.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Action {
    /// Kill a node; restart and unseal it when the fault ends.
    Kill {
        /// The node.
        target: Target,
    },
    /// Pause a node; resume it when the fault ends.
    Pause {
        /// The node.
        target: Target,
    },
    /// Cut these directed links.
    Partition {
        /// Shape: isolate, majority-minority, one-way or bridge.
        shape: String,
        /// Cut links `(from, to)`.
        cuts: Vec<(u64, u64)>,
    },
    /// Delay these directed links.
    Delay {
        /// Links.
        links: Vec<(u64, u64)>,
        /// Fixed delay.
        fixed_ms: u64,
        /// Jitter.
        jitter_ms: u64,
    },
    /// Cut connections on these links at random.
    Drop {
        /// Links.
        links: Vec<(u64, u64)>,
        /// Probability per chunk.
        probability: f64,
    },
    /// Restart every node in turn.
    Rolling,
    /// Fill a node's data filesystem; free it when the fault ends (and restart and unseal the
    /// node if its storage failure stopped it).
    DiskFull {
        /// The node.
        target: Target,
    },
}

impl Action {
    /// The fault kind.
    pub fn kind(&self) -> FaultKind {
        match self {
            Self::Kill { .. } => FaultKind::Kill,
            Self::Pause { .. } => FaultKind::Pause,
            Self::Partition { .. } => FaultKind::Partition,
            Self::Delay { .. } => FaultKind::Delay,
            Self::Drop { .. } => FaultKind::Drop,
            Self::Rolling => FaultKind::Rolling,
            Self::DiskFull { .. } => FaultKind::Disk,
        }
    }

    /// A one-line description.
    pub fn describe(&self) -> String {
        let links = |l: &[(u64, u64)]| {
            l.iter()
                .map(|(a, b)| format!("{a}->{b}"))
                .collect::<Vec<_>>()
                .join(" ")
        };
        match self {
            Self::Kill { target } => format!("kill {target}"),
            Self::Pause { target } => format!("pause {target}"),
            Self::Partition { shape, cuts } => format!("partition ({shape}): cut {}", links(cuts)),
            Self::Delay {
                links: l,
                fixed_ms,
                jitter_ms,
            } => format!("delay {fixed_ms}ms+{jitter_ms}ms on {}", links(l)),
            Self::Drop {
                links: l,
                probability,
            } => format!("drop p={probability:.2} on {}", links(l)),
            Self::Rolling => "rolling restart of every node".into(),
            Self::DiskFull { target } => format!("fill the disk of {target}"),
        }
    }
}

/// One fault in the schedule.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Planned {
    /// Start, from the beginning of the run.
    pub at: Duration,
    /// How long it lasts (a rolling restart takes as long as it takes).
    pub duration: Duration,
    /// What it does.
    pub action: Action,
}

/// Quiet time at the start (the workload warms up) and at the end (the cluster recovers).
const WARM_UP: Duration = Duration::from_secs(3);
const COOL_DOWN: Duration = Duration::from_secs(4);

fn cut_between(a: &[u64], b: &[u64]) -> Vec<(u64, u64)> {
    let mut cuts = Vec::new();
    for &x in a {
        for &y in b {
            cuts.push((x, y));
            cuts.push((y, x));
        }
    }
    cuts
}

fn partition(rng: &mut ChaCha8Rng, nodes: u64) -> Action {
    let mut ids: Vec<u64> = (1..=nodes).collect();
    ids.shuffle(rng);
    let shapes: &[&str] = if nodes >= 3 {
        &["isolate", "majority-minority", "one-way", "bridge"]
    } else {
        &["isolate", "one-way"]
    };
    let shape = shapes
        .get(rng.random_range(0..shapes.len()))
        .copied()
        .unwrap_or("isolate");
    let (first, rest) = ids.split_at(1);
    let cuts = match shape {
        "majority-minority" => {
            let minority = usize::try_from((nodes - 1) / 2).unwrap_or(1).max(1);
            let (small, large) = ids.split_at(minority);
            cut_between(small, large)
        }
        "one-way" => {
            // The chosen node can hear the others but not reach them.
            let x = first.first().copied().unwrap_or(1);
            rest.iter().map(|&y| (x, y)).collect()
        }
        "bridge" => {
            // Two halves that only the bridge node connects.
            let (_bridge, others) = ids.split_at(1);
            let (a, b) = others.split_at(others.len() / 2);
            cut_between(a, b)
        }
        _ => cut_between(first, rest),
    };
    Action::Partition {
        shape: shape.into(),
        cuts,
    }
}

fn some_links(rng: &mut ChaCha8Rng, nodes: u64) -> Vec<(u64, u64)> {
    let mut all: Vec<(u64, u64)> = (1..=nodes)
        .flat_map(|a| (1..=nodes).filter(move |b| *b != a).map(move |b| (a, b)))
        .collect();
    all.shuffle(rng);
    let n = rng.random_range(1..=all.len().max(1));
    all.truncate(n);
    all.sort_unstable();
    all
}

fn target(rng: &mut ChaCha8Rng, nodes: u64) -> Target {
    if rng.random_bool(0.5) {
        Target::Leader
    } else {
        Target::Node(rng.random_range(1..=nodes))
    }
}

/// The schedule for a run: faults one after another, each 3–8 s long with 1–4 s of calm
/// between them, after a warm-up and before a cool-down.
pub fn plan(seed: u64, nodes: u64, duration: Duration, kinds: &[FaultKind]) -> Vec<Planned> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut out = Vec::new();
    let mut at = WARM_UP;
    if kinds.is_empty() {
        return out;
    }
    loop {
        let length = Duration::from_millis(rng.random_range(3000..=8000));
        if at + length + COOL_DOWN > duration {
            break;
        }
        let kind = kinds
            .get(rng.random_range(0..kinds.len()))
            .copied()
            .unwrap_or(FaultKind::Kill);
        let action = match kind {
            FaultKind::Kill => Action::Kill {
                target: target(&mut rng, nodes),
            },
            FaultKind::Pause => Action::Pause {
                target: target(&mut rng, nodes),
            },
            FaultKind::Partition => partition(&mut rng, nodes),
            FaultKind::Delay => Action::Delay {
                links: some_links(&mut rng, nodes),
                fixed_ms: rng.random_range(20..=200),
                jitter_ms: rng.random_range(0..=100),
            },
            FaultKind::Drop => Action::Drop {
                links: some_links(&mut rng, nodes),
                probability: rng.random_range(0.02..0.2),
            },
            FaultKind::Rolling => Action::Rolling,
            FaultKind::Disk => Action::DiskFull {
                target: target(&mut rng, nodes),
            },
        };
        out.push(Planned {
            at,
            duration: length,
            action,
        });
        at += length + Duration::from_millis(rng.random_range(1000..=4000));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_schedule_and_bounded_by_the_run() {
        let kinds = FaultKind::ALL;
        let a = plan(42, 5, Duration::from_secs(120), &kinds);
        let b = plan(42, 5, Duration::from_secs(120), &kinds);
        assert_eq!(a, b);
        assert!(!a.is_empty());
        assert_ne!(a, plan(43, 5, Duration::from_secs(120), &kinds));
        for fault in &a {
            assert!(fault.at >= WARM_UP);
            assert!(fault.at + fault.duration + COOL_DOWN <= Duration::from_secs(120));
        }
    }

    #[test]
    fn partitions_keep_their_shape() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        for _ in 0..200 {
            let Action::Partition { shape, cuts } = partition(&mut rng, 5) else {
                panic!("not a partition")
            };
            assert!(!cuts.is_empty(), "{shape}");
            assert!(cuts
                .iter()
                .all(|(a, b)| a != b && (1..=5).contains(a) && (1..=5).contains(b)));
            if shape == "one-way" {
                let from: std::collections::BTreeSet<u64> = cuts.iter().map(|c| c.0).collect();
                assert_eq!(from.len(), 1, "one node cannot reach the others");
                assert!(
                    !cuts.iter().any(|c| cuts.contains(&(c.1, c.0))),
                    "only one way"
                );
            }
        }
    }

    #[test]
    fn fault_lists_parse() {
        assert_eq!(FaultKind::parse_list("all").unwrap().len(), 7);
        assert_eq!(
            FaultKind::parse_list("kill,partition").unwrap(),
            vec![FaultKind::Kill, FaultKind::Partition]
        );
        assert!(FaultKind::parse_list("kill,meteor").is_err());
    }
}
