//! `xprune groups`: the channel groups of a model.

use crate::args::{Global, GroupsArgs};
use crate::cmd::device;
use crate::error::Result;
use crate::load;
use xprune::surgery::{ChannelGroups, count};

pub fn run(g: &Global, a: &GroupsArgs) -> Result<()> {
    let dev = device(&g.backend)?;
    let graph = load::model(&a.model.model, &dev)?;
    let groups = ChannelGroups::with_pinned(&graph, &a.pin)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&groups).expect("groups serialise"));
    } else {
        println!("{}", count(&graph));
        print!("{groups}");
    }
    Ok(())
}
