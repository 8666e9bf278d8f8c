//! The data sets against numbers computed independently from the source
//! files (shared/data/README.md, and for sums and first values:
//!
//! ```python
//! import csv, gzip
//! rows = list(csv.reader(open("digits.csv")))[1:]
//! sum(int(v) for r in rows for v in r[:-1])                  # 561718
//! b = gzip.open("mnist/train-images-idx3-ubyte.gz").read()[16:]
//! sum(b)                                                      # 1567298545
//! ```
//!
//! MNIST and Fashion-MNIST are checked only where their files are found
//! (users without the data folder still pass); where they are found, any
//! error or wrong number fails.

use strata::datasets::{digits, fashion_mnist, iris, mnist, Dataset, Split};
use strata::Tensor;

const DIGIT_COUNTS: [usize; 10] = [178, 182, 177, 183, 181, 182, 181, 179, 174, 180];

fn labels(d: &Dataset) -> Vec<i64> {
    d.y.to_vec::<i64>().unwrap()
}

#[test]
fn digits_match_scikit_learn() {
    let data = digits::load().unwrap();
    assert_eq!(data.len(), 1797);
    assert_eq!(data.x.dims(), &[1797, 64]);
    assert_eq!(data.x.dtype(), strata::DType::F32);
    assert_eq!(data.class_counts().unwrap(), DIGIT_COUNTS);
    let x = data.x.to_vec::<f32>().unwrap();
    #[rustfmt::skip]
    let first = [
        0, 0, 5, 13, 9, 1, 0, 0,   0, 0, 13, 15, 10, 15, 5, 0,   0, 3, 15, 2, 0, 11, 8, 0,   0, 4, 12, 0, 0, 8, 8, 0,
        0, 5, 8, 0, 0, 9, 8, 0,    0, 4, 11, 0, 1, 12, 7, 0,     0, 2, 14, 5, 10, 12, 0, 0,  0, 0, 6, 13, 10, 0, 0, 0,
    ];
    assert_eq!(x[..64], first.map(|v| v as f32));
    assert_eq!(labels(&data)[..3], [0, 1, 2]);
    assert_eq!(labels(&data)[1796], 8);
    assert_eq!(x.iter().map(|&v| v as u64).sum::<u64>(), 561718);
    assert!(x.iter().all(|&v| (0.0..=16.0).contains(&v) && v.fract() == 0.0));

    let scaled = digits::load_scaled().unwrap().x.to_vec::<f32>().unwrap();
    assert_eq!(scaled[2], 5.0 / 16.0);
    assert_eq!(scaled.iter().fold(0.0f32, |a, &b| a.max(b)), 1.0);
}

#[test]
fn iris_has_fifty_of_each_species() {
    let data = iris::load().unwrap();
    assert_eq!(data.x.dims(), &[150, 4]);
    assert_eq!(data.class_counts().unwrap(), [50, 50, 50]);
    let x = data.x.to_vec::<f32>().unwrap();
    assert_eq!(x[..4], [5.1, 3.5, 1.4, 0.2]);
    assert_eq!(x[596..], [5.9, 3.0, 5.1, 1.8]);
    let sum: f64 = x.iter().map(|&v| f64::from(v)).sum();
    assert!((sum - 2078.7).abs() < 1e-3, "{sum}");
    assert_eq!(iris::CLASS_NAMES[labels(&data)[149] as usize], "virginica");
}

