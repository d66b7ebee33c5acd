//! Hand-checked group structures: residual groups, concat offsets, flatten blocks, depthwise
//! carriers and every pin reason.

use super::nets::{concat_net, depthwise_net, grouped_net, misaligned_net, square_grouped_net};
use crate::{ChannelGroups, ChannelSlot, PinReason, Role, SurgeryError};
use burn::tensor::Device;
use xprune_graph::{FeatureShape, Graph};
use xprune_models::{ResNetCifarDepth, lenet5, mlp, resnet_cifar};

fn names(graph: &Graph, nodes: &[usize]) -> Vec<String> {
    nodes.iter().map(|&n| graph.name(n).to_string()).collect()
}

fn slots(graph: &Graph, slots: &[ChannelSlot]) -> Vec<(String, usize, usize)> {
    slots
        .iter()
        .map(|s| {
            let (offset, block) = s.positions.strided().expect("contiguous slot");
            (graph.name(s.node).to_string(), offset, block)
        })
        .collect()
}

fn slot(name: &str, offset: usize, block: usize) -> (String, usize, usize) {
    (name.to_string(), offset, block)
}

#[test]
fn resnet20_has_one_group_per_stage_and_one_per_block() {
    let g = resnet_cifar(
        ResNetCifarDepth::ResNet20,
        FeatureShape::spatial(3, 32, 32),
        10,
        0.25,
        &Device::flex(),
        1,
    )
    .unwrap();
    let groups = ChannelGroups::new(&g);
    // input + stem/stage 1 + 9 inner + stage 2 + stage 3 + classifier
    assert_eq!(groups.len(), 14, "{groups}");
    assert_eq!(groups.prunable().count(), 12);

    let stage1 = groups.find("conv1").unwrap();
    assert_eq!(stage1.channels(), 4);
    assert_eq!(
        names(&g, &stage1.producers()),
        [
            "conv1",
            "layer1.0.conv2",
            "layer1.1.conv2",
            "layer1.2.conv2"
        ]
    );
    let consumers: Vec<String> = stage1
        .consumers()
        .iter()
        .map(|s| g.name(s.node).to_string())
        .collect();
    assert_eq!(
        consumers,
        [
            "layer1.0.conv1",
            "layer1.1.conv1",
            "layer1.2.conv1",
            "layer2.0.conv1",
            "layer2.0.shortcut.0"
        ]
    );
    let carriers: Vec<String> = stage1
        .carriers()
        .iter()
        .map(|s| g.name(s.node).to_string())
        .collect();
    assert!(carriers.contains(&"bn1".to_string()));
    assert!(carriers.contains(&"layer1.2.add".to_string()));
    assert!(carriers.contains(&"layer1.2.relu2".to_string()));
    assert!(!carriers.contains(&"layer1.0.relu1".to_string()));

    let stage2 = groups.find("layer2.0.conv2").unwrap();
    assert_eq!(
        names(&g, &stage2.producers()),
        [
            "layer2.0.conv2",
            "layer2.0.shortcut.0",
            "layer2.1.conv2",
            "layer2.2.conv2"
        ]
    );
    let stage3 = groups.find("layer3.0.conv2").unwrap();
    let fc = g.find("fc").unwrap();
    assert!(stage3.members().iter().any(|m| m.role == Role::Consumer
        && m.node() == fc
        && m.slot.positions.strided() == Some((0, 1))));

    let inner = groups.find("layer2.1.conv1").unwrap();
    assert_eq!(inner.channels(), 8);
    assert_eq!(names(&g, &inner.producers()), ["layer2.1.conv1"]);
    assert_eq!(
        slots(&g, &inner.carriers()),
        [slot("layer2.1.bn1", 0, 1), slot("layer2.1.relu1", 0, 1)]
    );
    assert_eq!(
        slots(&g, &inner.consumers()),
        [slot("layer2.1.conv2", 0, 1)]
    );

    let head = groups.find("fc").unwrap();
    assert_eq!(head.pins(), [PinReason::Output { node: "fc".into() }]);
    let input = groups.find("input").unwrap();
    assert_eq!(
        input.pins(),
        [PinReason::Input {
            node: "input".into()
        }]
    );
    assert_eq!(
        (input.members()[0].role, input.members()[0].node()),
        (Role::Fixed, 0)
    );

    // Lookups by node.
    let conv = g.find("layer1.1.conv2").unwrap();
    assert_eq!(groups.group_of(conv).unwrap().name(), "conv1");
    let add = g.find("layer1.1.add").unwrap();
    let at = groups.groups_at(add);
    assert_eq!(at.len(), 1);
    assert_eq!((at[0].0, at[0].1.node), (stage1.id(), add));
    assert_eq!(at[0].1.positions.strided(), Some((0, 1)));
    // Masking the group means masking its producers and carriers.
    assert_eq!(
        stage1.mask_nodes().len(),
        stage1.producers().len() + stage1.carriers().len()
    );
}

