//! TensorBoard event files: TFRecord framing (length, masked CRC-32C of the
//! length, payload, masked CRC-32C of the payload) around `Event` protocol
//! buffers, encoded with `prost` from the message definitions below.
//!
//! The messages are the subset of TensorFlow's `event.proto`,
//! `summary.proto`, `tensor.proto` and `tensor_shape.proto` that strata
//! writes, with TensorFlow's field numbers.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use prost::Message;
use strata_core::{Error, Result};

/// `tensorflow.Event`.
#[derive(Clone, PartialEq, prost::Message)]
struct Event {
    #[prost(double, tag = "1")]
    wall_time: f64,
    #[prost(int64, tag = "2")]
    step: i64,
    #[prost(oneof = "What", tags = "3, 5")]
    what: Option<What>,
}

/// `Event.what`.
#[derive(Clone, PartialEq, prost::Oneof)]
enum What {
    #[prost(string, tag = "3")]
    FileVersion(String),
    #[prost(message, tag = "5")]
    Summary(Summary),
}

/// `tensorflow.Summary`.
#[derive(Clone, PartialEq, prost::Message)]
struct Summary {
    #[prost(message, repeated, tag = "1")]
    value: Vec<SummaryValue>,
}

/// `tensorflow.Summary.Value`.
#[derive(Clone, PartialEq, prost::Message)]
struct SummaryValue {
    #[prost(string, tag = "1")]
    tag: String,
    #[prost(message, optional, tag = "9")]
    metadata: Option<SummaryMetadata>,
    #[prost(oneof = "Payload", tags = "2, 5, 8")]
    value: Option<Payload>,
}

/// `Summary.Value.value`.
#[derive(Clone, PartialEq, prost::Oneof)]
enum Payload {
    #[prost(float, tag = "2")]
    SimpleValue(f32),
    #[prost(message, tag = "5")]
    Histo(HistogramProto),
    #[prost(message, tag = "8")]
    Tensor(TensorProto),
}

/// `tensorflow.HistogramProto`: bucket `i` counts the values in
/// `(bucket_limit[i - 1], bucket_limit[i]]`.
#[derive(Clone, PartialEq, prost::Message)]
struct HistogramProto {
    #[prost(double, tag = "1")]
    min: f64,
    #[prost(double, tag = "2")]
    max: f64,
    #[prost(double, tag = "3")]
    num: f64,
    #[prost(double, tag = "4")]
    sum: f64,
    #[prost(double, tag = "5")]
    sum_squares: f64,
    #[prost(double, repeated, tag = "6")]
    bucket_limit: Vec<f64>,
    #[prost(double, repeated, tag = "7")]
    bucket: Vec<f64>,
}

/// `tensorflow.SummaryMetadata`.
#[derive(Clone, PartialEq, prost::Message)]
struct SummaryMetadata {
    #[prost(message, optional, tag = "1")]
    plugin_data: Option<PluginData>,
    /// `DataClass`: 2 is `DATA_CLASS_TENSOR`.
    #[prost(int32, tag = "4")]
    data_class: i32,
}

/// `tensorflow.SummaryMetadata.PluginData`.
#[derive(Clone, PartialEq, prost::Message)]
struct PluginData {
    #[prost(string, tag = "1")]
    plugin_name: String,
    #[prost(bytes = "vec", tag = "2")]
    content: Vec<u8>,
}

/// `tensorflow.TensorProto` (strings only).
#[derive(Clone, PartialEq, prost::Message)]
struct TensorProto {
    /// `DataType`: 7 is `DT_STRING`.
    #[prost(int32, tag = "1")]
    dtype: i32,
    #[prost(message, optional, tag = "2")]
    tensor_shape: Option<TensorShapeProto>,
    #[prost(bytes = "vec", repeated, tag = "8")]
    string_val: Vec<Vec<u8>>,
}

/// `tensorflow.TensorShapeProto` (no dimensions: a scalar).
#[derive(Clone, PartialEq, prost::Message)]
struct TensorShapeProto {}

/// The TFRecord checksum: CRC-32C rotated right by 15 bits plus a constant.
fn masked_crc(bytes: &[u8]) -> u32 {
    let crc = crc32c::crc32c(bytes);
    crc.rotate_right(15).wrapping_add(0xa282_ead8)
}

/// One TFRecord: the payload's length, its masked CRC, the payload and its
/// masked CRC.
fn record(payload: &[u8]) -> Vec<u8> {
    let len = (payload.len() as u64).to_le_bytes();
    let mut out = Vec::with_capacity(payload.len() + 16);
    out.extend_from_slice(&len);
    out.extend_from_slice(&masked_crc(&len).to_le_bytes());
    out.extend_from_slice(payload);
    out.extend_from_slice(&masked_crc(payload).to_le_bytes());
    out
}

