//! Data-parallel training on the CPU: replicas as threads (`--devices cpu,cpu`) and as processes
//! on 127.0.0.1 (`--nodes 2`), against one device; peers that die or never come.
//!
//! Tolerance: the replicas' weights must equal one device's within 1e-5 (absolute, every weight)
//! after 10 steps at learning rate 1e-3, while those 10 steps move the weights by more than 100
//! times that. Why not bit for bit: the gradient of a batch split in two is summed in another
//! order (each replica sums over its samples, then the all-reduce adds the two sums, where one
//! device sums over all samples at once), and it is divided by the batch's weight after the sum
//! instead of before; each such f32 rounding changes a gradient by about 1e-7 of its size. AdamW
//! turns a gradient into a step of about the learning rate whatever its size, so these relative
//! differences move a weight by about 1e-7 × 1e-3 per step; 1e-5 leaves room for the steps where
//! a gradient near zero is noisier. The replicas among themselves are identical (they apply the
//! same summed numbers).

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

mod common;

use common::{images, log, ok, s, train_rows, weights};
use restora_model::weights::WeightFile;
use tempfile::TempDir;

const TOLERANCE: f32 = 1e-5;

fn command(args: &[&str]) -> Command {
    let mut command = common::binary();
    command.args(args);
    command
}

/// `train` of the tiny preset on 16-pixel patches, a batch of 4, learning rate 1e-3.
fn train_args<'a>(data: &'a Path, out: &'a Path, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "train",
        "--data",
        s(data),
        "--out",
        s(out),
        "--preset",
        "tiny",
        "--patch",
        "16",
        "--batch",
        "4",
        "--lr",
        "1e-3",
        "--seed",
        "7",
        "--workers",
        "1",
    ];
    args.extend_from_slice(extra);
    args
}

/// The largest absolute difference between two weight files of one model.
fn max_difference(a: &WeightFile, b: &WeightFile) -> f32 {
    assert_eq!(a.tensors.len(), b.tensors.len());
    let mut largest = 0.0f32;
    for (x, y) in a.tensors.iter().zip(&b.tensors) {
        assert_eq!((&x.key, &x.shape), (&y.key, &y.shape));
        for (u, v) in x.values.iter().zip(&y.values) {
            largest = largest.max((u - v).abs());
        }
    }
    largest
}

/// The same log rows (iteration, task, kinds; losses within the tolerance).
fn assert_same_rows(one: &Path, replicas: &Path) {
    let (a, b) = (train_rows(one), train_rows(replicas));
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(&b) {
        assert_eq!((&x["iteration"], &x["task"], &x["kinds"]), (&y["iteration"], &y["task"], &y["kinds"]));
        let (u, v) = (x["loss"].as_f64().unwrap(), y["loss"].as_f64().unwrap());
        assert!((u - v).abs() <= 1e-6 * u.abs().max(1.0), "iteration {}: loss {u} vs {v}", x["iteration"]);
    }
}

/// Two replicas on a batch of 4 train the weights one device trains on the same batch, for the
/// alternating schedule (inpainting with hole weight 4 among its tasks) and for mixed batches
/// (a shard may hold no inpainted sample while the batch does); both then resume on one device.
#[test]
fn two_replicas_train_the_weights_of_one_device() {
    let dir = TempDir::new().unwrap();
    let data = images(dir.path(), "data", 4);
    let modes: [&[&str]; 2] = [&["--switch-every", "2", "--hole-weight", "4"], &["--mixed", "--hole-weight", "4"]];
    for (m, mode) in modes.into_iter().enumerate() {
        let run = |name: &str, extra: &[&str]| {
            let out = dir.path().join(format!("{name}-{m}"));
            ok(command(&train_args(&data, &out, &[mode, extra].concat())).output().unwrap());
            out
        };
        let one = run("one", &["--iters", "10", "--backend", "cpu"]);
        let two = run("two", &["--iters", "10", "--devices", "cpu,cpu"]);
        let first = run("first-step", &["--iters", "10", "--stop-after", "1", "--backend", "cpu"]);
        let (a, b) = (weights(&one.join("last.safetensors")), weights(&two.join("last.safetensors")));
        let (difference, moved) =
            (max_difference(&a, &b), max_difference(&a, &weights(&first.join("last.safetensors"))));
        eprintln!("mode {mode:?}: max |Δw| one device vs two replicas {difference:e}; moved {moved:e} since step 1");
        assert!(difference <= TOLERANCE, "two replicas differ from one device by {difference}");
        assert!(moved > 100.0 * TOLERANCE, "the weights moved only {moved}");
        assert_same_rows(&one, &two);
        // The run folder is the one-device format: both resume on one device, alike.
        for out in [&one, &two] {
            ok(command(&["train", "--resume", s(out), "--iters", "12", "--backend", "cpu"]).output().unwrap());
        }
        let (a, b) = (weights(&one.join("last.safetensors")), weights(&two.join("last.safetensors")));
        assert!(max_difference(&a, &b) <= TOLERANCE);
        assert_eq!(train_rows(&two).last().unwrap()["iteration"], 12);
    }
}

