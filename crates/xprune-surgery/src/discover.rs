//! Finding channel groups from the kinds' channel flows.
//!
//! Every channel a `Source` or `Mix` node creates is an *element*. Each node's output is
//! described as the element at every index of its channel axis, following the flows: element-
//! wise kinds carry their input's elements (and tie the elements of several inputs, index by
//! index), routes pick elements from their inputs, mixes create new ones. Elements that must be
//! removed together (tied by an add or a product, or one group of a grouped convolution) are
//! merged with a union-find; each merged set is one prunable channel. A group is a set of
//! channels connected through the nodes that created them, so that a residual stream or a
//! convolution's outputs stay one group however they are split, shuffled and recombined.

use crate::group::{
    ChannelGroup, ChannelGroups, ChannelSlot, GroupOptions, Member, PinReason, Positions, Role,
};
use std::collections::BTreeMap;
use xprune_graph::kind::{ChannelFlow, Pin};
use xprune_graph::{FeatureShape, Graph, NodeId};

struct UnionFind {
    parent: Vec<usize>,
}

impl UnionFind {
    fn push(&mut self) -> usize {
        self.parent.push(self.parent.len());
        self.parent.len() - 1
    }

    fn root(&mut self, mut x: usize) -> usize {
        while self.parent[x] != x {
            self.parent[x] = self.parent[self.parent[x]];
            x = self.parent[x];
        }
        x
    }

    /// Merges two sets; the smaller root (the earlier element) stays the root.
    fn union(&mut self, a: usize, b: usize) {
        let (ra, rb) = (self.root(a), self.root(b));
        if ra != rb {
            let (lo, hi) = (ra.min(rb), ra.max(rb));
            self.parent[hi] = lo;
        }
    }
}

/// Where the elements of one node came from: the node that created them.
struct Discovery<'a> {
    graph: &'a Graph,
    options: &'a GroupOptions,
    /// The node that created each element.
    origin: Vec<NodeId>,
    elements: UnionFind,
    /// The element at every output index of every node processed so far.
    outputs: Vec<Vec<usize>>,
    /// `(element, reason)` for every pin found.
    pins: Vec<(usize, PinReason)>,
    /// Nodes whose output elements they created, with whether those are fixed.
    creators: Vec<Option<bool>>,
    /// `(node, input)` pairs that read their input's elements (consumers).
    reads: Vec<(NodeId, usize)>,
}

impl Discovery<'_> {
    fn name(&self, id: NodeId) -> String {
        self.graph.name(id).to_string()
    }

    fn create(&mut self, node: NodeId, channels: usize) -> Vec<usize> {
        (0..channels)
            .map(|_| {
                self.origin.push(node);
                self.elements.push()
            })
            .collect()
    }

    fn pin_elements(&mut self, elements: &[usize], reason: PinReason) {
        // One pin per distinct element is enough; reasons are deduplicated per group.
        for &e in elements {
            self.pins.push((e, reason.clone()));
        }
    }

    fn visit(&mut self, id: NodeId) -> Vec<usize> {
        let graph = self.graph;
        let info = &graph.nodes()[id];
        let channels = info.shape.channels();
        let input_shapes: Vec<FeatureShape> = info
            .inputs
            .iter()
            .map(|&i| graph.nodes()[i].shape)
            .collect();
        let input = |d: &Self, k: usize| -> Vec<usize> {
            info.inputs
                .get(k)
                .map(|&i| d.outputs[i].clone())
                .unwrap_or_default()
        };
        match info.op.flow(&input_shapes, info.shape) {
            ChannelFlow::Source => {
                let out = self.create(id, channels);
                self.creators[id] = Some(true);
                let reason = PinReason::Input {
                    node: self.name(id),
                };
                self.pin_elements(&out, reason);
                out
            }
            ChannelFlow::Mix {
                output,
                input: read,
            } => {
                for k in 0..info.inputs.len() {
                    self.reads.push((id, k));
                    if let Pin::Pinned(reason) = &read {
                        let els = input(self, k);
                        let reason = PinReason::Layer {
                            node: self.name(id),
                            reason: reason.clone(),
                        };
                        self.pin_elements(&els, reason);
                    }
                }
                let out = self.create(id, channels);
                match output {
                    Pin::Free => self.creators[id] = Some(false),
                    Pin::Pinned(reason) => {
                        self.creators[id] = Some(true);
                        let reason = PinReason::Layer {
                            node: self.name(id),
                            reason,
                        };
                        self.pin_elements(&out, reason);
                    }
                }
                out
            }
            ChannelFlow::Elementwise { unit } => {
                let out = input(self, 0);
                for k in 1..info.inputs.len() {
                    let other = input(self, k);
                    for (&a, &b) in out.iter().zip(&other) {
                        self.elements.union(a, b);
                    }
                }
                if unit > 1 {
                    for block in out.chunks(unit) {
                        for &e in &block[1..] {
                            self.elements.union(block[0], e);
                        }
                    }
                }
                out
            }
            ChannelFlow::Route(route) => route
                .iter()
                .map(|&(k, c)| {
                    let i = info.inputs[k];
                    self.outputs[i][c]
                })
                .collect(),
            ChannelFlow::Normalize => {
                let out = input(self, 0);
                if !self.options.prune_normalized {
                    let reason = PinReason::Layer {
                        node: self.name(id),
                        reason: format!(
                            "{} normalises across these channels, so removing some changes the others",
                            info.op.kind_name()
                        ),
                    };
                    self.pin_elements(&out, reason);
                }
                out
            }
        }
    }
}

