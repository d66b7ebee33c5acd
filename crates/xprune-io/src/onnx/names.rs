//! Node names: ONNX names kept recognisable, made safe and unique for an xprune graph.

use std::collections::HashSet;

/// Turns ONNX names into unique xprune node names.
///
/// Letters, digits and `_ . - / :` are kept (so PyTorch names such as
/// `/features/features.0/Conv` stay as they are); any other character becomes `_`. An empty
/// name becomes `<op>_<index>` (op type in lower case, index of the ONNX node). A name already
/// taken gets a `_2`, `_3`, ... suffix.
#[derive(Debug, Default)]
pub(crate) struct NameTable {
    taken: HashSet<String>,
}

impl NameTable {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// A unique name for the ONNX node `index` of type `op` called `name`.
    pub fn assign(&mut self, name: &str, op: &str, index: usize) -> String {
        let base = sanitise(name);
        let base = if base.is_empty() {
            format!("{}_{index}", op.to_ascii_lowercase())
        } else {
            base
        };
        let mut candidate = base.clone();
        let mut k = 2;
        while self.taken.contains(&candidate) {
            candidate = format!("{base}_{k}");
            k += 1;
        }
        self.taken.insert(candidate.clone());
        candidate
    }
}

/// Replaces characters outside `[A-Za-z0-9_.\-/:]` by `_` and trims surrounding whitespace.
pub(crate) fn sanitise(name: &str) -> String {
    name.trim()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | '/' | ':') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_sanitised_and_unique() {
        let mut t = NameTable::new();
        assert_eq!(
            t.assign("/features/features.0/Conv", "Conv", 0),
            "/features/features.0/Conv"
        );
        assert_eq!(t.assign("a b\n", "Relu", 1), "a_b");
        assert_eq!(t.assign("", "Relu", 2), "relu_2");
        assert_eq!(t.assign("a b", "Relu", 3), "a_b_2");
        assert_eq!(t.assign("a_b", "Relu", 4), "a_b_3");
        assert_eq!(t.assign("ünï", "Relu", 5), "_n_");
    }
}
