//! Datasets: `synth`, `synth-classes`, `dataset`.

use std::path::PathBuf;

/// Arguments of `synth`.
#[derive(clap::Args)]
pub struct SynthArgs {
    /// Output folder (must not hold a dataset yet); name it `market1501` to use it from
    /// torchreid with the parent as root. With --video: the data root the tracklets go under
    /// (`dukemtmc-vidreid/`).
    pub out: PathBuf,
    /// Tracklets instead of images: the video dataset `dukemtmcvidreid` (ids, cameras up to
    /// 8, height, width and seed apply; --images-per-camera and --distractors do not).
    #[arg(long)]
    pub video: bool,
    /// With --video: fewest frames of a tracklet.
    #[arg(long, default_value_t = 4)]
    pub min_frames: usize,
    /// With --video: most frames of a tracklet.
    #[arg(long, default_value_t = 12)]
    pub max_frames: usize,
    /// Identities (half train, half test).
    #[arg(long, default_value_t = 200)]
    pub ids: usize,
    /// Cameras (2-6).
    #[arg(long, default_value_t = 6)]
    pub cameras: usize,
    /// Most images of an identity per camera.
    #[arg(long, default_value_t = 4)]
    pub images_per_camera: usize,
    /// Gallery distractors (pid 0).
    #[arg(long, default_value_t = 100)]
    pub distractors: usize,
    /// Image height.
    #[arg(long, default_value_t = 128)]
    pub height: usize,
    /// Image width.
    #[arg(long, default_value_t = 64)]
    pub width: usize,
    /// Random seed.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

impl SynthArgs {
    /// Runs the command.
    pub fn run(self) -> reid::Result<()> {
        let Self {
            out,
            video,
            min_frames,
            max_frames,
            ids,
            cameras,
            images_per_camera,
            distractors,
            height,
            width,
            seed,
        } = self;
        if video {
            let options = reid::data::synth::VideoSynthOptions {
                ids,
                cameras,
                min_frames,
                max_frames,
                height,
                width,
                seed,
            };
            let written = reid::data::synth::synthesize_video(&out, &options)?;
            println!(
                "{}: {} train, {} query, {} gallery tracklets, {} frames ({ids} identities, \
                 {cameras} cameras, seed {seed}); read it as dukemtmcvidreid",
                out.display(),
                written.train,
                written.query,
                written.gallery,
                written.frames
            );
            return Ok(());
        }
        let options = reid::data::SynthOptions {
            ids,
            cameras,
            max_images_per_camera: images_per_camera,
            distractors,
            height,
            width,
            seed,
        };
        let written = reid::data::synthesize(&out, &options)?;
        println!(
            "{}: {} train, {} query, {} gallery images ({ids} identities, {cameras} cameras, seed {seed})",
            out.display(),
            written.train,
            written.query,
            written.gallery
        );
        Ok(())
    }
}

/// Arguments of `synth-classes`.
#[derive(clap::Args)]
pub struct SynthClassesArgs {
    /// Output folder (must not hold a dataset yet).
    pub out: PathBuf,
    /// Classes (2-48).
    #[arg(long, default_value_t = 10)]
    pub classes: usize,
    /// Training images per class.
    #[arg(long, default_value_t = 40)]
    pub train_per_class: usize,
    /// Validation images per class.
    #[arg(long, default_value_t = 10)]
    pub val_per_class: usize,
    /// Square image side.
    #[arg(long, default_value_t = 64)]
    pub size: usize,
    /// Several objects per image, each labelled.
    #[arg(long)]
    pub multilabel: bool,
    /// Most objects in a multi-label image (1-4).
    #[arg(long, default_value_t = 3)]
    pub max_labels: usize,
    /// Random seed.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

impl SynthClassesArgs {
    /// Runs the command.
    pub fn run(self) -> reid::Result<()> {
        let Self {
            out,
            classes,
            train_per_class,
            val_per_class,
            size,
            multilabel,
            max_labels,
            seed,
        } = self;
        let options = reid::data::synth::ClassSynthOptions {
            classes,
            train_per_class,
            val_per_class,
            size,
            multilabel,
            max_labels,
            seed,
        };
        let written = reid::data::synth::synthesize_classes(&out, &options)?;
        println!(
            "{}: {} train, {} val images ({classes} classes{}, seed {seed})",
            out.display(),
            written.train,
            written.val,
            if multilabel { ", multi-label" } else { "" }
        );
        Ok(())
    }
}

/// Arguments of `dataset`.
#[derive(clap::Args)]
pub struct DatasetArgs {
    /// Dataset name: market1501, dukemtmcreid, msmt17, cuhk03 (_labeled, _classic),
    /// viper, grid, cuhk01, prid, ilids, sensereid, folders; the video datasets mars,
    /// ilidsvid, prid2011, dukemtmcvidreid.
    pub name: String,
    /// Root folder (as torchreid's `--root`).
    #[arg(long)]
    pub root: PathBuf,
    /// Split of the datasets with several (torchreid's `split_id`).
    #[arg(long, default_value_t = 0)]
    pub split_id: usize,
}

impl DatasetArgs {
    /// Runs the command.
    pub fn run(self) -> reid::Result<()> {
        let Self {
            name,
            root,
            split_id,
        } = self;
        if reid::data::video::VIDEO_DATASETS.contains(&name.as_str()) {
            let videos = reid::data::video::load_video_dataset(&name, &root, split_id)?;
            print!("{}", videos.summary());
        } else {
            let dataset = reid::data::load_dataset_split(&name, &root, split_id)?;
            print!("{}", dataset.summary());
        }
        Ok(())
    }
}
