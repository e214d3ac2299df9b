//! Data-parallel training (`train --devices`, `--nodes`) on burn-collective, Burn's all-reduce
//! engine: one replica per device, as threads of one process, and one process per machine.
//!
//! Every replica holds the whole model and trains on its [`Shard`] of every batch (`--batch` is
//! the whole batch, as one device would train it: the effective batch, hence the learning rate,
//! does not change with the device count). After each backward pass one Sum all-reduce carries,
//! in one flat buffer in the model's declaration order: every parameter's gradient of the
//! shard's error *sum*, a has-gradient flag per parameter, the shard's error sum and weight (see
//! [`l1_loss_parts`](super::train_loop::l1_loss_parts)), the stop flag (an interrupt on any
//! replica stops them all at the same step) and every sample's degradation kind (so rank 0 logs
//! the whole batch). Divided by the total weight, the summed gradients are the gradient of the
//! whole batch's loss: the one-device gradient up to the order of float additions. Every replica
//! then takes the same optimizer step on the same numbers, so the replicas stay identical.
//!
//! The replica of rank 0 alone logs, validates and writes checkpoints, in the one-device format:
//! a run resumes on any number of devices. At start-up the replicas check that they agree on
//! the device count, the number of training images and pairs, the iterations, the seed, the batch
//! and a checksum of their weights.
//!
//! burn-collective has no timeouts: a peer that never connects or stops answering would leave
//! the others waiting for ever. A watchdog thread ends the process with an error instead
//! (`--connect-timeout`, `--collective-timeout`); the last checkpoint, written atomically, stays.

