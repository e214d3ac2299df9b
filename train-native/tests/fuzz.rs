//! Property tests through the real `train-native` binary: hostile PyTorch checkpoints (pickles
//! nested a million deep, lying lengths, sizes, shapes and strides, unknown opcodes and calls,
//! integer storages, NaN, wrong shapes, damaged archives) given to `convert` and to
//! `restore --weights`; command lines built from every command's own flags with odd values; and
//! damaged experiment files given to `train --config`. Every case must end, without a panic, as
//! a success with complete outputs or as a non-zero exit whose error is one line naming the
//! problem (`error: …`, then at most the `caused by:` chain, each on one line), with no output
//! file left behind, and without writing anything next to the inputs or in the working folder.
//!
//! Cases per property: `RESTORA_FUZZ_CASES` (default 16, what CI runs: about 100 binary runs).
//! The 10,000 runs: `RESTORA_FUZZ_CASES=2000 cargo test --release -p train-native --test fuzz`.

mod common;

use std::collections::BTreeMap;
use std::io::{Cursor, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::s;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use restora_model::weights::WeightFile;
use restora_model::{BitDepth, Image};

/// The official tiny Restormer (with-bias LayerNorm) that the CLI converts.
const FIXTURE: &str =
    concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/fixtures/restormer/tiny-withbias/weights.safetensors");

/// A case that runs longer than this hangs.
const HANG: Duration = Duration::from_secs(120);

/// The binary under test: this build's, or `RESTORA_FUZZ_BINARY` (a copy of it kept aside
/// while other builds sharing the target folder replace `target/*/train-native`).
fn binary() -> Command {
    Command::new(std::env::var_os("RESTORA_FUZZ_BINARY").unwrap_or(env!("CARGO_BIN_EXE_train-native").into()))
}

fn cases() -> u32 {
    std::env::var("RESTORA_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(16)
}

fn config() -> ProptestConfig {
    // No regression files next to the sources: failures print their minimal case instead.
    ProptestConfig { cases: cases(), failure_persistence: None, ..ProptestConfig::default() }
}

/// A case's folders: inputs (never written to), outputs, and the working folder of the run.
struct Scene {
    _root: tempfile::TempDir,
    inputs: PathBuf,
    outputs: PathBuf,
    cwd: PathBuf,
}

impl Scene {
    fn new() -> Self {
        let root = tempfile::TempDir::new().unwrap();
        let [inputs, outputs, cwd] = ["in", "out", "cwd"].map(|name| root.path().join(name));
        for dir in [&inputs, &outputs, &cwd] {
            std::fs::create_dir(dir).unwrap();
        }
        let photo = Image::from_fn(16, 12, |x, y| [x as f32 / 16.0, y as f32 / 12.0, 0.4]);
        std::fs::write(inputs.join("photo.png"), photo.encode_png(BitDepth::Eight).unwrap()).unwrap();
        std::fs::write(inputs.join("notes.txt"), "not an image").unwrap();
        std::fs::copy(FIXTURE, inputs.join("weights.safetensors")).unwrap();
        Scene { _root: root, inputs, outputs, cwd }
    }

    fn input(&self, name: &str) -> PathBuf {
        self.inputs.join(name)
    }
}

/// Every file under `dir` with its size and modification time.
fn listing(dir: &Path) -> BTreeMap<PathBuf, (u64, std::time::SystemTime)> {
    let mut found = BTreeMap::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let entry = entry.unwrap();
            let meta = entry.metadata().unwrap();
            if meta.is_dir() {
                pending.push(entry.path());
            }
            found.insert(entry.path(), (meta.len(), meta.modified().unwrap()));
        }
    }
    found
}

/// How a run ended.
struct Run {
    success: bool,
    stderr: String,
}

