//! Plan validation errors name the group and index, and leave the graph untouched; plans
//! serialise.

use super::nets::concat_net;
use super::util::input;
use crate::{ChannelGroups, GroupKey, PrunePlan, SurgeryError, prune};
use burn::module::Module;
use burn::tensor::Device;
use xprune_models::mlp;

fn setup() -> (xprune_graph::Graph, ChannelGroups) {
    let g = concat_net(&Device::flex(), 3);
    let groups = ChannelGroups::new(&g);
    (g, groups)
}

/// Runs the plan through prune and masks; both must fail with the same message, and the
/// graph must be unchanged.
fn fails(plan: PrunePlan) -> SurgeryError {
    let (g, groups) = setup();
    let device = Device::flex();
    let x = input(g.input_shape(), 2, 1, &device);
    let before = g.forward(x.clone()).unwrap().to_vec();
    let err = prune(&g, &groups, &plan).unwrap_err();
    let mask_err = plan.masks(&g, &groups, &device).unwrap_err();
    assert_eq!(err.to_string(), mask_err.to_string());
    assert_eq!(g.forward(x).unwrap().to_vec(), before);
    err
}

#[test]
fn unknown_group_by_name_and_id() {
    let err = fails(PrunePlan::new().remove("fc", [0]));
    assert!(
        matches!(&err, SurgeryError::UnknownGroup { group, .. } if group == "`fc`"),
        "{err}"
    );
    assert!(err.to_string().contains("did you mean fc1, fc2?"), "{err}");
    let err = fails(PrunePlan::new().remove(17usize, [0]));
    assert_eq!(
        err.to_string(),
        "unknown channel group #17 (there are 6 groups, #0..#5)"
    );
}

#[test]
fn pinned_group() {
    let err = fails(PrunePlan::new().remove("fc2", [1]));
    assert_eq!(
        err.to_string(),
        "channel group `fc2` cannot be pruned: its channels reach the graph output `fc2`"
    );
    // An empty entry for a pinned group removes nothing and is accepted.
    let (g, groups) = setup();
    let same = prune(&g, &groups, &PrunePlan::new().remove("fc2", [])).unwrap();
    assert_eq!(same.num_params(), g.num_params());
}

#[test]
fn index_out_of_range() {
    let err = fails(PrunePlan::new().remove("a", [1, 4]));
    assert_eq!(
        err.to_string(),
        "channel group `a`: channel index 4 is out of range (the group has 4 channels)"
    );
}

#[test]
fn duplicate_index() {
    let err = fails(PrunePlan::new().remove("b", [3, 1, 3]));
    assert!(
        matches!(err, SurgeryError::DuplicateIndex { ref group, index: 3 } if group == "b"),
        "{err}"
    );
}

#[test]
fn removing_every_channel() {
    let err = fails(PrunePlan::new().remove("d", [4, 3, 2, 1, 0]));
    assert_eq!(
        err.to_string(),
        "channel group `d`: the plan removes all 5 channels; at least one must remain"
    );
}

#[test]
fn group_listed_twice() {
    let (_, groups) = setup();
    let id = groups.find("a").unwrap().id();
    let err = fails(PrunePlan::new().remove("a", [0]).remove(id, [1]));
    assert!(
        matches!(err, SurgeryError::DuplicateGroup { ref group } if group == "a"),
        "{err}"
    );
}

#[test]
fn groups_of_another_graph() {
    let device = Device::flex();
    let (g, _) = setup();
    let other = mlp(4, &[3], 2, &device, 1).unwrap();
    let groups = ChannelGroups::new(&other);
    let err = prune(&g, &groups, &PrunePlan::new()).unwrap_err();
    assert!(matches!(err, SurgeryError::GraphMismatch(_)), "{err}");
    // A pruned graph has other shapes than the one its groups came from.
    let (g, groups) = setup();
    let pruned = prune(&g, &groups, &PrunePlan::new().remove("a", [0])).unwrap();
    let err = prune(&pruned, &groups, &PrunePlan::new()).unwrap_err();
    assert!(
        err.to_string()
            .contains("node `a` of shape [3, 8, 8] was `a` of shape [4, 8, 8]"),
        "{err}"
    );
}

#[test]
fn insert_replaces_and_resolve_sorts() {
    let (_, groups) = setup();
    let mut plan = PrunePlan::new().remove("a", [0]);
    plan.insert("a", [3, 1]);
    plan.insert("fc1", []);
    assert_eq!(plan.entries().len(), 2);
    assert_eq!(plan.removed_channels(), 2);
    let resolved = plan.resolve(&groups).unwrap();
    let a = groups.find("a").unwrap();
    assert_eq!(resolved.removed(a.id()), [1, 3]);
    assert_eq!(resolved.kept(a), [0, 2]);
    assert_eq!(resolved.iter().count(), 1);
    assert!(PrunePlan::new().remove("a", []).is_empty());
}

#[test]
fn plan_serialises_with_ids_and_names() {
    let plan = PrunePlan::new().remove("a", [2, 0]).remove(3usize, [1]);
    let json = serde_json::to_string(&plan).unwrap();
    assert_eq!(
        json,
        r#"[{"group":"a","remove":[2,0]},{"group":3,"remove":[1]}]"#
    );
    let back: PrunePlan = serde_json::from_str(&json).unwrap();
    assert_eq!(back, plan);
    assert_eq!(back.entries()[1].group, GroupKey::Id(3));
}
