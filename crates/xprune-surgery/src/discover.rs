//! Finding channel groups: every convolution and linear layer opens a new channel space, the
//! other layers carry (and concat and flatten re-index) the channel spaces of their inputs,
//! and an add ties the spaces of its inputs together.
//!
//! Each node's output is described as a list of segments `(space, offset, block)`: channel
//! `k` of `space` is at the node's output indices `offset + k * block ..`. Spaces tied by an
//! add are merged with a union-find; a group is one merged set of spaces.

use crate::group::{ChannelGroup, ChannelGroups, Member, PinReason};
use xprune_graph::{FeatureShape, Graph, NodeId, OpSpec};

/// A channel space opened by one node (a producer, or a fixed node such as the input).
struct Space {
    node: NodeId,
    channels: usize,
}

/// A space's channels inside a node's output.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Segment {
    space: usize,
    offset: usize,
    block: usize,
}

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

    /// Merges two sets; the smaller root (the earlier space) stays the root.
    fn union(&mut self, a: usize, b: usize) {
        let (ra, rb) = (self.root(a), self.root(b));
        if ra != rb {
            let (lo, hi) = (ra.min(rb), ra.max(rb));
            self.parent[hi] = lo;
        }
    }
}

struct Discovery<'a> {
    graph: &'a Graph,
    spaces: Vec<Space>,
    sets: UnionFind,
    /// `(space, member)` for every role found.
    members: Vec<(usize, Member)>,
    /// `(space, reason)` for every pin found.
    pins: Vec<(usize, PinReason)>,
    /// Output segments of every node processed so far.
    segments: Vec<Vec<Segment>>,
}

impl Discovery<'_> {
    fn name(&self, id: NodeId) -> String {
        self.graph.name(id).to_string()
    }

    fn open(&mut self, node: NodeId, channels: usize, member: Member) -> Vec<Segment> {
        let space = self.sets.push();
        self.spaces.push(Space { node, channels });
        self.members.push((space, member));
        vec![Segment {
            space,
            offset: 0,
            block: 1,
        }]
    }

    fn consume(&mut self, node: NodeId, input: NodeId) {
        for s in self.segments[input].clone() {
            self.members.push((
                s.space,
                Member::Consumer {
                    node,
                    offset: s.offset,
                    block: s.block,
                },
            ));
        }
    }

    fn pin_all(&mut self, node: NodeId, reason: impl Fn(String) -> PinReason) {
        for s in self.segments[node].clone() {
            self.pins.push((s.space, reason(self.name(node))));
        }
    }

    /// The output segments of node `id`; records its roles.
    fn visit(&mut self, id: NodeId) -> Vec<Segment> {
        let graph = self.graph;
        let info = &graph.nodes()[id];
        let channels = info.shape.channels();
        let first = info.inputs.first().copied();
        match &info.op {
            OpSpec::Input { .. } => {
                let out = self.open(id, channels, Member::Fixed { node: id });
                self.pins
                    .push((out[0].space, PinReason::Input(self.name(id))));
                out
            }
            OpSpec::Conv2d {
                in_channels,
                out_channels,
                groups,
                ..
            } => {
                let input = first.expect("a conv2d has one input");
                let depthwise = *groups > 1 && groups == in_channels && groups == out_channels;
                if depthwise {
                    self.carry(id, self.segments[input].clone())
                } else if *groups > 1 {
                    self.consume(id, input);
                    let name = self.name(id);
                    for s in self.segments[input].clone() {
                        self.pins
                            .push((s.space, PinReason::GroupedConvInput(name.clone())));
                    }
                    let out = self.open(id, channels, Member::Fixed { node: id });
                    self.pins
                        .push((out[0].space, PinReason::GroupedConvOutput(name)));
                    out
                } else {
                    self.consume(id, input);
                    self.open(id, channels, Member::Producer { node: id })
                }
            }
            OpSpec::Linear { .. } => {
                self.consume(id, first.expect("a linear layer has one input"));
                self.open(id, channels, Member::Producer { node: id })
            }
            OpSpec::BatchNorm { .. }
            | OpSpec::Relu
            | OpSpec::MaxPool2d { .. }
            | OpSpec::AvgPool2d { .. }
            | OpSpec::AdaptiveAvgPool2d { .. }
            | OpSpec::Dropout { .. }
            | OpSpec::Identity => {
                let input = first.expect("a single-input layer has one input");
                self.carry(id, self.segments[input].clone())
            }
            OpSpec::Flatten => {
                let input = first.expect("a flatten has one input");
                let positions = match self.graph.nodes()[input].shape {
                    FeatureShape::Spatial([_, h, w]) => h * w,
                    FeatureShape::Flat(_) => 1,
                };
                let out = self.segments[input]
                    .iter()
                    .map(|s| Segment {
                        space: s.space,
                        offset: s.offset * positions,
                        block: s.block * positions,
                    })
                    .collect();
                self.carry(id, out)
            }
            OpSpec::Concat => {
                let mut out = Vec::new();
                let mut base = 0;
                for &i in &info.inputs {
                    out.extend(self.segments[i].iter().map(|s| Segment {
                        offset: base + s.offset,
                        ..*s
                    }));
                    base += self.graph.nodes()[i].shape.channels();
                }
                self.carry(id, out)
            }
            OpSpec::Add => {
                let inputs = info.inputs.clone();
                let reference = self.segments[inputs[0]].clone();
                let aligned = inputs[1..].iter().all(|&i| {
                    let other = &self.segments[i];
                    other.len() == reference.len()
                        && other.iter().zip(&reference).all(|(a, b)| {
                            a.offset == b.offset
                                && a.block == b.block
                                && self.spaces[a.space].channels == self.spaces[b.space].channels
                        })
                });
                if aligned {
                    for &i in &inputs[1..] {
                        for (a, b) in self.segments[i].clone().into_iter().zip(&reference) {
                            self.sets.union(a.space, b.space);
                        }
                    }
                } else {
                    let name = self.name(id);
                    for &i in &inputs {
                        for s in self.segments[i].clone() {
                            self.pins
                                .push((s.space, PinReason::MisalignedAdd(name.clone())));
                        }
                    }
                }
                self.carry(id, reference)
            }
        }
    }

    fn carry(&mut self, node: NodeId, segments: Vec<Segment>) -> Vec<Segment> {
        for s in &segments {
            self.members.push((
                s.space,
                Member::Carrier {
                    node,
                    offset: s.offset,
                    block: s.block,
                },
            ));
        }
        segments
    }
}

