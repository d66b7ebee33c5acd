//! Timing in another runtime: a runner process that times ONNX files on request.

use super::{LatencyError, LayerTimer, ProbeOptions, Result};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, sync_channel};
use std::time::Duration;
use xprune_graph::{FeatureShape, Graph, Layer, NodeDef};

/// The longest answer line read from a runner; a longer one is an error.
const MAX_LINE: u64 = 4096;

/// How long a runner may take to answer one request, by default, before the probe gives up
/// on it ([`RunnerTimer::timeout`]).
pub const RUNNER_TIMEOUT: Duration = Duration::from_secs(600);

/// Times layers in a runtime outside Burn (onnxruntime, TensorRT, a phone) through a runner
/// process, so that a latency model describes the runtime a pruned model is deployed in.
///
/// The runner is started once and kept running. For each measurement the timer writes the
/// layer (a one-node graph, its inputs all fed by the graph input) or the whole graph as an
/// ONNX file in a fresh temporary folder and sends the runner one line on its standard input:
///
/// ```text
/// <batch> <warm-up runs> <timed runs> <path of the ONNX file, to the end of the line>
/// ```
///
/// The runner answers with one line on its standard output: the milliseconds of one run on
/// a random input of that batch (the fastest of the timed runs, or any statistic it prefers),
/// or `error <message>`. The file is deleted after the answer; the folder, and the runner
/// (killed), when the timer is dropped. `benches/compare/ort_runner.py` is a runner for
/// onnxruntime.
///
/// Only layers whose inputs all have the same shape can be timed this way (a residual add,
/// not a concatenation of different widths); another layer is an error naming its node.
///
/// ```no_run
/// use xprune::burn::tensor::Device;
/// use xprune::models::{ResNetCifarDepth, resnet_cifar};
/// use xprune::surgery::ChannelGroups;
/// use xprune::{FeatureShape, LatencyModel, ProbeOptions, RunnerTimer};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let cifar = FeatureShape::spatial(3, 32, 32);
/// let graph = resnet_cifar(ResNetCifarDepth::ResNet20, cifar, 10, 1.0, &Device::flex(), 0)?;
/// let groups = ChannelGroups::new(&graph);
/// let options = ProbeOptions {
///     inference_form: true,
///     ..ProbeOptions::default()
/// };
/// let runner = ["python3", "benches/compare/ort_runner.py", "--threads", "2"].map(String::from);
/// let mut timer = RunnerTimer::spawn(&runner, &options)?;
/// let model = LatencyModel::probe_with(&graph, &groups, &options, &mut timer)?;
/// model.save("resnet20.onnxruntime.latency.json")?;
/// # Ok(())
/// # }
/// ```
pub struct RunnerTimer {
    command: Vec<String>,
    child: Child,
    stdin: ChildStdin,
    /// Answer lines, read on a thread of their own so that a runner that hangs times out.
    answers: Receiver<std::result::Result<Vec<u8>, String>>,
    dir: PathBuf,
    count: u64,
    timeout: Duration,
    batch: usize,
    warmup: usize,
    reps: usize,
}

