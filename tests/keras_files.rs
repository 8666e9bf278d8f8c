//! Keras 3's own `.keras` files: the Keras-written fixtures in
//! `tests/fixtures/keras/` (from `make_keras_files.py` there) load on every
//! backend and predict what Keras predicted; strata's exports load back;
//! malformed files are errors, never panics; and, when a Keras Python is
//! given in `STRATA_KERAS_PYTHON`, Keras itself loads strata's exports and
//! reproduces strata's predictions.

use std::path::{Path, PathBuf};

use anyhow::{ensure, Context, Result};
use safetensors::SafeTensors;
use strata::prelude::*;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/keras")
}

/// The inputs (`x0`, ...) and Keras' outputs (`y0`, ...) of a fixture.
fn io(name: &str, dev: &Device) -> Result<(Vec<Tensor>, Vec<Tensor>)> {
    let bytes = std::fs::read(fixtures().join(format!("{name}.io.safetensors")))?;
    let st = SafeTensors::deserialize(&bytes)?;
    let get = |prefix: &str| -> Result<Vec<Tensor>> {
        let mut out = Vec::new();
        for i in 0.. {
            let Ok(t) = st.tensor(&format!("{prefix}{i}")) else { break };
            let shape = t.shape().to_vec();
            let data = t.data();
            let tensor = match t.dtype() {
                safetensors::Dtype::F32 => Tensor::new(
                    data.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect::<Vec<f32>>(),
                    shape,
                    dev,
                )?,
                safetensors::Dtype::I32 => Tensor::new(
                    data.chunks_exact(4)
                        .map(|c| i32::from_le_bytes(c.try_into().unwrap()) as i64)
                        .collect::<Vec<i64>>(),
                    shape,
                    dev,
                )?,
                other => anyhow::bail!("unexpected dtype {other:?}"),
            };
            out.push(tensor);
        }
        Ok(out)
    };
    Ok((get("x")?, get("y")?))
}

fn max_diff(a: &Tensor, b: &Tensor) -> Result<f32> {
    ensure!(a.shape() == b.shape(), "shapes {} and {}", a.shape(), b.shape());
    let (a, b) = (a.to_vec::<f32>()?, b.to_vec::<f32>()?);
    Ok(a.iter().zip(&b).map(|(x, y)| (x - y).abs() / (1.0 + y.abs())).fold(0.0, f32::max))
}

const MODELS: [&str; 6] = ["dense", "conv2d", "conv1d", "rnn", "masking", "attention"];

#[test]
fn keras_files_load_and_predict_what_keras_predicted() -> Result<()> {
    for backend in strata::backend::available() {
        let dev = strata::backend::by_name(backend)?;
        for name in MODELS {
            let model = strata::keras::load_model_on(fixtures().join(format!("{name}.keras")), &dev)
                .with_context(|| format!("{name} on {backend}"))?;
            let (x, y) = io(name, &dev)?;
            let out = model.predict_outputs(&x)?;
            ensure!(out.len() == y.len(), "{name}: {} outputs, Keras {}", out.len(), y.len());
            for (i, (o, e)) in out.iter().zip(&y).enumerate() {
                let d = max_diff(o, e)?;
                ensure!(d < 2e-6, "{name} output {i} on {backend}: differs from Keras by {d}");
            }
        }
    }
    Ok(())
}

