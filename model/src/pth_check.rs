//! A bounded check of a PyTorch `.pth` checkpoint before burn-store reads it.
//!
//! burn-store 0.20.1's pickle reader trusts the file: a million nested lists overflow the stack
//! when the parsed object is dropped (an abort, not an error), a lying storage size or shape makes
//! it allocate without limit (a capacity-overflow panic), an unknown storage type silently reads
//! as f32, a missing or short storage reads as zeros, strides are ignored, and some objects are
//! cloned on every memo use, so a few kilobytes can ask for exponential time. This module walks
//! the archive and the pickle once, in time and memory linear in the file, simulating the pickle
//! machine just enough to see the shape of every object, and accepts only what `torch.save` of a
//! state dict writes and burn-store reads faithfully: zip archives, the opcodes burn-store knows,
//! shallow objects, contiguous floating-point tensors whose storage exists and holds them.

use std::io::{Cursor, Read};
use std::rc::Rc;

use zip::ZipArchive;

/// Deepest nesting of tuples, lists and dicts accepted (a state dict needs 4 or 5).
pub const MAX_DEPTH: u32 = 64;
/// Largest `data.pkl` accepted (the official `base` model's is about 40 kB).
const MAX_PICKLE_BYTES: u64 = 64 << 20;
/// Most objects burn-store may have to copy while reading (memo uses copy whole objects).
const MAX_COPIED_OBJECTS: u64 = 10_000_000;
/// Most objects in one SETITEMS (Python writes batches of 1000 pairs; burn-store's handling is
/// quadratic in this count).
const MAX_SETITEMS_OBJECTS: usize = 2_000;
/// Largest declared uncompressed size of all entries together (burn-store allocates an entry's
/// declared size before reading it; the official `base` model is about 100 MB).
const MAX_ARCHIVE_BYTES: u64 = 2 << 30;
/// Most storage bytes burn-store may read (it reads a tensor's whole storage entry once per
/// state-dict entry, so a storage shared by many keys is read many times).
const MAX_READ_BYTES: u64 = 2 << 30;
/// Longest module or class name in a GLOBAL.
const MAX_GLOBAL_NAME: usize = 256;

/// Why a checkpoint is refused.
#[derive(Debug, thiserror::Error)]
pub enum PthCheckError {
    #[error("not a PyTorch zip checkpoint ({0}); only files written by torch.save since PyTorch 1.6 are read")]
    NotZip(String),
    #[error("the archive cannot be read: {0}")]
    Archive(String),
    #[error("the archive has no data.pkl")]
    NoPickle,
    #[error("entry '{name}' declares {size} bytes, more than its {compressed} compressed bytes can hold")]
    EntrySize { name: String, size: u64, compressed: u64 },
    #[error("the archive declares {0} bytes in all, more than the {MAX_ARCHIVE_BYTES} accepted")]
    ArchiveTooLarge(u64),
    #[error("data.pkl is {0} bytes, more than the {MAX_PICKLE_BYTES} accepted")]
    PickleTooLarge(u64),
    #[error("data.pkl is damaged at byte {at}: {problem}")]
    Pickle { at: usize, problem: String },
    #[error("tensor '{key}': {problem}")]
    Tensor { key: String, problem: String },
}

/// What a checked checkpoint holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PthSummary {
    /// Tensors rebuilt by the pickle (state-dict entries and any others).
    pub tensors: usize,
}

