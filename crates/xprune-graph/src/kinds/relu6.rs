//! `relu6`: Burn's `min(max(x, 0), 6)` (`burn::nn::activation::Relu6`), as in MobileNetV2; ONNX
//! `Clip(x, 0, 6)`.

use crate::builder::GraphBuilder;
use crate::graph::NodeId;

use crate::kind::Imported;
use crate::kinds::hardtanh::{clip_bounds, export_clip};

activation_kind! {
    /// Hyper-parameters of a ReLU6 (none).
    Relu6Op for burn::nn::activation::Relu6, name "relu6", onnx "Clip",
    forward |t| burn::tensor::activation::relu6(t),
    nonnegative |_inputs| true,
    new burn::nn::activation::Relu6,
    import |node| {
        let (x, bounds) = match (node.act(0, "input"), clip_bounds(node)) {
            (Ok((x, _)), Ok(b)) => (x, b),
            // errors are the general clip's to report
            _ => return None,
        };
        (bounds == (0.0, 6.0)).then(|| {
            Ok(Imported::Node {
                layer: crate::Layer::Relu6(burn::nn::activation::Relu6),
                inputs: vec![x],
            })
        })
    },
    export |_s, w| {
        export_clip(w, 0.0, 6.0);
        Ok(())
    }
}

impl GraphBuilder {
    /// Adds a ReLU6.
    pub fn relu6(&mut self, name: impl Into<String>, input: NodeId) -> crate::Result<NodeId> {
        self.add_op(name, Relu6Op {}, &[input])
    }
}
