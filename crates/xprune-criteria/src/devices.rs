//! Splitting a criterion's work across several devices.
//!
//! Criteria whose scores are sums over reference batches (LRP, feature relevance, gradient,
//! Taylor) hand their batches to [`across_devices`], and Shapley hands its permutation walks
//! and coalition chunks to [`stream`]: the pieces are dealt round-robin to the devices of the
//! [`ScoringContext`], each device works in a thread of its own on its own copy of the model,
//! and the results are folded in the pieces' order. Folding them in that order makes the scores
//! independent of the number of devices: bit for bit when the devices are of one kind, within
//! the kernels' float tolerance when they differ (flex with wgpu).

use crate::criterion::ScoringContext;
use crate::error::{CriterionError, Result};
use burn::tensor::Device;

/// Runs `work` on every item on the devices of `ctx` and hands the results to `fold` in item
/// order (see [`stream`]); `setup` prepares a device's state once (typically the graph moved
/// to it). A panic on a device becomes [`CriterionError::Device`].
pub fn across_devices<T, S, R>(
    ctx: &ScoringContext<'_>,
    items: Vec<T>,
    setup: impl Fn(&Device) -> Result<S> + Sync,
    work: impl Fn(&mut S, T) -> Result<R> + Sync,
    fold: impl FnMut(R) -> Result<()>,
) -> Result<()>
where
    T: Send,
    R: Send,
{
    let devices = ctx.devices();
    stream(
        devices.iter().collect(),
        items,
        |device: &Device| setup(device),
        work,
        fold,
        |k, message| CriterionError::Device {
            device: format!("{:?}", devices[k]),
            message,
        },
    )
}

/// Runs `work` on every item with one of `workers` and hands the results to `fold` in item
/// order.
///
/// `setup` turns a worker (a device, a game) into its state, once. With one worker (or one
/// item) everything runs on the calling thread. With several, item `i` goes to worker
/// `i % n`, every worker works through its items in a thread of its own, and the calling
/// thread folds the results in item order as they arrive (a worker runs at most two items
/// ahead of the fold, so memory is bounded by the workers, not the items). Folding in item
/// order makes the outcome independent of the number of workers. The first error in item
/// order is returned and stops the other workers; a worker that panics is reported through
/// `panicked(worker, message)`.
pub fn stream<W, S, T, R, E>(
    workers: Vec<W>,
    items: Vec<T>,
    setup: impl Fn(W) -> std::result::Result<S, E> + Sync,
    work: impl Fn(&mut S, T) -> std::result::Result<R, E> + Sync,
    mut fold: impl FnMut(R) -> std::result::Result<(), E>,
    panicked: impl Fn(usize, String) -> E,
) -> std::result::Result<(), E>
where
    W: Send,
    T: Send,
    R: Send,
    E: Send,
{
    let n = workers.len().min(items.len());
    if n <= 1 {
        let Some(worker) = workers.into_iter().next() else {
            return match items.is_empty() {
                true => Ok(()),
                false => Err(panicked(0, "no worker to run on".into())),
            };
        };
        if items.is_empty() {
            return Ok(());
        }
        let mut state = setup(worker)?;
        for item in items {
            fold(work(&mut state, item)?)?;
        }
        return Ok(());
    }
    let len = items.len();
    let mut shares: Vec<Vec<T>> = (0..n).map(|_| Vec::new()).collect();
    for (i, item) in items.into_iter().enumerate() {
        shares[i % n].push(item);
    }
    let (setup, work) = (&setup, &work);
    std::thread::scope(|scope| {
        let mut channels = Vec::with_capacity(n);
        for (share, worker) in shares.into_iter().zip(workers) {
            let (tx, rx) = std::sync::mpsc::sync_channel(1);
            let handle = scope.spawn(move || {
                let mut state = match setup(worker) {
                    Ok(s) => s,
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        return;
                    }
                };
                for item in share {
                    let out = work(&mut state, item);
                    let failed = out.is_err();
                    // A closed channel means the fold stopped: stop too.
                    if tx.send(out).is_err() || failed {
                        return;
                    }
                }
            });
            channels.push((rx, Some(handle)));
        }
        for i in 0..len {
            let (rx, handle) = &mut channels[i % n];
            match rx.recv() {
                Ok(out) => fold(out?)?,
                Err(_) => {
                    // The worker ended without sending: it panicked.
                    let message = handle
                        .take()
                        .and_then(|h| h.join().err())
                        .map(|panic| {
                            panic
                                .downcast_ref::<String>()
                                .cloned()
                                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                                .unwrap_or_else(|| "the worker thread panicked".into())
                        })
                        .unwrap_or_else(|| "the worker thread stopped".into());
                    return Err(panicked(i % n, message));
                }
            }
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use xprune_graph::Graph;
    use xprune_surgery::ChannelGroups;

    fn tiny() -> (Graph, ChannelGroups) {
        let graph = xprune_models::mlp(4, &[3], 2, &Device::flex(), 0).expect("builds");
        let groups = ChannelGroups::new(&graph);
        (graph, groups)
    }

    #[test]
    fn results_are_folded_in_item_order_on_any_number_of_devices() {
        let (graph, groups) = tiny();
        let device = graph.device();
        for n in 1..5 {
            let devices = vec![device.clone(); n];
            let ctx = ScoringContext::new(&graph, &groups, &device).with_devices(&devices);
            let mut seen = Vec::new();
            across_devices(
                &ctx,
                (0..11).collect(),
                |_| Ok(()),
                |_, i: usize| Ok(i * i),
                |r| {
                    seen.push(r);
                    Ok(())
                },
            )
            .expect("runs");
            assert_eq!(
                seen,
                (0..11).map(|i| i * i).collect::<Vec<_>>(),
                "{n} devices"
            );
        }
    }

    #[test]
    fn the_first_error_in_item_order_is_returned_and_panics_are_named() {
        let (graph, groups) = tiny();
        let device = graph.device();
        let devices = vec![device.clone(); 3];
        let ctx = ScoringContext::new(&graph, &groups, &device).with_devices(&devices);
        let mut folded = 0;
        let err = across_devices(
            &ctx,
            (0..9).collect(),
            |_| Ok(()),
            |_, i: usize| match i {
                4 | 7 => Err(CriterionError::Scores(format!("item {i}"))),
                _ => Ok(i),
            },
            |_| {
                folded += 1;
                Ok(())
            },
        )
        .expect_err("fails");
        assert_eq!(err.to_string(), "scores: item 4");
        assert_eq!(folded, 4);
        let err = across_devices(
            &ctx,
            (0..9).collect(),
            |_| Ok(()),
            |_, i: usize| {
                assert!(i != 5, "worker failed on item {i}");
                Ok(i)
            },
            |_| Ok(()),
        )
        .expect_err("fails");
        assert!(
            matches!(&err, CriterionError::Device { message, .. } if message.contains("item 5")),
            "{err}"
        );
    }
}
