//! Unpacks CUHK03's release file `cuhk03_release/cuhk-03.mat` (MATLAB 7.3, i.e. HDF5) the way
//! torchreid does on first use: every image of the `detected` and `labeled` cell arrays into
//! `images_detected/` and `images_labeled/` as `C_PPP_V_II.png` (camera pair, person, view,
//! image, from 1), and the 20 classic splits of `testsets` into
//! `splits_classic_{detected,labeled}.json`. Existing images are kept; every file is written
//! atomically, and a new image folder appears only once complete.

use std::path::{Path, PathBuf};

use hdf5_pure::{Dataset, File, Object};

use super::split_file::{Split, sample_splits_json, save_splits};
use crate::data::dataset::Sample;
use crate::error::{Error, Result};

fn hdf5_error(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::InvalidInput(format!("{}: {e}", path.display()))
}

fn datasets(objects: Vec<Object>, path: &Path) -> Result<Vec<Dataset>> {
    objects
        .into_iter()
        .map(|o| match o {
            Object::Dataset(d) => Ok(*d),
            _ => Err(hdf5_error(
                path,
                "a reference points at a group, not an array",
            )),
        })
        .collect()
}

/// How many elements one array of a file of `file_len` bytes can hold at most: HDF5 stores
/// them raw or deflated, and deflate expands at most 1032:1.
fn max_elements(file_len: u64) -> u64 {
    file_len.saturating_mul(1032)
}

/// The number of elements an array of `shape` holds, refused when the product overflows or is
/// more than the file can hold (checked before anything is read or allocated for it).
fn element_count(shape: &[u64], path: &Path, limit: u64) -> Result<usize> {
    shape
        .iter()
        .try_fold(1u64, |n, &d| n.checked_mul(d))
        .filter(|&n| n <= limit)
        .and_then(|n| usize::try_from(n).ok())
        .ok_or_else(|| {
            hdf5_error(
                path,
                format!("an array of shape {shape:?} is more than the file can hold"),
            )
        })
}

/// The arrays a reference dataset points at, in storage order, with its shape.
fn dereference(dataset: &Dataset, path: &Path) -> Result<(Vec<Dataset>, Vec<usize>)> {
    let shape = dataset.shape().map_err(|e| hdf5_error(path, e))?;
    let objects = dataset.dereference().map_err(|e| hdf5_error(path, e))?;
    Ok((
        datasets(objects, path)?,
        shape.iter().map(|&d| d as usize).collect(),
    ))
}

/// An image stored as MATLAB writes it, `[channel, width, height]`, as interleaved RGB rows;
/// `None` for an empty cell (fewer than three dimensions or no values).
fn image(dataset: &Dataset, path: &Path, limit: u64) -> Result<Option<image::RgbImage>> {
    let shape = dataset.shape().map_err(|e| hdf5_error(path, e))?;
    let count = element_count(&shape, path, limit)?;
    if shape.len() < 3 || count == 0 {
        return Ok(None);
    }
    let (channels, width, height) = (shape[0] as usize, shape[1] as usize, shape[2] as usize);
    if channels != 3 {
        return Err(hdf5_error(
            path,
            format!("an image with {channels} channels"),
        ));
    }
    let data = dataset.read_u8().map_err(|e| hdf5_error(path, e))?;
    // A fourth extent or more would hide in `shape` beyond the three read here.
    if data.len() != count || count != 3 * width * height {
        return Err(hdf5_error(path, "an image's data does not fill its shape"));
    }
    let mut rgb = image::RgbImage::new(width as u32, height as u32);
    for (x, y, pixel) in rgb.enumerate_pixels_mut() {
        let at = |c: usize| data[(c * width + x as usize) * height + y as usize];
        *pixel = image::Rgb([at(0), at(1), at(2)]);
    }
    Ok(Some(rgb))
}

fn write_png(rgb: &image::RgbImage, path: &Path) -> Result<()> {
    if path.is_file() {
        return Ok(());
    }
    crate::preprocess::write_png(rgb, path)
}

/// One person of one camera pair and the images written for them, in image order.
struct Person {
    camera_pair: usize,
    person: usize,
    images: Vec<PathBuf>,
}

