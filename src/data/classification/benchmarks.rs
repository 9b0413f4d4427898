//! The classification benchmarks the seed names, read as their official archives unpack
//! (the layouts torchvision's dataset classes read too): DTD, Caltech-101, Oxford
//! Flowers-102, Oxford-IIIT Pets, Food-101, SUN397, Stanford Cars and Birdsnap here;
//! Fashion-MNIST, CIFAR-100 and SVHN, which ship pixel arrays, in [`super::pixel_archives`].
//!
//! Splits: the official ones where a dataset has them (DTD's `split_id + 1`-th of ten,
//! train + val for training; Flowers' trnid + valid / tstid; Pets' trainval / test; Food-101's
//! train / test; SUN397's `Training_NN` / `Testing_NN` partitions when present; Cars' train /
//! test annotations; Birdsnap's `test_images.txt`). Caltech-101 has none: the usual protocol, the first 30 images of each
//! class (in file-name order) train and the rest test; its `BACKGROUND_Google` folder is not
//! a class. SUN397 without its partition files uses every image for both.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::ClassificationDataset;
use super::locate::{folder_holding, format_err, locate};
use super::pixel_archives;
use crate::error::{Error, Result};
use crate::formats::mat::{MatValue, read_mat};

/// The names `data.sources` / `data.targets` accept for these datasets.
pub const CLASSIFICATION_BENCHMARKS: [&str; 11] = [
    "dtd",
    "caltech101",
    "flowers102",
    "oxford_pets",
    "food101",
    "sun397",
    "stanford_cars",
    "fashion_mnist",
    "cifar100",
    "svhn",
    "birdsnap",
];

fn read_text(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|e| Error::io(path, e))
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
        "birdsnap" => birdsnap(root, train),
        "fashion_mnist" => pixel_archives::fashion_mnist(root, train),
        "cifar100" => pixel_archives::cifar100(root, train),
        "svhn" => pixel_archives::svhn(root, train),
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

/// A tab-separated table with a header line: the header's columns and the rows.
fn tsv(path: &Path) -> Result<(Vec<String>, Vec<Vec<String>>)> {
    let text = read_text(path)?;
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let header = lines
        .next()
        .ok_or_else(|| format_err(path, "empty"))?
        .split('\t')
        .map(|c| c.trim().to_string())
        .collect();
    let rows = lines
        .map(|l| l.split('\t').map(|c| c.trim().to_string()).collect())
        .collect();
    Ok((header, rows))
}

/// Index of column `name` in a table's header.
fn column(path: &Path, header: &[String], name: &str) -> Result<usize> {
    header
        .iter()
        .position(|c| c == name)
        .ok_or_else(|| format_err(path, format!("no `{name}` column")))
}

/// Birdsnap 1.1: `species.txt`, `images.txt` and `test_images.txt` from `birdsnap.tgz`, and
/// the images its `get_birdsnap.py` downloaded into `download/images/<path>` (or, as the
/// `continuum` package lays it out, `images/<path>` next to the `birdsnap` folder). Flickr
/// has lost some of the images: listed images that were not downloaded are left out.
/// Classes are the species' common names in id order; the test split is `test_images.txt`,
/// training every other image.
fn birdsnap(root: &Path, train: bool) -> Result<ClassificationDataset> {
    let base = folder_holding(root, &["birdsnap/images.txt", "images.txt"])?;
    let species_path = base.join("species.txt");
    let (header, rows) = tsv(&species_path)?;
    let (id_col, name_col) = (
        column(&species_path, &header, "id")?,
        column(&species_path, &header, "common")?,
    );
    let mut by_id = BTreeMap::new();
    for row in &rows {
        let id = row.get(id_col).and_then(|v| v.parse::<usize>().ok());
        match (id, row.get(name_col)) {
            (Some(id), Some(name)) if by_id.insert(id, name.clone()).is_none() => {}
            _ => return Err(format_err(&species_path, format!("bad row {row:?}"))),
        }
    }
    if by_id.keys().copied().ne(1..=by_id.len()) {
        return Err(format_err(&species_path, "species ids are not 1 … N"));
    }
    let classes: Vec<String> = by_id.into_values().collect();
    let test_path = base.join("test_images.txt");
    let (_, test_rows) = tsv(&test_path)?;
    let test: std::collections::BTreeSet<String> = test_rows
        .into_iter()
        .filter_map(|r| r.into_iter().next())
        .collect();
    let images_path = base.join("images.txt");
    let (header, rows) = tsv(&images_path)?;
    let (path_col, species_col) = (
        column(&images_path, &header, "path")?,
        column(&images_path, &header, "species_id")?,
    );
    let image_dir = [base.join("download/images"), base.join("images")]
        .into_iter()
        .chain(base.parent().map(|p| p.join("images")))
        .find(|d| d.is_dir())
        .ok_or_else(|| {
            format_err(
                &base,
                "no downloaded images (download/images): run get_birdsnap.py first",
            )
        })?;
    let mut samples = Vec::new();
    for row in &rows {
        let (Some(rel), Some(species)) = (row.get(path_col), row.get(species_col)) else {
            return Err(format_err(&images_path, format!("short row {row:?}")));
        };
        let label = species
            .parse::<usize>()
            .ok()
            .filter(|&s| (1..=classes.len()).contains(&s))
            .ok_or_else(|| format_err(&images_path, format!("species id {species:?}")))?;
        let file = image_dir.join(rel);
        if test.contains(rel) != train && file.is_file() {
            samples.push((file, vec![label - 1]));
        }
    }
    if samples.is_empty() {
        return Err(format_err(
            &image_dir,
            "none of the split's listed images is there",
        ));
    }
    Ok(ClassificationDataset {
        classes,
        samples,
        multilabel: false,
    })
}
