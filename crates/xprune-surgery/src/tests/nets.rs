//! Small test networks written with the builder: concats (nested, added, flattened), depthwise
//! convolutions, a grouped convolution, a misaligned add and flat batch norms.

use burn::tensor::Device;
use xprune_graph::{Conv2dSpec, FeatureShape, Graph, GraphBuilder};

/// Two concats, one of them added to another concat of equal layout, a concat feeding a
/// conv, and a concat flattened into a linear layer.
///
/// ```text
/// input 3x8x8 -> a (3x3, 4) -> bn_a -> relu_a --\
///             -> b (1x1, 6) -> relu_b ----------- cat_ab (10) --\
///             -> p (3x3, 4) ---------------------\               add_s (10) -> d (3x3, 5) -> bn_d -> relu_d
///             -> q (1x1, 6) --------------------- cat_pq (10) --/       \                              |
///                                                                         cat_e (15) <-----------------/
///   cat_e -> pool (2x2) -> flatten (15*16) -> fc1 (7) -> relu1 -> fc2 (3)
/// ```
pub fn concat_net(device: &Device, seed: u64) -> Graph {
    let mut b = GraphBuilder::new(FeatureShape::spatial(3, 8, 8), device).seed(seed);
    let x = b.input();
    let a = b.conv2d("a", x, Conv2dSpec::new(4, 3).padding(1)).unwrap();
    let a = b.batch_norm("bn_a", a).unwrap();
    let a = b.relu("relu_a", a).unwrap();
    let bb = b.conv2d("b", x, Conv2dSpec::new(6, 1)).unwrap();
    let bb = b.relu("relu_b", bb).unwrap();
    let ab = b.concat("cat_ab", &[a, bb]).unwrap();
    let p = b.conv2d("p", x, Conv2dSpec::new(4, 3).padding(1)).unwrap();
    let q = b.conv2d("q", x, Conv2dSpec::new(6, 1)).unwrap();
    let pq = b.concat("cat_pq", &[p, q]).unwrap();
    let s = b.add("add_s", &[ab, pq]).unwrap();
    let d = b.conv2d("d", s, Conv2dSpec::new(5, 3).padding(1)).unwrap();
    let d = b.batch_norm("bn_d", d).unwrap();
    let d = b.relu("relu_d", d).unwrap();
    let e = b.concat("cat_e", &[s, d]).unwrap();
    let e = b.max_pool2d("pool", e, 2, 2).unwrap();
    let e = b.flatten("flatten", e).unwrap();
    let e = b.linear("fc1", e, 7).unwrap();
    let e = b.relu("relu1", e).unwrap();
    let out = b.linear("fc2", e, 3).unwrap();
    b.build(out).unwrap()
}

/// A MobileNet-style net: stem, two depthwise-separable blocks (one strided), an inverted
/// residual add around a depthwise conv, global pooling and a classifier.
///
/// ```text
/// input 3x16x16 -> stem (3x3 s2, 8) -> bn0 -> relu0                                  8x8
///   -> dw1 (3x3 dw) -> bn1 -> relu1 -> pw1 (1x1, 12) -> bn2 -> relu2                  8x8
///   -> dw2 (3x3 s2 dw) -> bn3 -> relu3 -> pw2 (1x1, 16, no bias) -> bn4 -> relu4       4x4
///   -> dw3 (3x3 dw) -> bn5 -> add (with relu4) -> gap -> flatten -> fc (5)
/// ```
pub fn depthwise_net(device: &Device, seed: u64) -> Graph {
    let mut b = GraphBuilder::new(FeatureShape::spatial(3, 16, 16), device).seed(seed);
    let x = b
        .conv2d(
            "stem",
            b.input(),
            Conv2dSpec::new(8, 3).stride(2).padding(1),
        )
        .unwrap();
    let x = b.batch_norm("bn0", x).unwrap();
    let x = b.relu("relu0", x).unwrap();
    let x = b
        .conv2d("dw1", x, Conv2dSpec::new(8, 3).padding(1).groups(8))
        .unwrap();
    let x = b.batch_norm("bn1", x).unwrap();
    let x = b.relu("relu1", x).unwrap();
    let x = b.conv2d("pw1", x, Conv2dSpec::new(12, 1)).unwrap();
    let x = b.batch_norm("bn2", x).unwrap();
    let x = b.relu("relu2", x).unwrap();
    let x = b
        .conv2d(
            "dw2",
            x,
            Conv2dSpec::new(12, 3).stride(2).padding(1).groups(12),
        )
        .unwrap();
    let x = b.batch_norm("bn3", x).unwrap();
    let x = b.relu("relu3", x).unwrap();
    let x = b
        .conv2d("pw2", x, Conv2dSpec::new(16, 1).no_bias())
        .unwrap();
    let x = b.batch_norm("bn4", x).unwrap();
    let r = b.relu("relu4", x).unwrap();
    let y = b
        .conv2d(
            "dw3",
            r,
            Conv2dSpec::new(16, 3).padding(1).groups(16).no_bias(),
        )
        .unwrap();
    let y = b.batch_norm("bn5", y).unwrap();
    let s = b.add("add", &[y, r]).unwrap();
    let s = b.global_avg_pool("gap", s).unwrap();
    let s = b.flatten("flatten", s).unwrap();
    let out = b.linear("fc", s, 5).unwrap();
    b.build(out).unwrap()
}