/// Checks the checkpoint's bytes; `Ok` means burn-store can read it without surprises.
pub fn check_pth(bytes: &[u8]) -> Result<PthSummary, PthCheckError> {
    if !bytes.starts_with(b"PK\x03\x04") {
        return Err(PthCheckError::NotZip("it does not start with a zip header".into()));
    }
    let mut archive = ZipArchive::new(Cursor::new(bytes)).map_err(|e| PthCheckError::NotZip(e.to_string()))?;
    let mut entries = Vec::with_capacity(archive.len());
    let mut total = 0u64;
    for i in 0..archive.len() {
        let entry = archive.by_index_raw(i).map_err(|e| PthCheckError::Archive(e.to_string()))?;
        // A stored entry holds exactly its bytes, and deflate expands at most 1032×; a larger
        // claim is a lie that burn-store would allocate.
        let limit = match entry.compression() {
            zip::CompressionMethod::Stored => entry.compressed_size(),
            _ => entry.compressed_size().saturating_mul(1032).saturating_add(1024),
        };
        if entry.size() > limit {
            return Err(PthCheckError::EntrySize {
                name: entry.name().to_string(),
                size: entry.size(),
                compressed: entry.compressed_size(),
            });
        }
        total = total.saturating_add(entry.size());
        entries.push((entry.name().to_string(), entry.size()));
    }
    if total > MAX_ARCHIVE_BYTES {
        return Err(PthCheckError::ArchiveTooLarge(total));
    }
    // The pickle burn-store picks: `data.pkl`, `archive/data.pkl`, else the first `*data.pkl`.
    let pickle_name = ["data.pkl", "archive/data.pkl"]
        .into_iter()
        .find(|name| entries.iter().any(|(n, _)| n == name))
        .map(str::to_string)
        .or_else(|| entries.iter().find(|(n, _)| n.ends_with("data.pkl")).map(|(n, _)| n.clone()))
        .ok_or(PthCheckError::NoPickle)?;
    let pickle_size = entries.iter().find(|(n, _)| *n == pickle_name).map_or(0, |(_, s)| *s);
    if pickle_size > MAX_PICKLE_BYTES {
        return Err(PthCheckError::PickleTooLarge(pickle_size));
    }
    let mut pickle = Vec::with_capacity(pickle_size as usize);
    archive
        .by_name(&pickle_name)
        .and_then(|entry| entry.take(MAX_PICKLE_BYTES + 1).read_to_end(&mut pickle).map_err(Into::into))
        .map_err(|e| PthCheckError::Archive(format!("{pickle_name}: {e}")))?;
    Machine::new(&pickle, &entries).run()
}

/// How big an object is: what burn-store's recursion, copies and reads depend on.
#[derive(Debug, Clone, Copy)]
struct Size {
    depth: u32,
    objects: u64,
    /// Storage bytes burn-store reads to extract the tensors inside.
    reads: u64,
}

impl Size {
    const LEAF: Size = Size { depth: 0, objects: 1, reads: 0 };
    const EMPTY: Size = Size { depth: 1, objects: 1, reads: 0 };
}

/// The pickle machine's values, as much of them as the check needs.
#[derive(Debug, Clone)]
enum Value {
    Mark,
    Int(i64),
    Str(Rc<str>),
    Global(Rc<(String, String)>),
    /// Items are kept (tensor arguments are read from them); depth is bounded on creation.
    Tuple(Rc<Vec<Value>>, Size),
    /// A persistent id: burn-store's storage reference.
    Storage(Rc<Vec<Value>>),
    /// A tensor rebuilt by `_rebuild_tensor_v2`: its index in the machine's tensor list and the
    /// size of its storage entry.
    Tensor(usize, u64),
    Dict(Size),
    List(Size),
    /// None, booleans, floats, and objects burn-store keeps but does not use.
    Other(Size),
}

impl Value {
    fn size(&self) -> Size {
        match self {
            Value::Tuple(_, size) | Value::Dict(size) | Value::List(size) | Value::Other(size) => *size,
            Value::Tensor(_, bytes) => Size { reads: *bytes, ..Size::LEAF },
            _ => Size::LEAF,
        }
    }
}

/// A tensor found in the pickle: its storage problem, if any, is reported with its key.
struct TensorRecord {
    problem: Option<String>,
}

struct Machine<'a> {
    pickle: &'a [u8],
    at: usize,
    entries: &'a [(String, u64)],
    stack: Vec<Value>,
    memo: std::collections::HashMap<u32, Value>,
    tensors: Vec<TensorRecord>,
    copied: u64,
}

impl<'a> Machine<'a> {
    fn new(pickle: &'a [u8], entries: &'a [(String, u64)]) -> Self {
        Self { pickle, at: 0, entries, stack: Vec::new(), memo: Default::default(), tensors: Vec::new(), copied: 0 }
    }

    fn damaged(&self, problem: impl Into<String>) -> PthCheckError {
        PthCheckError::Pickle { at: self.at, problem: problem.into() }
    }

