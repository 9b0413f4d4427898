//! A synthetic re-id dataset in the Market-1501 layout, so that training and evaluation run
//! end to end without downloads. Identities (clothing colours and patterns, build, hair,
//! shoes, accessories) are seen by cameras that differ in background, illumination, colour
//! cast, scale, blur and noise; each image also varies in view (front / back, mirrored),
//! stride and placement. Everything follows from the seed: the same options write the same
//! bytes, whatever the thread count.

mod appearance;
mod canvas;
mod objects;
mod video;

pub use objects::{ClassSynthOptions, ClassSynthSummary, synthesize_classes};
pub use video::{VideoSynthOptions, VideoSynthSummary, synthesize_video};

use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::data::rng::Rng;
use crate::error::{Error, Result};
use appearance::{Camera, Person};
use canvas::Canvas;

/// Options of [`synthesize`].
#[derive(Debug, Clone, PartialEq)]
pub struct SynthOptions {
    /// Identities in all (half for training, half for testing; at most 1,501 as in Market).
    pub ids: usize,
    /// Cameras (2–6, Market-1501's file names hold one digit and torchreid checks ≤ 6).
    pub cameras: usize,
    /// Most images of one identity per camera.
    pub max_images_per_camera: usize,
    /// Gallery distractors (pid 0: people who are never queried).
    pub distractors: usize,
    /// Image height and width.
    pub height: usize,
    /// Image width.
    pub width: usize,
    /// Seed of everything.
    pub seed: u64,
}

impl Default for SynthOptions {
    fn default() -> Self {
        Self {
            ids: 200,
            cameras: 6,
            max_images_per_camera: 4,
            distractors: 100,
            height: 128,
            width: 64,
            seed: 0,
        }
    }
}

/// Counts of what [`synthesize`] wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SynthSummary {
    /// Training images.
    pub train: usize,
    /// Query images.
    pub query: usize,
    /// Gallery images (distractors included).
    pub gallery: usize,
}

/// One image to render: who, where, which shot, and the file.
struct Shot {
    pid: i64,
    camera: usize,
    index: usize,
    path: PathBuf,
}

/// Stream keys that keep the draws of people, cameras and shots apart.
const PERSON: u64 = 1;
const CAMERA: u64 = 2;
const SHOT: u64 = 3;
const LAYOUT: u64 = 4;
const DISTRACTOR: u64 = 5;

impl SynthOptions {
    fn check(&self) -> Result<()> {
        let bad = |m: String| Err(Error::InvalidInput(m));
        if !(2..=1501).contains(&self.ids) {
            return bad(format!("ids must be 2 to 1501, not {}", self.ids));
        }
        if !(2..=6).contains(&self.cameras) {
            return bad(format!("cameras must be 2 to 6, not {}", self.cameras));
        }
        if self.max_images_per_camera < 2 {
            return bad("max_images_per_camera must be at least 2".into());
        }
        if self.height < 32 || self.width < 16 {
            return bad(format!(
                "image size {}x{} is too small (at least 32x16)",
                self.height, self.width
            ));
        }
        Ok(())
    }

    /// The shots of every identity, split into train, query and gallery.
    fn plan(&self, out: &Path) -> [Vec<Shot>; 3] {
        let mut splits: [Vec<Shot>; 3] = Default::default();
        let train_ids = self.ids.div_ceil(2);
        let name = |pid: i64, camera: usize, index: usize| {
            format!("{pid:04}_c{}s1_{index:06}_00.jpg", camera + 1)
        };
        for pid in 1..=self.ids as i64 {
            let mut rng = Rng::derive(self.seed, &[LAYOUT, pid as u64]);
            let mut cameras: Vec<usize> = (0..self.cameras).collect();
            rng.shuffle(&mut cameras);
            cameras.truncate(2 + rng.below(self.cameras - 1));
            cameras.sort();
            let test = pid as usize > train_ids;
            for &camera in &cameras {
                // Test identities keep at least one gallery image per camera besides the query.
                let min = if test { 2 } else { 1 };
                let count = min + rng.below(self.max_images_per_camera - min + 1);
                for index in 0..count {
                    let (split, dir) = match (test, index) {
                        (false, _) => (0, "bounding_box_train"),
                        (true, 0) => (1, "query"),
                        (true, _) => (2, "bounding_box_test"),
                    };
                    splits[split].push(Shot {
                        pid,
                        camera,
                        index,
                        path: out.join(dir).join(name(pid, camera, index)),
                    });
                }
            }
        }
        for d in 0..self.distractors {
            let camera = Rng::derive(self.seed, &[DISTRACTOR, d as u64]).below(self.cameras);
            splits[2].push(Shot {
                pid: 0,
                camera,
                index: d,
                path: out.join("bounding_box_test").join(name(0, camera, d)),
            });
        }
        splits
    }