#[test]
fn train_test_split_is_seeded_and_a_partition() {
    let data = digits::load().unwrap();
    let a = data.train_test_split(0.2, 42).unwrap();
    let b = data.train_test_split(0.2, 42).unwrap();
    let c = data.train_test_split(0.2, 43).unwrap();
    assert_eq!((a.train.len(), a.test.len()), (1437, 360));
    assert_eq!(a.train.x.dims(), &[1437, 64]);
    assert_eq!(labels(&a.test), labels(&b.test));
    assert_eq!(a.test.x.to_vec::<f32>().unwrap(), b.test.x.to_vec::<f32>().unwrap());
    assert_ne!(labels(&a.test), labels(&c.test));

    // Every example lands in exactly one part, with its own label: compare
    // the multisets of (row, label) pairs.
    let rows = |d: &Dataset| -> Vec<(Vec<u32>, i64)> {
        let x = d.x.to_vec::<f32>().unwrap();
        let mut r: Vec<_> = x.chunks(64).map(|c| c.iter().map(|v| v.to_bits()).collect()).zip(labels(d)).collect();
        r.sort();
        r
    };
    let mut parts = rows(&a.train);
    parts.extend(rows(&a.test));
    parts.sort();
    assert_eq!(parts, rows(&data));

    // Not stratified, but a shuffle: the test part has every class.
    let test_counts = a.test.class_counts().unwrap();
    assert!(test_counts.len() == 10 && test_counts.iter().all(|&n| n > 10), "{test_counts:?}");
    for bad in [0.0, 1.0, -0.5, f64::NAN] {
        let msg = data.train_test_split(bad, 0).map(|_| ()).unwrap_err().to_string();
        assert!(msg.contains("test_fraction"), "{msg}");
    }
    let msg = data.narrow(0, 1).unwrap().train_test_split(0.5, 0).map(|_| ()).unwrap_err().to_string();
    assert!(msg.contains("both need at least one"), "{msg}");
}

#[test]
fn split_at_narrow_flatten_and_devices() {
    let data = iris::load().unwrap();
    let Split { train, test } = data.split_at(120).unwrap();
    assert_eq!(labels(&train)[..], labels(&data)[..120]);
    assert_eq!(labels(&test)[..], labels(&data)[120..]);
    assert!(data.split_at(151).is_err());
    assert!(data.narrow(149, 2).is_err());

    let images = Dataset::new(
        Tensor::zeros([4, 2, 3], strata::DType::F32, data.x.device()).unwrap(),
        Tensor::new(vec![0i64, 1, 2, 3], [4], data.x.device()).unwrap(),
    )
    .unwrap();
    assert_eq!(images.flatten().unwrap().x.dims(), &[4, 6]);
    let bad = Dataset::new(images.x.clone(), Tensor::new(vec![0i64, 1], [2], data.x.device()).unwrap());
    assert!(bad.map(|_| ()).unwrap_err().to_string().contains("one entry along axis 0 per label"));
    assert!(Dataset::new(images.x.clone(), images.x.clone()).is_err());

    for name in strata::backend::available().into_iter().filter(|n| !n.contains(':') && !n.contains("cuda")) {
        let dev = strata::backend::by_name(name).unwrap();
        let moved = data.to_device(&dev).unwrap();
        assert_eq!(moved.x.device().name(), dev.name());
        assert_eq!(moved.x.to_vec::<f32>().unwrap(), data.x.to_vec::<f32>().unwrap());
        assert_eq!(labels(&moved), labels(&data));
        assert_eq!(labels(&moved.shuffle(3).unwrap()), labels(&data.shuffle(3).unwrap()), "{name}");
    }
}

/// `shared/data/<folder>` in the current folder or the nearest ancestor
/// that has one. The tests read the IDX sets from there with `load_from`, so
/// that a machine without them never tries the download mirrors.
fn shared_data(folder: &str) -> Option<std::path::PathBuf> {
    let cwd = std::env::current_dir().ok()?;
    cwd.ancestors().map(|d| d.join("shared").join("data").join(folder)).find(|d| d.is_dir())
}

/// The IDX set, or `None` (with a note) where its files are not found.
fn load_or_skip(name: &str, result: Option<strata::Result<Split>>) -> Option<Split> {
    match result {
        None => {
            eprintln!("skipping the {name} checks: no shared/data/ folder here");
            None
        }
        Some(Ok(split)) => Some(split),
        Some(Err(e)) if e.to_string().contains("data files not found") => {
            eprintln!("skipping the {name} checks, its files are not here:\n{e}");
            None
        }
        Some(Err(e)) => panic!("{name}: files found but not loaded: {e}"),
    }
}