    fn bytes(&mut self, n: usize) -> Result<&'a [u8], PthCheckError> {
        let end = self.at.checked_add(n).filter(|&end| end <= self.pickle.len()).ok_or_else(|| {
            self.damaged(format!("{n} bytes declared, {} left", self.pickle.len() - self.at.min(self.pickle.len())))
        })?;
        let slice = &self.pickle[self.at..end];
        self.at = end;
        Ok(slice)
    }

    fn u8(&mut self) -> Result<u8, PthCheckError> {
        Ok(self.bytes(1)?[0])
    }

    fn u32(&mut self) -> Result<u32, PthCheckError> {
        Ok(u32::from_le_bytes(self.bytes(4)?.try_into().unwrap_or_default()))
    }

    fn line(&mut self) -> Result<String, PthCheckError> {
        let rest = &self.pickle[self.at..];
        let end = rest.iter().take(MAX_GLOBAL_NAME + 2).position(|&b| b == b'\n');
        let end = end.ok_or_else(|| self.damaged(format!("a name without its newline in {MAX_GLOBAL_NAME} bytes")))?;
        let text = std::str::from_utf8(&rest[..end]).map_err(|_| self.damaged("a name that is not UTF-8"))?;
        let text = text.strip_suffix('\r').unwrap_or(text).to_string();
        self.at += end + 1;
        Ok(text)
    }

    fn pop(&mut self) -> Result<Value, PthCheckError> {
        match self.stack.pop() {
            Some(Value::Mark) | None => Err(self.damaged("the stack is empty")),
            Some(value) => Ok(value),
        }
    }

    fn pop_to_mark(&mut self) -> Result<Vec<Value>, PthCheckError> {
        let mark = self.stack.iter().rposition(|v| matches!(v, Value::Mark)).ok_or_else(|| self.damaged("no MARK"))?;
        let items = self.stack.split_off(mark + 1);
        self.stack.pop();
        Ok(items)
    }

    /// The size of a container of `items`, refused when too deep.
    fn container(&self, items: &[Value]) -> Result<Size, PthCheckError> {
        let mut size = Size::EMPTY;
        for item in items {
            let inner = item.size();
            size.depth = size.depth.max(inner.depth + 1);
            size.objects = size.objects.saturating_add(inner.objects);
            size.reads = size.reads.saturating_add(inner.reads);
        }
        if size.depth > MAX_DEPTH {
            return Err(self.damaged(format!("objects nested more than {MAX_DEPTH} deep")));
        }
        Ok(size)
    }

    /// Counts an object burn-store copies whole (memo puts and gets, reduce arguments).
    fn copy(&mut self, size: Size) -> Result<(), PthCheckError> {
        self.copied = self.copied.saturating_add(size.objects);
        if self.copied > MAX_COPIED_OBJECTS {
            return Err(self.damaged(format!("more than {MAX_COPIED_OBJECTS} objects copied through the memo")));
        }
        Ok(())
    }

    /// Adds `items` to the container on top of the stack (APPEND(S), SETITEM(S)).
    fn add_to_top(&mut self, items: Vec<Value>, dict: bool) -> Result<(), PthCheckError> {
        let top = self.stack.last().cloned().ok_or_else(|| self.damaged("the stack is empty"))?;
        let size = match (&top, dict) {
            (Value::Dict(size), true) | (Value::List(size), false) => *size,
            _ => {
                return Err(self.damaged(if dict { "SETITEM on something not a dict" } else { "APPEND on a non-list" }))
            }
        };
        if dict {
            if items.len() % 2 != 0 {
                return Err(self.damaged("an odd number of objects for a dict"));
            }
            for pair in items.chunks(2) {
                let Value::Str(key) = &pair[0] else { return Err(self.damaged("a dict key that is not a string")) };
                if let Value::Tensor(index, _) = pair[1] {
                    if let Some(problem) = self.tensors[index].problem.take() {
                        return Err(PthCheckError::Tensor { key: key.to_string(), problem });
                    }
                }
            }
        }
        let mut grown = self.container(&items)?;
        grown.depth = grown.depth.max(size.depth);
        grown.objects = grown.objects.saturating_add(size.objects);
        grown.reads = grown.reads.saturating_add(size.reads);
        *self.stack.last_mut().expect("checked above") = if dict { Value::Dict(grown) } else { Value::List(grown) };
        Ok(())
    }

    fn run(mut self) -> Result<PthSummary, PthCheckError> {
        loop {
            let start = self.at;
            let opcode = self.u8()?;
            match opcode {
                0x80 => {
                    let protocol = self.u8()?;
                    if !(2..=5).contains(&protocol) {
                        return Err(self.damaged(format!("pickle protocol {protocol}")));
                    }
                }
                b'c' => {
                    let (module, name) = (self.line()?, self.line()?);
                    self.stack.push(Value::Global(Rc::new((module, name))));
                }
                b'J' => {
                    let v = i32::from_le_bytes(self.bytes(4)?.try_into().unwrap_or_default());
                    self.stack.push(Value::Int(v.into()));
                }
                b'K' => {
                    let v = self.u8()?;
                    self.stack.push(Value::Int(v.into()));
                }
                b'M' => {
                    let v = u16::from_le_bytes(self.bytes(2)?.try_into().unwrap_or_default());
                    self.stack.push(Value::Int(v.into()));
                }
                b'I' => {
                    let line = self.line()?;
                    let v = line.parse().map_err(|_| self.damaged(format!("INT '{line}'")))?;
                    self.stack.push(Value::Int(v));
                }
                0x8a => {
                    let n = self.u8()? as usize;
                    let bytes = self.bytes(n)?;
                    if n > 8 {
                        return Err(self.damaged(format!("a {n}-byte integer")));
                    }
                    let mut value = [if bytes.last().is_some_and(|b| b & 0x80 != 0) { 0xff } else { 0 }; 8];
                    value[..n].copy_from_slice(bytes);
                    self.stack.push(Value::Int(i64::from_le_bytes(value)));
                }
                b'G' => {
                    self.bytes(8)?;
                    self.stack.push(Value::Other(Size::LEAF));
                }
                b'X' | b'U' => {
                    let n = if opcode == b'X' { self.u32()? as usize } else { self.u8()? as usize };
                    let bytes = self.bytes(n)?;
                    let text = std::str::from_utf8(bytes).map_err(|_| self.damaged("a string that is not UTF-8"))?;
                    self.stack.push(Value::Str(text.into()));
                }
                b'N' | 0x88 | 0x89 => self.stack.push(Value::Other(Size::LEAF)),
                b')' => self.stack.push(Value::Tuple(Rc::new(Vec::new()), Size::EMPTY)),
                b']' => self.stack.push(Value::List(Size::EMPTY)),
                b'}' => self.stack.push(Value::Dict(Size::EMPTY)),
                b't' | 0x85 | 0x86 | 0x87 => {
                    let items = match opcode {
                        b't' => self.pop_to_mark()?,
                        _ => {
                            let n = (opcode - 0x84) as usize;
                            let mut items = (0..n).map(|_| self.pop()).collect::<Result<Vec<_>, _>>()?;
                            items.reverse();
                            items
                        }
                    };
                    let size = self.container(&items)?;
                    self.stack.push(Value::Tuple(Rc::new(items), size));
                }
                b'l' => {
                    let items = self.pop_to_mark()?;
                    let size = self.container(&items)?;
                    self.stack.push(Value::List(size));
                }
                b'd' => {
                    let items = self.pop_to_mark()?;
                    self.stack.push(Value::Dict(Size::EMPTY));
                    self.add_to_top(items, true)?;
                }
                b'a' => {
                    let item = self.pop()?;
                    self.add_to_top(vec![item], false)?;
                }
                b'e' => {
                    let items = self.pop_to_mark()?;
                    self.add_to_top(items, false)?;
                }
                b's' => {
                    let value = self.pop()?;
                    let key = self.pop()?;
                    self.add_to_top(vec![key, value], true)?;
                }
                b'u' => {
                    let items = self.pop_to_mark()?;
                    if items.len() > MAX_SETITEMS_OBJECTS {
                        return Err(self.damaged(format!(
                            "a SETITEMS of {} objects (Python writes at most {MAX_SETITEMS_OBJECTS})",
                            items.len()
                        )));
                    }
                    self.add_to_top(items, true)?;
                }
                b'q' | b'r' | 0x94 => {
                    let index = match opcode {
                        b'q' => self.u8()? as u32,
                        b'r' => self.u32()?,
                        _ => self.memo.len() as u32,
                    };
                    let top = self.stack.last().cloned().ok_or_else(|| self.damaged("the stack is empty"))?;
                    if matches!(top, Value::Mark) {
                        return Err(self.damaged("a MARK memoized"));
                    }
                    self.copy(top.size())?;
                    self.memo.insert(index, top);
                }
                b'h' | b'j' => {
                    let index = if opcode == b'h' { self.u8()? as u32 } else { self.u32()? };
                    let value = self.memo.get(&index).cloned().ok_or_else(|| self.damaged(format!("memo {index}")))?;
                    self.copy(value.size())?;
                    self.stack.push(value);
                }
                b'(' => self.stack.push(Value::Mark),
                b'Q' => match self.pop()? {
                    Value::Tuple(items, _) => self.stack.push(Value::Storage(items)),
                    _ => return Err(self.damaged("a persistent id that is not a storage tuple")),
                },
                b'R' => {
                    let args = self.pop()?;
                    let callable = self.pop()?;
                    self.copy(args.size())?;
                    let value = self.reduce(&callable, args)?;
                    self.stack.push(value);
                }
                b'b' | 0x81 => {
                    let args = self.pop()?;
                    let target = self.pop()?;
                    let size = self.container(&[target.clone(), args])?;
                    self.stack.push(match (opcode, target) {
                        (b'b', Value::Dict(_)) => Value::Dict(size),
                        _ => Value::Other(size),
                    });
                }
                b'.' => {
                    let reads = self.stack.last().map_or(0, |v| v.size().reads);
                    if reads > MAX_READ_BYTES {
                        return Err(self.damaged(format!(
                            "its tensors would read {reads} bytes of storage, more than the {MAX_READ_BYTES} accepted"
                        )));
                    }
                    break;
                }
                other => {
                    self.at = start;
                    return Err(self.damaged(format!("opcode 0x{other:02x}, which burn-store does not read")));
                }
            }
        }
        if let Some(problem) = self.tensors.iter_mut().find_map(|t| t.problem.take()) {
            return Err(PthCheckError::Tensor { key: "(not in a dict)".into(), problem });
        }
        Ok(PthSummary { tensors: self.tensors.len() })
    }

    /// REDUCE: only the calls burn-store knows; a tensor's arguments are checked against its
    /// storage, and a problem is kept until the tensor gets its key.
    fn reduce(&mut self, callable: &Value, args: Value) -> Result<Value, PthCheckError> {
        let Value::Global(global) = callable else { return Err(self.damaged("REDUCE on something not a class")) };
        let (module, name) = (global.0.as_str(), global.1.as_str());
        match (module, name) {
            ("collections", "OrderedDict") => Ok(Value::Dict(Size::EMPTY)),
            ("torch._utils", "_rebuild_tensor_v2") => {
                let Value::Tuple(args, _) = args else { return Err(self.damaged("tensor arguments not in a tuple")) };
                let (bytes, problem) = match self.tensor_storage(&args) {
                    Ok(bytes) => (bytes, None),
                    Err(problem) => (0, Some(problem)),
                };
                self.tensors.push(TensorRecord { problem });
                Ok(Value::Tensor(self.tensors.len() - 1, bytes))
            }
            ("torch._utils", "_rebuild_parameter") => match &args {
                Value::Tuple(items, _) if matches!(items.first(), Some(Value::Tensor(..))) => Ok(items[0].clone()),
                _ => Err(self.damaged("a parameter that does not wrap a tensor")),
            },
            _ => Err(self.damaged(format!("a call to {module}.{name}, which a state dict does not hold"))),
        }
    }

    /// `_rebuild_tensor_v2(storage, offset, shape, stride, requires_grad, hooks)` as burn-store
    /// reads it: a float storage that exists and holds the contiguous tensor. Returns the size
    /// of the storage's entry.
    fn tensor_storage(&self, args: &[Value]) -> Result<u64, String> {
        let [storage, offset, shape, stride, _requires_grad, ..] = args else {
            return Err(format!("{} arguments to _rebuild_tensor_v2, expected 6", args.len()));
        };
        let Value::Storage(storage) = storage else { return Err("its storage is not a persistent id".into()) };
        let (kind, key, numel) = match storage.as_slice() {
            [Value::Str(tag), Value::Global(kind), Value::Str(key), _, Value::Int(numel), ..]
                if &**tag == "storage" =>
            {
                (kind.1.as_str(), key.clone(), *numel)
            }
            _ => return Err("its storage is not ('storage', type, key, location, size)".into()),
        };
        let element_bytes: u64 = match kind {
            "FloatStorage" => 4,
            "DoubleStorage" => 8,
            "HalfStorage" | "BFloat16Storage" => 2,
            "LongStorage" | "IntStorage" | "ShortStorage" | "CharStorage" | "ByteStorage" | "BoolStorage" => {
                return Err(format!("stored as {kind}, not floating point"))
            }
            other => return Err(format!("unknown storage type '{other}'")),
        };
        let Value::Int(offset) = *offset else { return Err("its storage offset is not an integer".into()) };
        let dims = |value: &Value, what: &str| -> Result<Vec<u64>, String> {
            let Value::Tuple(items, _) = value else { return Err(format!("its {what} is not a tuple")) };
            items
                .iter()
                .map(|item| match item {
                    Value::Int(v) if *v >= 0 => Ok(*v as u64),
                    _ => Err(format!("its {what} holds something other than non-negative integers")),
                })
                .collect()
        };
        let (shape, stride) = (dims(shape, "shape")?, dims(stride, "stride")?);
        let count = shape.iter().try_fold(1u64, |n, &d| n.checked_mul(d)).filter(|&n| n <= 1 << 40);
        let count = count.ok_or_else(|| format!("shape {shape:?} has too many values"))?;
        if count == 0 {
            // burn-store 0.20.1 panics rebuilding an empty tensor; a Restormer has none.
            return Err(format!("shape {shape:?} has no values"));
        }
        // burn-store ignores strides: only a row-major layout reads back as saved.
        let mut expected = 1u64;
        for (&dim, &step) in shape.iter().zip(&stride).rev() {
            if dim > 1 && step != expected {
                return Err(format!("stride {stride:?} is not row-major for shape {shape:?}"));
            }
            expected = expected.saturating_mul(dim.max(1));
        }
        if stride.len() != shape.len() {
            return Err(format!("stride {stride:?} does not match shape {shape:?}"));
        }
        if offset < 0 || numel < 0 {
            return Err(format!("negative storage offset {offset} or size {numel}"));
        }
        let end = (offset as u64).saturating_add(count);
        if end > numel as u64 {
            return Err(format!("needs values up to {end} of a storage declared with {numel}"));
        }
        // burn-store reads `data/<key>`, else an entry ending in `/data/<key>`.
        let suffix = format!("/data/{key}");
        let matches: Vec<_> =
            self.entries.iter().filter(|(n, _)| *n == format!("data/{key}") || n.ends_with(&suffix)).collect();
        let [(name, bytes)] = matches.as_slice() else {
            return Err(format!("{} archive entries for its storage '{key}', expected 1", matches.len()));
        };
        if end.saturating_mul(element_bytes) > *bytes {
            return Err(format!("needs {} bytes of storage but '{name}' holds {bytes}", end * element_bytes));
        }
        Ok(*bytes)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::pth::to_pth;
    use crate::weights::{NamedTensor, WeightFile};

    fn checkpoint() -> Vec<u8> {
        let tensor = |key: &str, shape: &[usize]| NamedTensor {
            key: key.into(),
            shape: shape.to_vec(),
            values: (0..shape.iter().product::<usize>()).map(|i| i as f32).collect(),
        };
        let file = WeightFile {
            tensors: vec![tensor("a.weight", &[4, 3, 3, 3]), tensor("b.bias", &[4]), tensor("scalar", &[])],
            metadata: HashMap::new(),
        };
        to_pth(&file, Some("params")).unwrap()
    }

    /// `checkpoint()` with its data.pkl replaced by `pickle`.
    fn with_pickle(pickle: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let original = checkpoint();
        let mut archive = ZipArchive::new(Cursor::new(&original[..])).unwrap();
        let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
        let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
        for i in 0..archive.len() {
            let mut entry = archive.by_index(i).unwrap();
            let name = entry.name().to_string();
            let mut data = Vec::new();
            entry.read_to_end(&mut data).unwrap();
            writer.start_file(&name, options).unwrap();
            writer.write_all(if name.ends_with("data.pkl") { pickle } else { &data }).unwrap();
        }
        writer.finish().unwrap().into_inner()
    }

    #[test]
    fn what_torch_save_writes_passes() {
        assert_eq!(check_pth(&checkpoint()).unwrap(), PthSummary { tensors: 3 });
        let official =
            format!("{}/../../shared/fixtures/restormer/tiny-biasfree/weights.pth", env!("CARGO_MANIFEST_DIR"));
        let official = std::fs::read(official).unwrap();
        assert!(check_pth(&official).unwrap().tensors > 50);
    }

    #[test]
    fn a_million_nested_lists_are_refused_without_recursion() {
        let mut pickle = vec![0x80, 2];
        pickle.extend(std::iter::repeat_n(b'(', 1_000_000));
        pickle.extend(std::iter::repeat_n(b'l', 1_000_000));
        pickle.push(b'.');
        let error = check_pth(&with_pickle(&pickle)).unwrap_err().to_string();
        assert!(error.contains("nested more than 64 deep"), "{error}");
    }

    #[test]
    fn memo_doubling_is_refused() {
        // [] then, 40 times: put, get, get, make a 2-tuple: 2^40 objects for burn-store to copy.
        let mut pickle = vec![0x80, 2, b']'];
        for _ in 0..40 {
            pickle.extend([b'q', 0, b'h', 0, 0x86]);
        }
        pickle.push(b'.');
        let error = check_pth(&with_pickle(&pickle)).unwrap_err().to_string();
        assert!(error.contains("copied through the memo") || error.contains("nested"), "{error}");
    }

    #[test]
    fn lying_lengths_and_unknown_opcodes_are_refused() {
        let error = check_pth(&with_pickle(b"\x80\x02X\xff\xff\xff\xffabc.")).unwrap_err().to_string();
        assert!(error.contains("4294967295 bytes declared"), "{error}");
        let error = check_pth(&with_pickle(b"\x80\x02\x8c\x03abc.")).unwrap_err().to_string();
        assert!(error.contains("opcode 0x8c"), "{error}");
        let error = check_pth(&with_pickle(b"\x80\x02cos\nsystem\nX\x02\x00\x00\x00ls\x85R.")).unwrap_err();
        assert!(error.to_string().contains("os.system"), "{error}");
        assert!(matches!(check_pth(b"\x80\x02}."), Err(PthCheckError::NotZip(_))));
    }

    /// One tensor `w` of `shape` / `stride` on storage '0' of `numel` `kind` values.
    fn tensor_pickle(kind: &str, numel: u32, offset: u8, shape: &[u8], stride: &[u8]) -> Vec<u8> {
        let mut p = b"\x80\x02}X\x01\x00\x00\x00wctorch._utils\n_rebuild_tensor_v2\n((X\x07\x00\x00\x00storagectorch\n"
            .to_vec();
        p.extend(kind.as_bytes());
        p.extend(b"\nX\x01\x00\x00\x000X\x03\x00\x00\x00cpuJ");
        p.extend(numel.to_le_bytes());
        p.extend(b"tQK");
        p.push(offset);
        for dims in [shape, stride] {
            p.push(b'(');
            for &d in dims {
                p.extend([b'K', d]);
            }
            p.push(b't');
        }
        p.extend(b"\x89)tRs.");
        p
    }

    #[test]
    fn tensors_must_fit_their_float_storage() {
        // Storage '0' of `checkpoint()` holds 108 f32 values.
        let ok = tensor_pickle("FloatStorage", 108, 0, &[4, 27], &[27, 1]);
        assert_eq!(check_pth(&with_pickle(&ok)).unwrap().tensors, 1);
        for (pickle, expected) in [
            (tensor_pickle("FloatStorage", 100_000, 0, &[200, 200], &[200, 1]), "holds 432"),
            (tensor_pickle("FloatStorage", 108, 0, &[200, 200], &[200, 1]), "storage declared with 108"),
            (tensor_pickle("FloatStorage", 108, 10, &[4, 27], &[27, 1]), "up to 118"),
            (tensor_pickle("LongStorage", 54, 0, &[4, 13], &[13, 1]), "LongStorage, not floating point"),
            (tensor_pickle("FunnyStorage", 108, 0, &[4, 27], &[27, 1]), "unknown storage type"),
            (tensor_pickle("FloatStorage", 108, 0, &[4, 27], &[1, 4]), "not row-major"),
        ] {
            let error = check_pth(&with_pickle(&pickle)).unwrap_err().to_string();
            assert!(error.starts_with("tensor 'w': ") && error.contains(expected), "{expected}: {error}");
        }
    }
}
