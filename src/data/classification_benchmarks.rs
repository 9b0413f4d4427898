//! The classification benchmarks the seed names, read as their official archives unpack
//! (the layouts torchvision's dataset classes read too): DTD, Caltech-101, Oxford
//! Flowers-102, Oxford-IIIT Pets, Food-101, SUN397, Stanford Cars and Fashion-MNIST.
//! Fashion-MNIST ships pixel arrays: on first use they are written out as PNG ImageFolders
//! next to the archive files (the folder appears only when complete).
//!
//! Splits: the official ones where a dataset has them (DTD's `split_id + 1`-th of ten,
//! train + val for training; Flowers' trnid + valid / tstid; Pets' trainval / test; Food-101's
//! train / test; SUN397's `Training_NN` / `Testing_NN` partitions when present; Cars' train /
//! test annotations). Caltech-101 has none: the usual protocol, the first 30 images of each
//! class (in file-name order) train and the rest test; its `BACKGROUND_Google` folder is not
//! a class. SUN397 without its partition files uses every image for both.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use super::classification::ClassificationDataset;
use super::mat::{MatValue, read_mat};
use crate::error::{Error, Result};

/// The names `data.sources` / `data.targets` accept for these datasets.
pub const CLASSIFICATION_BENCHMARKS: [&str; 8] = [
    "dtd",
    "caltech101",
    "flowers102",
    "oxford_pets",
    "food101",
    "sun397",
    "stanford_cars",
    "fashion_mnist",
];

fn format_err(path: &Path, reason: impl std::fmt::Display) -> Error {
    Error::InvalidInput(format!("{}: {reason}", path.display()))
}

fn read_text(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|e| Error::io(path, e))
}

/// The first of `candidates` (relative to `root`) that exists.
fn locate(root: &Path, candidates: &[&str]) -> Result<PathBuf> {
    candidates
        .iter()
        .map(|c| root.join(c))
        .find(|p| p.exists())
        .ok_or_else(|| {
            Error::InvalidInput(format!(
                "none of {} exists under {}",
                candidates.join(", "),
                root.display()
            ))
        })
}