/// Writes the images of `kind` (`detected` or `labeled`) and lists them per person. A new
/// folder is filled under a temporary name and renamed when complete, so an interrupted run
/// never leaves a folder that looks finished.
fn extract_images(
    file: &File,
    mat: &Path,
    limit: u64,
    kind: &str,
    out: &Path,
) -> Result<Vec<Person>> {
    let target = if out.is_dir() {
        out.to_path_buf()
    } else {
        out.with_extension("partial")
    };
    std::fs::create_dir_all(&target).map_err(|e| Error::io(&target, e))?;
    let top = file.dataset(kind).map_err(|e| hdf5_error(mat, e))?;
    let (pairs, _) = dereference(&top, mat)?;
    let mut people = Vec::new();
    for (pair, cells) in pairs.iter().enumerate() {
        // Stored [image slot, person]: MATLAB's person × slot array, transposed.
        let (slots, shape) = dereference(cells, mat)?;
        let persons = shape.get(1).copied().unwrap_or(0);
        let slot_count = shape.first().copied().unwrap_or(0);
        if shape.len() != 2 || slot_count.checked_mul(persons) != Some(slots.len()) {
            return Err(hdf5_error(
                mat,
                format!("{} image references for a {shape:?} array", slots.len()),
            ));
        }
        for person in 0..persons {
            let mut images = Vec::new();
            for slot in 0..slot_count {
                let Some(rgb) = image(&slots[slot * persons + person], mat, limit)? else {
                    continue;
                };
                let view = if slot < 5 { 1 } else { 2 };
                let name = format!("{}_{:03}_{view}_{:02}.png", pair + 1, person + 1, slot + 1);
                write_png(&rgb, &target.join(&name))?;
                images.push(out.join(name));
            }
            if images.is_empty() {
                return Err(hdf5_error(
                    mat,
                    format!(
                        "camera pair {} person {} has no images",
                        pair + 1,
                        person + 1
                    ),
                ));
            }
            people.push(Person {
                camera_pair: pair + 1,
                person: person + 1,
                images,
            });
        }
    }
    if target != out {
        std::fs::rename(&target, out).map_err(|e| Error::io(out, e))?;
    }
    Ok(people)
}

/// The `(camera pair, person)` test identities of each classic split (`testsets`).
fn classic_test_sets(file: &File, mat: &Path, limit: u64) -> Result<Vec<Vec<(usize, usize)>>> {
    let top = file.dataset("testsets").map_err(|e| hdf5_error(mat, e))?;
    let (sets, _) = dereference(&top, mat)?;
    sets.iter()
        .map(|set| {
            // Stored [2, k]: row 0 the camera pairs, row 1 the persons.
            element_count(&set.shape().map_err(|e| hdf5_error(mat, e))?, mat, limit)?;
            let values = set.read_f64().map_err(|e| hdf5_error(mat, e))?;
            let k = values.len() / 2;
            Ok((0..k)
                .map(|j| (values[j] as usize, values[k + j] as usize))
                .collect())
        })
        .collect()
}

fn view_of(path: &Path) -> i32 {
    path.file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.split('_').nth(2))
        .and_then(|v| v.parse::<i32>().ok())
        .map_or(0, |v| v - 1)
}

/// torchreid's classic split: test identities numbered in order, the rest train.
fn classic_split(people: &[Person], test: &[(usize, usize)]) -> Split {
    let (mut train, mut tests) = (Vec::new(), Vec::new());
    for p in people {
        let (list, label) = if test.contains(&(p.camera_pair, p.person)) {
            let label = tests.last().map_or(0, |s: &Sample| s.pid + 1);
            (&mut tests, label)
        } else {
            let label = train.last().map_or(0, |s: &Sample| s.pid + 1);
            (&mut train, label)
        };
        list.extend(p.images.iter().map(|path| Sample {
            path: path.clone(),
            pid: label,
            camera: view_of(path),
            dataset: 0,
        }));
    }
    Split {
        train,
        query: tests.clone(),
        gallery: tests,
    }
}

/// Unpacks `dir/cuhk03_release/cuhk-03.mat` into `dir` (see the module documentation).
pub fn extract(dir: &Path) -> Result<()> {
    let mat = dir.join("cuhk03_release/cuhk-03.mat");
    let file = File::open(&mat).map_err(|e| hdf5_error(&mat, e))?;
    let file_len = std::fs::metadata(&mat)
        .map_err(|e| Error::io(&mat, e))?
        .len();
    let limit = max_elements(file_len);
    let test_sets = classic_test_sets(&file, &mat, limit)?;
    for kind in ["detected", "labeled"] {
        let images = dir.join(format!("images_{kind}"));
        let people = extract_images(&file, &mat, limit, kind, &images)?;
        let splits: Vec<Split> = test_sets
            .iter()
            .map(|t| classic_split(&people, t))
            .collect();
        save_splits(
            &dir.join(format!("splits_classic_{kind}.json")),
            &sample_splits_json(&splits),
        );
    }
    Ok(())
}