#[test]
fn concat_offsets_and_flatten_blocks() {
    let g = concat_net(&Device::flex(), 1);
    let groups = ChannelGroups::new(&g);
    let a = groups.find("a").unwrap();
    assert_eq!(a.channels(), 4);
    assert_eq!(names(&g, &a.producers()), ["a", "p"]);
    assert_eq!(
        slots(&g, &a.carriers()),
        [
            slot("bn_a", 0, 1),
            slot("relu_a", 0, 1),
            slot("cat_ab", 0, 1),
            slot("cat_pq", 0, 1),
            slot("add_s", 0, 1),
            slot("cat_e", 0, 1),
            slot("pool", 0, 1),
            slot("flatten", 0, 16),
        ]
    );
    assert_eq!(
        slots(&g, &a.consumers()),
        [slot("d", 0, 1), slot("fc1", 0, 16)]
    );

    let b = groups.find("b").unwrap();
    assert_eq!(names(&g, &b.producers()), ["b", "q"]);
    assert_eq!(
        slots(&g, &b.carriers()),
        [
            slot("relu_b", 0, 1),
            slot("cat_ab", 4, 1),
            slot("cat_pq", 4, 1),
            slot("add_s", 4, 1),
            slot("cat_e", 4, 1),
            slot("pool", 4, 1),
            slot("flatten", 64, 16),
        ]
    );
    assert_eq!(
        slots(&g, &b.consumers()),
        [slot("d", 4, 1), slot("fc1", 64, 16)]
    );

    let d = groups.find("d").unwrap();
    assert_eq!(slots(&g, &d.consumers()), [slot("fc1", 160, 16)]);
    assert_eq!(groups.find("p"), None, "p belongs to group `a`");
    // The concat output holds three groups; slot indices follow offset and block.
    let flatten = g.find("flatten").unwrap();
    let at: Vec<(String, usize)> = groups
        .groups_at(flatten)
        .into_iter()
        .map(|(id, s)| (groups.get(id).unwrap().name().to_string(), s.offset()))
        .collect();
    assert_eq!(
        at,
        [
            ("a".to_string(), 0),
            ("b".to_string(), 64),
            ("d".to_string(), 160)
        ]
    );
    let (_, b_at_flatten) = groups
        .groups_at(flatten)
        .into_iter()
        .find(|(id, _)| groups.get(*id).unwrap().name() == "b")
        .unwrap();
    assert_eq!(
        b_at_flatten.indices(2).collect::<Vec<_>>(),
        (96..112).collect::<Vec<_>>()
    );
    let _: Option<ChannelSlot> = None;
}

#[test]
fn lenet_flatten_maps_channels_to_blocks_of_positions() {
    let g = lenet5(FeatureShape::spatial(1, 28, 28), 10, &Device::flex(), 1).unwrap();
    let groups = ChannelGroups::new(&g);
    let conv2 = groups.find("conv2").unwrap();
    assert_eq!(slots(&g, &conv2.consumers()), [slot("fc1", 0, 25)]);
    assert_eq!(
        groups
            .prunable()
            .map(|g| g.name().to_string())
            .collect::<Vec<_>>(),
        ["conv1", "conv2", "fc1", "fc2"]
    );
}

