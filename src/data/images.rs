//! Image folders as datasets: Keras'
//! `image_dataset_from_directory` (cargo feature `images`, on by default;
//! PNG and JPEG decoding by the `image` crate).
//!
//! A folder with one subfolder per class (`dir/cat/1.png`, `dir/dog/7.jpg`)
//! becomes batches of `f32` images `[n, height, width, channels]` with
//! values in `[0, 255]` (rescale them in the model, as Keras users do) and
//! labels from the subfolder names in alphabetical order.
//!
//! ```
//! use strata::data::images::{image_dataset_from_directory, ImageFolderOptions};
//! use strata::data::{Dataset, Source};
//! # fn main() -> strata::Result<()> {
//! # let dir = std::env::temp_dir().join(format!("strata-images-doc-{}", std::process::id()));
//! # for (class, shade) in [("dark", 20u8), ("light", 230)] {
//! #     std::fs::create_dir_all(dir.join(class)).unwrap();
//! #     for i in 0..5 {
//! #         image::GrayImage::from_pixel(8, 6, image::Luma([shade])).save(dir.join(class).join(format!("{i}.png"))).unwrap();
//! #     }
//! # }
//! let options = ImageFolderOptions::new().image_size(4, 4).color_mode("grayscale").batch_size(4).seed(1);
//! let (train, val) = image_dataset_from_directory(&dir, &options.validation_split(0.2))?.split()?;
//! assert_eq!(train.source().class_names(), &["dark", "light"]);
//! assert_eq!((train.source().len(), val.source().len()), (8, 2));
//! let batch = train.get(0, 0)?.unwrap();
//! assert_eq!(batch.x[0].dims(), &[4, 4, 4, 1]);
//! # std::fs::remove_dir_all(&dir).ok();
//! # Ok(()) }
//! ```

use std::path::{Path, PathBuf};
use std::sync::Arc;

use image::imageops::FilterType;
use strata_core::{Device, Error, Result, Rng, Tensor};

use super::{Batch, Batched, Source};

/// The file name extensions read (lower case); others are skipped, as
/// Keras skips files outside its allow-list.
pub const FORMATS: &[&str] = &["png", "jpg", "jpeg"];

/// Keras' `image_dataset_from_directory` arguments, as a builder with
/// Keras' defaults: labels inferred from subfolders as `"int"` ids, RGB,
/// batches of 32, 256×256 bilinear resizing, shuffled.
#[derive(Clone, Debug)]
pub struct ImageFolderOptions {
    label_mode: Option<String>,
    class_names: Option<Vec<String>>,
    color_mode: String,
    batch_size: usize,
    image_size: (usize, usize),
    shuffle: bool,
    seed: Option<u64>,
    validation_split: Option<f64>,
    interpolation: String,
    crop_to_aspect_ratio: bool,
}

impl Default for ImageFolderOptions {
    fn default() -> Self {
        ImageFolderOptions::new()
    }
}

impl ImageFolderOptions {
    /// Keras' defaults.
    pub fn new() -> Self {
        ImageFolderOptions {
            label_mode: Some("int".into()),
            class_names: None,
            color_mode: "rgb".into(),
            batch_size: 32,
            image_size: (256, 256),
            shuffle: true,
            seed: None,
            validation_split: None,
            interpolation: "bilinear".into(),
            crop_to_aspect_ratio: false,
        }
    }

    /// `"int"` (i64 ids, the default), `"categorical"` (one-hot f32),
    /// `"binary"` (f32 `[n, 1]`, exactly two classes).
    pub fn label_mode(mut self, mode: &str) -> Self {
        self.label_mode = Some(mode.to_string());
        self
    }

    /// Images only, no labels (for `predict_dataset`; Keras' `labels=None`).
    pub fn no_labels(mut self) -> Self {
        self.label_mode = None;
        self
    }

    /// The subfolders to read, in label order (default: all, alphabetical).
    pub fn class_names<S: Into<String>>(mut self, names: impl IntoIterator<Item = S>) -> Self {
        self.class_names = Some(names.into_iter().map(Into::into).collect());
        self
    }

    /// `"rgb"` (default), `"rgba"` or `"grayscale"`.
    pub fn color_mode(mut self, mode: &str) -> Self {
        self.color_mode = mode.to_string();
        self
    }