/// Runs the binary in the scene and checks what every case must satisfy.
fn run(scene: &Scene, args: &[String]) -> Result<Run, TestCaseError> {
    let inputs_before = listing(&scene.inputs);
    let outputs_before = listing(&scene.outputs);
    let mut child = binary()
        .args(args)
        .current_dir(&scene.cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Read stderr on the side so a chatty run cannot block on a full pipe.
    let mut pipe = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = pipe.read_to_string(&mut text);
        text
    });
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > HANG {
            let _ = child.kill();
            let _ = child.wait();
            return Err(TestCaseError::fail(format!("{args:?}: no answer in {HANG:?}")));
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let stderr = reader.join().unwrap();
    let show = || format!("{args:?} ended with {status}:\n{stderr}");

    prop_assert!(!stderr.contains("panicked at"), "a panic: {}", show());
    prop_assert!(matches!(status.code(), Some(0..=2)), "killed or aborted: {}", show());
    prop_assert_eq!(&listing(&scene.inputs), &inputs_before, "something was written next to the inputs: {}", show());
    let written: Vec<_> = listing(&scene.outputs).into_keys().chain(listing(&scene.cwd).into_keys()).collect();
    let temporary: Vec<_> = written.iter().filter(|p| p.to_string_lossy().contains(".tmp-")).collect();
    prop_assert!(temporary.is_empty(), "temporary files left: {temporary:?}: {}", show());
    if status.success() {
        return Ok(Run { success: true, stderr });
    }
    prop_assert_eq!(&listing(&scene.outputs), &outputs_before, "a failed run left output: {}", show());
    prop_assert!(listing(&scene.cwd).is_empty(), "a failed run wrote in the working folder: {}", show());
    // Notes and warnings may come first; then one `error:` line.
    let mut lines = stderr.lines().skip_while(|l| l.starts_with("note: ") || l.starts_with("warning: "));
    let first = lines.next().unwrap_or_default();
    prop_assert!(first.starts_with("error: ") && first.len() > 15, "no clear error line: {}", show());
    // Clap (exit 2) adds its usage after the error; ours add only the cause chain.
    if status.code() == Some(1) {
        for line in lines {
            prop_assert!(line.starts_with("  caused by: "), "an error over several lines: {}", show());
        }
    }
    prop_assert!(stderr.lines().all(|l| l.len() <= 600), "an error line of {} bytes: {}", stderr.len(), show());
    Ok(Run { success: false, stderr })
}

fn arg(path: &Path) -> String {
    s(path).to_string()
}

// ---------------------------------------------------------------------------------------------
// Checkpoints

/// Pickle opcodes, written by hand (the names are Python's `pickletools` names).
#[derive(Default)]
struct Pickle(Vec<u8>);

impl Pickle {
    fn new() -> Self {
        Pickle(vec![0x80, 2])
    }
    fn op(&mut self, op: u8) -> &mut Self {
        self.0.push(op);
        self
    }
    fn string(&mut self, text: &str) -> &mut Self {
        self.0.push(b'X');
        self.0.extend((text.len() as u32).to_le_bytes());
        self.0.extend(text.as_bytes());
        self
    }
    fn global(&mut self, module: &str, name: &str) -> &mut Self {
        self.0.push(b'c');
        self.0.extend(format!("{module}\n{name}\n").as_bytes());
        self
    }
    /// Any i64, as LONG1 (what Python writes for numbers beyond 32 bits).
    fn int(&mut self, value: i64) -> &mut Self {
        self.0.extend([0x8a, 8]);
        self.0.extend(value.to_le_bytes());
        self
    }
    fn tuple(&mut self, items: &[i64]) -> &mut Self {
        self.op(b'(');
        for &item in items {
            self.int(item);
        }
        self.op(b't')
    }
}

/// The fixture's tensors (a tiny official Restormer).
fn fixture_file() -> WeightFile {
    WeightFile::from_safetensors(&std::fs::read(FIXTURE).unwrap()).unwrap()
}