fn role_rank(m: &Member) -> (NodeId, u8, usize) {
    match *m {
        Member::Producer { node } => (node, 0, 0),
        Member::Fixed { node } => (node, 0, 0),
        Member::Carrier { node, offset, .. } => (node, 1, offset),
        Member::Consumer { node, offset, .. } => (node, 2, offset),
    }
}

/// Finds the groups of `graph`, pinning the output node and the nodes in `pinned`.
pub(crate) fn find_groups(graph: &Graph, pinned: &[NodeId]) -> ChannelGroups {
    let mut d = Discovery {
        graph,
        spaces: Vec::new(),
        sets: UnionFind { parent: Vec::new() },
        members: Vec::new(),
        pins: Vec::new(),
        segments: Vec::with_capacity(graph.len()),
    };
    for id in 0..graph.len() {
        let out = d.visit(id);
        d.segments.push(out);
    }
    d.pin_all(graph.output(), PinReason::Output);
    for &node in pinned {
        d.pin_all(node, PinReason::User);
    }

    // One group per union-find root; roots are the earliest space of their set, so ordering
    // groups by root orders them by their first producer's node.
    let mut group_of_root = vec![usize::MAX; d.spaces.len()];
    let mut groups: Vec<ChannelGroup> = Vec::new();
    for space in 0..d.spaces.len() {
        let root = d.sets.root(space);
        if group_of_root[root] == usize::MAX {
            group_of_root[root] = groups.len();
            groups.push(ChannelGroup {
                id: groups.len(),
                name: graph.name(d.spaces[root].node).to_string(),
                channels: d.spaces[root].channels,
                members: Vec::new(),
                pins: Vec::new(),
            });
        }
    }
    for (space, member) in std::mem::take(&mut d.members) {
        let g = group_of_root[d.sets.root(space)];
        groups[g].members.push(member);
    }
    for (space, reason) in std::mem::take(&mut d.pins) {
        let g = group_of_root[d.sets.root(space)];
        if !groups[g].pins.contains(&reason) {
            groups[g].pins.push(reason);
        }
    }
    for g in &mut groups {
        g.members.sort_by_key(role_rank);
        g.members.dedup();
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