/// Buckets of a histogram of `values` (30 of equal width between the
/// smallest and the largest finite value, as `tf.summary.histogram`).
/// NaNs and infinities are left out of the buckets and the sums.
fn histogram(values: &[f32]) -> HistogramProto {
    const BUCKETS: usize = 30;
    let finite: Vec<f64> = values.iter().filter(|v| v.is_finite()).map(|&v| f64::from(v)).collect();
    let (min, max) = finite.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| (lo.min(v), hi.max(v)));
    if finite.is_empty() {
        return HistogramProto { min: 0.0, max: 0.0, num: 0.0, sum: 0.0, sum_squares: 0.0, ..Default::default() };
    }
    let sum = finite.iter().sum();
    let sum_squares = finite.iter().map(|v| v * v).sum();
    let (bucket_limit, bucket) = if max > min {
        let width = (max - min) / BUCKETS as f64;
        let mut counts = vec![0.0; BUCKETS];
        for &v in &finite {
            let i = (((v - min) / width) as usize).min(BUCKETS - 1);
            counts[i] += 1.0;
        }
        let limits = (1..=BUCKETS).map(|i| if i == BUCKETS { max } else { min + width * i as f64 }).collect();
        (limits, counts)
    } else {
        (vec![max], vec![finite.len() as f64])
    };
    HistogramProto { min, max, num: finite.len() as f64, sum, sum_squares, bucket_limit, bucket }
}