/// `pth`'s entries, with `data.pkl` replaced by `pickle` (when given) and `extra` entries added.
fn rezip(pth: &[u8], pickle: Option<&[u8]>, extra: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut archive = zip::ZipArchive::new(Cursor::new(pth)).unwrap();
    let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for i in 0..archive.len() {
        let mut entry = archive.by_index(i).unwrap();
        let name = entry.name().to_string();
        let mut data = Vec::new();
        entry.read_to_end(&mut data).unwrap();
        writer.start_file(&name, options).unwrap();
        match pickle {
            Some(pickle) if name.ends_with("data.pkl") => writer.write_all(pickle).unwrap(),
            _ => writer.write_all(&data).unwrap(),
        }
    }
    for (name, data) in extra {
        writer.start_file(name, options).unwrap();
        writer.write_all(data).unwrap();
    }
    writer.finish().unwrap().into_inner()
}

/// Sets the uncompressed size of every entry whose name ends in `suffix`, in the local and the
/// central headers (a zip that lies about its sizes).
fn lie_about_size(mut zip: Vec<u8>, suffix: &str, size: u32) -> Vec<u8> {
    let mut i = 0;
    while i + 46 < zip.len() {
        // Local headers keep the size at 22, central ones at 24.
        let (size_at, name_len_at, name_at) = match &zip[i..i + 4] {
            b"PK\x03\x04" => (22, 26, 30),
            b"PK\x01\x02" => (24, 28, 46),
            _ => {
                i += 1;
                continue;
            }
        };
        let name_len = u16::from_le_bytes([zip[i + name_len_at], zip[i + name_len_at + 1]]) as usize;
        let name = zip.get(i + name_at..i + name_at + name_len).unwrap_or_default();
        if name.ends_with(suffix.as_bytes()) {
            zip[i + size_at..i + size_at + 4].copy_from_slice(&size.to_le_bytes());
        }
        i += 4;
    }
    zip
}

/// One tensor `key` rebuilt from the arguments given (each a lie or not), in a state dict.
#[derive(Debug, Clone)]
struct TensorClaim {
    storage_type: &'static str,
    numel: i64,
    offset: i64,
    shape: Vec<i64>,
    stride: Vec<i64>,
}

fn tensor_claim() -> impl Strategy<Value = TensorClaim> {
    let number = prop_oneof![0i64..200, Just(-1i64), Just(i64::MAX), Just(i64::MIN), Just(1 << 40), any::<i64>()];
    (
        prop::sample::select(vec![
            "FloatStorage",
            "HalfStorage",
            "DoubleStorage",
            "BFloat16Storage",
            "LongStorage",
            "IntStorage",
            "BoolStorage",
            "ByteStorage",
            "ComplexFloatStorage",
            "Nonsense",
        ]),
        number.clone(),
        number.clone(),
        prop::collection::vec(number.clone(), 0..5),
        prop::collection::vec(number, 0..5),
    )
        .prop_map(|(storage_type, numel, offset, shape, stride)| TensorClaim {
            storage_type,
            numel,
            offset,
            shape,
            stride,
        })
}

/// A state dict `{"params": {"patch_embed.proj.weight": tensor}}` whose one tensor makes `claim`.
fn claim_pickle(claim: &TensorClaim) -> Vec<u8> {
    let mut p = Pickle::new();
    p.op(b'}').string("params").global("collections", "OrderedDict").op(b')').op(b'R');
    p.string("patch_embed.proj.weight").global("torch._utils", "_rebuild_tensor_v2").op(b'(');
    p.op(b'(').string("storage").global("torch", claim.storage_type).string("0").string("cpu").int(claim.numel);
    p.op(b't').op(b'Q').int(claim.offset).tuple(&claim.shape).tuple(&claim.stride).op(0x89);
    p.global("collections", "OrderedDict").op(b')').op(b'R').op(b't').op(b'R').op(b's').op(b's').op(b'.');
    p.0
}