/// Finds the groups of `graph` with `options`.
pub(crate) fn find_groups(graph: &Graph, options: &GroupOptions) -> ChannelGroups {
    let n = graph.len();
    let mut d = Discovery {
        graph,
        options,
        origin: Vec::new(),
        elements: UnionFind { parent: Vec::new() },
        outputs: Vec::with_capacity(n),
        pins: Vec::new(),
        creators: vec![None; n],
        reads: Vec::new(),
    };
    for id in 0..n {
        let out = d.visit(id);
        d.outputs.push(out);
    }
    let out_elements = d.outputs[graph.output()].clone();
    d.pin_elements(
        &out_elements,
        PinReason::Output {
            node: d.name(graph.output()),
        },
    );
    for &node in &options.pinned {
        if let Some(els) = d.outputs.get(node).cloned() {
            let reason = PinReason::User { node: d.name(node) };
            d.pin_elements(&els, reason);
        }
    }

    // Channels: one per union-find root. Groups: channels connected through the nodes that
    // created their elements.
    let total = d.origin.len();
    let roots: Vec<usize> = (0..total).map(|e| d.elements.root(e)).collect();
    let mut creators = UnionFind { parent: Vec::new() };
    for _ in 0..n {
        creators.push();
    }
    for e in 0..total {
        creators.union(d.origin[e], d.origin[roots[e]]);
    }
    // Groups ordered by their first element (so by their first creator's node); channels
    // within a group ordered by their first element.
    let mut group_of_creator: BTreeMap<usize, usize> = BTreeMap::new();
    let mut channel_of_root: Vec<Option<(usize, usize)>> = vec![None; total];
    let mut groups: Vec<ChannelGroup> = Vec::new();
    for e in 0..total {
        let r = roots[e];
        if channel_of_root[r].is_some() {
            continue;
        }
        let c = creators.root(d.origin[r]);
        let g = *group_of_creator.entry(c).or_insert_with(|| {
            groups.push(ChannelGroup {
                id: groups.len(),
                name: graph.name(d.origin[r]).to_string(),
                channels: 0,
                members: Vec::new(),
                pins: Vec::new(),
            });
            groups.len() - 1
        });
        channel_of_root[r] = Some((g, groups[g].channels));
        groups[g].channels += 1;
    }
    let channel = |e: usize| channel_of_root[roots[e]].expect("every root has a channel");

    // Members: where each group's channels sit in every node's output, and in the inputs of
    // the nodes that read them.
    let slots_of = |elements: &[usize]| -> BTreeMap<usize, Vec<Vec<usize>>> {
        let mut per_group: BTreeMap<usize, Vec<Vec<usize>>> = BTreeMap::new();
        for (index, &e) in elements.iter().enumerate() {
            let (g, k) = channel(e);
            let lists = per_group
                .entry(g)
                .or_insert_with(|| vec![Vec::new(); groups[g].channels]);
            lists[k].push(index);
        }
        per_group
    };
    let mut members: Vec<Vec<Member>> = vec![Vec::new(); groups.len()];
    for id in 0..n {
        for (g, lists) in slots_of(&d.outputs[id]) {
            let role = match d.creators[id] {
                Some(false) => Role::Producer,
                Some(true) => Role::Fixed,
                None => Role::Carrier,
            };
            members[g].push(Member {
                role,
                input: 0,
                slot: ChannelSlot {
                    node: id,
                    positions: Positions::from_lists(&lists),
                },
            });
        }
    }
    for &(node, k) in &d.reads {
        let src = graph.nodes()[node].inputs[k];
        for (g, lists) in slots_of(&d.outputs[src]) {
            members[g].push(Member {
                role: Role::Consumer,
                input: k,
                slot: ChannelSlot {
                    node,
                    positions: Positions::from_lists(&lists),
                },
            });
        }
    }
    for (g, mut list) in members.into_iter().enumerate() {
        list.sort_by_key(|m| (m.node(), m.role, m.input));
        list.dedup();
        groups[g].members = list;
    }
    for (e, reason) in std::mem::take(&mut d.pins) {
        let (g, _) = channel(e);
        if !groups[g].pins.contains(&reason) {
            groups[g].pins.push(reason);
        }
    }
    ChannelGroups {
        groups,
        nodes: graph
            .nodes()
            .iter()
            .map(|n| (n.name.clone(), n.shape))
            .collect(),
    }
}