use std::collections::HashMap;
use std::net::{TcpListener, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use burn::backend::Autodiff;
use burn::module::{ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::TensorPrimitive;
use burn_collective::{CollectiveConfig, PeerId, ReduceOperation};
use burn_communication::Address;
use restora_model::{RestoraBackend, Restormer};

use super::config::ExperimentConfig;
use super::data::{Shard, TrainingData};
use super::train_loop::{self, Session, Summary};
use crate::backend::{run_on_devices, DeviceSpec, DevicesTask};

/// How a data-parallel run is laid out.
#[derive(Debug, Clone)]
pub struct Plan {
    /// This machine's devices, one replica each.
    pub devices: Vec<DeviceSpec>,
    /// The machines, when there are several.
    pub cluster: Option<Cluster>,
    /// How long to wait for every node to join.
    pub connect_timeout: Duration,
    /// How long to wait for the other replicas in one exchange.
    pub collective_timeout: Duration,
}

/// Several machines, one process each, meeting at the coordinator (burn-collective's global
/// orchestrator, which node 0 runs).
#[derive(Debug, Clone)]
pub struct Cluster {
    pub nodes: usize,
    pub rank: usize,
    /// `HOST:PORT` of node 0's orchestrator.
    pub coordinator: String,
    /// The address the other nodes reach this one at; by default the one this machine reaches
    /// the coordinator from.
    pub node_host: Option<String>,
    /// The port of this node's tensor service; by default the coordinator's port + 1 + rank.
    pub data_port: Option<u16>,
}

impl Plan {
    fn nodes(&self) -> usize {
        self.cluster.as_ref().map_or(1, |c| c.nodes)
    }

    fn node_rank(&self) -> usize {
        self.cluster.as_ref().map_or(0, |c| c.rank)
    }

    /// Replicas over all machines.
    pub fn world(&self) -> usize {
        self.devices.len() * self.nodes()
    }

    /// Whether this process writes the run folder (it hosts the replica of rank 0).
    pub fn writes(&self) -> bool {
        self.node_rank() == 0
    }

    /// Every batch of the run, progressive stages included, has a sample for every replica.
    fn check(&self, config: &ExperimentConfig) -> Result<()> {
        let world = self.world();
        let batches = config.schedule.progressive.iter().map(|s| s.batch).chain([config.data.batch]);
        if let Some(batch) = batches.filter(|&b| b < world).min() {
            bail!(
                "a batch of {batch} cannot be split over {world} replicas ({} devices × {} nodes): raise --batch \
                 (and the --progressive batches) to at least {world}, or use fewer devices",
                self.devices.len(),
                self.nodes()
            );
        }
        Ok(())
    }

    /// burn-collective's configuration of this node.
    fn collective(&self) -> Result<CollectiveConfig> {
        let config = CollectiveConfig::default().with_num_devices(self.devices.len());
        let Some(cluster) = &self.cluster else { return Ok(config) };
        let (host, port) = split_host_port(&cluster.coordinator)?;
        let data_port = match cluster.data_port {
            Some(port) => port,
            None => u16::try_from(port as usize + 1 + cluster.rank)
                .map_err(|_| anyhow!("--coordinator port {port} + 1 + rank is no port: set --data-port"))?,
        };
        let node_host = match &cluster.node_host {
            Some(host) => host.clone(),
            None => local_address_towards(host, port)?,
        };
        let address = |host: &str, port: u16| -> Result<Address> {
            format!("ws://{host}:{port}").parse().map_err(|e: String| anyhow!("bad address {host}:{port}: {e}"))
        };
        // The tensor service listens on every interface; a port taken by another program would
        // only show as a hang later.
        TcpListener::bind(("0.0.0.0", data_port))
            .with_context(|| format!("cannot listen on --data-port {data_port} (in use? choose another)"))?;
        Ok(config
            .with_num_nodes(cluster.nodes as u32)
            .with_global_address(address(host, port)?)
            .with_node_address(address(&node_host, data_port)?)
            .with_data_service_port(data_port))
    }
}

/// `HOST:PORT` split.
fn split_host_port(text: &str) -> Result<(&str, u16)> {
    let (host, port) = text.rsplit_once(':').with_context(|| format!("--coordinator {text} is not HOST:PORT"))?;
    let port = port.parse().map_err(|_| anyhow!("--coordinator {text}: `{port}` is no port number"))?;
    if host.is_empty() {
        bail!("--coordinator {text} names no host");
    }
    Ok((host, port))
}

/// The local address of the interface that reaches `host:port` (a UDP "connection" sends nothing).
fn local_address_towards(host: &str, port: u16) -> Result<String> {
    let socket = UdpSocket::bind(("0.0.0.0", 0)).context("cannot open a socket to find this node's address")?;
    socket.connect((host, port)).with_context(|| {
        format!("cannot resolve the coordinator {host}:{port} (set --node-host to this node's address)")
    })?;
    Ok(socket.local_addr().context("cannot find this node's address: set --node-host")?.ip().to_string())
}

/// Trains `session` over the plan's devices and machines.
pub fn run(session: Session, plan: Plan) -> Result<Summary> {
    let devices = plan.devices.clone();
    run_on_devices(&devices, Job { session, plan })
}

struct Job {
    session: Session,
    plan: Plan,
}

impl DevicesTask for Job {
    type Output = Summary;

    fn run<B: RestoraBackend>(self, devices: Vec<B::Device>) -> Result<Summary> {
        replicas::<Autodiff<B>>(self.session, self.plan, devices)
    }
}

/// Starts one replica thread per device and waits for them; the first failure ends the process
/// (the other replicas may be blocked in an exchange that cannot finish).
fn replicas<B: AutodiffBackend + RestoraBackend>(
    session: Session,
    plan: Plan,
    devices: Vec<B::Device>,
) -> Result<Summary>
where
    B::InnerBackend: RestoraBackend,
{
    plan.check(&session.config)?;
    let prepared = Arc::new(train_loop::prepare(&session, plan.writes())?);
    if plan.world() == 1 {
        let device = devices.into_iter().next().context("no device")?;
        return train_loop::train_replica::<B>(&prepared, &session, device, None);
    }
    let collective = plan.collective()?;
    quiet_engine();
    if let Some(cluster) = plan.cluster.as_ref().filter(|c| c.rank == 0) {
        start_orchestrator(&cluster.coordinator)?;
    }
    let watchdog = Watchdog::start();
    let (world, local_count, node_rank) = (plan.world(), devices.len(), plan.node_rank());
    let (sender, results) = mpsc::channel();
    for (local, device) in devices.into_iter().enumerate() {
        let rank = node_rank * local_count + local;
        let peer = Peer {
            id: PeerId::from(rank),
            rank,
            world,
            devices: local_count,
            nodes: plan.nodes(),
            watchdog: watchdog.clone(),
            collective_timeout: plan.collective_timeout,
        };
        let (prepared, session, sender) = (prepared.clone(), session.clone(), sender.clone());
        let (collective, connect_timeout) = (collective.clone(), plan.connect_timeout);
        let coordinator = plan.cluster.as_ref().map(|c| c.coordinator.clone());
        std::thread::Builder::new()
            .name(format!("replica-{rank}"))
            .spawn(move || {
                let result = peer
                    .join::<B>(device.clone(), collective, connect_timeout, coordinator.as_deref())
                    .and_then(|()| train_loop::train_replica::<B>(&prepared, &session, device, Some(&peer)));
                let _ = sender.send((local, result));
            })
            .context("cannot start a replica thread")?;
    }
    drop(sender);
    let mut summary = None;
    for _ in 0..local_count {
        let (local, result) = results.recv().map_err(|_| anyhow!("a replica thread stopped unexpectedly"))?;
        let done = result?;
        if local == 0 {
            summary = Some(done);
        }
    }
    summary.context("no replica ran")
}

/// Runs burn-collective's global orchestrator on the coordinator's port, in this process (node 0).
fn start_orchestrator(coordinator: &str) -> Result<()> {
    let (_, port) = split_host_port(coordinator)?;
    TcpListener::bind(("0.0.0.0", port))
        .with_context(|| format!("cannot listen on the --coordinator port {port} (in use? choose another)"))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the coordinator's runtime")?;
    std::thread::Builder::new()
        .name("coordinator".into())
        .spawn(move || runtime.block_on(burn_collective::start_global_orchestrator(port)))
        .context("cannot start the coordinator thread")?;
    Ok(())
}

/// Set once the replicas have passed their final barrier: the engine's connections then close,
/// which its handlers report by panicking; nothing is lost by then.
static FINISHED: AtomicBool = AtomicBool::new(false);

/// Keeps burn-collective's own reports short: its panics (on the runtime's threads) become one
/// note each, silent after the final barrier, and its log lines are kept to warnings and errors.
/// Its "Connecting to ws://…" lines, printed directly, stay.
fn quiet_engine() {
    static INSTALL: std::sync::Once = std::sync::Once::new();
    INSTALL.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let engine = std::thread::current().name().is_some_and(|name| name.starts_with("tokio-"));
            if !engine {
                return default(info);
            }
            if !FINISHED.load(Ordering::SeqCst) {
                let message = info
                    .payload()
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| info.payload().downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                eprintln!("note: burn-collective: {message}");
            }
        }));
        // burn-communication's servers would otherwise install their own logger and tracing
        // subscriber, at level info, on stdout (they keep one installed first).
        if ::log::set_logger(&ENGINE_LOG).is_ok() {
            ::log::set_max_level(::log::LevelFilter::Warn);
        }
        let silent = tracing_core::Dispatch::new(tracing_core::subscriber::NoSubscriber::default());
        let _ = tracing_core::dispatcher::set_global_default(silent);
    });
}