    /// Images per batch (default 32).
    pub fn batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = batch_size;
        self
    }

    /// `(height, width)` every image is resized to (default 256×256).
    pub fn image_size(mut self, height: usize, width: usize) -> Self {
        self.image_size = (height, width);
        self
    }

    /// Shuffle the file list once (with the seed) and the training batches
    /// each epoch (a buffer of 8 batches, as Keras); default true.
    pub fn shuffle(mut self, shuffle: bool) -> Self {
        self.shuffle = shuffle;
        self
    }

    /// The seed of the shuffles (needed with a validation split, so that
    /// both parts come from the same order).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Holds out this fraction of the files for validation; use
    /// [`ImageFolderDataset::split`] (Keras' `subset="both"`),
    /// [`training`](ImageFolderDataset::training) or
    /// [`validation`](ImageFolderDataset::validation).
    pub fn validation_split(mut self, fraction: f64) -> Self {
        self.validation_split = Some(fraction);
        self
    }

    /// `"bilinear"` (default), `"nearest"`, `"bicubic"`, `"lanczos3"`, `"gaussian"`.
    pub fn interpolation(mut self, name: &str) -> Self {
        self.interpolation = name.to_string();
        self
    }

    /// Crop each image to the target aspect ratio (centered) before
    /// resizing, instead of distorting it.
    pub fn crop_to_aspect_ratio(mut self, crop: bool) -> Self {
        self.crop_to_aspect_ratio = crop;
        self
    }
}

/// How labels are produced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum LabelMode {
    Int,
    Categorical,
    Binary,
    None,
}

/// Decoding settings shared by the files of a folder.
#[derive(Clone, Debug)]
struct Decode {
    channels: usize,
    size: (usize, usize),
    filter: FilterType,
    crop: bool,
    labels: LabelMode,
    classes: usize,
}

/// Image files with their labels as a [`Source`]: each gathered image is
/// decoded, converted and resized; a file that cannot be decoded is an
/// error naming it.
#[derive(Clone)]
pub struct ImageFolder {
    files: Arc<Vec<(PathBuf, usize)>>,
    class_names: Arc<Vec<String>>,
    decode: Arc<Decode>,
    device: Device,
}

impl ImageFolder {
    /// The class names, in label order.
    pub fn class_names(&self) -> &[String] {
        &self.class_names
    }

    /// The files and their class ids, in sample order.
    pub fn files(&self) -> &[(PathBuf, usize)] {
        &self.files
    }

    /// The batches' tensors are made on `device` (default:
    /// [`backend::from_env`](crate::backend::from_env)).
    pub fn on(mut self, device: &Device) -> ImageFolder {
        self.device = device.clone();
        self
    }

    fn subset(&self, files: Vec<(PathBuf, usize)>) -> ImageFolder {
        ImageFolder { files: Arc::new(files), ..self.clone() }
    }

    /// One image as `height * width * channels` values in `[0, 255]`.
    fn load(&self, path: &Path, out: &mut Vec<f32>) -> Result<()> {
        let d = &self.decode;
        let img = image::open(path).map_err(|e| Error::format(path, format!("cannot decode the image: {e}"), None))?;
        let (h, w) = (d.size.0 as u32, d.size.1 as u32);
        let img = if d.crop {
            // The largest centred window with the target's aspect ratio.
            let (iw, ih) = (img.width(), img.height());
            let (cw, ch) = if u64::from(iw) * u64::from(h) > u64::from(ih) * u64::from(w) {
                ((u64::from(ih) * u64::from(w) / u64::from(h)) as u32, ih)
            } else {
                (iw, (u64::from(iw) * u64::from(h) / u64::from(w)) as u32)
            };
            img.crop_imm((iw - cw) / 2, (ih - ch) / 2, cw.max(1), ch.max(1))
        } else {
            img
        };
        let resize = |i: &image::DynamicImage| i.resize_exact(w, h, d.filter);
        let same = img.width() == w && img.height() == h;
        let img = if same { img } else { resize(&img) };
        match d.channels {
            1 => out.extend(img.to_luma8().into_raw().into_iter().map(f32::from)),
            3 => out.extend(img.to_rgb8().into_raw().into_iter().map(f32::from)),
            _ => out.extend(img.to_rgba8().into_raw().into_iter().map(f32::from)),
        }
        Ok(())
    }
}

impl Source for ImageFolder {
    fn len(&self) -> usize {
        self.files.len()
    }