/// A checkpoint that must be refused.
#[derive(Debug, Clone)]
enum Hostile {
    /// Tuples, lists or dicts nested this deep (burn-store recursed on them and overflowed its stack).
    Nested(u8, u32),
    /// A string of this length declared, 3 bytes given.
    LongString(u32),
    /// An opcode burn-store does not know, inserted in the fixture's pickle.
    Opcode(prop::sample::Index, u8),
    /// A list put in the memo and paired with itself this many times (exponential copies).
    MemoDoubling(u8),
    /// A SETITEMS of this many pairs.
    SetItems(u32),
    /// A call of something that is not a tensor.
    Call(&'static str, &'static str),
    Tensor(TensorClaim),
    /// The entry `archive/data/0`'s size, declared.
    DeclaredSize(u32),
    /// A storage entry missing, or given twice.
    Storage(bool),
    /// A pickle, not a zip (the format before PyTorch 1.6).
    Legacy,
    /// One value replaced by NaN or an infinity.
    NonFinite(prop::sample::Index, u8),
    /// One tensor given another shape (its values as many as the shape says).
    Shape(prop::sample::Index, Vec<usize>),
}

fn hostile() -> impl Strategy<Value = Hostile> {
    prop_oneof![
        (0u8..3, prop_oneof![65u32..200, Just(1_000_000), 1000u32..300_000]).prop_map(|(k, n)| Hostile::Nested(k, n)),
        prop_oneof![Just(u32::MAX), 4u32..1 << 31].prop_map(Hostile::LongString),
        (
            any::<prop::sample::Index>(),
            prop::sample::select(vec![0x8cu8, 0x8d, 0x8e, 0x95, 0x96, b'B', b'C', b'T', b'V', b'i', b'o', 0xff, 0])
        )
            .prop_map(|(at, op)| Hostile::Opcode(at, op)),
        (30u8..64).prop_map(Hostile::MemoDoubling),
        prop_oneof![1001u32..5000, Just(1_000_000)].prop_map(Hostile::SetItems),
        prop::sample::select(vec![
            ("os", "system"),
            ("builtins", "eval"),
            ("torch._tensor", "_rebuild_from_type_v2"),
            ("torch.nn.modules.conv", "Conv2d"),
            ("numpy.core.multiarray", "_reconstruct"),
        ])
        .prop_map(|(m, n)| Hostile::Call(m, n)),
        tensor_claim().prop_map(Hostile::Tensor),
        prop_oneof![Just(u32::MAX), 1u32 << 20..u32::MAX].prop_map(Hostile::DeclaredSize),
        any::<bool>().prop_map(Hostile::Storage),
        Just(Hostile::Legacy),
        (any::<prop::sample::Index>(), 0u8..3).prop_map(|(at, k)| Hostile::NonFinite(at, k)),
        (any::<prop::sample::Index>(), prop::collection::vec(1usize..5, 0..4)).prop_map(|(t, s)| Hostile::Shape(t, s)),
    ]
}