    /// Renders one shot as packed RGB.
    fn render(&self, shot: &Shot, cameras: &[Camera]) -> Vec<u8> {
        let person = if shot.pid == 0 {
            Person::draw(&mut Rng::derive(
                self.seed,
                &[DISTRACTOR, shot.index as u64, 1],
            ))
        } else {
            Person::draw(&mut Rng::derive(self.seed, &[PERSON, shot.pid as u64]))
        };
        let camera = &cameras[shot.camera];
        let mut rng = Rng::derive(
            self.seed,
            &[SHOT, shot.pid as u64, shot.camera as u64, shot.index as u64],
        );
        let (w, h) = (self.width as f32, self.height as f32);
        let mut canvas = Canvas::new(self.width, self.height, [0.0; 3]);
        camera.background(&mut canvas, &mut rng);
        let size = h * camera.scale * rng.range(0.94, 1.06);
        let cx = w * 0.5 + rng.range(-0.07, 0.07) * w;
        let ground = h - (h - size) * rng.range(0.2, 0.6);
        let back = rng.chance(0.5);
        let stride = rng.unit();
        person.render(&mut canvas, cx, ground, size, back, stride);
        if rng.chance(0.5) {
            canvas.mirror();
        }
        canvas.light(camera.gain * rng.range(0.9, 1.1), camera.cast);
        canvas.blur(camera.blur);
        let sigma = camera.noise;
        canvas.noise(|| rng.normal() * sigma);
        canvas.to_rgb8()
    }
}

fn encode_jpeg(rgb: &[u8], width: usize, height: usize) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, 92)
        .encode(
            rgb,
            width as u32,
            height as u32,
            image::ExtendedColorType::Rgb8,
        )
        .map_err(|e| Error::InvalidInput(format!("JPEG encoding failed: {e}")))?;
    Ok(bytes)
}

/// Writes a synthetic dataset in the Market-1501 layout under `out` (`bounding_box_train/`,
/// `query/`, `bounding_box_test/`, and `synth.json` with the options), each file atomically.
/// Point torchreid at it as `root/market1501` by naming `out` so.
pub fn synthesize(out: &Path, options: &SynthOptions) -> Result<SynthSummary> {
    options.check()?;
    if out.join("bounding_box_train").exists() {
        return Err(Error::InvalidInput(format!(
            "{} already holds a dataset; choose an empty folder",
            out.display()
        )));
    }
    for dir in ["bounding_box_train", "query", "bounding_box_test"] {
        let dir = out.join(dir);
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    }
    let cameras: Vec<Camera> = (0..options.cameras)
        .map(|c| Camera::draw(&mut Rng::derive(options.seed, &[CAMERA, c as u64])))
        .collect();
    let splits = options.plan(out);
    for shots in &splits {
        shots.par_iter().try_for_each(|shot| {
            let rgb = options.render(shot, &cameras);
            let jpeg = encode_jpeg(&rgb, options.width, options.height)?;
            crate::formats::npy::write_atomically(&shot.path, &jpeg)
        })?;
    }
    let record = serde_json::json!({
        "generator": "reid synth",
        "version": crate::VERSION,
        "ids": options.ids,
        "cameras": options.cameras,
        "max_images_per_camera": options.max_images_per_camera,
        "distractors": options.distractors,
        "height": options.height,
        "width": options.width,
        "seed": options.seed,
    });
    crate::formats::npy::write_atomically(
        &out.join("synth.json"),
        serde_json::to_string_pretty(&record)
            .expect("JSON of plain values")
            .as_bytes(),
    )?;
    Ok(SynthSummary {
        train: splits[0].len(),
        query: splits[1].len(),
        gallery: splits[2].len(),
    })
}