#[test]
fn depthwise_convs_carry_their_input_group() {
    let g = depthwise_net(&Device::flex(), 1);
    let groups = ChannelGroups::new(&g);
    let stem = groups.find("stem").unwrap();
    assert_eq!(names(&g, &stem.producers()), ["stem"]);
    assert!(slots(&g, &stem.carriers()).contains(&slot("dw1", 0, 1)));
    assert_eq!(slots(&g, &stem.consumers()), [slot("pw1", 0, 1)]);
    // The residual add around dw3 keeps one group for pw2, dw3 and the add.
    let pw2 = groups.find("pw2").unwrap();
    let carriers: Vec<String> = pw2
        .carriers()
        .iter()
        .map(|s| g.name(s.node).to_string())
        .collect();
    assert_eq!(
        carriers,
        ["bn4", "relu4", "dw3", "bn5", "add", "gap", "flatten"]
    );
    assert_eq!(groups.find("dw1"), None);
    assert_eq!(groups.prunable().count(), 3);
}

#[test]
fn grouped_convs_with_uneven_groups_are_pinned_on_both_sides() {
    let g = grouped_net(&Device::flex(), 1);
    let groups = ChannelGroups::new(&g);
    let c1 = groups.find("c1").unwrap();
    assert!(
        matches!(c1.pins(), [PinReason::Layer { node, reason }] if node == "g" && reason.contains("read by a grouped convolution")),
        "{:?}",
        c1.pins()
    );
    let grouped = groups.find("g").unwrap();
    assert!(
        matches!(grouped.pins(), [PinReason::Layer { node, reason }] if node == "g" && reason.contains("output of a grouped convolution")),
        "{:?}",
        grouped.pins()
    );
    assert_eq!(grouped.members()[0].role, Role::Fixed);
    assert_eq!(grouped.members()[0].node(), g.find("g").unwrap());
    assert!(groups.find("c2").unwrap().is_prunable());
}

#[test]
fn grouped_convs_with_square_groups_carry_whole_groups() {
    let g = square_grouped_net(&Device::flex(), 1);
    let groups = ChannelGroups::new(&g);
    // c1 has 12 outputs; the grouped conv has 3 groups of 4: the group has 3 units.
    let c1 = groups.find("c1").unwrap();
    assert!(c1.is_prunable(), "{groups}");
    assert_eq!(c1.channels(), 3);
    let carriers: Vec<String> = c1
        .carriers()
        .iter()
        .map(|s| g.name(s.node).to_string())
        .collect();
    assert!(carriers.contains(&"g".to_string()), "{carriers:?}");
    // unit k is channels 4k..4k+4 at every member
    let at_g = c1
        .carriers()
        .into_iter()
        .find(|s| g.name(s.node) == "g")
        .unwrap();
    assert_eq!(at_g.indices(1).collect::<Vec<_>>(), [4, 5, 6, 7]);
    assert_eq!(at_g.positions.strided(), Some((0, 4)));
}

#[test]
fn an_add_of_a_concat_and_a_conv_ties_the_matching_channel_ranges() {
    let g = misaligned_net(&Device::flex(), 1);
    let groups = ChannelGroups::new(&g);
    // a (2) and b (2) concatenated are added to d (4): a's channels are d's first two, b's
    // the last two, so a, b and d form one group of 4 channels.
    let a = groups.find("a").unwrap();
    assert!(a.is_prunable(), "{groups}");
    assert_eq!(a.channels(), 4);
    assert_eq!(names(&g, &a.producers()), ["a", "b", "d"]);
    assert_eq!(groups.find("b"), None);
    assert_eq!(groups.find("d"), None);
    let at_b = a
        .members()
        .iter()
        .find(|m| g.name(m.node()) == "b")
        .unwrap();
    assert_eq!(at_b.slot.indices(2).collect::<Vec<_>>(), [0]);
    assert_eq!(at_b.slot.indices(0).count(), 0);
    assert!(groups.find("e").unwrap().is_prunable());
}