    fn gather(&self, indices: &[usize]) -> Result<Batch> {
        let d = &self.decode;
        let (h, w) = d.size;
        let mut pixels = Vec::with_capacity(indices.len() * h * w * d.channels);
        let mut labels = Vec::with_capacity(indices.len());
        for &i in indices {
            let Some((path, label)) = self.files.get(i) else {
                return Err(Error::invalid("gather", format!("image {i} is out of range for {} images", self.len())));
            };
            self.load(path, &mut pixels)?;
            labels.push(*label);
        }
        let n = indices.len();
        let x = Tensor::new(pixels, [n, h, w, d.channels], &self.device)?;
        let y = match d.labels {
            LabelMode::None => return Ok(Batch::inputs(&x)),
            LabelMode::Int => Tensor::new(labels.iter().map(|&l| l as i64).collect::<Vec<_>>(), [n], &self.device)?,
            LabelMode::Binary => {
                Tensor::new(labels.iter().map(|&l| l as f32).collect::<Vec<_>>(), [n, 1], &self.device)?
            }
            LabelMode::Categorical => {
                let mut one_hot = vec![0f32; n * d.classes];
                for (row, &l) in labels.iter().enumerate() {
                    one_hot[row * d.classes + l] = 1.0;
                }
                Tensor::new(one_hot, [n, d.classes], &self.device)?
            }
        };
        Ok(Batch::new(&x, &y))
    }
}

/// What [`image_dataset_from_directory`] returns: the batched images, and
/// with a validation split the means to take either part.
pub struct ImageFolderDataset {
    all: ImageFolder,
    batch_size: usize,
    shuffle: bool,
    seed: u64,
    validation_split: Option<f64>,
}

impl ImageFolderDataset {
    /// Every image (no validation split given), batched and, unless
    /// `shuffle(false)`, reshuffled each pass.
    pub fn all(self) -> Result<Batched<ImageFolder>> {
        if self.validation_split.is_some() {
            return Err(Error::invalid(
                "image_dataset_from_directory",
                "a validation_split was given; take the parts with split(), training() or validation()",
            ));
        }
        Ok(self.batched(self.all.clone(), self.shuffle))
    }

    /// `(training, validation)`: Keras' `subset="both"` (the validation part
    /// is not shuffled per pass).
    pub fn split(self) -> Result<(Batched<ImageFolder>, Batched<ImageFolder>)> {
        let (train, val) = self.parts()?;
        Ok((self.batched(train, self.shuffle), self.batched(val, false)))
    }

    /// The training part only (Keras' `subset="training"`).
    pub fn training(self) -> Result<Batched<ImageFolder>> {
        let (train, _) = self.parts()?;
        Ok(self.batched(train, self.shuffle))
    }

    /// The validation part only (Keras' `subset="validation"`).
    pub fn validation(self) -> Result<Batched<ImageFolder>> {
        let (_, val) = self.parts()?;
        Ok(self.batched(val, self.shuffle))
    }

    /// The batches' tensors are made on `device` (default:
    /// [`backend::from_env`](crate::backend::from_env)).
    pub fn on(mut self, device: &Device) -> Self {
        self.all = self.all.on(device);
        self
    }

    /// The images before batching (all of them).
    pub fn source(&self) -> &ImageFolder {
        &self.all
    }

    fn parts(&self) -> Result<(ImageFolder, ImageFolder)> {
        let Some(fraction) = self.validation_split else {
            return Err(Error::invalid(
                "image_dataset_from_directory",
                "no validation_split was given; use all() for every image",
            ));
        };
        // Keras: the last `int(fraction * n)` files (after the seeded shuffle).
        let n = self.all.len();
        let n_val = (fraction * n as f64) as usize;
        if n_val == 0 || n_val == n {
            return Err(Error::invalid(
                "image_dataset_from_directory",
                format!("validation_split {fraction} of {n} images leaves {} for training and {n_val} for validation; both need at least one", n - n_val),
            ));
        }
        let files = self.all.files();
        Ok((self.all.subset(files[..n - n_val].to_vec()), self.all.subset(files[n - n_val..].to_vec())))
    }

    fn batched(&self, part: ImageFolder, shuffle: bool) -> Batched<ImageFolder> {
        if shuffle {
            part.shuffle(self.batch_size * 8).seed(self.seed).batch(self.batch_size)
        } else {
            part.batch(self.batch_size)
        }
    }
}