fn hostile_checkpoint(hostile: &Hostile) -> Vec<u8> {
    let file = fixture_file();
    let pth = restora_model::pth::to_pth(&file, Some("params")).unwrap();
    let pickle = |p: &[u8]| rezip(&pth, Some(p), &[]);
    match hostile {
        Hostile::Nested(kind, depth) => {
            let depth = *depth as usize;
            let mut p = Pickle::new();
            match kind {
                0 | 1 => {
                    // (((…))) closed by LIST or TUPLE.
                    p.0.extend(std::iter::repeat_n(b'(', depth));
                    p.0.extend(std::iter::repeat_n(if *kind == 0 { b'l' } else { b't' }, depth));
                }
                _ => {
                    // {"k": {"k": … {}}} with DICT: MARK and the key, `depth` times, then the
                    // innermost dict and the DICTs.
                    for _ in 0..depth {
                        p.op(b'(').string("k");
                    }
                    p.op(b'}');
                    p.0.extend(std::iter::repeat_n(b'd', depth));
                }
            }
            p.op(b'.');
            pickle(&p.0)
        }
        Hostile::LongString(n) => {
            let mut p = Pickle::new();
            p.0.push(b'X');
            p.0.extend(n.to_le_bytes());
            p.0.extend(b"abc.");
            pickle(&p.0)
        }
        Hostile::Opcode(at, op) => {
            let original = restora_model::pth::to_pth(&file, Some("params")).unwrap();
            let mut archive = zip::ZipArchive::new(Cursor::new(&original[..])).unwrap();
            let mut p = Vec::new();
            archive.by_name("archive/data.pkl").unwrap().read_to_end(&mut p).unwrap();
            // Where an opcode is read: after the protocol, or before STOP (inside a string the
            // byte would be text, and the string's last byte an opcode that may fit).
            let at = if at.index(2) == 0 { 2 } else { p.len() - 1 };
            p.insert(at, *op);
            pickle(&p)
        }
        Hostile::MemoDoubling(n) => {
            let mut p = Pickle::new();
            p.op(b']');
            for _ in 0..*n {
                p.0.extend([b'q', 0, b'h', 0, 0x86]);
            }
            p.op(b'.');
            pickle(&p.0)
        }
        Hostile::SetItems(pairs) => {
            let mut p = Pickle::new();
            p.op(b'}').op(b'(');
            for i in 0..*pairs {
                p.string(&i.to_string()).op(b'N');
            }
            p.op(b'u').op(b'.');
            pickle(&p.0)
        }
        Hostile::Call(module, name) => {
            let mut p = Pickle::new();
            p.global(module, name).string("rm -rf /").op(0x85).op(b'R').op(b'.');
            pickle(&p.0)
        }
        Hostile::Tensor(claim) => pickle(&claim_pickle(claim)),
        Hostile::DeclaredSize(size) => lie_about_size(pth.clone(), "/data/0", *size),
        Hostile::Storage(twice) => {
            if *twice {
                rezip(&pth, None, &[("other/data/0".to_string(), vec![0; 4096])])
            } else {
                let mut archive = zip::ZipArchive::new(Cursor::new(&pth[..])).unwrap();
                let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
                for i in 0..archive.len() {
                    let entry = archive.by_index(i).unwrap();
                    if entry.name() != "archive/data/0" {
                        writer.raw_copy_file(entry).unwrap();
                    }
                }
                writer.finish().unwrap().into_inner()
            }
        }
        Hostile::Legacy => {
            let mut p = Pickle::new();
            p.int(0x1950a86a20f9469c).op(b'.');
            p.0
        }
        Hostile::NonFinite(at, kind) => {
            let mut file = file;
            let tensor = at.get_mut(&mut file.tensors);
            let value = [f32::NAN, f32::INFINITY, f32::NEG_INFINITY][*kind as usize];
            let i = tensor.values.len() / 2;
            if let Some(v) = tensor.values.get_mut(i) {
                *v = value;
            } else {
                tensor.shape = vec![1];
                tensor.values = vec![value];
            }
            restora_model::pth::to_pth(&file, Some("params")).unwrap()
        }
        Hostile::Shape(at, shape) => {
            let mut file = file;
            let tensor = at.get_mut(&mut file.tensors);
            let mut shape = shape.clone();
            if shape == tensor.shape {
                shape.push(2);
            }
            tensor.values = vec![0.5; shape.iter().product()];
            tensor.shape = shape;
            restora_model::pth::to_pth(&file, Some("params")).unwrap()
        }
    }
}

/// `convert` and `restore --weights` on a checkpoint; returns whether each succeeded.
fn use_checkpoint(scene: &Scene, pth: &[u8]) -> Result<[Run; 2], TestCaseError> {
    let input = scene.input("model.pth");
    std::fs::write(&input, pth).unwrap();
    let converted = scene.outputs.join("model.safetensors");
    let convert = run(scene, &["convert".into(), arg(&input), arg(&converted)])?;
    if convert.success {
        let bytes = std::fs::read(&converted).unwrap();
        prop_assert!(WeightFile::from_safetensors(&bytes).is_ok(), "convert wrote an unreadable file");
    }
    let restored = scene.outputs.join("restored.png");
    let photo = arg(&scene.input("photo.png"));
    let args = ["restore", "--backend", "cpu", "--task", "denoise", "--weights", s(&input), "--input", photo.as_str()];
    let restore =
        run(scene, &args.into_iter().chain(["--output", s(&restored)]).map(str::to_string).collect::<Vec<_>>())?;
    if restore.success {
        prop_assert!(Image::decode(&std::fs::read(&restored).unwrap()).is_ok(), "restore wrote an unreadable image");
    }
    Ok([convert, restore])
}

