//! Writes PyTorch `.pth` checkpoints (`torch.save` zip format); the CLI reads them back through burn-store.
//!
//! The bytes are those of `torch.save({"params": OrderedDict(state_dict)}, f)` (or of
//! `torch.save(OrderedDict(state_dict), f)` without a top-level key) in PyTorch's zip format:
//!
//! - `archive/data.pkl`: the object, pickled with protocol 2. Each tensor is
//!   `torch._utils._rebuild_tensor_v2(storage, 0, size, stride, False, OrderedDict())`, its storage
//!   the persistent id `('storage', torch.FloatStorage, '<index>', 'cpu', numel)`;
//! - `archive/.format_version` (`1`), `archive/.storage_alignment` (`64`), `archive/byteorder`
//!   (`little`);
//! - `archive/data/<index>`: the storage's raw little-endian f32 values, one per tensor, in the
//!   order of [`WeightFile::tensors`];
//! - `archive/version` (`3\n`).
//!
//! Entries are stored uncompressed and, as PyTorch does, every entry's data starts on a 64-byte
//! boundary, padded by an `FB` extra field in the local header (the reader may memory-map them).
//! Loadable by `torch.load(path, weights_only=True)`.

use std::collections::HashSet;
use std::io::{Cursor, Write};

use zip::write::{FullFileOptions, ZipWriter};
use zip::{CompressionMethod, DateTime, ZIP64_BYTES_THR};

use crate::weights::WeightFile;

/// The folder every entry lives in (what `torch.save` uses when writing to a buffer).
pub const ARCHIVE_NAME: &str = "archive";

/// Where entry data starts, in bytes (PyTorch's `kFieldAlignment`).
const ALIGNMENT: u64 = 64;

/// The zip extra field PyTorch pads local headers with: id `FB`, filled with `Z`.
const PAD_FIELD_ID: u16 = u16::from_le_bytes(*b"FB");

/// Size of a zip local file header before the name.
const LOCAL_HEADER_LEN: u64 = 30;