/// Builds a dataset from `(path, class name)` pairs, classes numbered in `classes` order.
fn from_named(
    classes: Vec<String>,
    items: Vec<(PathBuf, String)>,
) -> Result<ClassificationDataset> {
    let index: BTreeMap<&str, usize> = classes
        .iter()
        .enumerate()
        .map(|(i, c)| (c.as_str(), i))
        .collect();
    let samples = items
        .into_iter()
        .map(|(path, class)| match index.get(class.as_str()) {
            Some(&i) => Ok((path, vec![i])),
            None => Err(Error::InvalidInput(format!(
                "{}: class {class} is not among the dataset's classes",
                path.display()
            ))),
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(ClassificationDataset {
        classes,
        samples,
        multilabel: false,
    })
}

/// Reads benchmark `name` under `root`; `None` when `name` is not one of
/// [`CLASSIFICATION_BENCHMARKS`].
pub fn load_benchmark(
    name: &str,
    root: &Path,
    train: bool,
    split_id: usize,
) -> Option<Result<ClassificationDataset>> {
    Some(match name {
        "dtd" => dtd(root, train, split_id),
        "caltech101" => caltech101(root, train),
        "flowers102" => flowers102(root, train),
        "oxford_pets" => oxford_pets(root, train),
        "food101" => food101(root, train),
        "sun397" => sun397(root, train, split_id),
        "stanford_cars" => stanford_cars(root, train),
        "fashion_mnist" => fashion_mnist(root, train),
        _ => return None,
    })
}

fn dtd(root: &Path, train: bool, split_id: usize) -> Result<ClassificationDataset> {
    let base = locate(root, &["dtd/dtd", "dtd"])?;
    let splits: &[&str] = if train { &["train", "val"] } else { &["test"] };
    let mut items = Vec::new();
    for split in splits {
        let file = base.join(format!("labels/{split}{}.txt", split_id + 1));
        for line in read_text(&file)?
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
        {
            let class = line
                .split('/')
                .next()
                .filter(|_| line.contains('/'))
                .ok_or_else(|| format_err(&file, format!("line `{line}` is not CLASS/FILE")))?;
            items.push((base.join("images").join(line), class.to_string()));
        }
    }
    let mut classes: Vec<String> = items.iter().map(|(_, c)| c.clone()).collect();
    classes.sort();
    classes.dedup();
    from_named(classes, items)
}

fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    Ok(entries)
}

fn caltech101(root: &Path, train: bool) -> Result<ClassificationDataset> {
    let base = locate(
        root,
        &["caltech101/101_ObjectCategories", "101_ObjectCategories"],
    )?;
    let mut classes = Vec::new();
    let mut items = Vec::new();
    for dir in sorted_entries(&base)?.into_iter().filter(|p| p.is_dir()) {
        let class = dir
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .to_string();
        if class == "BACKGROUND_Google" {
            continue;
        }
        let images: Vec<PathBuf> = sorted_entries(&dir)?
            .into_iter()
            .filter(|p| p.extension().is_some_and(|e| e.eq_ignore_ascii_case("jpg")))
            .collect();
        let chosen: Vec<PathBuf> = if train {
            images.into_iter().take(30).collect()
        } else {
            images.into_iter().skip(30).collect()
        };
        items.extend(chosen.into_iter().map(|p| (p, class.clone())));
        classes.push(class);
    }
    from_named(classes, items)
}

fn mat_numbers(path: &Path, variable: &str) -> Result<Vec<usize>> {
    let vars = read_mat(path)?;
    let values = vars
        .get(variable)
        .and_then(MatValue::numbers)
        .ok_or_else(|| format_err(path, format!("no numeric `{variable}`")))?;
    values
        .iter()
        .map(|&v| {
            (v >= 1.0 && v.fract() == 0.0)
                .then_some(v as usize)
                .ok_or_else(|| format_err(path, format!("`{variable}` holds {v}")))
        })
        .collect()
}

fn flowers102(root: &Path, train: bool) -> Result<ClassificationDataset> {
    let base = locate(root, &["flowers-102", "flowers102"])?;
    let labels = mat_numbers(&base.join("imagelabels.mat"), "labels")?;
    let setid = base.join("setid.mat");
    let ids: Vec<usize> = if train {
        let mut ids = mat_numbers(&setid, "trnid")?;
        ids.extend(mat_numbers(&setid, "valid")?);
        ids
    } else {
        mat_numbers(&setid, "tstid")?
    };
    let classes: Vec<String> = (1..=102).map(|c| c.to_string()).collect();
    let items = ids
        .into_iter()
        .map(|id| {
            let label = labels
                .get(id - 1)
                .ok_or_else(|| format_err(&setid, format!("image {id} has no label")))?;
            let path = base.join(format!("jpg/image_{id:05}.jpg"));
            Ok((path, label.to_string()))
        })
        .collect::<Result<Vec<_>>>()?;
    from_named(classes, items)
}

fn oxford_pets(root: &Path, train: bool) -> Result<ClassificationDataset> {
    let base = locate(root, &["oxford-iiit-pet", "oxford_pets"])?;
    let file = base.join(if train {
        "annotations/trainval.txt"
    } else {
        "annotations/test.txt"
    });
    // Lines: `Image_Name CLASS-ID SPECIES BREED-ID`; the breed is the name without its number.
    let mut by_id: BTreeMap<usize, String> = BTreeMap::new();
    let mut items = Vec::new();
    for line in read_text(&file)?
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
    {
        let parts: Vec<&str> = line.split_whitespace().collect();
        let (Some(image), Some(id)) = (parts.first(), parts.get(1).and_then(|v| v.parse().ok()))
        else {
            return Err(format_err(&file, format!("line `{line}`")));
        };
        let breed = image.rsplit_once('_').map_or(*image, |(b, _)| b);
        let class = breed
            .split('_')
            .map(|w| {
                let mut c = w.chars();
                c.next()
                    .map(|f| {
                        f.to_uppercase()
                            .chain(c.flat_map(char::to_lowercase))
                            .collect()
                    })
                    .unwrap_or_default()
            })
            .collect::<Vec<String>>()
            .join(" ");
        by_id.insert(id, class.clone());
        items.push((base.join(format!("images/{image}.jpg")), class));
    }
    from_named(by_id.into_values().collect(), items)
}

fn food101(root: &Path, train: bool) -> Result<ClassificationDataset> {
    let base = locate(root, &["food-101", "food101"])?;
    let classes: Vec<String> = read_text(&base.join("meta/classes.txt"))?
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect();
    let file = base.join(if train {
        "meta/train.txt"
    } else {
        "meta/test.txt"
    });
    let items = read_text(&file)?
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|line| {
            let class = line
                .split_once('/')
                .map(|(c, _)| c.to_string())
                .ok_or_else(|| format_err(&file, format!("line `{line}` is not CLASS/ID")))?;
            Ok((base.join(format!("images/{line}.jpg")), class))
        })
        .collect::<Result<Vec<_>>>()?;
    from_named(classes, items)
}