#[test]
fn output_and_user_pins() {
    let device = Device::flex();
    let g = mlp(8, &[6, 5], 3, &device, 1).unwrap();
    let groups = ChannelGroups::new(&g);
    assert!(groups.find("fc1").unwrap().is_prunable());
    assert_eq!(
        groups.find("fc3").unwrap().pins(),
        [PinReason::Output { node: "fc3".into() }]
    );

    // Pinning a carrier pins the group it carries.
    let pinned = ChannelGroups::with_pinned(&g, &["relu1"]).unwrap();
    assert_eq!(
        pinned.find("fc1").unwrap().pins(),
        [PinReason::User {
            node: "relu1".into()
        }]
    );
    assert!(pinned.find("fc2").unwrap().is_prunable());

    let err = ChannelGroups::with_pinned(&g, &["fc9"]).unwrap_err();
    assert!(
        matches!(&err, SurgeryError::UnknownNode { name, .. } if name == "fc9"),
        "{err}"
    );
    assert!(err.to_string().contains("fc9"));
}

#[test]
fn listing_names_groups_members_and_pins() {
    let g = concat_net(&Device::flex(), 1);
    let listing = ChannelGroups::new(&g).listing();
    assert!(
        listing.starts_with("6 channel groups (4 prunable, 2 pinned)"),
        "{listing}"
    );
    assert!(
        listing.contains("#1   a  4 channels  prunable"),
        "{listing}"
    );
    assert!(listing.contains("producers  a, p"), "{listing}");
    assert!(listing.contains("flatten@64x16"), "{listing}");
    assert!(listing.contains("consumers  d@4, fc1@64x16"), "{listing}");
    assert!(
        listing.contains("pinned: its channels reach the graph output `fc2`"),
        "{listing}"
    );
}

#[test]
fn groups_serialise() {
    let g = concat_net(&Device::flex(), 1);
    let groups = ChannelGroups::new(&g);
    let json = serde_json::to_string(&groups).unwrap();
    let back: ChannelGroups = serde_json::from_str(&json).unwrap();
    assert_eq!(back, groups);
    back.check(&g).unwrap();
}

fn cifar_shape() -> FeatureShape {
    FeatureShape::spatial(3, 32, 32)
}

#[test]
fn squeeze_excitation_gates_join_the_group_they_scale() {
    let g = xprune_models::mobilenet_v3_like(cifar_shape(), 10, 0.5, &Device::flex(), 1).unwrap();
    let groups = ChannelGroups::new(&g);
    let expand = groups.find("blocks.1.expand.conv").unwrap();
    assert!(expand.is_prunable(), "{groups}");
    // the excitation's expansion produces the gate, which the product ties to the map
    assert_eq!(
        names(&g, &expand.producers()),
        ["blocks.1.expand.conv", "blocks.1.se.fc2"]
    );
    let carriers: Vec<String> = expand
        .carriers()
        .iter()
        .map(|s| g.name(s.node).to_string())
        .collect();
    for c in [
        "blocks.1.dw.conv",
        "blocks.1.se.gate",
        "blocks.1.se.scale",
        "blocks.1.se.avgpool",
    ] {
        assert!(carriers.contains(&c.to_string()), "{c} in {carriers:?}");
    }
    let consumers: Vec<String> = expand
        .consumers()
        .iter()
        .map(|s| g.name(s.node).to_string())
        .collect();
    assert_eq!(consumers, ["blocks.1.se.fc1", "blocks.1.project.conv"]);
    // the reduction inside the excitation is a group of its own
    let fc1 = groups.find("blocks.1.se.fc1").unwrap();
    assert_eq!(names(&g, &fc1.producers()), ["blocks.1.se.fc1"]);
    assert!(fc1.is_prunable());
}

