//! Bounded memory, measured: writes synthetic MNIST-shaped training sets
//! (784 float32 features, 10 classes) as `.npy` files of several sizes,
//! then trains the MNIST MLP (784-256-128-10, Adam, batch 128) for one epoch
//! from each, every run in a fresh process so that its peak resident size
//! (`VmHWM`) is its own:
//!
//! - `streamed`: `NpySource` (rows read from the file) → uniform shuffle → batches of
//!   128 → `fit_dataset` with one prefetch worker (`--workers`);
//! - `memory`: the same files read into tensors first → `fit` with the same
//!   seed (the same batches in the same order).
//!
//! The file is read with positional reads (`NpyArray::open`); see
//! `NpyArray::open_mapped` for why a memory mapping would make the resident
//! size the file's.
//!
//! Rounds are interleaved (streamed, memory, streamed, ...) and medians
//! reported, with the ratio of the two throughputs and the CPU's name.
//!
//! ```text
//! cargo run --release --example bench_stream                    # 2 GB and 8 GB, 3 rounds
//! cargo run --release --example bench_stream -- --sizes 0.5,2 --rounds 5 --dir /tmp --workers 2
//! ```
//!
//! The files are written once into `--dir` (default: the system's temporary
//! folder) and kept for later runs; delete them afterwards (`bench-stream-*.npy`).
//! The in-memory run is made for the smallest size only (it needs the whole
//! file in memory).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context};
use strata::data::npy::{self, NpySource, NpyWriter};
use strata::data::Source;
use strata::prelude::*;

const FEATURES: usize = 784;
const BATCH: usize = 128;

fn model(dev: &Device) -> strata::Result<Model> {
    let mut m = Sequential::new()
        .add(Input::new([FEATURES]))
        .add(Dense::new(256).activation("relu"))
        .add(Dense::new(128).activation("relu"))
        .add(Dense::new(10).activation("softmax"))
        .seed(42)
        .build_on(dev)?;
    m.compile(Adam::new(1e-3), "sparse_categorical_crossentropy", &["accuracy"])?;
    Ok(m)
}

/// This process' peak resident set size in MiB (`VmHWM`).
fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// Writes `rows` samples (uniform features, label = argmax of the first
/// ten) unless files of that size exist already.
fn write_files(dir: &Path, gb: f64, rows: usize) -> anyhow::Result<(PathBuf, PathBuf)> {
    let (x_path, y_path) =
        (dir.join(format!("bench-stream-{gb}gb-x.npy")), dir.join(format!("bench-stream-{gb}gb-y.npy")));
    let want = (rows * FEATURES * 4) as u64;
    if std::fs::metadata(&x_path).is_ok_and(|m| m.len() >= want) && y_path.exists() {
        return Ok((x_path, y_path));
    }
    let dev = backend::native();
    let start = Instant::now();
    let mut x = NpyWriter::create(&x_path, DType::F32, &[FEATURES])?;
    let mut y = NpyWriter::create(&y_path, DType::I64, &[])?;
    let mut rng = Rng::seed(1);
    let chunk = 8192;
    for start in (0..rows).step_by(chunk) {
        let n = chunk.min(rows - start);
        let values: Vec<f32> = (0..n * FEATURES).map(|_| rng.uniform()).collect();
        let labels: Vec<i64> = values
            .chunks(FEATURES)
            .map(|r| {
                r[..10].iter().enumerate().fold((0, f32::MIN), |b, (i, &v)| if v > b.1 { (i, v) } else { b }).0 as i64
            })
            .collect();
        x.append(&Tensor::new(values, [n, FEATURES], &dev)?)?;
        y.append(&Tensor::new(labels, [n], &dev)?)?;
    }
    x.finish()?;
    y.finish()?;
    println!("wrote {} ({rows} rows) in {:.1}s", x_path.display(), start.elapsed().as_secs_f64());
    Ok((x_path, y_path))
}

