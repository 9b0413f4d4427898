//! Classification benchmarks shipped as pixel arrays rather than image files: Fashion-MNIST
//! (IDX files), CIFAR-100 (the "python version" pickles or the "binary version") and SVHN's
//! cropped digits (MATLAB files). On first use a split is written out as PNG files, one
//! folder per class, under `reid-images/<split>` next to the archive files; the folder appears
//! only when complete, so an interrupted unpacking leaves nothing half-written.
//!
//! Labels and pixels follow torchvision's readers: CIFAR rows are 1024 red, 1024 green, 1024
//! blue values of a row-major 32×32 image; SVHN's `X` is 32×32×3×N in MATLAB's column-major
//! order and its label 10 means the digit 0.

use std::io::Read;
use std::path::{Path, PathBuf};

use super::ClassificationDataset;
use super::locate::{folder_holding, format_err};
use crate::error::{Error, Result};
use crate::formats::mat::{MatValue, read_mat};
use crate::formats::pickle::{PyValue, unpickle};

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| Error::io(path, e))
}

/// The folder of class `index` (named so that a directory listing sorts in label order).
fn class_dir(index: usize, name: &str) -> String {
    let safe: String = name
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{index:03}_{safe}")
}

/// One split of an array dataset: class names and a way to produce its labelled images.
struct Arrays {
    classes: Vec<String>,
    labels: Vec<usize>,
    /// Image `i` as RGB bytes of `width` × `height`.
    pixels: Box<dyn Fn(usize) -> Vec<u8>>,
    width: u32,
    height: u32,
}

/// The unpacked split in `folder` as a dataset, unpacking `arrays()` first if needed.
fn unpacked(
    folder: &Path,
    arrays: impl FnOnce() -> Result<Arrays>,
) -> Result<ClassificationDataset> {
    let classes_file = folder.join("classes.txt");
    if !classes_file.is_file() {
        write_split(folder, arrays()?)?;
    }
    let text = std::fs::read_to_string(&classes_file).map_err(|e| Error::io(&classes_file, e))?;
    let classes: Vec<String> = text.lines().map(str::to_string).collect();
    let mut samples = Vec::new();
    for (i, name) in classes.iter().enumerate() {
        let dir = folder.join(class_dir(i, name));
        let files = crate::data::files::image_files(&dir)?;
        samples.extend(files.into_iter().map(|p| (p, vec![i])));
    }
    if samples.is_empty() {
        return Err(format_err(folder, "no images"));
    }
    Ok(ClassificationDataset {
        classes,
        samples,
        multilabel: false,
    })
}

/// Writes every image of `arrays` as `folder/<class dir>/<index>.png` plus `classes.txt`,
/// built in a temporary folder renamed into place when complete.
fn write_split(folder: &Path, arrays: Arrays) -> Result<()> {
    let partial = folder.with_extension(format!("partial-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&partial);
    let written = (|| -> Result<()> {
        let dirs: Vec<PathBuf> = arrays
            .classes
            .iter()
            .enumerate()
            .map(|(i, name)| partial.join(class_dir(i, name)))
            .collect();
        for dir in &dirs {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        }
        let digits = arrays.labels.len().max(2).ilog10() as usize + 1;
        for (i, &label) in arrays.labels.iter().enumerate() {
            let img = image::RgbImage::from_raw(arrays.width, arrays.height, (arrays.pixels)(i))
                .ok_or_else(|| format_err(folder, "image size"))?;
            let file = dirs[label].join(format!("{i:0digits$}.png"));
            crate::preprocess::write_png(&img, &file)?;
        }
        let names = arrays.classes.join("\n") + "\n";
        crate::formats::npy::write_atomically(&partial.join("classes.txt"), names.as_bytes())?;
        if let Some(parent) = folder.parent() {
            std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
        }
        match std::fs::rename(&partial, folder) {
            // Another process unpacked the same split meanwhile: its copy serves.
            Err(_) if folder.join("classes.txt").is_file() => Ok(()),
            other => other.map_err(|e| Error::io(folder, e)),
        }
    })();
    let _ = std::fs::remove_dir_all(&partial);
    written
}

/// Checks that every label names one of `classes`.
fn check_labels(path: &Path, labels: &[usize], classes: usize) -> Result<()> {
    match labels.iter().find(|&&l| l >= classes) {
        Some(l) => Err(format_err(path, format!("label {l} of {classes} classes"))),
        None => Ok(()),
    }
}

fn split_name(train: bool) -> &'static str {
    if train { "train" } else { "test" }
}

// ---------------------------------------------------------------- Fashion-MNIST

/// Fashion-MNIST's class names, in label order.
const FASHION_CLASSES: [&str; 10] = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
];