/// Shapes, label histograms, pixel range, and the exact byte sum of the
/// images (pixels are `byte / 255`).
fn check_idx_set(split: &Split, train_counts: &[usize], test_counts: &[usize], sums: [u64; 2], first: [&[i64]; 2]) {
    for (part, n, counts, sum, first) in
        [(&split.train, 60000, train_counts, sums[0], first[0]), (&split.test, 10000, test_counts, sums[1], first[1])]
    {
        assert_eq!(part.x.dims(), &[n, 28, 28]);
        assert_eq!(part.y.dims(), &[n]);
        assert_eq!(part.class_counts().unwrap(), counts);
        assert_eq!(labels(part)[..10], *first);
        let px = part.x.to_vec::<f32>().unwrap();
        let (mut max, mut bytes) = (0.0f32, 0u64);
        for &p in &px {
            let b = (p * 255.0).round();
            assert!((0.0..=255.0).contains(&b) && p == b / 255.0, "pixel {p} is not byte / 255");
            max = max.max(p);
            bytes += b as u64;
        }
        assert_eq!(max, 1.0);
        assert_eq!(bytes, sum);
    }
}

#[test]
fn mnist_matches_the_published_counts_where_its_files_are() {
    let Some(split) = load_or_skip("mnist", shared_data("mnist").map(mnist::load_from)) else { return };
    check_idx_set(
        &split,
        &[5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949],
        &[980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009],
        [1567298545, 264923200],
        [&[5, 0, 4, 1, 9, 2, 1, 3, 1, 4], &[7, 2, 1, 0, 4, 1, 4, 9, 5, 9]],
    );
    let flat = split.flatten().unwrap();
    assert_eq!(flat.train.x.dims(), &[60000, 784]);
}

#[test]
fn fashion_mnist_matches_the_published_counts_where_its_files_are() {
    let Some(split) = load_or_skip("fashion-mnist", shared_data("fashion-mnist").map(fashion_mnist::load_from)) else {
        return;
    };
    check_idx_set(
        &split,
        &[6000; 10],
        &[1000; 10],
        [3431114169, 573469082],
        [&[9, 0, 0, 3, 0, 2, 7, 2, 5, 5], &[9, 2, 1, 1, 6, 1, 4, 6, 5, 7]],
    );
}

