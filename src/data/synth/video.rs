//! Synthetic tracklets in DukeMTMC-VideoReID's layout (what `dukemtmcvidreid` reads): the
//! generator's people walking past its cameras, one tracklet per identity and camera, each a
//! run of consecutive frames — the same background, the person moving across it with the legs
//! swinging, the light and noise of each frame drawn anew.

use std::path::Path;

use rayon::prelude::*;

use super::appearance::{Camera, Person};
use super::canvas::Canvas;
use super::{CAMERA, PERSON, encode_jpeg};
use crate::data::rng::Rng;
use crate::error::{Error, Result};

/// Options of [`synthesize_video`].
#[derive(Debug, Clone, PartialEq)]
pub struct VideoSynthOptions {
    /// Identities (half for training, half for testing).
    pub ids: usize,
    /// Cameras (2–8, as DukeMTMC's file names hold one digit).
    pub cameras: usize,
    /// Fewest frames of a tracklet.
    pub min_frames: usize,
    /// Most frames of a tracklet.
    pub max_frames: usize,
    /// Frame height.
    pub height: usize,
    /// Frame width.
    pub width: usize,
    /// Seed of everything.
    pub seed: u64,
}

impl Default for VideoSynthOptions {
    fn default() -> Self {
        Self {
            ids: 40,
            cameras: 4,
            min_frames: 4,
            max_frames: 12,
            height: 128,
            width: 64,
            seed: 0,
        }
    }
}

/// Counts of what [`synthesize_video`] wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VideoSynthSummary {
    /// Training tracklets.
    pub train: usize,
    /// Query tracklets.
    pub query: usize,
    /// Gallery tracklets.
    pub gallery: usize,
    /// Frames in all.
    pub frames: usize,
}

/// Stream keys of the tracklet draws (apart from the image generator's).
const TRACK: u64 = 11;
const FRAME: u64 = 12;
const PLAN: u64 = 13;

/// One tracklet to render: who, which camera, where it goes, how many frames.
struct Track {
    pid: i64,
    camera: usize,
    part: usize,
    frames: usize,
}

impl VideoSynthOptions {
    fn check(&self) -> Result<()> {
        let bad = |m: String| Err(Error::InvalidInput(m));
        if !(2..=9999).contains(&self.ids) {
            return bad(format!("ids must be 2 to 9999, not {}", self.ids));
        }
        if !(2..=8).contains(&self.cameras) {
            return bad(format!("cameras must be 2 to 8, not {}", self.cameras));
        }
        if self.min_frames == 0 || self.min_frames > self.max_frames || self.max_frames > 9999 {
            return bad(format!(
                "frames per tracklet must satisfy 1 ≤ min ({}) ≤ max ({}) ≤ 9999",
                self.min_frames, self.max_frames
            ));
        }
        if self.height < 32 || self.width < 16 {
            return bad(format!(
                "frame size {}x{} is too small (at least 32x16)",
                self.height, self.width
            ));
        }
        Ok(())
    }

    /// Every identity's tracklets: training identities one per camera they pass; a test
    /// identity's first camera gives its query, the others its gallery.
    fn plan(&self) -> Vec<Track> {
        let train_ids = self.ids.div_ceil(2);
        let mut tracks = Vec::new();
        for pid in 1..=self.ids as i64 {
            let mut rng = Rng::derive(self.seed, &[PLAN, pid as u64]);
            let mut cameras: Vec<usize> = (0..self.cameras).collect();
            rng.shuffle(&mut cameras);
            cameras.truncate(2 + rng.below(self.cameras - 1));
            let test = pid as usize > train_ids;
            for (k, &camera) in cameras.iter().enumerate() {
                let part = match (test, k) {
                    (false, _) => 0,
                    (true, 0) => 1,
                    (true, _) => 2,
                };
                let frames = self.min_frames + rng.below(self.max_frames - self.min_frames + 1);
                tracks.push(Track {
                    pid,
                    camera,
                    part,
                    frames,
                });
            }
        }
        tracks
    }

