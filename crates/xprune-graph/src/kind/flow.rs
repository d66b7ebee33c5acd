//! How channels flow through a kind ([`ChannelFlow`]), and what surgery asks a kind to remove
//! ([`ChannelCut`]).

/// Whether a set of channels may lose members.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Pin {
    /// Channels may be removed.
    Free,
    /// Channels must stay; the message says why (it ends up in the group listing).
    Pinned(String),
}

/// How a kind maps its input channels to its output channels, in terms of the channel axis of
/// each layout (features of flat values).
///
/// The coupling analysis of the surgery crate follows these rules: every channel of a
/// `Source` or `Mix` output is a new channel; the other flows carry the channels of their
/// inputs; channels that must be removed together (the same channel reaching an add through
/// two paths, the channels of one group of a grouped convolution) form one prunable unit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChannelFlow {
    /// The graph input: new channels that cannot be removed.
    Source,
    /// Every output channel mixes input channels (convolution, linear layer): the output
    /// channels are new, and input channels can be removed from the layer's inputs.
    Mix {
        /// Whether the output channels may be removed.
        output: Pin,
        /// Whether the channels the layer reads may be removed (from its inputs).
        input: Pin,
    },
    /// Output channel `k` is channel `k` of every input (activations, batch norm, pooling,
    /// depthwise convolutions, adds, element-wise products; inputs of several are tied
    /// channel by channel). Channels move in aligned blocks of `unit` (a grouped convolution
    /// with as many inputs as outputs loses whole groups); `unit` is 1 otherwise.
    Elementwise {
        /// Channels per removable block.
        unit: usize,
    },
    /// Output channel `k` is channel `route[k].1` of input `route[k].0` (concatenation,
    /// slices, permutations, channel shuffle, flatten). Its length is the output's channel
    /// count.
    Route(Vec<(usize, usize)>),
    /// Output channel `k` is channel `k` of input 0, but every output depends on all channels
    /// (layer norm over channels, softmax): removing channels changes the values of the
    /// others, so the channels are pinned unless the user allows pruning through
    /// normalisations (then the pruned model differs from the masked one).
    Normalize,
}

/// The channels a plan removes around one node, as sorted indices along the channel axis
/// (features of flat values): from each input and from the output.
#[derive(Clone, Debug)]
pub struct ChannelCut<'a> {
    /// Per-sample shapes of the inputs before removal.
    pub inputs: &'a [crate::FeatureShape],
    /// Per-sample shape of the output before removal.
    pub output: crate::FeatureShape,
    /// Removed channel indices of each input.
    pub removed_inputs: Vec<&'a [usize]>,
    /// Removed channel indices of the output.
    pub removed_output: &'a [usize],
}

impl ChannelCut<'_> {
    /// The kept channel indices of input `i`.
    pub fn kept_input(&self, i: usize) -> Vec<usize> {
        complement(
            self.removed_inputs.get(i).copied().unwrap_or(&[]),
            self.inputs.get(i).map_or(0, |s| s.channels()),
        )
    }

    /// The kept output channel indices.
    pub fn kept_output(&self) -> Vec<usize> {
        complement(self.removed_output, self.output.channels())
    }

    /// Whether input `i` loses channels.
    pub fn input_changed(&self, i: usize) -> bool {
        self.removed_inputs.get(i).is_some_and(|r| !r.is_empty())
    }

    /// Whether any input or the output loses channels.
    pub fn is_empty(&self) -> bool {
        self.removed_output.is_empty() && self.removed_inputs.iter().all(|r| r.is_empty())
    }

    /// Checks that every input loses exactly the output's channels (element-wise kinds).
    pub fn check_elementwise(&self) -> Result<(), String> {
        for (i, r) in self.removed_inputs.iter().enumerate() {
            if *r != self.removed_output {
                return Err(format!(
                    "input {i} loses channels {r:?} but the output loses {:?}; an element-wise \
                     layer loses the same channels on every side",
                    self.removed_output
                ));
            }
        }
        Ok(())
    }
}

/// The indices of `0..len` that are not in the sorted list `removed`.
pub fn complement(removed: &[usize], len: usize) -> Vec<usize> {
    let mut out = Vec::with_capacity(len.saturating_sub(removed.len()));
    let mut r = removed.iter().peekable();
    for i in 0..len {
        while r.peek().is_some_and(|&&x| x < i) {
            r.next();
        }
        if r.peek() == Some(&&i) {
            r.next();
        } else {
            out.push(i);
        }
    }
    out
}