#[test]
fn a_folder_without_the_files_is_an_error_saying_where_it_looked() {
    let dir = std::env::temp_dir().join(format!("strata-datasets-empty-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let msg = mnist::load_from(&dir).map(|_| ()).unwrap_err().to_string();
    assert!(msg.contains("data files not found"), "{msg}");
    assert!(msg.contains(&dir.display().to_string()) && msg.contains("train-images-idx3-ubyte.gz"), "{msg}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn csv_tables_load_from_files_and_readers() {
    use strata::datasets::csv::{self, CsvOptions};
    let text =
        "sepal_length,species,petal_length\n5.1,setosa,1.4\n7.0,versicolor,4.7\n6.3,virginica,6.0\n4.9,setosa,1.4\n";
    let path = std::env::temp_dir().join(format!("strata-csv-test-{}.csv", std::process::id()));
    std::fs::write(&path, text).unwrap();
    let table = csv::load(&path, &CsvOptions::new().label("species")).unwrap();
    std::fs::remove_file(&path).unwrap();
    assert_eq!(table.data.x.dims(), &[4, 2]);
    assert_eq!(table.data.x.to_vec::<f32>().unwrap(), vec![5.1, 1.4, 7.0, 4.7, 6.3, 6.0, 4.9, 1.4]);
    assert_eq!(labels(&table.data), vec![0, 1, 2, 0]);
    assert_eq!(table.class_names, vec!["setosa", "versicolor", "virginica"]);
    assert_eq!(table.feature_names, vec!["sepal_length", "petal_length"]);

    // The shipped iris copy, label last by default: the same numbers as iris::load.
    let iris_csv =
        ["shared/data/iris.csv", "../shared/data/iris.csv"].into_iter().find(|p| std::path::Path::new(p).is_file());
    if let Some(p) = iris_csv {
        let table = csv::load(p, &CsvOptions::new()).unwrap();
        let shipped = iris::load().unwrap();
        assert_eq!(table.data.x.to_vec::<f32>().unwrap(), shipped.x.to_vec::<f32>().unwrap());
        assert_eq!(labels(&table.data), labels(&shipped));
    }

    let msg = csv::load_reader("a,b\n1,2\n1,oops\n".as_bytes(), &CsvOptions::new().label("a")).unwrap_err().to_string();
    assert!(msg.contains("line 3, column `b`: `oops` is not a number"), "{msg}");
    let msg = csv::load_reader("a,b\n1,2\n1\n".as_bytes(), &CsvOptions::new()).unwrap_err().to_string();
    assert!(msg.contains("line 3: 1 fields, the header has 2 columns"), "{msg}");
    let msg = csv::load_reader("a,b\n1,2\n".as_bytes(), &CsvOptions::new().label("y")).unwrap_err().to_string();
    assert!(msg.contains("line 1: no label column `y`"), "{msg}");
    let missing = csv::load("/nonexistent/x.csv", &CsvOptions::new()).map(|_| ()).unwrap_err().to_string();
    assert!(missing.contains("/nonexistent/x.csv: cannot open"), "{missing}");
}

/// Ten examples, `x = [i, 10 * i]`, labels six 0s then four 1s.
fn six_and_four() -> Dataset {
    let dev = strata::backend::native();
    let x: Vec<f32> = (0..10).flat_map(|i| [i as f32, 10.0 * i as f32]).collect();
    let y = vec![0i64, 0, 0, 0, 0, 0, 1, 1, 1, 1];
    Dataset::new(Tensor::new(x, [10, 2], &dev).unwrap(), Tensor::new(y, [10], &dev).unwrap()).unwrap()
}

#[test]
fn stratified_split_keeps_class_proportions() {
    let data = six_and_four();
    // 0.5: 5 test examples, exactly 3 of class 0 and 2 of class 1.
    // 0.25: ceil(2.5) = 3 test; shares 1.8 and 1.2 floor to 1 + 1, the
    // larger remainder (class 0) takes the third.
    for (fraction, test_counts, train_counts) in [(0.5, [3, 2], [3, 2]), (0.25, [2, 1], [4, 3])] {
        for seed in 0..5 {
            let split = data.train_test_split_stratified(fraction, seed).unwrap();
            assert_eq!(split.test.class_counts().unwrap(), test_counts, "{fraction} {seed}");
            assert_eq!(split.train.class_counts().unwrap(), train_counts, "{fraction} {seed}");
            // Rows travel with their labels, and every row is used once.
            let mut rows: Vec<(i64, i64)> = Vec::new();
            for part in [&split.train, &split.test] {
                let x = part.x.to_vec::<f32>().unwrap();
                for (r, y) in x.chunks(2).zip(labels(part)) {
                    assert_eq!(r[1], 10.0 * r[0]);
                    assert_eq!(y, i64::from(r[0] >= 6.0));
                    rows.push((r[0] as i64, y));
                }
            }
            rows.sort();
            assert_eq!(rows.iter().map(|r| r.0).collect::<Vec<_>>(), (0..10).collect::<Vec<_>>());
        }
    }
    let a = data.train_test_split_stratified(0.5, 1).unwrap();
    let b = data.train_test_split_stratified(0.5, 1).unwrap();
    assert_eq!(labels(&a.test), labels(&b.test));
    assert_eq!(a.test.x.to_vec::<f32>().unwrap(), b.test.x.to_vec::<f32>().unwrap());

    let digits = digits::load().unwrap().train_test_split_stratified(0.2, 0).unwrap();
    assert_eq!(digits.test.len(), 360);
    for (k, (&t, &all)) in digits.test.class_counts().unwrap().iter().zip(&DIGIT_COUNTS).enumerate() {
        assert!((t as f64 - 0.2 * all as f64).abs() < 1.0, "class {k}: {t} of {all}");
    }
    assert!(data.train_test_split_stratified(1.0, 0).is_err());
    let dev = strata::backend::native();
    let negative = Dataset::new(
        Tensor::zeros([2, 1], strata::DType::F32, &dev).unwrap(),
        Tensor::new(vec![0i64, -1], [2], &dev).unwrap(),
    )
    .unwrap();
    let msg = negative.train_test_split_stratified(0.5, 0).map(|_| ()).unwrap_err().to_string();
    assert!(msg.contains("negative label -1 at index 1"), "{msg}");
}

#[test]
fn to_categorical_is_one_hot_f32() {
    use strata::datasets::to_categorical;
    let dev = strata::backend::native();
    let y = Tensor::new(vec![1i64, 0, 3], [3], &dev).unwrap();
    let one_hot = to_categorical(&y, 4).unwrap();
    assert_eq!(one_hot.dims(), &[3, 4]);
    assert_eq!(one_hot.dtype(), strata::DType::F32);
    #[rustfmt::skip]
    assert_eq!(one_hot.to_vec::<f32>().unwrap(), vec![
        0.0, 1.0, 0.0, 0.0,
        1.0, 0.0, 0.0, 0.0,
        0.0, 0.0, 0.0, 1.0,
    ]);
    let msg = to_categorical(&y, 3).map(|_| ()).unwrap_err().to_string();
    assert!(msg.contains("label 3 at index 2 is outside 0..3"), "{msg}");
    let negative = Tensor::new(vec![-1i64], [1], &dev).unwrap();
    assert!(to_categorical(&negative, 3).is_err());
    assert!(to_categorical(&y, 0).is_err());
    assert!(to_categorical(&one_hot, 4).is_err(), "f32 labels");
    let grid = Tensor::new(vec![0i64, 1, 1, 0], [2, 2], &dev).unwrap();
    assert_eq!(to_categorical(&grid, 2).unwrap().dims(), &[2, 2, 2]);
}

#[test]
fn standardizer_by_hand() {
    use strata::datasets::Standardizer;
    let dev = strata::backend::native();
    // Feature 0: 1, 2, 3, 6 -> mean 3, squared deviations 4 + 1 + 0 + 9 = 14,
    // population std sqrt(14 / 4) = 1.8708287. Feature 1: 10, 10, 10, 10 ->
    // mean 10, std 0 (only centred). Feature 2: -1, 1, -1, 1 -> mean 0, std 1.
    let x =
        Tensor::new(vec![1.0f32, 10.0, -1.0, 2.0, 10.0, 1.0, 3.0, 10.0, -1.0, 6.0, 10.0, 1.0], [4, 3], &dev).unwrap();
    let scaler = Standardizer::fit(&x).unwrap();
    assert_eq!(scaler.mean(), &[3.0, 10.0, 0.0]);
    assert!((scaler.std()[0] - 1.870_828_7).abs() < 1e-6, "{:?}", scaler.std());
    assert_eq!(&scaler.std()[1..], &[0.0, 1.0]);
    let z = scaler.transform(&x).unwrap().to_vec::<f32>().unwrap();
    let s = 14f32.sqrt() / 2.0;
    let want = [-2.0 / s, 0.0, -1.0, -1.0 / s, 0.0, 1.0, 0.0, 0.0, -1.0, 3.0 / s, 0.0, 1.0];
    for (a, b) in z.iter().zip(want) {
        assert!((a - b).abs() < 1e-6 && a.is_finite(), "{z:?}");
    }
    // New data uses the training statistics.
    let test = Tensor::new(vec![4.0f32, 12.0, 2.0], [1, 3], &dev).unwrap();
    let t = scaler.transform(&test).unwrap().to_vec::<f32>().unwrap();
    assert!((t[0] - 1.0 / s).abs() < 1e-6 && t[1] == 2.0 && t[2] == 2.0, "{t:?}");
    let (again, z2) = Standardizer::fit_transform(&x).unwrap();
    assert_eq!((again, z2.to_vec::<f32>().unwrap()), (scaler.clone(), z));

    let msg = scaler.transform(&Tensor::zeros([2, 4], strata::DType::F32, &dev).unwrap()).map(|_| ()).unwrap_err();
    assert!(msg.to_string().contains("fitted on features of shape [3]"), "{msg}");
    assert!(Standardizer::fit(&Tensor::zeros([0, 3], strata::DType::F32, &dev).unwrap()).is_err());
    assert!(Standardizer::fit(&Tensor::zeros([3], strata::DType::F32, &dev).unwrap()).is_err());

    // Standardised digits: every non-constant pixel has mean 0 and std 1.
    let digits = digits::load().unwrap();
    let (_, z) = Standardizer::fit_transform(&digits.x).unwrap();
    let again = Standardizer::fit(&z).unwrap();
    assert!(again.mean().iter().all(|m| m.abs() < 1e-5), "{:?}", again.mean());
    assert!(again.std().iter().all(|s| (s - 1.0).abs() < 1e-4 || *s == 0.0), "{:?}", again.std());
}

/// A minimal HTTP/1.1 server on 127.0.0.1 answering `GET <path>` from
/// `files` (404 otherwise), one request per connection; returns its base URL.
#[cfg(feature = "download")]
fn serve(files: std::collections::HashMap<String, Vec<u8>>) -> String {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut head = Vec::new();
            let mut chunk = [0u8; 1024];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut chunk) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => head.extend_from_slice(&chunk[..n]),
                }
            }
            let head = String::from_utf8_lossy(&head);
            let path = head.split_whitespace().nth(1).unwrap_or("").to_string();
            let (status, body): (&str, &[u8]) = match files.get(&path) {
                Some(body) => ("200 OK", body),
                None => ("404 Not Found", b"not found"),
            };
            let header = format!("HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len());
            let _ = stream.write_all(header.as_bytes()).and_then(|()| stream.write_all(body));
        }
    });
    format!("http://{addr}")
}