    /// The frames of one tracklet as packed RGB.
    fn render(&self, track: &Track, cameras: &[Camera]) -> Vec<Vec<u8>> {
        let person = Person::draw(&mut Rng::derive(self.seed, &[PERSON, track.pid as u64]));
        let camera = &cameras[track.camera];
        let key = [track.pid as u64, track.camera as u64];
        let mut rng = Rng::derive(self.seed, &[TRACK, key[0], key[1]]);
        let (w, h) = (self.width as f32, self.height as f32);
        let size = h * camera.scale * rng.range(0.94, 1.06);
        let ground = h - (h - size) * rng.range(0.2, 0.6);
        let start = w * 0.5 + rng.range(-0.1, 0.1) * w;
        // Pixels per frame, either way; the legs swing a tenth of a stride per frame.
        let speed = rng.range(0.005, 0.02) * w * if rng.chance(0.5) { 1.0 } else { -1.0 };
        let back = rng.chance(0.5);
        let phase = rng.unit();
        let mirror = rng.chance(0.5);
        let gain = camera.gain * rng.range(0.9, 1.1);
        let background = Rng::derive(self.seed, &[TRACK, key[0], key[1], 1]);
        (0..track.frames)
            .map(|f| {
                let mut canvas = Canvas::new(self.width, self.height, [0.0; 3]);
                camera.background(&mut canvas, &mut background.clone());
                let stride = (phase + 0.1 * f as f32).fract();
                let swing = 1.0 - (2.0 * stride - 1.0).abs();
                person.render(
                    &mut canvas,
                    start + speed * f as f32,
                    ground,
                    size,
                    back,
                    swing,
                );
                if mirror {
                    canvas.mirror();
                }
                let mut frame_rng = Rng::derive(self.seed, &[FRAME, key[0], key[1], f as u64]);
                canvas.light(gain * frame_rng.range(0.97, 1.03), camera.cast);
                canvas.blur(camera.blur);
                let sigma = camera.noise;
                canvas.noise(|| frame_rng.normal() * sigma);
                canvas.to_rgb8()
            })
            .collect()
    }
}

/// Writes synthetic tracklets in DukeMTMC-VideoReID's layout under `root`
/// (`root/dukemtmc-vidreid/DukeMTMC-VideoReID/{train,query,gallery}/PPPP/TTTT/
/// PPPP_Cc_Ffff_Xtttt.jpg`, and `synth.json` with the options), each file atomically; read it
/// as the video dataset `dukemtmcvidreid` with `root`.
pub fn synthesize_video(root: &Path, options: &VideoSynthOptions) -> Result<VideoSynthSummary> {
    options.check()?;
    let dir = root.join("dukemtmc-vidreid");
    let base = dir.join("DukeMTMC-VideoReID");
    if base.exists() {
        return Err(Error::InvalidInput(format!(
            "{} already holds a dataset; choose an empty folder",
            base.display()
        )));
    }
    let cameras: Vec<Camera> = (0..options.cameras)
        .map(|c| Camera::draw(&mut Rng::derive(options.seed, &[CAMERA, c as u64])))
        .collect();
    let tracks = options.plan();
    let parts = ["train", "query", "gallery"];
    tracks.par_iter().enumerate().try_for_each(|(t, track)| {
        let folder = base
            .join(parts[track.part])
            .join(format!("{:04}", track.pid))
            .join(format!("{:04}", t + 1));
        std::fs::create_dir_all(&folder).map_err(|e| Error::io(&folder, e))?;
        for (f, rgb) in options.render(track, &cameras).iter().enumerate() {
            let name = format!(
                "{:04}_C{}_F{:04}_X{:05}.jpg",
                track.pid,
                track.camera + 1,
                f + 1,
                t + 1
            );
            let jpeg = encode_jpeg(rgb, options.width, options.height)?;
            crate::formats::npy::write_atomically(&folder.join(name), &jpeg)?;
        }
        Ok::<_, Error>(())
    })?;
    let record = serde_json::json!({
        "generator": "reid synth --video",
        "version": crate::VERSION,
        "ids": options.ids,
        "cameras": options.cameras,
        "min_frames": options.min_frames,
        "max_frames": options.max_frames,
        "height": options.height,
        "width": options.width,
        "seed": options.seed,
    });
    crate::formats::npy::write_atomically(
        &dir.join("synth.json"),
        serde_json::to_string_pretty(&record)
            .expect("JSON of plain values")
            .as_bytes(),
    )?;
    let count = |part| tracks.iter().filter(|t| t.part == part).count();
    Ok(VideoSynthSummary {
        train: count(0),
        query: count(1),
        gallery: count(2),
        frames: tracks.iter().map(|t| t.frames).sum(),
    })
}