fn sun397(root: &Path, train: bool, split_id: usize) -> Result<ClassificationDataset> {
    let base = locate(root, &["SUN397", "sun397"])?;
    // `ClassName.txt` lines are `/a/abbey`, `/b/bakery/shop`: the class is what follows the
    // letter folder.
    let names: Vec<String> = read_text(&base.join("ClassName.txt"))?
        .lines()
        .map(str::trim)
        .filter(|l| l.len() > 3)
        .map(|l| l[3..].to_string())
        .collect();
    let partition = ["Partitions", "../Partitions"]
        .iter()
        .map(|p| {
            base.join(p).join(format!(
                "{}_{:02}.txt",
                if train { "Training" } else { "Testing" },
                split_id + 1
            ))
        })
        .find(|p| p.is_file());
    let relative: Vec<String> = match partition {
        Some(file) => read_text(&file)?
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(|l| l.trim_start_matches('/').to_string())
            .collect(),
        None => {
            let mut all = Vec::new();
            collect_sun_images(&base, &base, &mut all)?;
            all.sort();
            all
        }
    };
    let items = relative
        .into_iter()
        .map(|rel| {
            let parts: Vec<&str> = rel.split('/').collect();
            let class = parts[1..parts.len().saturating_sub(1)].join("/");
            (base.join(&rel), class)
        })
        .collect();
    from_named(names, items)
}

fn collect_sun_images(base: &Path, dir: &Path, out: &mut Vec<String>) -> Result<()> {
    for entry in sorted_entries(dir)? {
        if entry.is_dir() {
            collect_sun_images(base, &entry, out)?;
        } else if entry
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with("sun_") && n.ends_with(".jpg"))
        {
            let rel = entry.strip_prefix(base).unwrap_or(&entry);
            out.push(rel.to_string_lossy().replace('\\', "/"));
        }
    }
    Ok(())
}

fn field<'a>(value: &'a MatValue, element: &'a [MatValue], name: &str) -> Option<&'a MatValue> {
    match value {
        MatValue::Struct { fields, .. } => fields
            .iter()
            .position(|f| f == name)
            .and_then(|i| element.get(i)),
        _ => None,
    }
}