/// What can go wrong writing a checkpoint.
#[derive(Debug, thiserror::Error)]
pub enum PthError {
    #[error("'{key}' has shape {shape:?} ({expected} values) but {found} values")]
    ValueCount { key: String, shape: Vec<usize>, expected: usize, found: usize },
    #[error("'{0}' appears more than once")]
    DuplicateKey(String),
    #[error("could not write the zip archive: {0}")]
    Zip(#[from] zip::result::ZipError),
    #[error("could not write the zip archive: {0}")]
    Io(#[from] std::io::Error),
}

/// Serialises `file` as a PyTorch checkpoint: the state dict under `top_level_key` (the official
/// Restormer checkpoints use `Some("params")`), or the bare state dict with `None`. Tensors keep
/// the order of `file.tensors`; the metadata is not written (PyTorch has no place for it).
pub fn to_pth(file: &WeightFile, top_level_key: Option<&str>) -> Result<Vec<u8>, PthError> {
    let mut seen = HashSet::new();
    for tensor in &file.tensors {
        let expected = tensor.shape.iter().product::<usize>();
        if tensor.values.len() != expected {
            return Err(PthError::ValueCount {
                key: tensor.key.clone(),
                shape: tensor.shape.clone(),
                expected,
                found: tensor.values.len(),
            });
        }
        if !seen.insert(tensor.key.as_str()) {
            return Err(PthError::DuplicateKey(tensor.key.clone()));
        }
    }

    let mut archive = Archive::new();
    archive.add("data.pkl", &pickle_state_dict(file, top_level_key))?;
    archive.add(".format_version", b"1")?;
    archive.add(".storage_alignment", ALIGNMENT.to_string().as_bytes())?;
    archive.add("byteorder", b"little")?;
    for (index, tensor) in file.tensors.iter().enumerate() {
        archive.start(&format!("data/{index}"), tensor.values.len() as u64 * 4)?;
        let mut buffer = Vec::with_capacity(4 * 16384.min(tensor.values.len()));
        for chunk in tensor.values.chunks(16384) {
            buffer.clear();
            buffer.extend(chunk.iter().flat_map(|v| v.to_le_bytes()));
            archive.writer.write_all(&buffer)?;
        }
    }
    archive.add("version", b"3\n")?;
    archive.finish()
}

/// A zip archive in memory whose entries' data are aligned like PyTorch's.
struct Archive {
    writer: ZipWriter<Cursor<Vec<u8>>>,
    /// Where the next local header starts.
    offset: u64,
}

impl Archive {
    fn new() -> Self {
        Self { writer: ZipWriter::new(Cursor::new(Vec::new())), offset: 0 }
    }

    /// Starts the entry `ARCHIVE_NAME/name` of `len` bytes, its data on an aligned offset.
    fn start(&mut self, name: &str, len: u64) -> Result<(), PthError> {
        let name = format!("{ARCHIVE_NAME}/{name}");
        // The zip crate puts a ZIP64 field before ours for big entries and far offsets.
        let large_file = len >= ZIP64_BYTES_THR;
        let zip64_sizes = large_file || self.offset > ZIP64_BYTES_THR;
        let zip64_body = if zip64_sizes { 16 } else { 0 } + if self.offset >= ZIP64_BYTES_THR { 8 } else { 0 };
        let zip64_len = if zip64_body > 0 { 4 + zip64_body } else { 0 };
        let unpadded = self.offset + LOCAL_HEADER_LEN + name.len() as u64 + zip64_len + 4;
        let padding = (ALIGNMENT - unpadded % ALIGNMENT) % ALIGNMENT;

        let mut options = FullFileOptions::default()
            .compression_method(CompressionMethod::Stored)
            .last_modified_time(DateTime::default())
            .large_file(large_file);
        options.add_extra_data(PAD_FIELD_ID, vec![b'Z'; padding as usize], false)?;
        self.writer.start_file(name, options)?;
        self.offset = unpadded + padding + len;
        Ok(())
    }

    fn add(&mut self, name: &str, data: &[u8]) -> Result<(), PthError> {
        self.start(name, data.len() as u64)?;
        self.writer.write_all(data)?;
        Ok(())
    }

    fn finish(self) -> Result<Vec<u8>, PthError> {
        Ok(self.writer.finish()?.into_inner())
    }
}

/// `{top_level_key: OrderedDict(state_dict)}` (or the bare `OrderedDict`) as Python's pickler
/// writes it with protocol 2 and torch's persistent ids.
fn pickle_state_dict(file: &WeightFile, top_level_key: Option<&str>) -> Vec<u8> {
    let mut p = Pickler::default();
    p.op(op::PROTO);
    p.out.push(2);
    if let Some(key) = top_level_key {
        p.op(op::EMPTY_DICT);
        p.memoize();
        p.string(key);
        p.memoize();
    }

    let ordered_dict = p.global("collections", "OrderedDict");
    p.op(op::EMPTY_TUPLE);
    p.op(op::REDUCE);
    p.memoize();

    let mut rebuild = None;
    let mut float_storage = None;
    let mut storage_tag = None;
    let mut cpu = None;
    for (batch_number, batch) in file.tensors.chunks(BATCH_SIZE).enumerate() {
        if batch.len() > 1 {
            p.op(op::MARK);
        }
        for (i, tensor) in batch.iter().enumerate() {
            let index = batch_number * BATCH_SIZE + i;
            p.string(&tensor.key);
            p.memoize();
            p.global_once(&mut rebuild, "torch._utils", "_rebuild_tensor_v2");
            p.op(op::MARK);
            // Persistent id: ('storage', torch.FloatStorage, '<index>', 'cpu', numel).
            p.op(op::MARK);
            p.string_once(&mut storage_tag, "storage");
            p.global_once(&mut float_storage, "torch", "FloatStorage");
            p.string(&index.to_string());
            p.memoize();
            p.string_once(&mut cpu, "cpu");
            p.int(tensor.values.len() as u64);
            p.op(op::TUPLE);
            p.memoize();
            p.op(op::BINPERSID);
            // Storage offset, size, stride, requires_grad, backward hooks.
            p.int(0);
            p.tuple(&tensor.shape);
            p.tuple(&contiguous_strides(&tensor.shape));
            p.op(op::NEWFALSE);
            p.get(ordered_dict);
            p.op(op::EMPTY_TUPLE);
            p.op(op::REDUCE);
            p.memoize();
            p.op(op::TUPLE);
            p.memoize();
            p.op(op::REDUCE);
            p.memoize();
        }
        p.op(if batch.len() > 1 { op::SETITEMS } else { op::SETITEM });
    }

    if top_level_key.is_some() {
        p.op(op::SETITEM);
    }
    p.op(op::STOP);
    p.out
}

/// Python's pickler writes dict items in batches of this many.
const BATCH_SIZE: usize = 1000;

/// Row-major strides, as `torch.empty(shape).stride()` (a zero-sized dimension counts as one).
fn contiguous_strides(shape: &[usize]) -> Vec<usize> {
    let mut strides = vec![1; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        strides[i] = strides[i + 1] * shape[i + 1].max(1);
    }
    strides
}

/// Pickle opcodes (protocol 2).
mod op {
    pub const PROTO: u8 = 0x80;
    pub const STOP: u8 = b'.';
    pub const MARK: u8 = b'(';
    pub const EMPTY_DICT: u8 = b'}';
    pub const EMPTY_TUPLE: u8 = b')';
    pub const TUPLE: u8 = b't';
    pub const TUPLE1: u8 = 0x85;
    pub const TUPLE2: u8 = 0x86;
    pub const TUPLE3: u8 = 0x87;
    pub const NEWFALSE: u8 = 0x89;
    pub const BININT: u8 = b'J';
    pub const BININT1: u8 = b'K';
    pub const BININT2: u8 = b'M';
    pub const LONG1: u8 = 0x8a;
    pub const BINUNICODE: u8 = b'X';
    pub const GLOBAL: u8 = b'c';
    pub const REDUCE: u8 = b'R';
    pub const BINPERSID: u8 = b'Q';
    pub const SETITEM: u8 = b's';
    pub const SETITEMS: u8 = b'u';
    pub const BINPUT: u8 = b'q';
    pub const LONG_BINPUT: u8 = b'r';
    pub const BINGET: u8 = b'h';
    pub const LONG_BINGET: u8 = b'j';
}

/// Writes pickle opcodes, numbering memo entries.
#[derive(Default)]
struct Pickler {
    out: Vec<u8>,
    next_memo: u32,
}

impl Pickler {
    fn op(&mut self, opcode: u8) {
        self.out.push(opcode);
    }

    /// Stores the top of the stack in the memo; returns its index.
    fn memoize(&mut self) -> u32 {
        let index = self.next_memo;
        self.next_memo += 1;
        match u8::try_from(index) {
            Ok(small) => self.out.extend([op::BINPUT, small]),
            Err(_) => {
                self.out.push(op::LONG_BINPUT);
                self.out.extend(index.to_le_bytes());
            }
        }
        index
    }

    /// Pushes a memoized object.
    fn get(&mut self, index: u32) {
        match u8::try_from(index) {
            Ok(small) => self.out.extend([op::BINGET, small]),
            Err(_) => {
                self.out.push(op::LONG_BINGET);
                self.out.extend(index.to_le_bytes());
            }
        }
    }

    fn string(&mut self, s: &str) {
        self.out.push(op::BINUNICODE);
        self.out.extend((s.len() as u32).to_le_bytes());
        self.out.extend(s.as_bytes());
    }

    /// The string, memoized the first time and fetched from the memo afterwards.
    fn string_once(&mut self, memo: &mut Option<u32>, s: &str) {
        match *memo {
            Some(index) => self.get(index),
            None => {
                self.string(s);
                *memo = Some(self.memoize());
            }
        }
    }

    /// Pushes `module.name`, memoized; returns its memo index.
    fn global(&mut self, module: &str, name: &str) -> u32 {
        self.out.push(op::GLOBAL);
        self.out.extend(module.as_bytes());
        self.out.push(b'\n');
        self.out.extend(name.as_bytes());
        self.out.push(b'\n');
        self.memoize()
    }

    fn global_once(&mut self, memo: &mut Option<u32>, module: &str, name: &str) {
        match *memo {
            Some(index) => self.get(index),
            None => *memo = Some(self.global(module, name)),
        }
    }

    /// A non-negative int in the smallest encoding Python would choose.
    fn int(&mut self, value: u64) {
        if let Ok(v) = u8::try_from(value) {
            self.out.extend([op::BININT1, v]);
        } else if let Ok(v) = u16::try_from(value) {
            self.out.push(op::BININT2);
            self.out.extend(v.to_le_bytes());
        } else if let Ok(v) = i32::try_from(value) {
            self.out.push(op::BININT);
            self.out.extend(v.to_le_bytes());
        } else {
            // Two's complement, little-endian, as short as the sign allows.
            let mut bytes = value.to_le_bytes().to_vec();
            while bytes.len() > 1 && bytes[bytes.len() - 1] == 0 && bytes[bytes.len() - 2] & 0x80 == 0 {
                bytes.pop();
            }
            if bytes[bytes.len() - 1] & 0x80 != 0 {
                bytes.push(0);
            }
            self.out.extend([op::LONG1, bytes.len() as u8]);
            self.out.extend(bytes);
        }
    }

    /// A memoized tuple of non-negative ints.
    fn tuple(&mut self, items: &[usize]) {
        if items.is_empty() {
            self.op(op::EMPTY_TUPLE);
            return;
        }
        if items.len() > 3 {
            self.op(op::MARK);
        }
        for &item in items {
            self.int(item as u64);
        }
        self.op(match items.len() {
            1 => op::TUPLE1,
            2 => op::TUPLE2,
            3 => op::TUPLE3,
            _ => op::TUPLE,
        });
        self.memoize();
    }
}

#[cfg(all(test, feature = "pth"))]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::weights::NamedTensor;

    fn fixture(file: &str) -> Vec<u8> {
        let path = format!("{}/../../shared/fixtures/restormer/tiny-biasfree/{file}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    /// Reads a checkpoint back with burn-store's reader, as the CLI does.
    ///
    /// Through a file: burn-store 0.20.1 reads zip checkpoints only from a path
    /// (`PytorchReader::from_reader` takes bare legacy pickles, without tensor data).
    fn read_pth(bytes: &[u8]) -> WeightFile {
        use burn_store::pytorch::PytorchReader;
        use std::sync::atomic::{AtomicUsize, Ordering};
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "restora-pth-test-{}-{}.pth",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::write(&path, bytes).unwrap();
        let reader = PytorchReader::with_top_level_key(&path, "params").or_else(|_| PytorchReader::new(&path)).unwrap();
        let tensors = reader
            .into_tensors()
            .into_iter()
            .map(|(key, snapshot)| {
                // burn-store 0.20.1 panics rebuilding zero-sized tensors (PyTorch does not:
                // see `write_check_files`); their shape is checked all the same.
                let values = match snapshot.shape.iter().product::<usize>() {
                    0 => Vec::new(),
                    _ => snapshot.to_data().unwrap().convert::<f32>().into_vec::<f32>().unwrap(),
                };
                NamedTensor { key, shape: snapshot.shape.clone(), values }
            })
            .collect();
        std::fs::remove_file(&path).unwrap();
        WeightFile { tensors, metadata: HashMap::new() }
    }

    /// Keys, shapes and values (bit for bit), whatever the order.
    fn assert_same(a: &WeightFile, b: &WeightFile) {
        let by_key = |f: &WeightFile| -> HashMap<String, (Vec<usize>, Vec<u32>)> {
            f.tensors
                .iter()
                .map(|t| (t.key.clone(), (t.shape.clone(), t.values.iter().map(|v| v.to_bits()).collect())))
                .collect()
        };
        assert_eq!(a.tensors.len(), b.tensors.len());
        let (a, b) = (by_key(a), by_key(b));
        assert_eq!(a.len(), b.len(), "duplicate keys");
        for (key, (shape, values)) in &a {
            let (other_shape, other_values) = b.get(key).unwrap_or_else(|| panic!("'{key}' is missing"));
            assert_eq!(shape, other_shape, "{key}");
            assert!(values == other_values, "'{key}' differs");
        }
    }

    fn tensor(key: &str, shape: &[usize], seed: u32) -> NamedTensor {
        let n = shape.iter().product::<usize>();
        let values = (0..n).map(|i| ((i as u32).wrapping_mul(2654435761) ^ seed) as f32 / 7919.0 - 1e5).collect();
        NamedTensor { key: key.into(), shape: shape.to_vec(), values }
    }

    fn synthetic() -> WeightFile {
        let mut special = tensor("special", &[8], 0);
        special.values =
            vec![0.0, -0.0, f32::INFINITY, f32::NEG_INFINITY, f32::NAN, f32::MIN_POSITIVE / 2.0, f32::MAX, -1.5];
        WeightFile {
            tensors: vec![
                tensor("patch_embed.proj.weight", &[48, 3, 3, 3], 1),
                tensor("encoder_level1.0.attn.temperature", &[1, 1, 1], 2),
                tensor("scalar", &[], 3),
                special,
                tensor("big", &[70000], 4),
                tensor("five.dims", &[2, 3, 1, 4, 5], 5),
                tensor("zero", &[0, 3], 6),
                tensor("ünïcode.key", &[3, 300], 7),
            ],
            metadata: HashMap::new(),
        }
    }

    /// Entry names in order, and every entry's data on a 64-byte boundary, uncompressed.
    fn entries(bytes: &[u8]) -> Vec<String> {
        let mut archive = zip::ZipArchive::new(Cursor::new(bytes)).unwrap();
        (0..archive.len())
            .map(|i| {
                let entry = archive.by_index(i).unwrap();
                assert_eq!(entry.compression(), CompressionMethod::Stored, "{}", entry.name());
                assert_eq!(entry.data_start() % ALIGNMENT, 0, "{} starts at {}", entry.name(), entry.data_start());
                entry.name().to_string()
            })
            .collect()
    }

    #[test]
    fn round_trips_through_the_reader() {
        let file = synthetic();
        for key in [Some("params"), None] {
            let bytes = to_pth(&file, key).unwrap();
            let names = entries(&bytes);
            let mut expected: Vec<String> = ["data.pkl", ".format_version", ".storage_alignment", "byteorder"]
                .iter()
                .map(|n| format!("archive/{n}"))
                .collect();
            expected.extend((0..file.tensors.len()).map(|i| format!("archive/data/{i}")));
            expected.push("archive/version".into());
            assert_eq!(names, expected);
            assert_same(&file, &read_pth(&bytes));
        }
    }

    #[test]
    fn many_tensors_use_long_memo_indices_and_several_batches() {
        let file = WeightFile {
            tensors: (0..2100).map(|i| tensor(&format!("layer.{i}.weight"), &[1 + i % 5, 2], i as u32)).collect(),
            metadata: HashMap::new(),
        };
        let bytes = to_pth(&file, Some("params")).unwrap();
        entries(&bytes);
        assert_same(&file, &read_pth(&bytes));
    }

    #[test]
    fn the_official_checkpoint_round_trips() {
        let official = read_pth(&fixture("weights.pth"));
        assert!(!official.tensors.is_empty());
        let bytes = to_pth(&official, Some("params")).unwrap();
        entries(&bytes);
        assert_same(&official, &read_pth(&bytes));
        // And it holds what the safetensors export of the same weights holds.
        assert_same(&official, &WeightFile::from_safetensors(&fixture("weights.safetensors")).unwrap());
    }

    #[test]
    fn the_pickle_matches_what_python_writes() {
        // `pickle.dumps({"params": OrderedDict(a=_rebuild_tensor_v2(...))}, protocol=2)` with
        // torch's persistent id, as in the official checkpoint's data.pkl.
        let file = WeightFile { tensors: vec![tensor("a", &[2, 3], 0)], metadata: HashMap::new() };
        let pickle = pickle_state_dict(&file, Some("params"));
        let mut expected = vec![0x80, 2, b'}', b'q', 0];
        expected.extend(b"X\x06\x00\x00\x00paramsq\x01ccollections\nOrderedDict\nq\x02)Rq\x03");
        expected.extend(b"X\x01\x00\x00\x00aq\x04ctorch._utils\n_rebuild_tensor_v2\nq\x05((");
        expected.extend(b"X\x07\x00\x00\x00storageq\x06ctorch\nFloatStorage\nq\x07X\x01\x00\x00\x000q\x08");
        expected.extend(b"X\x03\x00\x00\x00cpuq\tK\x06tq\nQK\x00K\x02K\x03\x86q\x0bK\x03K\x01\x86q\x0c\x89h\x02)Rq\r");
        expected.extend(b"tq\x0eRq\x0fs");
        expected.extend(b"s.");
        assert_eq!(pickle, expected, "{}", String::from_utf8_lossy(&pickle));
    }

    #[test]
    fn padding_is_torchs_extra_field() {
        let bytes = to_pth(&synthetic(), Some("params")).unwrap();
        // First local header: "archive/data.pkl", then the FB field filled with Z.
        let name_len = u16::from_le_bytes([bytes[26], bytes[27]]) as usize;
        let extra_len = u16::from_le_bytes([bytes[28], bytes[29]]) as usize;
        assert_eq!(&bytes[30..30 + name_len], b"archive/data.pkl");
        let extra = &bytes[30 + name_len..30 + name_len + extra_len];
        assert_eq!(&extra[..2], b"FB");
        assert_eq!(u16::from_le_bytes([extra[2], extra[3]]) as usize, extra_len - 4);
        assert!(extra[4..].iter().all(|&b| b == b'Z'));
        assert_eq!((30 + name_len + extra_len) % 64, 0);
    }

    #[test]
    fn ints_use_the_smallest_encoding() {
        let encode = |v: u64| {
            let mut p = Pickler::default();
            p.int(v);
            p.out
        };
        assert_eq!(encode(255), [b'K', 255]);
        assert_eq!(encode(256), [b'M', 0, 1]);
        assert_eq!(encode(65536), [b'J', 0, 0, 1, 0]);
        assert_eq!(encode(1 << 31), [0x8a, 5, 0, 0, 0, 0x80, 0]);
        assert_eq!(encode(1 << 32), [0x8a, 5, 0, 0, 0, 0, 1]);
        assert_eq!(encode(u64::MAX), [0x8a, 9, 255, 255, 255, 255, 255, 255, 255, 255, 0]);
    }

    #[test]
    fn strides_are_row_major() {
        assert_eq!(contiguous_strides(&[48, 3, 3, 3]), [27, 9, 3, 1]);
        assert_eq!(contiguous_strides(&[]), Vec::<usize>::new());
        assert_eq!(contiguous_strides(&[0, 3]), [3, 1]);
        assert_eq!(contiguous_strides(&[4, 0, 2]), [2, 2, 1]);
    }

    #[test]
    fn inconsistent_files_are_refused() {
        let mut file = synthetic();
        file.tensors[0].values.pop();
        let error = to_pth(&file, None).unwrap_err().to_string();
        assert!(error.contains("patch_embed.proj.weight") && error.contains("1295"), "{error}");

        let mut file = synthetic();
        file.tensors[1].key = file.tensors[0].key.clone();
        assert!(matches!(to_pth(&file, None), Err(PthError::DuplicateKey(_))));
    }

    /// Writes, in the temp folder, `restora_check.pth` from the fixture's safetensors and
    /// `restora_edge.pth` + `restora_edge.safetensors` from the synthetic tensors (scalar,
    /// zero-sized, NaN, infinities, subnormal, non-ASCII key), for `tools/pth/check_pth.py`.
    #[test]
    #[ignore]
    fn write_check_files() {
        let dir = std::env::temp_dir();
        let file = WeightFile::from_safetensors(&fixture("weights.safetensors")).unwrap();
        let path = dir.join("restora_check.pth");
        std::fs::write(&path, to_pth(&file, Some("params")).unwrap()).unwrap();
        println!("wrote {} ({} tensors)", path.display(), file.tensors.len());

        let edge = synthetic();
        std::fs::write(dir.join("restora_edge.pth"), to_pth(&edge, None).unwrap()).unwrap();
        let safetensors = edge.to_safetensors(crate::weights::StoredPrecision::F32).unwrap();
        std::fs::write(dir.join("restora_edge.safetensors"), safetensors).unwrap();
        println!("wrote {} ({} tensors)", dir.join("restora_edge.pth").display(), edge.tensors.len());
    }
}