/// Reads an IDX file (`.gz` or not): its dimensions and bytes.
fn read_idx(path: &Path) -> Result<(Vec<usize>, Vec<u8>)> {
    let raw = read(path)?;
    let bytes = if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .map_err(|e| format_err(path, e))?;
        out
    } else {
        raw
    };
    if bytes.len() < 4 || bytes[0] != 0 || bytes[1] != 0 || bytes[2] != 0x08 {
        return Err(format_err(path, "not an unsigned-byte IDX file"));
    }
    let rank = bytes[3] as usize;
    let header = 4 + 4 * rank;
    if bytes.len() < header {
        return Err(format_err(path, "truncated header"));
    }
    let dims: Vec<usize> = (0..rank)
        .map(|i| u32::from_be_bytes(bytes[4 + 4 * i..8 + 4 * i].try_into().unwrap()) as usize)
        .collect();
    let count: usize = dims.iter().product();
    if bytes.len() != header + count {
        return Err(format_err(
            path,
            format!("{} bytes for dimensions {dims:?}", bytes.len()),
        ));
    }
    Ok((dims, bytes[header..].to_vec()))
}

/// Fashion-MNIST from torchvision's `FashionMNIST/raw` (or a `fashion_mnist` folder) of IDX
/// files, plain or gzipped.
pub fn fashion_mnist(root: &Path, train: bool) -> Result<ClassificationDataset> {
    let prefix = if train { "train" } else { "t10k" };
    let base = ["FashionMNIST/raw", "fashion_mnist", "fashion-mnist"]
        .iter()
        .map(|c| root.join(c))
        .find(|p| p.is_dir())
        .ok_or_else(|| format_err(root, "no FashionMNIST/raw, fashion_mnist or fashion-mnist"))?;
    let file = |kind: &str| {
        let plain = base.join(format!("{prefix}-{kind}-ubyte"));
        if plain.is_file() {
            plain
        } else {
            base.join(format!("{prefix}-{kind}-ubyte.gz"))
        }
    };
    unpacked(&base.join("reid-images").join(split_name(train)), || {
        let (image_dims, pixels) = read_idx(&file("images-idx3"))?;
        let (label_dims, labels) = read_idx(&file("labels-idx1"))?;
        let [n, h, w] = image_dims[..] else {
            return Err(format_err(&file("images-idx3"), "images are not N×H×W"));
        };
        if label_dims != [n] {
            return Err(format_err(&file("labels-idx1"), "not one label per image"));
        }
        let labels: Vec<usize> = labels.into_iter().map(usize::from).collect();
        check_labels(&file("labels-idx1"), &labels, FASHION_CLASSES.len())?;
        Ok(Arrays {
            classes: FASHION_CLASSES.iter().map(|c| c.to_string()).collect(),
            labels,
            pixels: Box::new(move |i| {
                pixels[i * h * w..(i + 1) * h * w]
                    .iter()
                    .flat_map(|&v| [v, v, v])
                    .collect()
            }),
            width: w as u32,
            height: h as u32,
        })
    })
}

// ---------------------------------------------------------------- CIFAR-100

const CIFAR_SIDE: usize = 32;
const CIFAR_IMAGE: usize = CIFAR_SIDE * CIFAR_SIDE * 3;

/// A CIFAR row (R plane, G plane, B plane) as interleaved RGB.
fn cifar_rgb(row: &[u8]) -> Vec<u8> {
    let plane = CIFAR_SIDE * CIFAR_SIDE;
    (0..plane)
        .flat_map(|p| [row[p], row[plane + p], row[2 * plane + p]])
        .collect()
}

fn unpickle_file(path: &Path) -> Result<PyValue> {
    unpickle(&read(path)?).map_err(|reason| format_err(path, reason))
}

fn text_list(path: &Path, value: Option<&PyValue>, what: &str) -> Result<Vec<String>> {
    value
        .and_then(PyValue::items)
        .and_then(|items| items.iter().map(PyValue::text).collect())
        .ok_or_else(|| format_err(path, format!("no list of strings `{what}`")))
}

/// CIFAR-100 from `cifar-100-python/{train,test,meta}` (the archive torchvision reads) or
/// `cifar-100-binary/{train,test}.bin` + `fine_label_names.txt`; the 100 fine labels.
pub fn cifar100(root: &Path, train: bool) -> Result<ClassificationDataset> {
    let split = split_name(train);
    if let Ok(base) = folder_holding(root, &["cifar-100-python/meta", "meta"]) {
        return unpacked(&base.join("reid-images").join(split), || {
            cifar_python(&base, split)
        });
    }
    let base = folder_holding(
        root,
        &[
            "cifar-100-binary/fine_label_names.txt",
            "cifar-100-python/fine_label_names.txt",
            "fine_label_names.txt",
        ],
    )
    .map_err(|_| {
        format_err(
            root,
            "neither cifar-100-python/meta nor cifar-100-binary/fine_label_names.txt",
        )
    })?;
    unpacked(&base.join("reid-images").join(split), || {
        cifar_binary(&base, split)
    })
}