#[test]
fn the_fixture_checkpoint_converts_and_restores() {
    let scene = Scene::new();
    let pth = restora_model::pth::to_pth(&fixture_file(), Some("params")).unwrap();
    let [convert, restore] = use_checkpoint(&scene, &pth).unwrap();
    assert!(convert.success && restore.success, "{}\n{}", convert.stderr, restore.stderr);
}

/// The hostile checkpoints found to abort or panic burn-store's reader before the check, each
/// refused by name now.
#[test]
fn checkpoints_that_crashed_the_reader_are_refused() {
    let scene = Scene::new();
    let cases = [
        (Hostile::Nested(0, 1_000_000), "nested more than 64 deep"),
        (
            Hostile::Tensor(TensorClaim {
                storage_type: "FloatStorage",
                numel: 1 << 62,
                offset: 0,
                shape: vec![1 << 31, 1 << 31],
                stride: vec![1 << 31, 1],
            }),
            "too many values",
        ),
        (Hostile::DeclaredSize(u32::MAX), "declares 4294967295 bytes"),
        (Hostile::MemoDoubling(40), "copied through the memo"),
    ];
    for (hostile, expected) in cases {
        for run in use_checkpoint(&scene, &hostile_checkpoint(&hostile)).unwrap() {
            assert!(!run.success && run.stderr.contains(expected), "{hostile:?}: {}", run.stderr);
            assert!(run.stderr.contains("model.pth"), "the error names the file: {}", run.stderr);
        }
    }
}

proptest! {
    #![proptest_config(config())]

    /// Hostile checkpoints are refused by `convert` and `restore`, naming the file.
    #[test]
    fn hostile_checkpoints_are_refused(hostile in hostile()) {
        let scene = Scene::new();
        for run in use_checkpoint(&scene, &hostile_checkpoint(&hostile))? {
            prop_assert!(!run.success, "{hostile:?} was accepted");
            prop_assert!(run.stderr.contains("model.pth") || run.stderr.contains("patch_embed") || run.stderr.contains("'"),
                "{hostile:?}: the error names neither the file nor a key: {}", run.stderr);
        }
    }

    /// A valid checkpoint truncated or with bytes overwritten: refused cleanly, or (a changed
    /// weight, padding) read.
    #[test]
    fn damaged_checkpoints_fail_cleanly(
        cut in prop::option::of(any::<prop::sample::Index>()),
        edits in prop::collection::vec((any::<bool>(), any::<prop::sample::Index>(), any::<u8>()), 0..6),
    ) {
        let scene = Scene::new();
        let mut pth = restora_model::pth::to_pth(&fixture_file(), Some("params")).unwrap();
        // Half the edits land in the first 32 kB (headers, data.pkl) or the last 4 kB (the
        // central directory); the rest anywhere, mostly in the weights' values.
        for (near_a_header, at, byte) in edits {
            let i = match near_a_header {
                true if at.index(2) == 0 => at.index(pth.len().min(32 << 10)),
                true => pth.len() - 1 - at.index(pth.len().min(4 << 10)),
                false => at.index(pth.len()),
            };
            pth[i] = byte;
        }
        if let Some(cut) = cut {
            pth.truncate(cut.index(pth.len()));
        }
        use_checkpoint(&scene, &pth)?;
    }
}

// ---------------------------------------------------------------------------------------------
// Command lines and experiment files