struct EngineLog;
static ENGINE_LOG: EngineLog = EngineLog;

impl ::log::Log for EngineLog {
    fn enabled(&self, metadata: &::log::Metadata) -> bool {
        metadata.level() <= ::log::Level::Warn
    }

    fn log(&self, record: &::log::Record) {
        if self.enabled(record.metadata()) && !FINISHED.load(Ordering::SeqCst) {
            eprintln!("note: {}: {}", record.target(), record.args());
        }
    }

    fn flush(&self) {}
}

/// Ends the process with an error when a collective operation outlasts its time.
struct Watchdog {
    /// Per replica: the deadline of its operation in progress and what to say if it passes.
    deadlines: Mutex<HashMap<usize, (Instant, String)>>,
}

impl Watchdog {
    fn start() -> Arc<Self> {
        let watchdog = Arc::new(Self { deadlines: Mutex::new(HashMap::new()) });
        let watching = watchdog.clone();
        let spawned = std::thread::Builder::new().name("collective-watchdog".into()).spawn(move || loop {
            std::thread::sleep(Duration::from_millis(200));
            let now = Instant::now();
            let expired = match watching.deadlines.lock() {
                Ok(deadlines) => deadlines.values().find(|(deadline, _)| now >= *deadline).map(|(_, why)| why.clone()),
                Err(_) => Some("a replica failed while waiting for the others".into()),
            };
            if let Some(why) = expired {
                eprintln!("error: {why}");
                std::process::exit(1);
            }
        });
        if let Err(error) = spawned {
            eprintln!("note: no collective watchdog ({error}): a lost peer may leave this process waiting");
        }
        watchdog
    }