/// Keras' `image_dataset_from_directory`: the images under `dir`, one
/// subfolder per class (labels from the subfolder names in alphabetical
/// order, or [`ImageFolderOptions::class_names`]' order), `.png`, `.jpg`
/// and `.jpeg` files at any depth below them, sorted by path, then shuffled
/// once with the seed. Nothing is decoded until a batch is read.
pub fn image_dataset_from_directory(dir: impl AsRef<Path>, options: &ImageFolderOptions) -> Result<ImageFolderDataset> {
    let dir = dir.as_ref();
    let bad = |m: String| Error::invalid("image_dataset_from_directory", m);
    let labels = match options.label_mode.as_deref() {
        Some("int") => LabelMode::Int,
        Some("categorical") => LabelMode::Categorical,
        Some("binary") => LabelMode::Binary,
        None => LabelMode::None,
        Some(other) => {
            return Err(bad(format!("label_mode must be \"int\", \"categorical\" or \"binary\", received \"{other}\"")))
        }
    };
    let channels = match options.color_mode.as_str() {
        "rgb" => 3,
        "rgba" => 4,
        "grayscale" => 1,
        other => {
            return Err(bad(format!("color_mode must be \"rgb\", \"rgba\" or \"grayscale\", received \"{other}\"")))
        }
    };
    let filter = match options.interpolation.as_str() {
        "bilinear" => FilterType::Triangle,
        "nearest" => FilterType::Nearest,
        "bicubic" => FilterType::CatmullRom,
        "lanczos3" => FilterType::Lanczos3,
        "gaussian" => FilterType::Gaussian,
        other => {
            return Err(bad(format!(
                "interpolation must be one of bilinear, nearest, bicubic, lanczos3, gaussian; received \"{other}\""
            )))
        }
    };
    let (h, w) = options.image_size;
    if h == 0 || w == 0 || h.checked_mul(w).and_then(|p| p.checked_mul(4)).is_none_or(|p| p > (1 << 28)) {
        return Err(bad(format!("image_size must be positive and at most 2^26 pixels, received ({h}, {w})")));
    }
    if options.batch_size == 0 {
        return Err(bad("batch_size must be at least 1, received 0".into()));
    }
    if let Some(f) = options.validation_split {
        if !(f > 0.0 && f < 1.0) {
            return Err(bad(format!("validation_split must be in (0, 1), received {f}")));
        }
        if options.shuffle && options.seed.is_none() {
            return Err(bad(
                "with a validation_split and shuffling, give a seed so that both parts come from the same order".into(),
            ));
        }
    }
    let mut subdirs: Vec<String> = std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir, "read the folder", e))?
        .filter_map(|entry| entry.ok())
        .filter(|e| e.path().is_dir())
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .collect();
    subdirs.sort();
    let class_names = match &options.class_names {
        Some(names) => {
            for n in names {
                if !subdirs.contains(n) {
                    return Err(bad(format!(
                        "class_names names `{n}`, which is not a subfolder of {} (subfolders: {})",
                        dir.display(),
                        subdirs.join(", ")
                    )));
                }
            }
            names.clone()
        }
        None => subdirs,
    };
    if class_names.is_empty() {
        return Err(bad(format!("{} has no class subfolders", dir.display())));
    }
    if labels == LabelMode::Binary && class_names.len() != 2 {
        return Err(bad(format!(
            "label_mode \"binary\" needs exactly 2 classes, found {}: {}",
            class_names.len(),
            class_names.join(", ")
        )));
    }
    let mut files = Vec::new();
    for (label, class) in class_names.iter().enumerate() {
        let mut found = Vec::new();
        walk(&dir.join(class), &mut found)?;
        found.sort();
        files.extend(found.into_iter().map(|p| (p, label)));
    }
    if files.is_empty() {
        return Err(bad(format!("found no images ({}) in {}", FORMATS.join(", "), dir.display())));
    }
    let seed = options.seed.unwrap_or_else(super::random_seed);
    if options.shuffle {
        Rng::seed(seed).shuffle(&mut files);
    }
    let decode = Decode {
        channels,
        size: (h, w),
        filter,
        crop: options.crop_to_aspect_ratio,
        labels,
        classes: class_names.len(),
    };
    let all = ImageFolder {
        files: Arc::new(files),
        class_names: Arc::new(class_names),
        decode: Arc::new(decode),
        device: crate::backend::from_env()?,
    };
    Ok(ImageFolderDataset {
        all,
        batch_size: options.batch_size,
        shuffle: options.shuffle,
        seed,
        validation_split: options.validation_split,
    })
}

/// The image files below `dir`, recursively.
fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    for entry in std::fs::read_dir(dir).map_err(|e| Error::io(dir, "read the folder", e))? {
        let path = entry.map_err(|e| Error::io(dir, "read the folder", e))?.path();
        if path.is_dir() {
            walk(&path, out)?;
        } else if path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| FORMATS.contains(&e.to_ascii_lowercase().as_str()))
        {
            out.push(path);
        }
    }
    Ok(())
}