/// One epoch in this process; prints `RESULT <samples/s> <peak MiB>`.
fn child(mode: &str, x_path: &str, y_path: &str, workers: usize) -> anyhow::Result<()> {
    let dev = backend::from_env()?;
    let mut m = model(&dev)?;
    let seed = 3;
    let (samples, secs) = match mode {
        "streamed" => {
            let source = NpySource::open(x_path, y_path)?.on(&dev);
            let n = source.len();
            let batches = source.shuffle(usize::MAX).seed(seed).batch(BATCH);
            let start = Instant::now();
            m.fit_dataset(&batches, FitOptions::default().epochs(1).shuffle(false).workers(workers).verbose(0))?;
            (n, start.elapsed().as_secs_f64())
        }
        "memory" => {
            let x = npy::read(x_path, &dev)?;
            let y = npy::read(y_path, &dev)?;
            let n = x.dims()[0];
            let start = Instant::now();
            m.fit(&x, &y, FitOptions::default().epochs(1).batch_size(BATCH).seed(seed).verbose(0))?;
            (n, start.elapsed().as_secs_f64())
        }
        other => bail!("unknown mode {other}"),
    };
    println!("RESULT {} {}", samples as f64 / secs, peak_rss_mib());
    Ok(())
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--child") {
        return child(&args[1], &args[2], &args[3], args[4].parse()?);
    }
    let mut sizes = vec![2.0, 8.0];
    let mut rounds = 3;
    let mut dir = std::env::temp_dir();
    let mut workers = 1usize;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let value = it.next().with_context(|| format!("{a} needs a value"))?;
        match a.as_str() {
            "--sizes" => sizes = value.split(',').map(str::parse).collect::<Result<_, _>>()?,
            "--rounds" => rounds = value.parse()?,
            "--dir" => dir = PathBuf::from(value),
            "--workers" => workers = value.parse()?,
            _ => bail!("unknown argument {a}"),
        }
    }
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find_map(|l| l.strip_prefix("model name").map(|v| v.trim_start_matches([' ', '\t', ':']).to_string()))
        })
        .unwrap_or_else(|| "unknown CPU".into());
    println!(
        "CPU: {cpu}, {} threads; backend {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        backend::from_env()?.name()
    );
    let files = sizes
        .iter()
        .map(|&gb| write_files(&dir, gb, (gb * 1e9 / (FEATURES * 4) as f64) as usize))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let exe = std::env::current_exe()?;
    let run = |mode: &str, x: &Path, y: &Path| -> anyhow::Result<(f64, f64)> {
        let out = Command::new(&exe).args(["--child", mode]).arg(x).arg(y).arg(workers.to_string()).output()?;
        if !out.status.success() {
            bail!("child {mode} failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        let text = String::from_utf8_lossy(&out.stdout);
        let line = text.lines().find_map(|l| l.strip_prefix("RESULT ")).context("no RESULT line")?;
        let mut v = line.split(' ').map(|s| s.parse::<f64>());
        Ok((v.next().context("rate")??, v.next().context("rss")??))
    };
    // results[(size index, mode)] = [(samples/s, peak MiB)]
    let mut streamed: Vec<Vec<(f64, f64)>> = vec![Vec::new(); sizes.len()];
    let mut memory: Vec<(f64, f64)> = Vec::new();
    for round in 0..rounds {
        for (i, (x, y)) in files.iter().enumerate() {
            let r = run("streamed", x, y)?;
            println!(
                "round {round}: {} GB streamed from the file: {:.0} samples/s, peak {:.0} MiB",
                sizes[i], r.0, r.1
            );
            streamed[i].push(r);
            if i == 0 {
                let r = run("memory", x, y)?;
                println!("round {round}: {} GB in memory: {:.0} samples/s, peak {:.0} MiB", sizes[i], r.0, r.1);
                memory.push(r);
            }
        }
    }
    println!("\nmedians of {rounds} interleaved rounds:");
    println!("| file | path | samples/s | peak RSS |");
    println!("|---|---|---|---|");
    let mem_rate = median(memory.iter().map(|r| r.0).collect());
    println!(
        "| {} GB | in memory (`fit`) | {mem_rate:.0} | {:.0} MiB |",
        sizes[0],
        median(memory.iter().map(|r| r.1).collect())
    );
    for (i, runs) in streamed.iter().enumerate() {
        let rate = median(runs.iter().map(|r| r.0).collect());
        println!(
            "| {} GB | from the file + prefetch (`fit_dataset`) | {rate:.0} ({:.2}x in memory) | {:.0} MiB |",
            sizes[i],
            rate / mem_rate,
            median(runs.iter().map(|r| r.1).collect())
        );
    }
    Ok(())
}