    /// Arms the deadline of `rank`'s operation until the guard is dropped.
    fn arm(&self, rank: usize, timeout: Duration, why: String) -> Armed<'_> {
        if let Ok(mut deadlines) = self.deadlines.lock() {
            deadlines.insert(rank, (Instant::now() + timeout, why));
        }
        Armed { watchdog: self, rank }
    }
}

struct Armed<'a> {
    watchdog: &'a Watchdog,
    rank: usize,
}

impl Drop for Armed<'_> {
    fn drop(&mut self) {
        if let Ok(mut deadlines) = self.watchdog.deadlines.lock() {
            deadlines.remove(&self.rank);
        }
    }
}

/// One replica's membership of the collective.
pub struct Peer {
    id: PeerId,
    /// 0-based over all machines: node rank × devices per node + local index.
    rank: usize,
    world: usize,
    /// Devices per node and nodes.
    devices: usize,
    nodes: usize,
    watchdog: Arc<Watchdog>,
    collective_timeout: Duration,
}

/// What a replica contributes to a step besides its gradients.
pub struct LocalStep<'a> {
    /// The shard's error sum and weight ([`l1_loss_parts`](super::train_loop::l1_loss_parts)).
    pub error_sum: f32,
    pub weight: f32,
    /// An interrupt reached this replica.
    pub stop: bool,
    /// The shard's degradation kinds, in sample order.
    pub kinds: &'a [&'static str],
    /// The whole batch's size this step.
    pub batch: usize,
}

/// A step as all the replicas took it.
pub struct SharedStep {
    /// The whole batch's gradients (those of the mean loss).
    pub grads: GradientsParams,
    /// The whole batch's loss.
    pub loss: f32,
    /// Every sample's degradation kind.
    pub kinds: Vec<&'static str>,
    /// Some replica was interrupted: every replica stops after this step.
    pub stop: bool,
}

/// Degradation kinds as numbers for the exchange: every kind a batch can hold (a sample's
/// `Degradation::kind()` or a paired layout's `kind()`).
const KINDS: [&str; 11] = [
    "gaussian_noise",
    "poisson_noise",
    "salt_and_pepper",
    "gaussian_blur",
    "motion_blur",
    "aliasing",
    "scratches",
    "paired:sidd",
    "paired:gopro",
    "paired:reds",
    "paired:input_target",
];

/// Start-up facts every replica must share, in order, and how many exchange slots each takes
/// (values split into 16-bit parts, which f32 holds exactly).
const FACTS: [(&str, usize); 9] = [
    ("devices per node", 1),
    ("clean training images", 4),
    ("training pairs", 4),
    ("first iteration", 4),
    ("last iteration", 4),
    ("total iterations", 4),
    ("seed", 4),
    ("batch", 4),
    ("weights checksum", 4),
];

impl Peer {
    pub fn rank(&self) -> usize {
        self.rank
    }

    /// This replica's part of every batch.
    pub fn shard(&self) -> Shard {
        Shard { index: self.rank, count: self.world }
    }

    /// `replica 0 of 4 (2 devices × 2 nodes)`.
    pub fn describe(&self) -> String {
        format!(
            "replica {} of {} ({} × {})",
            self.rank,
            self.world,
            count(self.devices, "device"),
            count(self.nodes, "node")
        )
    }

    /// Registers with burn-collective; returns once every replica of every node has.
    fn join<B: AutodiffBackend>(
        &self,
        device: B::Device,
        config: CollectiveConfig,
        timeout: Duration,
        coordinator: Option<&str>,
    ) -> Result<()> {
        let why = match coordinator {
            Some(address) => format!(
                "not all {} nodes joined through the coordinator {address} within {} s (--connect-timeout): is \
                 every node running, with the same --nodes and --coordinator, and can it reach this one?",
                self.nodes,
                timeout.as_secs()
            ),
            None => format!("the {} replicas did not all start within {} s", self.devices, timeout.as_secs()),
        };
        let _armed = self.watchdog.arm(self.rank, timeout, why);
        burn_collective::register::<B::InnerBackend>(self.id, device, config)
            .map_err(|e| anyhow!("cannot join the collective: {e:?}"))
    }