#[test]
fn channel_splits_and_shuffles_follow_each_channel() {
    let g = xprune_models::shufflenet_like(cifar_shape(), 10, 0.5, &Device::flex(), 3).unwrap();
    let groups = ChannelGroups::new(&g);
    let left = groups.find("unit0.left.pw.conv").unwrap();
    assert!(left.is_prunable(), "{groups}");
    // after the shuffle, the left branch's channels sit at the even indices
    let at = |node: &str| {
        left.members()
            .iter()
            .find(|m| g.name(m.node()) == node && !m.is_consumer())
            .map(|m| m.slot.clone())
    };
    let shuffle = at("unit0.shuffle").unwrap();
    assert_eq!(shuffle.indices(1).collect::<Vec<_>>(), [2]);
    // the first half of the shuffled channels (the next unit's kept half) holds half of them
    let keep = at("unit1.split0").unwrap();
    let held: Vec<usize> = (0..left.channels())
        .filter(|&k| keep.indices(k).count() > 0)
        .collect();
    assert_eq!(held.len(), left.channels().div_ceil(2));
    // and the other half is read by the next unit's first convolution
    let consumers: Vec<String> = left
        .consumers()
        .iter()
        .map(|s| g.name(s.node).to_string())
        .collect();
    assert!(
        consumers.contains(&"unit1.pw1.conv".to_string()),
        "{consumers:?}"
    );
}

#[test]
fn layer_norms_pin_the_channels_they_normalise_unless_allowed() {
    let g = xprune_models::convnext_like(cifar_shape(), 10, 1.0, &Device::flex(), 5).unwrap();
    let groups = ChannelGroups::new(&g);
    let stem = groups.find("stem.conv").unwrap();
    assert!(
        stem.pins()
            .iter()
            .any(|p| matches!(p, PinReason::Layer { reason, .. } if reason.contains("layer_norm"))),
        "{:?}",
        stem.pins()
    );
    // the MLP's hidden channels are free
    let hidden = groups.find("stage0.0.pwconv1").unwrap();
    assert!(hidden.is_prunable());
    assert_eq!(hidden.channels(), 32);
    assert_eq!(
        hidden
            .consumers()
            .iter()
            .map(|s| g.name(s.node).to_string())
            .collect::<Vec<_>>(),
        ["stage0.0.pwconv2"]
    );
    // allowed: the stream's channels become prunable too
    let options = crate::GroupOptions {
        prune_normalized: true,
        ..Default::default()
    };
    let free = ChannelGroups::with_options(&g, &options);
    assert!(free.find("stem.conv").unwrap().is_prunable(), "{free}");
    // Only the groups the norms read changed status.
    let newly: Vec<&str> = free
        .prunable()
        .filter(|f| !groups.find(f.name()).unwrap().is_prunable())
        .map(|f| f.name())
        .collect();
    assert_eq!(newly, ["stem.conv", "down1.conv"]);
    // Pruning through the norms gives a smaller model that runs, with the predicted counts,
    // whose norms have fewer channels.
    let plan = crate::PrunePlan::new()
        .remove("stem.conv", [0, 5])
        .remove("down1.conv", [1, 2, 3]);
    let pruned = crate::prune(&g, &free, &plan).unwrap();
    let resolved = plan.resolve(&free).unwrap();
    let (predicted, real) = (
        crate::count_after(&g, &free, &resolved),
        crate::count(&pruned),
    );
    assert_eq!((predicted.params, predicted.macs), (real.params, real.macs));
    let norm = pruned.find("stem.norm").unwrap();
    assert_eq!(pruned.nodes()[norm].shape.channels(), 6);
    let x = burn::tensor::Tensor::<4>::random(
        [2, 3, 32, 32],
        burn::tensor::Distribution::Normal(0.0, 1.0),
        &Device::flex(),
    );
    let out = pruned.forward(x).unwrap().to_vec();
    assert_eq!(out.len(), 20);
    assert!(out.iter().all(|v| v.is_finite()));
    // The same plan is refused without the option: the groups are pinned.
    assert!(crate::prune(&g, &groups, &plan).is_err());
}