#[cfg(feature = "download")]
#[test]
fn downloads_are_verified_and_stored_atomically() {
    use std::io::{Read, Write};
    const FILES: [&str; 4] =
        ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"];
    let Some(source) = shared_data("mnist") else {
        eprintln!("skipping the download checks: no shared/data/mnist here");
        return;
    };
    let mut files = std::collections::HashMap::new();
    for name in FILES {
        let gz = std::fs::read(source.join(format!("{name}.gz"))).unwrap();
        files.insert(format!("/good/{name}.gz"), gz.clone());
        files.insert(format!("/bad/{name}.gz"), gz);
    }
    // The corrupt copy: a valid gzip whose content differs from MNIST's by
    // one label (the first test label, 7, becomes 1).
    let mut label_bytes = Vec::new();
    flate2::read::GzDecoder::new(&files["/good/t10k-labels-idx1-ubyte.gz"][..]).read_to_end(&mut label_bytes).unwrap();
    assert_eq!(label_bytes[8], 7);
    label_bytes[8] = 1;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(&label_bytes).unwrap();
    files.insert("/bad/t10k-labels-idx1-ubyte.gz".into(), enc.finish().unwrap());
    let base = serve(files);

    let root = std::env::temp_dir().join(format!("strata-download-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).unwrap();
    let listing = |dir: &std::path::Path| -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .map(|it| it.map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect())
            .unwrap_or_default();
        names.sort();
        names
    };

    // Success: the four files are stored under their own names, and load.
    let ok = root.join("ok");
    mnist::download_to(&ok, &format!("{base}/good/")).unwrap();
    let mut want: Vec<String> = FILES.iter().map(|f| format!("{f}.gz")).collect();
    want.sort();
    assert_eq!(listing(&ok), want);
    let split = mnist::load_from(&ok).unwrap();
    assert_eq!((split.train.len(), split.test.len()), (60000, 10000));
    assert_eq!(labels(&split.test)[..3], [7, 2, 1]);

    // A checksum mismatch in the last file: an error, and nothing stored,
    // not even the three good files nor the folder the call created.
    let bad = root.join("bad");
    let msg = mnist::download_to(&bad, &format!("{base}/bad")).unwrap_err().to_string();
    assert!(msg.contains("checksum mismatch") && msg.contains("t10k-labels-idx1-ubyte.gz"), "{msg}");
    assert!(msg.contains("ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"), "{msg}");
    assert!(!bad.exists());
    // Into a folder that already exists: the folder stays, empty.
    let existing = root.join("existing");
    std::fs::create_dir_all(&existing).unwrap();
    assert!(mnist::download_to(&existing, &format!("{base}/bad")).is_err());
    assert_eq!(listing(&existing), Vec::<String>::new());

    // Files the server does not have: the HTTP status, nothing stored.
    let missing = root.join("missing");
    let msg = fashion_mnist::download_to(&missing, &format!("{base}/nothing")).unwrap_err().to_string();
    assert!(msg.contains("404") && msg.contains("/nothing/train-images-idx3-ubyte.gz"), "{msg}");
    assert!(!missing.exists());
    std::fs::remove_dir_all(&root).unwrap();
}