    /// A Sum all-reduce of `values` over every replica, within the collective timeout.
    fn all_reduce<B: Backend>(&self, values: Tensor<B, 1>, what: &str) -> Result<Tensor<B, 1>> {
        let why = format!(
            "no answer from the other replicas within {} s in {what} (--collective-timeout): a peer died or hangs; \
             the last checkpoint is kept",
            self.collective_timeout.as_secs()
        );
        let _armed = self.watchdog.arm(self.rank, self.collective_timeout, why);
        let reduced = burn_collective::all_reduce::<B>(self.id, values.into_primitive().tensor(), ReduceOperation::Sum)
            .map_err(|e| {
                anyhow!("{what} failed ({e:?}): a peer died or lost its connection; the last checkpoint is kept")
            })?;
        Ok(Tensor::from_primitive(TensorPrimitive::Float(reduced)))
    }

    /// Checks that every replica starts the same run from the same weights and data.
    pub fn agree_on_start<B: AutodiffBackend>(
        &self,
        model: &Restormer<B>,
        device: &B::Device,
        start: usize,
        end: usize,
        config: &ExperimentConfig,
        data: &TrainingData,
    ) -> Result<()> {
        let facts: [u64; 9] = [
            self.devices as u64,
            data.clean_len() as u64,
            data.paired_len() as u64,
            start as u64,
            end as u64,
            config.schedule.iters as u64,
            config.run.seed,
            config.data.batch as u64,
            weights_checksum(model),
        ];
        let slots: usize = FACTS.iter().map(|(_, n)| n).sum();
        let mut mine = Vec::with_capacity(slots);
        for (&value, &(_, parts)) in facts.iter().zip(&FACTS) {
            mine.extend((0..parts).map(|i| ((value >> (16 * i)) & 0xffff) as f32));
        }
        let mut values = vec![0.0f32; slots * self.world];
        values[self.rank * slots..(self.rank + 1) * slots].copy_from_slice(&mine);
        let values = Tensor::<B::InnerBackend, 1>::from_data(TensorData::new(values, [slots * self.world]), device);
        let all = self.all_reduce(values, "the start-up check")?;
        let all: Vec<f32> = all.into_data().to_vec().map_err(|e| anyhow!("cannot read the start-up check: {e:?}"))?;
        let decode = |slice: &[f32]| slice.iter().rev().fold(0u64, |acc, &v| (acc << 16) | v as u64);
        for rank in 0..self.world {
            let theirs = &all[rank * slots..(rank + 1) * slots];
            let mut at = 0;
            for (&(name, parts), &value) in FACTS.iter().zip(&facts) {
                let other = decode(&theirs[at..at + parts]);
                if other != value {
                    bail!(
                        "replica {rank} does not start like replica {} ({name}: {other} there, {value} here): start \
                         every node with the same flags and, to resume, the same checkpoint",
                        self.rank
                    );
                }
                at += parts;
            }
        }
        Ok(())
    }

    /// Shares a step: sums every replica's gradients, losses, stop flags and kinds in one exchange.
    pub fn share_step<B: AutodiffBackend>(
        &self,
        model: &Restormer<B>,
        device: &B::Device,
        grads: GradientsParams,
        local: &LocalStep,
        iteration: usize,
    ) -> Result<SharedStep> {
        let mut gather = Gather::<B> { grads: &grads, parts: Vec::new(), flags: Vec::new(), device: device.clone() };
        model.visit(&mut gather);
        let Gather { parts, flags, .. } = gather;
        let gradient_len: usize = parts.iter().map(|p| p.dims()[0]).sum();
        let mut extra = flags;
        let parameters = extra.len();
        extra.extend([local.error_sum, local.weight, if local.stop { 1.0 } else { 0.0 }]);
        let mut kinds = vec![0.0f32; local.batch];
        for (slot, kind) in kinds[self.shard().range(local.batch)].iter_mut().zip(local.kinds) {
            let code =
                KINDS.iter().position(|k| k == kind).with_context(|| format!("unknown degradation kind {kind}"))?;
            *slot = (code + 1) as f32;
        }
        extra.extend(kinds);
        let extra_len = extra.len();
        let mut parts = parts;
        parts.push(Tensor::from_data(TensorData::new(extra, [extra_len]), device));
        let reduced =
            self.all_reduce(Tensor::cat(parts, 0), &format!("the gradient exchange of iteration {iteration}"))?;

        let extra: Vec<f32> = reduced
            .clone()
            .slice(gradient_len..gradient_len + extra_len)
            .into_data()
            .to_vec()
            .map_err(|e| anyhow!("cannot read the exchanged step: {e:?}"))?;
        let (flags, rest) = extra.split_at(parameters);
        let (error_sum, weight, stop) = (rest[0], rest[1], rest[2]);
        let kinds = rest[3..]
            .iter()
            .map(|&code| {
                KINDS.get((code as usize).wrapping_sub(1)).copied().context("a sample's kind was lost in the exchange")
            })
            .collect::<Result<Vec<_>>>()?;
        let gradients = reduced.slice(0..gradient_len).div_scalar(weight);
        let mut scatter = Scatter::<B> { gradients, flags, offset: 0, index: 0, grads: GradientsParams::new() };
        model.visit(&mut scatter);
        Ok(SharedStep { grads: scatter.grads, loss: error_sum / weight, kinds, stop: stop > 0.0 })
    }