/// Three free ports in a row from some port on (the coordinator, then the nodes' tensor services).
fn free_ports() -> u16 {
    for _ in 0..50 {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        if port < 65000 && (1..3).all(|i| TcpListener::bind(("0.0.0.0", port + i)).is_ok()) {
            return port;
        }
    }
    panic!("no three free ports in a row");
}

/// Node `rank` of two on 127.0.0.1.
fn node(data: &Path, out: &Path, rank: usize, port: u16, extra: &[&str]) -> Child {
    let (rank, coordinator) = (rank.to_string(), format!("127.0.0.1:{port}"));
    let cluster = ["--nodes", "2", "--node-rank", &rank, "--coordinator", &coordinator, "--connect-timeout", "60"];
    command(&train_args(data, out, &[&cluster[..], extra].concat()))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Two processes as two nodes on 127.0.0.1 train the weights of one device; node 1 writes nothing.
#[test]
fn two_nodes_train_the_weights_of_one_device() {
    let dir = TempDir::new().unwrap();
    let data = images(dir.path(), "data", 4);
    let mode = ["--iters", "10", "--switch-every", "2", "--hole-weight", "4"];
    let one = dir.path().join("one");
    ok(command(&train_args(&data, &one, &[&mode[..], &["--backend", "cpu"]].concat())).output().unwrap());
    let port = free_ports();
    let (zero, other) = (dir.path().join("node0"), dir.path().join("node1"));
    let nodes = [node(&data, &zero, 0, port, &mode), node(&data, &other, 1, port, &mode)];
    for child in nodes {
        ok(child.wait_with_output().unwrap());
    }
    let difference = max_difference(&weights(&one.join("last.safetensors")), &weights(&zero.join("last.safetensors")));
    eprintln!("max |Δw| one device vs two nodes {difference:e}");
    assert!(difference <= TOLERANCE, "two nodes differ from one device by {difference}");
    assert_same_rows(&one, &zero);
    assert!(!other.exists(), "node 1 wrote {}", other.display());
}

/// Nodes started with different runs (here: --iters) refuse to train, both of them.
#[test]
fn nodes_that_disagree_refuse_to_start() {
    let dir = TempDir::new().unwrap();
    let data = images(dir.path(), "data", 4);
    let port = free_ports();
    let nodes = [
        node(&data, &dir.path().join("node0"), 0, port, &["--iters", "10"]),
        node(&data, &dir.path().join("node1"), 1, port, &["--iters", "12"]),
    ];
    for child in nodes {
        let output = child.wait_with_output().unwrap();
        assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
        assert!(stderr(&output).contains("does not start like replica"), "{}", stderr(&output));
    }
    assert!(!dir.path().join("node0/checkpoints").exists());
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A node alone (either rank) gives up after --connect-timeout with an error naming the coordinator.
#[test]
fn a_node_alone_gives_up_naming_the_coordinator() {
    let dir = TempDir::new().unwrap();
    let data = images(dir.path(), "data", 4);
    for rank in ["0", "1"] {
        let port = free_ports();
        let coordinator = format!("127.0.0.1:{port}");
        let out = dir.path().join(format!("alone-{rank}"));
        let flags = ["--iters", "5", "--nodes", "2", "--node-rank", rank, "--coordinator", &coordinator];
        let began = Instant::now();
        let output =
            command(&train_args(&data, &out, &[&flags[..], &["--connect-timeout", "5"]].concat())).output().unwrap();
        let (seconds, message) = (began.elapsed().as_secs_f64(), stderr(&output));
        assert_eq!(output.status.code(), Some(1), "rank {rank}: {message}");
        assert!(seconds < 30.0, "rank {rank} took {seconds} s");
        assert!(message.contains(&coordinator) && message.contains("--connect-timeout"), "rank {rank}: {message}");
    }
}

fn wait_for_rows(out: &Path, rows: usize) {
    let began = Instant::now();
    while std::fs::read_to_string(out.join("log.jsonl"))
        .map_or(0, |t| t.lines().filter(|l| l.contains("\"train\"")).count())
        < rows
    {
        assert!(began.elapsed() < Duration::from_secs(120), "the run wrote no log rows");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A node killed in the middle of a run makes the other exit with an error; the last checkpoint
/// then resumes on one device.
#[test]
fn a_killed_node_stops_the_other_and_the_checkpoint_resumes() {
    let dir = TempDir::new().unwrap();
    let data = images(dir.path(), "data", 4);
    let port = free_ports();
    let flags = ["--iters", "100000", "--checkpoint-every", "3", "--collective-timeout", "20"];
    let (zero, other) = (dir.path().join("node0"), dir.path().join("node1"));
    let survivor = node(&data, &zero, 0, port, &flags);
    let mut victim = node(&data, &other, 1, port, &flags);
    wait_for_rows(&zero, 7);
    victim.kill().unwrap();
    victim.wait().unwrap();
    let began = Instant::now();
    let output = survivor.wait_with_output().unwrap();
    let message = stderr(&output);
    eprintln!("node 0 after node 1 was killed ({:.1} s):\n{message}", began.elapsed().as_secs_f64());
    assert_eq!(output.status.code(), Some(1), "{message}");
    let error = message.lines().find(|l| l.starts_with("error:")).expect("an error line");
    assert!(error.contains("peer"), "{error}");
    let checkpoint = log(&zero).into_iter().rfind(|row| row["type"] == "checkpoint").expect("a checkpoint");
    let at = checkpoint["iteration"].as_u64().unwrap();
    ok(command(&["train", "--resume", s(&zero), "--stop-after", "2", "--backend", "cpu"]).output().unwrap());
    assert_eq!(train_rows(&zero).last().unwrap()["iteration"].as_u64(), Some(at + 2));
}

/// Ctrl-C reaches every replica: they stop after the same step, with a checkpoint there.
#[test]
fn an_interrupt_stops_both_replicas_at_one_step() {
    let dir = TempDir::new().unwrap();
    let data = images(dir.path(), "data", 4);
    let out = dir.path().join("run");
    let child = command(&train_args(&data, &out, &["--iters", "100000", "--devices", "cpu,cpu"]))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_rows(&out, 4);
    // SAFETY: kill(2) on the child's pid, which has not been waited for yet.
    assert_eq!(unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) }, 0);
    let output = ok(child.wait_with_output().unwrap());
    assert!(stderr(&output).contains("interrupted"));
    let stopped = train_rows(&out).last().unwrap()["iteration"].as_u64().unwrap();
    let checkpoint = log(&out).into_iter().rfind(|row| row["type"] == "checkpoint").expect("a checkpoint");
    assert_eq!(checkpoint["iteration"].as_u64(), Some(stopped));
}

/// What cannot be split or mixed is refused before training.
#[test]
fn impossible_layouts_are_refused() {
    let dir = TempDir::new().unwrap();
    let data = images(dir.path(), "data", 4);
    let out = dir.path().join("run");
    let refused = |extra: &[&str], expected: &str| {
        let output = command(&train_args(&data, &out, &[&["--iters", "2"], extra].concat())).output().unwrap();
        assert!(!output.status.success());
        assert!(stderr(&output).contains(expected), "{extra:?}: {}", stderr(&output));
        assert!(!out.join("checkpoints").exists());
    };
    refused(&["--devices", "cpu,cpu,cpu,cpu,cpu"], "cannot be split over 5 replicas");
    refused(&["--devices", "cpu,cpu", "--progressive", "16x1@1"], "a batch of 1 cannot be split over 2 replicas");
    refused(&["--devices", "cpu,wgpu:0"], "mixes backends");
    refused(&["--devices", "tpu:0"], "unknown device `tpu:0`");
    refused(&["--nodes", "2", "--coordinator", "127.0.0.1:9"], "--node-rank");
    refused(
        &["--nodes", "2", "--node-rank", "2", "--coordinator", "127.0.0.1:9"],
        "--node-rank 2 is not below --nodes 2",
    );
}