/// Each command's long flags, read from its `--help` (commands that run long or write into the
/// working folder by design, `bench` and `demo`, are left out).
fn vocabulary() -> &'static [(String, Vec<String>)] {
    static VOCABULARY: std::sync::OnceLock<Vec<(String, Vec<String>)>> = std::sync::OnceLock::new();
    VOCABULARY.get_or_init(|| {
        ["restore", "degrade", "eval", "info", "convert", "train", "plot", "finetune", "sweep"]
            .into_iter()
            .map(|command| {
                let help = binary().args([command, "--help"]).output().unwrap();
                let help = String::from_utf8_lossy(&help.stdout).into_owned();
                let mut flags: Vec<String> = help
                    .split(|c: char| c.is_whitespace() || c == ',' || c == '[' || c == ']' || c == '=')
                    .filter(|w| {
                        w.starts_with("--") && w.len() > 2 && w[2..].chars().all(|c| c.is_ascii_lowercase() || c == '-')
                    })
                    .map(str::to_string)
                    .filter(|f| f != "--help")
                    .collect();
                flags.sort();
                flags.dedup();
                assert!(!flags.is_empty(), "{command} --help lists no flags");
                (command.to_string(), flags)
            })
            .collect()
    })
}

/// A value for a flag: the scene's files (never a folder of images: a valid `train` would run
/// for hours), paths that do not exist (in the outputs: a run may write what it is asked to),
/// outputs, numbers and words.
fn value(scene: &Scene, choice: usize, text: &str) -> String {
    let paths = [
        scene.input("photo.png"),
        scene.input("notes.txt"),
        scene.input("weights.safetensors"),
        scene.outputs.join("missing.png"),
        scene.outputs.join("model.pth"),
        scene.outputs.join("result.png"),
        scene.outputs.join("run"),
        scene.outputs.clone(),
        scene.outputs.join("missing/deeper/x.png"),
    ];
    match choice % 3 {
        0 => arg(&paths[choice / 3 % paths.len()]),
        _ => text.to_string(),
    }
}

fn odd_text() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        "-?[0-9]{1,22}(\\.[0-9]{0,3})?",
        prop::sample::select(vec![
            "nan",
            "inf",
            "-1",
            "0",
            "1",
            "16",
            "65536",
            "auto",
            "whole",
            "cpu",
            "cuda",
            "denoise",
            "deblur",
            "dealias",
            "inpaint",
            "tiny",
            "small",
            "base",
            "8",
            "16",
            "x",
            "--",
            "-",
            "/",
            "128x8@1000",
            "0x0@0",
            "gaussian-noise",
            "scratches",
            "1,1,1",
            "f16",
            "in/:denoise",
            "é",
        ])
        .prop_map(str::to_string),
        "[ -~]{0,12}",
    ]
}

proptest! {
    #![proptest_config(config())]

    /// Any command line made of a command's real flags and odd values (the scene's files among
    /// them) succeeds or fails cleanly.
    #[test]
    fn damaged_command_lines_fail_cleanly(
        command in any::<prop::sample::Index>(),
        tokens in prop::collection::vec((any::<prop::sample::Index>(), any::<usize>(), odd_text(), any::<bool>()), 0..7),
    ) {
        let scene = Scene::new();
        let (name, flags) = command.get(vocabulary());
        let mut args = vec![name.clone()];
        for (flag, choice, text, with_flag) in tokens {
            if with_flag {
                args.push(flag.get(flags).clone());
            }
            let value = value(&scene, choice, &text);
            if !value.is_empty() {
                args.push(value);
            }
        }
        run(&scene, &args)?;
    }
}

/// The experiment file of the shipped preview, the seed of the damaged ones.
const SEED_TOML: &str = include_str!("../../static/weights/restora-small-foundation-22000.toml");

/// One way to damage an experiment file.
#[derive(Debug, Clone)]
enum TomlDamage {
    /// A key's value replaced (by line number among the `key = value` lines).
    Value(prop::sample::Index, String),
    /// A line added to a section, or at the top.
    Line(prop::sample::Index, String),
    Truncate(prop::sample::Index),
    Overwrite(prop::sample::Index, u8),
}