    /// The final barrier: waits until every replica has stopped at `reached`, then leaves the
    /// collective.
    pub fn finish<B: AutodiffBackend>(&self, reached: usize, device: &B::Device) -> Result<()> {
        // One slot per replica: a ring all-reduce between nodes needs at least one value per node.
        let mut values = vec![0.0f32; self.world];
        values[self.rank] = reached as f32;
        let values = Tensor::<B::InnerBackend, 1>::from_data(TensorData::new(values, [self.world]), device);
        let all = self.all_reduce(values, "the final barrier")?;
        let all: Vec<f32> = all.into_data().to_vec().map_err(|e| anyhow!("cannot read the final barrier: {e:?}"))?;
        if let Some(rank) = all.iter().position(|&r| r != reached as f32) {
            bail!("replica {rank} stopped at iteration {}, this one at {reached}", all[rank]);
        }
        FINISHED.store(true, Ordering::SeqCst);
        // Between machines, leaving would ask node 0's orchestrator, which may have exited by now
        // (nothing is pending after the barrier); on one machine it frees the engine for reuse.
        if self.nodes == 1 {
            burn_collective::finish_collective::<B::InnerBackend>(self.id)
                .map_err(|e| anyhow!("cannot leave the collective: {e:?}"))?;
        }
        Ok(())
    }
}

/// FNV-1a over every parameter's values, in declaration order.
fn weights_checksum<B: AutodiffBackend>(model: &Restormer<B>) -> u64 {
    struct Checksum(u64);
    impl<B: Backend> ModuleVisitor<B> for Checksum {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            let values: Vec<f32> = param.val().into_data().convert::<f32>().to_vec().unwrap_or_default();
            for value in values {
                for byte in value.to_bits().to_le_bytes() {
                    self.0 = (self.0 ^ byte as u64).wrapping_mul(0x100_0000_01b3);
                }
            }
        }
    }
    let mut checksum = Checksum(0xcbf2_9ce4_8422_2325);
    model.visit(&mut checksum);
    checksum.0
}

/// Flattens every parameter's gradient (zeros where it has none) and notes which have one.
struct Gather<'a, B: AutodiffBackend> {
    grads: &'a GradientsParams,
    parts: Vec<Tensor<B::InnerBackend, 1>>,
    flags: Vec<f32>,
    device: B::Device,
}

impl<B: AutodiffBackend> ModuleVisitor<B> for Gather<'_, B> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        let count = param.val().shape().num_elements();
        let (part, flag) = match self.grads.get::<B::InnerBackend, D>(param.id) {
            Some(grad) => (grad.reshape([count]), 1.0),
            None => (Tensor::zeros([count], &self.device), 0.0),
        };
        self.parts.push(part);
        self.flags.push(flag);
    }
}

/// Cuts the summed gradients back into the parameters' shapes, for those some replica had.
struct Scatter<'a, B: AutodiffBackend> {
    gradients: Tensor<B::InnerBackend, 1>,
    flags: &'a [f32],
    offset: usize,
    index: usize,
    grads: GradientsParams,
}

impl<B: AutodiffBackend> ModuleVisitor<B> for Scatter<'_, B> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        let dims = param.val().dims();
        let count: usize = dims.iter().product();
        if self.flags[self.index] > 0.0 {
            let part = self.gradients.clone().slice(self.offset..self.offset + count);
            self.grads.register::<B::InnerBackend, D>(param.id, part.reshape(dims));
        }
        self.offset += count;
        self.index += 1;
    }
}

/// `1 device`, `2 devices`.
fn count(n: usize, what: &str) -> String {
    format!("{n} {what}{}", if n == 1 { "" } else { "s" })
}