fn stanford_cars(root: &Path, train: bool) -> Result<ClassificationDataset> {
    let base = locate(root, &["stanford_cars", "cars"])?;
    let meta = base.join("devkit/cars_meta.mat");
    let vars = read_mat(&meta)?;
    let classes: Vec<String> = vars
        .get("class_names")
        .and_then(MatValue::cells)
        .ok_or_else(|| format_err(&meta, "no class_names cell array"))?
        .iter()
        .map(|c| c.text().unwrap_or_default().to_string())
        .collect();
    let (annos, folder) = if train {
        (base.join("devkit/cars_train_annos.mat"), "cars_train")
    } else {
        (base.join("cars_test_annos_withlabels.mat"), "cars_test")
    };
    let vars = read_mat(&annos)?;
    let table = vars
        .get("annotations")
        .ok_or_else(|| format_err(&annos, "no annotations"))?;
    let MatValue::Struct {
        items: elements, ..
    } = table
    else {
        return Err(format_err(&annos, "annotations is not a struct array"));
    };
    let items = elements
        .iter()
        .map(|element| {
            let fname = field(table, element, "fname").and_then(MatValue::text);
            let class = field(table, element, "class")
                .and_then(MatValue::numbers)
                .and_then(|v| v.first().copied());
            match (fname, class) {
                (Some(f), Some(c)) if c >= 1.0 && (c as usize) <= classes.len() => {
                    Ok((base.join(folder).join(f), classes[c as usize - 1].clone()))
                }
                _ => Err(format_err(
                    &annos,
                    "an annotation lacks fname or a valid class",
                )),
            }
        })
        .collect::<Result<Vec<_>>>()?;
    from_named(classes, items)
}

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
    let raw = std::fs::read(path).map_err(|e| Error::io(path, e))?;
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

fn fashion_mnist(root: &Path, train: bool) -> Result<ClassificationDataset> {
    let base = locate(
        root,
        &["FashionMNIST/raw", "fashion_mnist", "fashion-mnist"],
    )?;
    let split = if train { "train" } else { "test" };
    let folder = base.join(format!("images/{split}"));
    if !folder.is_dir() {
        unpack_fashion(&base, split, &folder)?;
    }
    Ok(super::folders::image_folder(&folder)?.into())
}

/// Writes the `split` arrays as PNGs in class folders under `folder`, built in a temporary
/// folder and renamed into place when complete.
fn unpack_fashion(base: &Path, split: &str, folder: &Path) -> Result<()> {
    let prefix = if split == "train" { "train" } else { "t10k" };
    let file = |kind: &str| {
        let plain = base.join(format!("{prefix}-{kind}-ubyte"));
        if plain.is_file() {
            plain
        } else {
            base.join(format!("{prefix}-{kind}-ubyte.gz"))
        }
    };
    let (image_dims, pixels) = read_idx(&file("images-idx3"))?;
    let (label_dims, labels) = read_idx(&file("labels-idx1"))?;
    let [n, h, w] = image_dims[..] else {
        return Err(format_err(&file("images-idx3"), "images are not N×H×W"));
    };
    if label_dims != [n] || labels.iter().any(|&l| l as usize >= FASHION_CLASSES.len()) {
        return Err(format_err(
            &file("labels-idx1"),
            "labels do not match the images",
        ));
    }
    let partial = folder.with_extension(format!("partial-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&partial);
    let written = (|| -> Result<()> {
        for (c, name) in FASHION_CLASSES.iter().enumerate() {
            let dir = partial.join(format!("{c}_{}", name.replace('/', "-").replace(' ', "_")));
            std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        }
        for (i, (&label, image)) in labels.iter().zip(pixels.chunks_exact(h * w)).enumerate() {
            let name = FASHION_CLASSES[label as usize];
            let dir = partial.join(format!(
                "{label}_{}",
                name.replace('/', "-").replace(' ', "_")
            ));
            let rgb: Vec<u8> = image.iter().flat_map(|&v| [v, v, v]).collect();
            let img = image::RgbImage::from_raw(w as u32, h as u32, rgb)
                .ok_or_else(|| format_err(folder, "image size"))?;
            crate::preprocess::write_png(&img, &dir.join(format!("{i:05}.png")))?;
        }
        std::fs::rename(&partial, folder).map_err(|e| Error::io(folder, e))
    })();
    if written.is_err() {
        let _ = std::fs::remove_dir_all(&partial);
    }
    written
}