/// Process-wide counter in file names: two writers created in the same
/// second into one directory get different files (TensorFlow does the same).
static FILES: AtomicUsize = AtomicUsize::new(0);

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .or_else(|| std::env::var("COMPUTERNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty() && !h.contains(['/', '\\']))
        .unwrap_or_else(|| "localhost".into())
}

fn now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

/// Writes one TensorBoard event file: scalars, histograms and text, read by
/// TensorBoard (`tensorboard --logdir`) and by its `EventAccumulator`.
///
/// The file is `events.out.tfevents.<seconds>.<host>.<pid>.<n>.v2` in the
/// directory given to [`create`](Self::create), as TensorFlow names it; it
/// starts with the `brain.Event:2` version record. Records are buffered and
/// reach the file on [`flush`](Self::flush) (and when the writer is
/// dropped).
///
/// ```
/// use strata::callbacks::SummaryWriter;
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let dir = std::env::temp_dir().join(format!("strata-doc-summary-{}", std::process::id()));
/// let mut w = SummaryWriter::create(&dir)?;
/// w.scalar("custom/learning_progress", 0.25, 3)?;
/// w.histogram("activations", &[0.1, 0.5, -0.2, 0.9], 3)?;
/// w.text("notes", "**baseline** run", 0)?;
/// w.flush()?;
/// assert!(std::fs::metadata(w.path())?.len() > 0);
/// # std::fs::remove_dir_all(&dir).ok();
/// # Ok(()) }
/// ```
pub struct SummaryWriter {
    path: PathBuf,
    file: BufWriter<File>,
}

impl SummaryWriter {
    /// Creates `dir` (and its parents) and a new event file in it.
    pub fn create(dir: impl AsRef<Path>) -> Result<SummaryWriter> {
        let dir = dir.as_ref();
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, "create", e))?;
        let wall = now();
        let name = format!(
            "events.out.tfevents.{:010}.{}.{}.{}.v2",
            wall as u64,
            hostname(),
            std::process::id(),
            FILES.fetch_add(1, Ordering::Relaxed)
        );
        let path = dir.join(name);
        let file = File::create(&path).map_err(|e| Error::io(&path, "create", e))?;
        let mut w = SummaryWriter { path, file: BufWriter::new(file) };
        w.event(Event { wall_time: wall, step: 0, what: Some(What::FileVersion("brain.Event:2".into())) })?;
        w.flush()?;
        Ok(w)
    }

    /// The event file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn event(&mut self, event: Event) -> Result<()> {
        let bytes = record(&event.encode_to_vec());
        self.file.write_all(&bytes).map_err(|e| Error::io(&self.path, "write", e))
    }

    fn value(&mut self, step: i64, value: SummaryValue) -> Result<()> {
        let summary = Summary { value: vec![value] };
        self.event(Event { wall_time: now(), step, what: Some(What::Summary(summary)) })
    }

    /// A scalar (TensorBoard's Scalars tab), stored as a 32-bit float as
    /// TensorFlow stores it.
    pub fn scalar(&mut self, tag: &str, value: f64, step: i64) -> Result<()> {
        self.value(
            step,
            SummaryValue { tag: tag.into(), metadata: None, value: Some(Payload::SimpleValue(value as f32)) },
        )
    }

    /// A histogram of `values` (the Histograms and Distributions tabs): 30
    /// buckets of equal width over the finite values.
    pub fn histogram(&mut self, tag: &str, values: &[f32], step: i64) -> Result<()> {
        self.value(
            step,
            SummaryValue { tag: tag.into(), metadata: None, value: Some(Payload::Histo(histogram(values))) },
        )
    }

    /// Markdown text (the Text tab), as `tf.summary.text` writes it.
    pub fn text(&mut self, tag: &str, text: &str, step: i64) -> Result<()> {
        let metadata = SummaryMetadata {
            plugin_data: Some(PluginData { plugin_name: "text".into(), content: Vec::new() }),
            data_class: 2,
        };
        let tensor = TensorProto {
            dtype: 7,
            tensor_shape: Some(TensorShapeProto {}),
            string_val: vec![text.as_bytes().to_vec()],
        };
        self.value(
            step,
            SummaryValue { tag: tag.into(), metadata: Some(metadata), value: Some(Payload::Tensor(tensor)) },
        )
    }

    /// Writes the buffered records to the file.
    pub fn flush(&mut self) -> Result<()> {
        self.file.flush().map_err(|e| Error::io(&self.path, "write", e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masked_crc_matches_tensorflow() {
        // CRC-32C of "123456789" is 0xe3069283 (the standard check value);
        // TensorFlow's mask `((crc >> 15) | (crc << 17)) + 0xa282ead8` of it,
        // worked out by hand, is 0xc78ab0e5.
        assert_eq!(crc32c::crc32c(b"123456789"), 0xe306_9283);
        assert_eq!(masked_crc(b"123456789"), 0xc78a_b0e5);
    }

    #[test]
    fn a_record_frames_its_payload() {
        let r = record(b"abc");
        assert_eq!(r.len(), 8 + 4 + 3 + 4);
        assert_eq!(u64::from_le_bytes(r[..8].try_into().unwrap()), 3);
        assert_eq!(u32::from_le_bytes(r[8..12].try_into().unwrap()), masked_crc(&3u64.to_le_bytes()));
        assert_eq!(&r[12..15], b"abc");
        assert_eq!(u32::from_le_bytes(r[15..].try_into().unwrap()), masked_crc(b"abc"));
    }

    #[test]
    fn histogram_counts_every_finite_value_once() {
        let values: Vec<f32> = (0..1000).map(|i| (i as f32 * 0.37).sin()).chain([f32::NAN, f32::INFINITY]).collect();
        let h = histogram(&values);
        assert_eq!(h.num, 1000.0);
        assert_eq!(h.bucket.iter().sum::<f64>(), 1000.0);
        assert_eq!(h.bucket.len(), 30);
        assert_eq!(*h.bucket_limit.last().unwrap(), h.max);
        let expect_sum: f64 = values[..1000].iter().map(|&v| f64::from(v)).sum();
        assert!((h.sum - expect_sum).abs() < 1e-9);
        // A constant tensor: one bucket holding everything.
        let h = histogram(&[2.0; 7]);
        assert_eq!((h.bucket_limit.clone(), h.bucket.clone()), (vec![2.0], vec![7.0]));
    }

    /// The events of a file, each record's length and checksums verified.
    fn read_back(path: &Path) -> Vec<Event> {
        let data = std::fs::read(path).unwrap();
        let mut at = 0;
        let mut out = Vec::new();
        while at < data.len() {
            let len_bytes = &data[at..at + 8];
            let len = u64::from_le_bytes(len_bytes.try_into().unwrap()) as usize;
            assert_eq!(u32::from_le_bytes(data[at + 8..at + 12].try_into().unwrap()), masked_crc(len_bytes));
            let payload = &data[at + 12..at + 12 + len];
            let crc = u32::from_le_bytes(data[at + 12 + len..at + 16 + len].try_into().unwrap());
            assert_eq!(crc, masked_crc(payload));
            out.push(Event::decode(payload).unwrap());
            at += 16 + len;
        }
        out
    }

    #[test]
    fn a_writer_writes_the_version_then_each_summary() {
        let dir = std::env::temp_dir().join(format!("strata-events-unit-{}", std::process::id()));
        let mut w = SummaryWriter::create(&dir).unwrap();
        w.scalar("epoch_loss", 0.125, 3).unwrap();
        w.histogram("w/histogram", &[1.0, 2.0, 3.0], 4).unwrap();
        w.text("notes", "hello", 0).unwrap();
        drop(w);
        let files: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
        assert_eq!(files.len(), 1);
        let events = read_back(&files[0]);
        assert_eq!(events.len(), 4);
        assert_eq!(events[0].what, Some(What::FileVersion("brain.Event:2".into())));
        let value = |e: &Event| match &e.what {
            Some(What::Summary(s)) => s.value[0].clone(),
            other => panic!("not a summary: {other:?}"),
        };
        let v = value(&events[1]);
        assert_eq!((events[1].step, v.tag.as_str(), v.value), (3, "epoch_loss", Some(Payload::SimpleValue(0.125))));
        let Some(Payload::Histo(h)) = value(&events[2]).value else { panic!("not a histogram") };
        assert_eq!((events[2].step, h.num, h.min, h.max, h.sum, h.sum_squares), (4, 3.0, 1.0, 3.0, 6.0, 14.0));
        let t = value(&events[3]);
        assert_eq!(t.metadata.unwrap().plugin_data.unwrap().plugin_name, "text");
        let Some(Payload::Tensor(tensor)) = t.value else { panic!("not a tensor") };
        assert_eq!((tensor.dtype, tensor.string_val), (7, vec![b"hello".to_vec()]));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn events_decode_back() {
        let e = Event { wall_time: 1.5, step: 7, what: Some(What::FileVersion("brain.Event:2".into())) };
        let bytes = e.encode_to_vec();
        assert_eq!(Event::decode(bytes.as_slice()).unwrap(), e);
    }
}