fn toml_damage() -> impl Strategy<Value = TomlDamage> {
    let values = prop_oneof![
        prop::sample::select(vec![
            "-1",
            "0",
            "1e400",
            "nan",
            "inf",
            "-inf",
            "18446744073709551616",
            "9223372036854775807",
            "\"\"",
            "\"tiny\"",
            "\"base\"",
            "\"huge\"",
            "true",
            "[]",
            "[1, 2]",
            "{}",
            "[\"denoise\", \"nope\"]",
            "\"/nonexistent\"",
            "1979-05-27",
            "\"128x8@1000\"",
            "[{ until = 0, patch = 0, batch = 0 }]",
            "0.5",
        ])
        .prop_map(str::to_string),
        "-?[0-9]{1,20}(\\.[0-9]{1,4})?",
        "\"[ -~&&[^\"\\\\]]{0,10}\"",
    ];
    let lines = prop::sample::select(vec![
        "unknown = 1",
        "[extra]",
        "[model]",
        "preset = \"tiny\"",
        "[[data.paired]]\ndir = \"/nonexistent\"\ntask = \"denoise\"",
        "[[data.paired]]\ndir = \"\"\nshare = -2.0",
        "[schedule]\nprogressive = [{ until = 10, patch = 8, batch = 1 }]",
        "iters = 0",
        "= 3",
        "[model",
        "\"k\" = \"\\u0000\"",
    ])
    .prop_map(str::to_string);
    prop_oneof![
        (any::<prop::sample::Index>(), values).prop_map(|(at, v)| TomlDamage::Value(at, v)),
        (any::<prop::sample::Index>(), lines).prop_map(|(at, l)| TomlDamage::Line(at, l)),
        any::<prop::sample::Index>().prop_map(TomlDamage::Truncate),
        (any::<prop::sample::Index>(), any::<u8>()).prop_map(|(at, b)| TomlDamage::Overwrite(at, b)),
    ]
}

fn damage_toml(damages: &[TomlDamage]) -> Vec<u8> {
    let mut lines: Vec<String> = SEED_TOML.lines().map(str::to_string).collect();
    for damage in damages {
        match damage {
            TomlDamage::Value(at, value) => {
                let keyed: Vec<usize> = (0..lines.len()).filter(|&i| lines[i].contains(" = ")).collect();
                let i = keyed[at.index(keyed.len())];
                let key = lines[i].split(" = ").next().unwrap_or_default().to_string();
                lines[i] = format!("{key} = {value}");
            }
            TomlDamage::Line(at, line) => lines.insert(at.index(lines.len() + 1), line.clone()),
            TomlDamage::Truncate(_) | TomlDamage::Overwrite(..) => {}
        }
    }
    let mut text = lines.join("\n").into_bytes();
    for damage in damages {
        match damage {
            TomlDamage::Truncate(at) => text.truncate(at.index(text.len() + 1)),
            TomlDamage::Overwrite(at, byte) if !text.is_empty() => {
                let i = at.index(text.len());
                text[i] = *byte;
            }
            _ => {}
        }
    }
    text
}

proptest! {
    #![proptest_config(config())]

    /// `train --config` with a damaged experiment file fails cleanly. The training data is a
    /// single image file (not a folder): no run can start, whatever the file says.
    #[test]
    fn damaged_experiment_files_fail_cleanly(damages in prop::collection::vec(toml_damage(), 1..4)) {
        let scene = Scene::new();
        let config = scene.input("experiment.toml");
        std::fs::write(&config, damage_toml(&damages)).unwrap();
        let photo = arg(&scene.input("photo.png"));
        let out = arg(&scene.outputs.join("run"));
        let args = ["train", "--config", s(&config), "--data", photo.as_str(), "--val", photo.as_str(), "--out", out.as_str(), "--backend", "cpu"];
        let run = run(&scene, &args.map(str::to_string))?;
        prop_assert!(!run.success, "{damages:?}: a training run started");
    }
}
