//! Which region each node of a chaos cluster is in.
//!
//! `--topology 2+2+1` puts nodes 1–2 in `region-1`, 3–4 in `region-2` and 5 in `region-3`, as
//! the placement advice of `docs/operations.md` suggests for five voters. Without it, node `i`
//! is labelled `region-((i-1) mod 3 + 1)`, as runs always were. The labels go into each node's
//! configuration; `--wan-delay` delays the links between nodes of different regions, and the
//! `region` fault takes out every node of one region.

use std::fmt;

/// Largest cluster the harness builds.
pub const MAX_NODES: u64 = 9;

/// A `--topology` that cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TopologyError {
    /// A part is not a positive number.
    #[error("topology {given:?}: {part:?} is not a positive number of nodes (example: 2+2+1)")]
    BadPart {
        /// The whole value.
        given: String,
        /// The offending part.
        part: String,
    },
    /// More nodes than the harness builds.
    #[error("topology {given:?} has {nodes} nodes; at most {MAX_NODES} are supported")]
    TooLarge {
        /// The whole value.
        given: String,
        /// Its node count.
        nodes: u64,
    },
    /// `--nodes` says something else.
    #[error("--nodes {nodes} disagrees with --topology {topology} ({implied} nodes); give one or make them agree")]
    NodesDisagree {
        /// `--nodes`.
        nodes: u64,
        /// `--topology`.
        topology: String,
        /// The topology's node count.
        implied: u64,
    },
}

/// How many nodes each region holds; regions are numbered from 1 and nodes fill them in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Topology {
    /// Node id → region number (index 0 is node 1).
    regions: Vec<u64>,
    /// Whether it was given as region sizes (`2+2+1`) rather than implied by a node count.
    explicit: bool,
}

impl Topology {
    /// `nodes` nodes spread over up to three regions in turn (node `i` in region
    /// `(i-1) mod 3 + 1`): the labels of runs without `--topology`.
    pub fn spread(nodes: u64) -> Self {
        Self {
            regions: (0..nodes).map(|i| i % 3 + 1).collect(),
            explicit: false,
        }
    }

    /// Parses region sizes such as `2+2+1`.
    ///
    /// # Errors
    /// A part that is not a positive number, or more than [`MAX_NODES`] nodes.
    pub fn parse(given: &str) -> Result<Self, TopologyError> {
        let mut regions = Vec::new();
        for (region, part) in (1u64..).zip(given.split('+')) {
            let size = part
                .trim()
                .parse::<u64>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| TopologyError::BadPart {
                    given: given.to_owned(),
                    part: part.to_owned(),
                })?;
            if regions.len() as u64 + size > MAX_NODES {
                return Err(TopologyError::TooLarge {
                    given: given.to_owned(),
                    nodes: regions.len() as u64 + size,
                });
            }
            regions.extend(std::iter::repeat_n(
                region,
                usize::try_from(size).unwrap_or(0),
            ));
        }
        Ok(Self {
            regions,
            explicit: true,
        })
    }

    /// The topology of the command line: `--topology` if given (and `--nodes`, if also given,
    /// must agree), otherwise `--nodes` (default 3) spread over regions.
    ///
    /// # Errors
    /// A bad topology, or `--nodes` disagreeing with it.
    pub fn from_flags(topology: Option<&str>, nodes: Option<u64>) -> Result<Self, TopologyError> {
        match topology {
            None => Ok(Self::spread(nodes.unwrap_or(3))),
            Some(given) => {
                let parsed = Self::parse(given)?;
                match nodes {
                    Some(n) if n != parsed.nodes() => Err(TopologyError::NodesDisagree {
                        nodes: n,
                        topology: given.to_owned(),
                        implied: parsed.nodes(),
                    }),
                    _ => Ok(parsed),
                }
            }
        }
    }

    /// Number of nodes.
    pub fn nodes(&self) -> u64 {
        self.regions.len() as u64
    }

    /// The node ids, 1 to [`Self::nodes`].
    pub fn ids(&self) -> impl Iterator<Item = u64> {
        1..=self.nodes()
    }

    /// Region number of node `id` (0 for a node not in the topology).
    pub fn region_of(&self, id: u64) -> u64 {
        usize::try_from(id.wrapping_sub(1))
            .ok()
            .and_then(|i| self.regions.get(i))
            .copied()
            .unwrap_or(0)
    }

    /// The label a region carries in node configurations.
    pub fn label(region: u64) -> String {
        format!("region-{region}")
    }

    /// The region numbers, in order.
    pub fn regions(&self) -> Vec<u64> {
        let mut regions = self.regions.clone();
        regions.sort_unstable();
        regions.dedup();
        regions
    }

    /// The nodes of `region`.
    pub fn members(&self, region: u64) -> Vec<u64> {
        self.ids()
            .filter(|id| self.region_of(*id) == region)
            .collect()
    }

    /// Whether nodes `a` and `b` are in different regions (their links cross the WAN).
    pub fn crosses(&self, a: u64, b: u64) -> bool {
        self.region_of(a) != self.region_of(b)
    }

    /// Whether the other regions keep a majority of the voters when `region` is lost.
    pub fn survives_loss_of(&self, region: u64) -> bool {
        let lost = self.members(region).len() as u64;
        let left = self.nodes().saturating_sub(lost);
        lost > 0 && left > self.nodes() / 2
    }

    /// The regions whose loss leaves a majority.
    pub fn losable_regions(&self) -> Vec<u64> {
        self.regions()
            .into_iter()
            .filter(|r| self.survives_loss_of(*r))
            .collect()
    }
}