#[test]
fn exports_load_back_with_the_same_predictions() -> Result<()> {
    let dir = std::env::temp_dir().join(format!("strata_keras_export_{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    for backend in strata::backend::available() {
        let dev = strata::backend::by_name(backend)?;
        for name in MODELS {
            let model = strata::keras::load_model_on(fixtures().join(format!("{name}.keras")), &dev)?;
            let path = dir.join(format!("{name}_{backend}.keras"));
            model.save_keras(&path)?;
            let again = strata::keras::load_model_on(&path, &dev).with_context(|| format!("{name} on {backend}"))?;
            assert_eq!(again.get_config(), model.get_config(), "{name}");
            let (x, _) = io(name, &dev)?;
            let (a, b) = (model.predict_outputs(&x)?, again.predict_outputs(&x)?);
            for (a, b) in a.iter().zip(&b) {
                assert_eq!(a.to_vec::<f32>()?, b.to_vec::<f32>()?, "{name} on {backend}");
            }
        }
    }
    std::fs::remove_dir_all(&dir).ok();
    Ok(())
}

#[test]
fn a_keras_lambda_is_refused_and_says_why() -> Result<()> {
    let e = strata::keras::load_model_on(fixtures().join("lambda.keras"), &strata::backend::native())
        .unwrap_err()
        .to_string();
    assert!(e.contains("Lambda") && e.contains("bytecode") && e.contains("never runs code"), "{e}");
    Ok(())
}

/// Models built in strata, with every weight set to random values, and
/// inputs for them: what a Rust user would hand to a Python colleague.
fn strata_models(dev: &Device) -> Result<Vec<(&'static str, Model, Vec<Tensor>)>> {
    let mut rng = Rng::seed(7);
    let mlp = Sequential::new()
        .add(Input::new([6]))
        .add(Dense::new(16).activation("relu").kernel_initializer("he_normal"))
        .add(BatchNormalization::new())
        .add(Dropout::new(0.2))
        .add(Dense::new(3).activation("softmax"))
        .name("mlp")
        .build_on(dev)?;
    let convnet = Sequential::new()
        .add(Input::new([10, 10, 2]))
        .add(Conv2D::new(4, 3).padding("same").activation("relu"))
        .add(MaxPooling2D::new(2))
        .add(BatchNormalization::new())
        .add(SeparableConv2D::new(3, 3))
        .add(Flatten::new())
        .add(Dense::new(3))
        .name("convnet")
        .build_on(dev)?;
    let tokens = Input::new([6]).dtype(DType::I64).name("tokens");
    let e = Embedding::new(30, 8).mask_zero(true).call(&tokens)?;
    let s = Bidirectional::new(LSTM::new(4).return_sequences(true)).call(&e)?;
    let s = GRU::new(3).call(&s)?;
    let out = Dense::new(2).name("head").call(&s)?;
    let text = Model::new_with(&tokens, &out, BuildOptions::new().device(dev).name("text"))?;
    let q = Input::new([3, 4]).name("q");
    let v = Input::new([5, 4]).name("v");
    let shared = SharedLayer::new(Dense::new(4).name("proj"));
    let (pq, pv) = (shared.call(&q)?, shared.call(&v)?);
    let a = MultiHeadAttention::new(2, 2).call(&[&pq, &pv])?;
    let inner = Sequential::new()
        .add(Input::new([3, 4]))
        .add(LayerNormalization::new())
        .add(Dense::new(2).activation("tanh"))
        .name("inner")
        .build_on(dev)?;
    let h = Flatten::new().call(&inner.call(&Add::new().call(&[&a, &pq])?)?)?;
    let both = Concatenate::new().call(&[&h, &GlobalAveragePooling1D::new().call(&pv)?])?;
    let two = Model::new_with(&[q, v], &[both], BuildOptions::new().device(dev).name("two_inputs"))?;
    let models = vec![
        ("strata_mlp", mlp, vec![Tensor::rand_normal([4, 6], 0.0, 1.0, &mut rng, dev)?]),
        ("strata_convnet", convnet, vec![Tensor::rand_normal([2, 10, 10, 2], 0.0, 1.0, &mut rng, dev)?]),
        (
            "strata_text",
            text,
            vec![Tensor::new(vec![3i64, 7, 1, 0, 0, 0, 5, 9, 2, 8, 4, 1, 12, 0, 0, 0, 0, 0], [3, 6], dev)?],
        ),
        (
            "strata_two_inputs",
            two,
            vec![
                Tensor::rand_normal([2, 3, 4], 0.0, 1.0, &mut rng, dev)?,
                Tensor::rand_normal([2, 5, 4], 0.0, 1.0, &mut rng, dev)?,
            ],
        ),
    ];
    for (_, m, _) in &models {
        for w in m.weights() {
            let fresh = Tensor::rand_normal(w.value.shape().clone(), 0.0, 0.4, &mut rng, dev)?;
            let fresh = if w.name.ends_with("variance") { fresh.abs()?.add_scalar(0.5)? } else { fresh };
            w.value.assign(&fresh)?;
        }
    }
    Ok(models)
}

#[test]
fn strata_built_models_round_trip_through_keras_files() -> Result<()> {
    let dir = std::env::temp_dir().join(format!("strata_keras_built_{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    for backend in strata::backend::available() {
        let dev = strata::backend::by_name(backend)?;
        for (name, model, x) in strata_models(&dev)? {
            let path = dir.join(format!("{name}.keras"));
            model.save_keras(&path)?;
            let again = strata::keras::load_model_on(&path, &dev).with_context(|| format!("{name} on {backend}"))?;
            let (a, b) = (model.predict_outputs(&x)?, again.predict_outputs(&x)?);
            for (a, b) in a.iter().zip(&b) {
                assert_eq!(a.to_vec::<f32>()?, b.to_vec::<f32>()?, "{name} on {backend}");
            }
            // The weights file alone, into a fresh copy of the architecture.
            let weights = dir.join(format!("{name}.weights.h5"));
            model.save_keras_weights(&weights)?;
            let fresh = Model::from_config_with(&model.get_config(), BuildOptions::new().device(&dev))?;
            strata::keras::load_weights(&fresh, &weights)?;
            assert_eq!(fresh.predict_outputs(&x)?[0].to_vec::<f32>()?, a[0].to_vec::<f32>()?, "{name}");
        }
    }
    std::fs::remove_dir_all(&dir).ok();
    Ok(())
}

fn write_io(path: &Path, x: &[Tensor], y: &[Tensor]) -> Result<()> {
    let mut named: Vec<(String, Vec<u8>, safetensors::Dtype, Vec<usize>)> = Vec::new();
    for (prefix, ts) in [("x", x), ("y", y)] {
        for (i, t) in ts.iter().enumerate() {
            let shape = t.shape().dims().to_vec();
            let (bytes, dtype) = if t.dtype() == DType::I64 {
                (t.to_vec::<i64>()?.iter().flat_map(|v| (*v as i32).to_le_bytes()).collect(), safetensors::Dtype::I32)
            } else {
                (t.to_vec::<f32>()?.iter().flat_map(|v| v.to_le_bytes()).collect(), safetensors::Dtype::F32)
            };
            named.push((format!("{prefix}{i}"), bytes, dtype, shape));
        }
    }
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = named
        .iter()
        .map(|(n, b, d, s)| Ok((n.clone(), safetensors::tensor::TensorView::new(*d, s.clone(), b)?)))
        .collect::<Result<_>>()?;
    safetensors::serialize_to_file(views, None, path)?;
    Ok(())
}

/// Keras itself loads strata's exports and predicts what strata predicts.
/// Runs when `STRATA_KERAS_PYTHON` names a Python with Keras 3, JAX and
/// safetensors (`.ci/run` sets it); otherwise it says so and passes.
#[test]
fn keras_loads_strata_exports_and_predicts_the_same() -> Result<()> {
    let Ok(python) = std::env::var("STRATA_KERAS_PYTHON") else {
        eprintln!("STRATA_KERAS_PYTHON is not set: Keras' side of the export is not checked");
        return Ok(());
    };
    let dir = std::env::temp_dir().join(format!("strata_keras_check_{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let dev = strata::backend::native();
    let mut models = strata_models(&dev)?;
    for name in MODELS {
        let model = strata::keras::load_model_on(fixtures().join(format!("{name}.keras")), &dev)?;
        models.push((name, model, io(name, &dev)?.0));
    }
    for (name, model, x) in &models {
        model.save_keras(dir.join(format!("{name}.keras")))?;
        write_io(&dir.join(format!("{name}.io.safetensors")), x, &model.predict_outputs(x)?)?;
    }
    let out = std::process::Command::new(&python)
        .arg(fixtures().join("check_export.py"))
        .arg(&dir)
        .env("KERAS_BACKEND", "jax")
        .output()
        .with_context(|| format!("running {python}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprintln!("{stdout}");
    ensure!(out.status.success(), "Keras rejected strata's files:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    ensure!(stdout.lines().filter(|l| l.contains(": ok")).count() == models.len(), "{stdout}");
    std::fs::remove_dir_all(&dir).ok();
    Ok(())
}

/// A `.keras` file with `edit` applied to one entry, repacked (stored, as
/// Keras writes it), so the mutation reaches the parser past the zip's CRC.
fn repack(original: &[u8], entry: &str, edit: impl FnOnce(&mut Vec<u8>)) -> Result<Vec<u8>> {
    use std::io::{Read, Write};
    let mut zin = zip::ZipArchive::new(std::io::Cursor::new(original))?;
    let mut out = std::io::Cursor::new(Vec::new());
    {
        let mut zout = zip::ZipWriter::new(&mut out);
        let opts = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
        let mut edit = Some(edit);
        for i in 0..zin.len() {
            let mut f = zin.by_index(i)?;
            let name = f.name()?.to_string();
            let mut bytes = Vec::new();
            f.read_to_end(&mut bytes)?;
            if name == entry {
                if let Some(e) = edit.take() {
                    e(&mut bytes);
                }
            }
            zout.start_file(name, opts)?;
            zout.write_all(&bytes)?;
        }
        zout.finish()?;
    }
    Ok(out.into_inner())
}

/// Mutated Keras files (bytes flipped, runs overwritten, cut short, in the
/// archive itself, in `config.json` and in `model.weights.h5`) load as an
/// `Err` or, where the mutation hit nothing that matters, as a model: never
/// a panic. `STRATA_KERAS_FUZZ` sets the number of files (default 600).
#[test]
fn mutated_keras_files_are_errors_not_panics() -> Result<()> {
    let n: usize = std::env::var("STRATA_KERAS_FUZZ").ok().and_then(|s| s.parse().ok()).unwrap_or(600);
    let dev = strata::backend::native();
    let originals: Vec<Vec<u8>> =
        MODELS.iter().map(|m| std::fs::read(fixtures().join(format!("{m}.keras")))).collect::<Result<_, _>>()?;
    let dir = std::env::temp_dir().join(format!("strata_keras_fuzz_{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("mutated.keras");
    // A small deterministic generator (splitmix64), so a failure reproduces.
    let mut state = 0x5eed_u64;
    let mut next = move || {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    let (mut errors, mut loaded) = (0, 0);
    for i in 0..n {
        let original = &originals[(next() as usize) % originals.len()];
        let mutate = |b: &mut Vec<u8>, r: &mut dyn FnMut() -> u64| {
            if b.is_empty() {
                return;
            }
            match r() % 4 {
                0 => {
                    for _ in 0..1 + r() % 4 {
                        let at = (r() as usize) % b.len();
                        b[at] ^= 1 << (r() % 8);
                    }
                }
                1 => {
                    let at = (r() as usize) % b.len();
                    let len = (1 + r() as usize % 16).min(b.len() - at);
                    let fill = [0u8, 0xff, 0x7f, 0x80][(r() % 4) as usize];
                    b[at..at + len].iter_mut().for_each(|x| *x = fill);
                }
                2 => b.truncate((r() as usize) % b.len()),
                _ => {
                    // a plausible-looking 8-byte little-endian size or offset
                    let at = (r() as usize) % b.len().saturating_sub(8).max(1);
                    let v = [u64::MAX, 1 << 40, 0, (r() % 4096)][(r() % 4) as usize].to_le_bytes();
                    let end = (at + 8).min(b.len());
                    b[at..end].copy_from_slice(&v[..end - at]);
                }
            }
        };
        let bytes = match next() % 3 {
            0 => {
                let mut b = original.clone();
                mutate(&mut b, &mut next);
                b
            }
            1 => repack(original, "model.weights.h5", |b| mutate(b, &mut next))?,
            _ => repack(original, "config.json", |b| mutate(b, &mut next))?,
        };
        std::fs::write(&path, &bytes)?;
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            strata::keras::load_model_on(&path, &dev).map(|_| ())
        }));
        match result {
            Ok(Ok(())) => loaded += 1,
            Ok(Err(e)) => {
                assert!(!e.to_string().is_empty());
                errors += 1
            }
            Err(_) => {
                let keep = dir.join(format!("panic_{i}.keras"));
                std::fs::write(&keep, &bytes)?;
                anyhow::bail!("mutated file {i} panicked; kept as {}", keep.display());
            }
        }
    }
    eprintln!("{n} mutated files: {errors} errors, {loaded} loaded");
    assert!(errors > n / 2, "most mutations must be caught: {errors} of {n}");
    std::fs::remove_dir_all(&dir).ok();
    Ok(())
}