impl std::fmt::Debug for RunnerTimer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunnerTimer")
            .field("command", &self.command)
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl RunnerTimer {
    /// Starts the runner `command` (program and arguments) with the batch and repetitions of
    /// `options`.
    pub fn spawn(command: &[String], options: &ProbeOptions) -> Result<Self> {
        let run = |message: String| LatencyError::Run {
            node: "(runner)".into(),
            message,
        };
        let (program, args) = command
            .split_first()
            .ok_or_else(|| LatencyError::Config("the runner command is empty".into()))?;
        let dir = std::env::temp_dir().join(format!(
            "xprune-latency-{}-{:x}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos())
        ));
        std::fs::create_dir_all(&dir).map_err(|source| LatencyError::Io {
            path: dir.display().to_string(),
            source,
        })?;
        let mut child = Command::new(program)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| run(format!("cannot start `{}`: {e}", command.join(" "))))?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err(run("the runner's pipes are missing".into()));
        };
        // One answer waits at most: a runner that talks without being asked blocks its reader.
        let (send, answers) = sync_channel(1);
        std::thread::spawn(move || {
            let mut stdout = BufReader::new(stdout);
            loop {
                let mut line = Vec::new();
                let read = (&mut stdout)
                    .take(MAX_LINE)
                    .read_until(b'\n', &mut line)
                    .map_err(|e| format!("cannot read from it: {e}"));
                let end = !matches!(&read, Ok(n) if *n > 0 && line.last() == Some(&b'\n'));
                if send.send(read.map(|_| line)).is_err() || end {
                    break;
                }
            }
        });
        Ok(Self {
            command: command.to_vec(),
            child,
            stdin,
            answers,
            dir,
            count: 0,
            timeout: RUNNER_TIMEOUT,
            batch: options.batch,
            warmup: options.warmup,
            reps: options.reps.max(1),
        })
    }

    /// The same timer, giving up on a request the runner has not answered within `timeout`
    /// ([`RUNNER_TIMEOUT`] by default).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sends `graph` to the runner and reads its time.
    fn time_onnx(&mut self, node: &str, graph: &Graph) -> Result<f64> {
        let err = |message: String| LatencyError::Run {
            node: node.to_string(),
            message,
        };
        let bytes = xprune_io::onnx::export_onnx_bytes(graph)
            .map_err(|e| err(format!("cannot export it to ONNX: {e}")))?;
        self.count += 1;
        let path = self.dir.join(format!("{}.onnx", self.count));
        std::fs::write(&path, bytes).map_err(|source| LatencyError::Io {
            path: path.display().to_string(),
            source,
        })?;
        let answer = self.ask(&format!(
            "{} {} {} {}",
            self.batch,
            self.warmup,
            self.reps,
            path.display()
        ));
        std::fs::remove_file(&path).ok();
        let line = answer.map_err(|m| err(format!("runner `{}`: {m}", self.command.join(" "))))?;
        let line = line.trim();
        if let Some(message) = line.strip_prefix("error") {
            return Err(err(format!("the runner failed: {}", message.trim())));
        }
        match line.parse::<f64>() {
            Ok(ms) if ms.is_finite() && ms >= 0.0 => Ok(ms),
            _ => Err(err(format!(
                "the runner answered `{}`, not a time in milliseconds",
                line.chars().take(80).collect::<String>()
            ))),
        }
    }

    /// One request line out, one answer line back (at most [`MAX_LINE`] bytes).
    fn ask(&mut self, request: &str) -> std::result::Result<String, String> {
        writeln!(self.stdin, "{request}")
            .and_then(|()| self.stdin.flush())
            .map_err(|e| format!("cannot write to it ({e}); did it exit?"))?;
        let line = match self.answers.recv_timeout(self.timeout) {
            Ok(line) => line?,
            Err(RecvTimeoutError::Timeout) => {
                return Err(format!("no answer within {:?}", self.timeout));
            }
            Err(RecvTimeoutError::Disconnected) => Vec::new(),
        };
        if line.is_empty() {
            let status = self.child.try_wait().ok().flatten();
            return Err(match status {
                Some(s) => format!("it exited ({s}) without an answer"),
                None => "it closed its output without an answer".into(),
            });
        }
        if line.last() != Some(&b'\n') && line.len() as u64 >= MAX_LINE {
            return Err(format!("its answer is longer than {MAX_LINE} bytes"));
        }
        String::from_utf8(line).map_err(|_| "its answer is not UTF-8".into())
    }
}

impl LayerTimer for RunnerTimer {
    fn device(&self) -> String {
        format!("runner: {}", self.command.join(" "))
    }

    fn time_layer(&mut self, node: &str, layer: &Layer, shapes: &[FeatureShape]) -> Result<f64> {
        let Some(&first) = shapes.first() else {
            return Err(LatencyError::Run {
                node: node.to_string(),
                message: "a layer without inputs cannot be timed by a runner".into(),
            });
        };
        if shapes.iter().any(|&s| s != first) {
            return Err(LatencyError::Run {
                node: node.to_string(),
                message: format!(
                    "a runner times layers whose inputs have one shape; these are {shapes:?}"
                ),
            });
        }
        let input = Layer::Input(xprune_graph::Input::new(first));
        let nodes = vec![
            NodeDef::new("input", input, vec![]),
            NodeDef::new(node, layer.clone(), vec![0; shapes.len()]),
        ];
        let graph = Graph::from_nodes(first, nodes, 1)?;
        self.time_onnx(node, &graph)
    }

    fn time_graph(&mut self, graph: &Graph) -> Result<f64> {
        self.time_onnx("(whole graph)", graph)
    }
}

impl Drop for RunnerTimer {
    fn drop(&mut self) {
        // The runner holds nothing the probe needs: it is stopped rather than waited for.
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