/// A grouped (not depthwise) convolution between two ordinary ones.
///
/// ```text
/// input 4x6x6 -> c1 (3x3, 8) -> relu1 -> g (3x3, 12, groups 4) -> relu2 -> c2 (1x1, 6)
///   -> gap -> flatten -> fc (2)
/// ```
pub fn grouped_net(device: &Device, seed: u64) -> Graph {
    let mut b = GraphBuilder::new(FeatureShape::spatial(4, 6, 6), device).seed(seed);
    let x = b
        .conv2d("c1", b.input(), Conv2dSpec::new(8, 3).padding(1))
        .unwrap();
    let x = b.relu("relu1", x).unwrap();
    let x = b
        .conv2d("g", x, Conv2dSpec::new(12, 3).padding(1).groups(4))
        .unwrap();
    let x = b.relu("relu2", x).unwrap();
    let x = b.conv2d("c2", x, Conv2dSpec::new(6, 1)).unwrap();
    let x = b.global_avg_pool("gap", x).unwrap();
    let x = b.flatten("flatten", x).unwrap();
    let out = b.linear("fc", x, 2).unwrap();
    b.build(out).unwrap()
}

/// RegNet's and ResNeXt's grouped convolution: as many inputs as outputs (12) in 3 groups of
/// 4, between two plain convolutions, with batch norms.
pub fn square_grouped_net(device: &Device, seed: u64) -> Graph {
    let mut b = GraphBuilder::new(FeatureShape::spatial(4, 6, 6), device).seed(seed);
    let x = b.conv2d("c1", b.input(), Conv2dSpec::new(12, 1)).unwrap();
    let x = b.batch_norm("bn1", x).unwrap();
    let x = b.relu("relu1", x).unwrap();
    let x = b
        .conv2d("g", x, Conv2dSpec::new(12, 3).padding(1).groups(3))
        .unwrap();
    let x = b.batch_norm("bn2", x).unwrap();
    let x = b.relu("relu2", x).unwrap();
    let x = b.conv2d("c2", x, Conv2dSpec::new(6, 1)).unwrap();
    let x = b.global_avg_pool("gap", x).unwrap();
    let x = b.flatten("flatten", x).unwrap();
    let out = b.linear("fc", x, 2).unwrap();
    b.build(out).unwrap()
}

/// An add of a concat `[a (2), b (2)]` and a single conv `d (4)`: the concat's parts tie
/// with `d`'s channel ranges, so `a`, `b` and `d` form one group; `e` is another.
pub fn misaligned_net(device: &Device, seed: u64) -> Graph {
    let mut b = GraphBuilder::new(FeatureShape::spatial(3, 5, 5), device).seed(seed);
    let x = b.input();
    let a = b.conv2d("a", x, Conv2dSpec::new(2, 1)).unwrap();
    let bb = b.conv2d("b", x, Conv2dSpec::new(2, 1)).unwrap();
    let c = b.concat("cat", &[a, bb]).unwrap();
    let d = b.conv2d("d", x, Conv2dSpec::new(4, 1)).unwrap();
    let s = b.add("add", &[c, d]).unwrap();
    let e = b.conv2d("e", s, Conv2dSpec::new(5, 3)).unwrap();
    let e = b.relu("relu", e).unwrap();
    let e = b.global_avg_pool("gap", e).unwrap();
    let e = b.flatten("flatten", e).unwrap();
    let out = b.linear("fc", e, 2).unwrap();
    b.build(out).unwrap()
}

/// Flat layers after a flatten: average pooling with padding, a flatten, a batch norm over
/// features, dropout, identity, and a linear layer; the conv's channels become blocks of 9
/// features.
///
/// ```text
/// input 2x6x6 -> conv (3x3 pad 1, 4) -> avg (2x2) -> relu -> flatten (36) -> bn (36)
///   -> dropout -> fc1 (8) -> relu1 -> identity -> fc2 (3)
/// ```
pub fn flat_net(device: &Device, seed: u64) -> Graph {
    let mut b = GraphBuilder::new(FeatureShape::spatial(2, 6, 6), device).seed(seed);
    let x = b
        .conv2d("conv", b.input(), Conv2dSpec::new(4, 3).padding(1))
        .unwrap();
    let x = b.avg_pool2d("avg", x, 2, 2).unwrap();
    let x = b.relu("relu", x).unwrap();
    let x = b.flatten("flatten", x).unwrap();
    let x = b.batch_norm("bn", x).unwrap();
    let x = b.dropout("dropout", x, 0.3).unwrap();
    let x = b.linear("fc1", x, 8).unwrap();
    let x = b.relu("relu1", x).unwrap();
    let x = b.identity("identity", x).unwrap();
    let out = b.linear("fc2", x, 3).unwrap();
    b.build(out).unwrap()
}