impl Topology {
    /// The `--topology` value that gives this topology (`2+2+1`); `None` for one implied by a
    /// node count.
    pub fn flag(&self) -> Option<String> {
        self.explicit.then(|| {
            let sizes: Vec<String> = self
                .regions()
                .into_iter()
                .map(|r| self.members(r).len().to_string())
                .collect();
            sizes.join("+")
        })
    }
}

impl fmt::Display for Topology {
    /// `2+2+1` for a given topology, `3 nodes` for one implied by a count.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.flag() {
            Some(sizes) => f.write_str(&sizes),
            None => write!(f, "{} nodes", self.nodes()),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn two_two_one_fills_regions_in_order_and_survives_any_region() {
        let t = Topology::parse("2+2+1").unwrap();
        assert_eq!(t.nodes(), 5);
        assert_eq!(t.to_string(), "2+2+1");
        assert_eq!(t.members(1), vec![1, 2]);
        assert_eq!(t.members(2), vec![3, 4]);
        assert_eq!(t.members(3), vec![5]);
        assert!(t.crosses(2, 3) && !t.crosses(3, 4));
        assert_eq!(t.losable_regions(), vec![1, 2, 3]);
    }

    #[test]
    fn a_region_holding_half_the_voters_cannot_be_lost() {
        let t = Topology::parse("2+2").unwrap();
        assert!(t.losable_regions().is_empty());
        let t = Topology::parse("3+1+1").unwrap();
        assert_eq!(t.losable_regions(), vec![2, 3]);
        assert_eq!(Topology::spread(3).losable_regions(), vec![1, 2, 3]);
        assert_eq!(Topology::spread(1).losable_regions(), Vec::<u64>::new());
    }

    #[test]
    fn flags_agree_or_are_refused() {
        assert_eq!(Topology::from_flags(None, None).unwrap().nodes(), 3);
        assert_eq!(
            Topology::from_flags(Some("2+2+1"), None).unwrap().nodes(),
            5
        );
        assert_eq!(
            Topology::from_flags(Some("2+2+1"), Some(5))
                .unwrap()
                .nodes(),
            5
        );
        assert!(matches!(
            Topology::from_flags(Some("2+2+1"), Some(3)),
            Err(TopologyError::NodesDisagree { implied: 5, .. })
        ));
        assert!(matches!(
            Topology::parse("2+x"),
            Err(TopologyError::BadPart { .. })
        ));
        assert!(matches!(
            Topology::parse("2+0"),
            Err(TopologyError::BadPart { .. })
        ));
        assert!(matches!(
            Topology::parse("5+5"),
            Err(TopologyError::TooLarge { nodes: 10, .. })
        ));
        // Spread labels are the ones runs without a topology always had.
        let spread = Topology::spread(5);
        assert_eq!(
            spread
                .ids()
                .map(|i| spread.region_of(i))
                .collect::<Vec<_>>(),
            vec![1, 2, 3, 1, 2]
        );
    }
}
