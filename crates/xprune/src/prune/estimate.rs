//! Exact parameter and MAC counts of a graph after a plan, computed from the structure alone
//! (no weights are sliced), for budget targets.

use xprune_graph::{FeatureShape, Graph, OpSpec};
use xprune_surgery::{ChannelGroups, NodeRemovals, ResolvedPlan};

/// Parameters and MACs per sample the graph would have after `plan`, with the same
/// conventions as `xprune_surgery::count` (conv/linear weights and biases plus batch-norm
/// affine parameters; conv and linear multiply-accumulates).
pub fn counts_after(graph: &Graph, groups: &ChannelGroups, plan: &ResolvedPlan) -> (u64, u64) {
    let removals = NodeRemovals::new(groups, plan);
    let mut params = 0u64;
    let mut macs = 0u64;
    for (id, info) in graph.nodes().iter().enumerate() {
        let out_removed = removals.output(id).len();
        match &info.op {
            OpSpec::Conv2d {
                in_channels,
                out_channels,
                kernel,
                groups: g,
                bias,
                ..
            } => {
                let out_kept = out_channels - out_removed.min(*out_channels);
                let depthwise = *g == *in_channels && *g == *out_channels && *g > 1;
                let (in_kept, g_kept) = if depthwise {
                    (out_kept, out_kept.max(1))
                } else {
                    (in_channels - removals.input(id).len().min(*in_channels), *g)
                };
                let per_out = (in_kept / g_kept.max(1)) as u64 * (kernel[0] * kernel[1]) as u64;
                let positions = match info.shape {
                    FeatureShape::Spatial([_, h, w]) => (h * w) as u64,
                    FeatureShape::Flat(_) => 1,
                };
                params += out_kept as u64 * per_out + if *bias { out_kept as u64 } else { 0 };
                macs += positions * out_kept as u64 * per_out;
            }
            OpSpec::Linear {
                in_features,
                out_features,
                bias,
            } => {
                let in_kept = (in_features - removals.input(id).len().min(*in_features)) as u64;
                let out_kept = (out_features - out_removed.min(*out_features)) as u64;
                params += in_kept * out_kept + if *bias { out_kept } else { 0 };
                macs += in_kept * out_kept;
            }
            OpSpec::BatchNorm { features, .. } => {
                params += 2 * (features - out_removed.min(*features)) as u64;
            }
            _ => {}
        }
    }
    (params, macs)
}