fn cifar_python(base: &Path, split: &str) -> Result<Arrays> {
    let meta_path = base.join("meta");
    let meta = unpickle_file(&meta_path)?;
    let classes = text_list(&meta_path, meta.get("fine_label_names"), "fine_label_names")?;
    let path = base.join(split);
    let mut batch = unpickle_file(&path)?;
    let labels: Vec<usize> = batch
        .get("fine_labels")
        .and_then(PyValue::items)
        .and_then(|items| {
            items
                .iter()
                .map(|v| v.int().and_then(|i| usize::try_from(i).ok()))
                .collect()
        })
        .ok_or_else(|| format_err(&path, "no list of integers `fine_labels`"))?;
    check_labels(&path, &labels, classes.len())?;
    // Taken out, not copied: the training array is 150 MB.
    let data = match batch.remove("data") {
        Some(PyValue::Array(a))
            if a.dtype.ends_with("u1")
                && !a.fortran_order
                && a.shape == [labels.len(), CIFAR_IMAGE]
                && a.data.len() == labels.len() * CIFAR_IMAGE =>
        {
            a.data
        }
        _ => {
            return Err(format_err(
                &path,
                format!(
                    "`data` is not a uint8 array of {} × {CIFAR_IMAGE}",
                    labels.len()
                ),
            ));
        }
    };
    Ok(Arrays {
        classes,
        labels,
        pixels: Box::new(move |i| cifar_rgb(&data[i * CIFAR_IMAGE..(i + 1) * CIFAR_IMAGE])),
        width: CIFAR_SIDE as u32,
        height: CIFAR_SIDE as u32,
    })
}

fn cifar_binary(base: &Path, split: &str) -> Result<Arrays> {
    let names_path = base.join("fine_label_names.txt");
    let text = std::fs::read_to_string(&names_path).map_err(|e| Error::io(&names_path, e))?;
    let classes: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect();
    let path = base.join(format!("{split}.bin"));
    let bytes = read(&path)?;
    // Each record: coarse label, fine label, 3072 pixel bytes.
    let record = 2 + CIFAR_IMAGE;
    if bytes.is_empty() || bytes.len() % record != 0 {
        return Err(format_err(
            &path,
            format!("{} bytes is not a whole number of records", bytes.len()),
        ));
    }
    let labels: Vec<usize> = bytes.chunks(record).map(|r| r[1] as usize).collect();
    check_labels(&path, &labels, classes.len())?;
    Ok(Arrays {
        classes,
        labels,
        pixels: Box::new(move |i| cifar_rgb(&bytes[i * record + 2..(i + 1) * record])),
        width: CIFAR_SIDE as u32,
        height: CIFAR_SIDE as u32,
    })
}

// ---------------------------------------------------------------- SVHN

/// SVHN's cropped digits from `{train,test}_32x32.mat` (torchvision's layout: the files in
/// the root, or under `svhn` / `SVHN`). Classes are the digits "0" … "9".
pub fn svhn(root: &Path, train: bool) -> Result<ClassificationDataset> {
    let split = split_name(train);
    let file = format!("{split}_32x32.mat");
    let candidates = [file.clone(), format!("svhn/{file}"), format!("SVHN/{file}")];
    let base = folder_holding(root, &candidates.each_ref().map(String::as_str))?;
    unpacked(&base.join("reid-images").join(split), || {
        let path = base.join(&file);
        let mut vars = read_mat(&path)?;
        let Some(MatValue::Bytes { dims, data }) = vars.remove("X") else {
            return Err(format_err(&path, "no uint8 array `X`"));
        };
        let [h, w, 3, n] = dims[..] else {
            return Err(format_err(&path, format!("`X` is {dims:?}, not H×W×3×N")));
        };
        let labels: Vec<usize> = vars
            .get("y")
            .and_then(MatValue::numbers)
            .filter(|y| y.len() == n)
            .ok_or_else(|| format_err(&path, "no label `y` per image"))?
            .iter()
            .map(|&y| match y {
                10.0 => Ok(0),
                y if y.fract() == 0.0 && (0.0..10.0).contains(&y) => Ok(y as usize),
                y => Err(format_err(&path, format!("label {y} is not a digit"))),
            })
            .collect::<Result<_>>()?;
        Ok(Arrays {
            classes: (0..10).map(|d| d.to_string()).collect(),
            labels,
            // Column-major: element (row, col, channel, image).
            pixels: Box::new(move |i| {
                let mut rgb = Vec::with_capacity(h * w * 3);
                for row in 0..h {
                    for col in 0..w {
                        for ch in 0..3 {
                            rgb.push(data[row + h * (col + w * (ch + 3 * i))]);
                        }
                    }
                }
                rgb
            }),
            width: w as u32,
            height: h as u32,
        })
    })
}
