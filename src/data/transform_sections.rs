//! deep-object-reid's `data.transforms`: one section per augmentation, each switched on by
//! `enable`, with its own probability and parameters, run in deep-object-reid's fixed order
//! whatever the order of the keys. The defaults are deep-object-reid's
//! (`scripts/default_config.py` at e1df6e05).
//!
//! Where deep-object-reid's code does something other than its keys say, reid follows the keys
//! and says so on the field: `randaugment.p` is honoured (deep-object-reid ignores it);
//! `cutout` and `coarse_dropout` place their boxes over the whole image of any shape
//! (deep-object-reid swaps the axes, which only square images hide). Sections reid does not
//! implement are accepted switched off and refused switched on, by name.

use serde::{Deserialize, Deserializer, Serialize};

use crate::error::{Error, Result};

fn yes() -> bool {
    true
}

/// A section with only a probability.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Chance {
    /// Whether the transform runs.
    #[serde(default)]
    pub enable: bool,
    /// Probability per image.
    #[serde(default = "half")]
    pub p: f32,
}

fn half() -> f32 {
    0.5
}

impl Default for Chance {
    fn default() -> Self {
        Self {
            enable: false,
            p: 0.5,
        }
    }
}

/// `random_flip`: on by default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Flip {
    /// Whether the transform runs.
    #[serde(default = "yes")]
    pub enable: bool,
    /// Probability per image.
    #[serde(default = "half")]
    pub p: f32,
}

impl Default for Flip {
    fn default() -> Self {
        Self {
            enable: true,
            p: 0.5,
        }
    }
}

/// A section with no parameter.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Switch {
    /// Whether the transform runs.
    #[serde(default)]
    pub enable: bool,
}

/// `center_crop`: `margin` pixels cut from every side before the resize.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CenterCrop {
    /// Whether the transform runs.
    pub enable: bool,
    /// Pixels removed from each side.
    pub margin: usize,
    /// Only at test time (deep-object-reid crops test images whenever the section is on).
    pub test_only: bool,
}

/// `random_crop`: deep-object-reid's crop of a random scale before the resize, optionally of
/// the input's aspect ratio and around the centre.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RandomCrop {
    /// Whether the transform runs.
    pub enable: bool,
    /// Probability per image.
    pub p: f32,
    /// The smallest side scale (0 < scale < 1), unless `margin` sets it.
    pub scale: f64,
    /// When > 0, the smallest crop leaves `margin` pixels on each side instead.
    pub margin: usize,
    /// Always the smallest crop (`static`).
    #[serde(rename = "static")]
    pub fixed: bool,
    /// Crop to an aspect ratio drawn between the image's and the network input's.
    pub align_ar: bool,
    /// Keep the smallest crop's centred box inside the crop.
    pub align_center: bool,
}

impl Default for RandomCrop {
    fn default() -> Self {
        Self {
            enable: false,
            p: 0.5,
            scale: 0.9,
            margin: 0,
            fixed: false,
            align_ar: false,
            align_center: false,
        }
    }
}

/// `posterize`: keep `bits`–6 high bits (uniform integer).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Posterize {
    /// Whether the transform runs.
    pub enable: bool,
    /// Probability per image.
    pub p: f32,
    /// The fewest bits kept (1–6).
    pub bits: u32,
}

impl Default for Posterize {
    fn default() -> Self {
        Self {
            enable: false,
            p: 0.5,
            bits: 1,
        }
    }
}

/// `random_perspective`: torchvision's `RandomPerspective` (deep-object-reid defines the keys
/// but has no implementation behind them), after `random_rotate`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Perspective {
    /// Whether the transform runs.
    pub enable: bool,
    /// Probability per image.
    pub p: f32,
    /// How far the corners may move, as a share of half the side.
    pub distortion_scale: f32,
}

impl Default for Perspective {
    fn default() -> Self {
        Self {
            enable: false,
            p: 0.5,
            distortion_scale: 0.5,
        }
    }
}

/// `color_jitter` (torchvision's `ColorJitter` with probability `p`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ColorJitter {
    /// Whether the transform runs.
    pub enable: bool,
    /// Probability per image.
    pub p: f32,
    /// Brightness factor drawn from [1 − b, 1 + b].
    pub brightness: f32,
    /// Contrast factor drawn from [1 − c, 1 + c].
    pub contrast: f32,
    /// Saturation factor drawn from [1 − s, 1 + s].
    pub saturation: f32,
    /// Hue shift drawn from [−h, h] turns.
    pub hue: f32,
}

impl Default for ColorJitter {
    fn default() -> Self {
        Self {
            enable: false,
            p: 0.5,
            brightness: 0.2,
            contrast: 0.2,
            saturation: 0.1,
            hue: 0.1,
        }
    }
}

/// `random_erase` (Zhong et al.): a rectangle of area `sl`–`sh` of the image and aspect
/// `rl`–`rh` filled with `fill_color` (0–255), 100 attempts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RandomErase {
    /// Whether the transform runs.
    pub enable: bool,
    /// Probability per image.
    pub p: f32,
    /// Smallest area share.
    pub sl: f32,
    /// Largest area share.
    pub sh: f32,
    /// Smallest aspect (height / width).
    pub rl: f32,
    /// Largest aspect.
    pub rh: f32,
    /// Fill, per channel, 0–255.
    #[serde(deserialize_with = "numbers")]
    pub fill_color: Vec<f32>,
    /// Erase on the normalized image (deep-object-reid's default; the same rectangle either
    /// way, the fill is converted).
    pub norm_image: bool,
}

impl Default for RandomErase {
    fn default() -> Self {
        Self {
            enable: false,
            p: 0.5,
            sl: 0.2,
            sh: 0.4,
            rl: 0.3,
            rh: 3.3,
            fill_color: vec![125.307, 122.961, 113.8575],
            norm_image: true,
        }
    }
}

/// `coarse_dropout`: `min_holes`–`max_holes` rectangles of `min_height`–`max_height` ×
/// `min_width`–`max_width` pixels (uniform integers) set to `fill_value`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CoarseDropout {
    /// Whether the transform runs.
    pub enable: bool,
    /// Probability per image.
    pub p: f32,
    /// Most holes.
    pub max_holes: usize,
    /// Tallest hole.
    pub max_height: usize,
    /// Widest hole.
    pub max_width: usize,
    /// Fewest holes (none: `max_holes`).
    pub min_holes: Option<usize>,
    /// Shortest hole (none: `max_height`).
    pub min_height: Option<usize>,
    /// Narrowest hole (none: `max_width`).
    pub min_width: Option<usize>,
    /// The holes' value, 0–255.
    pub fill_value: u8,
    /// Accepted for deep-object-reid's configs; there are no masks to fill.
    pub mask_fill_value: Option<u8>,
}

impl Default for CoarseDropout {
    fn default() -> Self {
        Self {
            enable: false,
            p: 0.5,
            max_holes: 8,
            max_height: 8,
            max_width: 8,
            min_holes: None,
            min_height: None,
            min_width: None,
            fill_value: 0,
            mask_fill_value: None,
        }
    }
}

/// `random_rotate`: an integer angle from `angle` (inclusive), or one of `values` when any of
/// them is non-zero; nearest neighbour, black corners.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RandomRotate {
    /// Whether the transform runs.
    pub enable: bool,
    /// Probability per image.
    pub p: f32,
    /// Lowest and highest angle, degrees (counter-clockwise positive).
    #[serde(deserialize_with = "numbers")]
    pub angle: Vec<f32>,
    /// Angles to choose from instead (used when any is non-zero).
    #[serde(deserialize_with = "numbers")]
    pub values: Vec<f32>,
}

impl Default for RandomRotate {
    fn default() -> Self {
        Self {
            enable: false,
            p: 0.5,
            angle: vec![-5.0, 5.0],
            values: vec![0.0],
        }
    }
}

/// `random_blur`: a k × k box filter (`cv2.blur`; deep-object-reid's class is called
/// `GaussianBlur`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RandomBlur {
    /// Whether the transform runs.
    pub enable: bool,
    /// Probability per image.
    pub p: f32,
    /// Box side, odd.
    pub k: usize,
}

impl Default for RandomBlur {
    fn default() -> Self {
        Self {
            enable: false,
            p: 0.5,
            k: 5,
        }
    }
}

/// `random_noise`: Gaussian noise of a standard deviation drawn from [0, sigma × the image's
/// value range].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RandomNoise {
    /// Whether the transform runs.
    pub enable: bool,
    /// Probability per image.
    pub p: f32,
    /// Largest standard deviation, as a share of the value range.
    pub sigma: f32,
    /// One noise value per pixel for all three channels.
    pub grayscale: bool,
}

impl Default for RandomNoise {
    fn default() -> Self {
        Self {
            enable: false,
            p: 0.2,
            sigma: 0.05,
            grayscale: false,
        }
    }
}

/// `augmix`: reid's AugMix (the paper's operations, width 3, severity 3).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Augmix {
    /// Whether the transform runs.
    pub enable: bool,
    /// timm's configuration string; only deep-object-reid's default is accepted.
    pub cfg_str: String,
    /// The grey-image operation subset (refused when true).
    pub grey_imgs: bool,
}

/// deep-object-reid's AugMix configuration string.
const AUGMIX_CFG: &str = "augmix-m5-w3";

impl Default for Augmix {
    fn default() -> Self {
        Self {
            enable: false,
            cfg_str: AUGMIX_CFG.into(),
            grey_imgs: false,
        }
    }
}

/// `cutout`: one box of `cutout_factor` × the image's sides at a uniform centre, filled with
/// a random colour or `fill_color`; Pillow's rectangle, both ends included.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Cutout {
    /// Whether the transform runs.
    pub enable: bool,
    /// Probability per image.
    pub p: f32,
    /// The box's sides as a share of the image's.
    pub cutout_factor: f32,
    /// `random` (each channel uniform 0–255) or an RGB triple.
    #[serde(deserialize_with = "fill_color")]
    pub fill_color: Option<[u8; 3]>,
}

impl Default for Cutout {
    fn default() -> Self {
        Self {
            enable: false,
            p: 0.5,
            cutout_factor: 0.3,
            fill_color: None,
        }
    }
}

/// `randaugment`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RandAugment {
    /// Whether the transform runs.
    pub enable: bool,
    /// Probability per image (honoured; deep-object-reid always applies it).
    pub p: f32,
}

impl Default for RandAugment {
    fn default() -> Self {
        Self {
            enable: false,
            p: 1.0,
        }
    }
}

/// `mixup` (sample level): with probability `p`, the image blended with a random image of a
/// list — `(1 − a) · image + a · other`, `a` ~ Beta(alpha, alpha) folded to at most 0.5 — the
/// other image resized to 1.125 × the input size, cropped back at a random place and mirrored
/// half the time; the label stays. (deep-object-reid's `MixUp` calls a NumPy array's `resize`
/// where it means Pillow's, so its own runs of this section fail or blend garbage; reid does
/// what its code means.)
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SampleMixup {
    /// Whether the transform runs.
    pub enable: bool,
    /// Probability per image.
    pub p: f32,
    /// Beta parameter of the blend.
    pub alpha: f32,
    /// Folder the listed images are relative to.
    pub images_root_dir: std::path::PathBuf,
    /// Text file: one image path per line.
    pub images_list_file: std::path::PathBuf,
}

impl Default for SampleMixup {
    fn default() -> Self {
        Self {
            enable: false,
            p: 0.33,
            alpha: 0.2,
            images_root_dir: Default::default(),
            images_list_file: Default::default(),
        }
    }
}

impl SampleMixup {
    /// The images to blend with: every non-empty line of `images_list_file`, under
    /// `images_root_dir`, each checked to exist.
    pub fn images(&self) -> Result<Vec<std::path::PathBuf>> {
        let list = std::fs::read_to_string(&self.images_list_file)
            .map_err(|e| Error::io(&self.images_list_file, e))?;
        let images: Vec<std::path::PathBuf> = list
            .lines()
            .map(str::trim_end)
            .filter(|l| !l.is_empty())
            .map(|l| self.images_root_dir.join(l))
            .collect();
        if let Some(missing) = images.iter().find(|p| !p.is_file()) {
            return Err(invalid(
                "mixup",
                format!(
                    "{} lists {}, which is not a file",
                    self.images_list_file.display(),
                    missing.display()
                ),
            ));
        }
        if images.is_empty() {
            return Err(invalid(
                "mixup",
                format!("{} lists no image", self.images_list_file.display()),
            ));
        }
        Ok(images)
    }
}

/// `test`: deep-object-reid's test-time resize options (only its defaults are accepted).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TestResize {
    /// Resize before the centre crop.
    pub resize_first: bool,
    /// Scale of that resize.
    pub resize_scale: f32,
}

impl Default for TestResize {
    fn default() -> Self {
        Self {
            resize_first: false,
            resize_scale: 1.0,
        }
    }
}

/// `random_patch`: torchreid's `RandomPatch` (see [`crate::data::random_patch`]), with its
/// defaults (deep-object-reid's are the same).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RandomPatch {
    /// Whether the transform runs.
    pub enable: bool,
    /// Probability of a paste per image (once the pool is full enough).
    pub p: f32,
    /// Most patches the pool keeps (the oldest go first).
    pub pool_capacity: usize,
    /// Fewest patches in the pool before any is pasted.
    pub min_sample_size: usize,
    /// Smallest patch area, as a share of the image.
    pub patch_min_area: f64,
    /// Largest patch area, as a share of the image.
    pub patch_max_area: f64,
    /// Smallest height / width of a patch (the largest is its inverse).
    pub patch_min_ratio: f64,
    /// A pasted patch is rotated (−10° … 10°) unless a uniform draw is at most this.
    pub prob_rotate: f32,
    /// A pasted patch is mirrored unless a uniform draw is at most this.
    pub prob_flip_leftright: f32,
}

impl Default for RandomPatch {
    fn default() -> Self {
        Self {
            enable: false,
            p: 0.5,
            pool_capacity: 50_000,
            min_sample_size: 100,
            patch_min_area: 0.01,
            patch_max_area: 0.5,
            patch_min_ratio: 0.1,
            prob_rotate: 0.5,
            prob_flip_leftright: 0.5,
        }
    }
}

impl RandomPatch {
    /// torchreid's `RandomPatch()`, switched on (the `random_patch` of its transform list).
    pub fn torchreid() -> Self {
        Self {
            enable: true,
            ..Self::default()
        }
    }

    fn validate(&self) -> Result<()> {
        for (key, p) in [
            ("p", self.p),
            ("prob_rotate", self.prob_rotate),
            ("prob_flip_leftright", self.prob_flip_leftright),
        ] {
            if !(0.0..=1.0).contains(&p) {
                return Err(invalid(
                    "random_patch",
                    format!("{key} must lie in [0, 1], not {p}"),
                ));
            }
        }
        let (lo, hi, ratio) = (
            self.patch_min_area,
            self.patch_max_area,
            self.patch_min_ratio,
        );
        if !(0.0 < lo && lo <= hi && hi <= 1.0 && 0.0 < ratio && ratio <= 1.0)
            || self.pool_capacity == 0
        {
            return Err(invalid(
                "random_patch",
                format!(
                    "needs 0 < patch_min_area ≤ patch_max_area ≤ 1, 0 < patch_min_ratio ≤ 1 and \
                     pool_capacity ≥ 1 (areas {lo}, {hi}, ratio {ratio}, capacity {})",
                    self.pool_capacity
                ),
            ));
        }
        Ok(())
    }
}

impl RandomGrid {
    fn validate(&self) -> Result<()> {
        let ok = self.grid_size.0 >= 1
            && self.grid_size.1 <= MAX_SIZE
            && self.thickness.0 >= 1
            && self.thickness.1 <= MAX_THICKNESS
            && self.angle.0 >= -MAX_ANGLE
            && self.angle.1 <= MAX_ANGLE;
        if !ok {
            return Err(invalid(
                "random_grid",
                format!(
                    "needs grid_size 1–{MAX_SIZE}, thickness 1–{MAX_THICKNESS} and angles within \
                     ±{MAX_ANGLE} (grid_size {:?}, thickness {:?}, angle {:?})",
                    self.grid_size, self.thickness, self.angle
                ),
            ));
        }
        Ok(())
    }
}

/// The thickest line reid draws (deep-object-reid's defaults stay under 7).
const MAX_THICKNESS: i64 = 255;

/// The widest grid spacing and circle radius, pixels (the defaults stay under 65): bounds
/// the drawing's work and keeps its fixed-point arithmetic (16 fraction bits) far from
/// overflow.
const MAX_SIZE: i64 = 4096;

/// The largest turn of the grid, degrees.
const MAX_ANGLE: i64 = 3600;

impl RandomFigures {
    fn validate(&self) -> Result<()> {
        let (t, r) = (self.thicknesses, self.circle_radiuses);
        if t.0 < 1 || t.1 > MAX_THICKNESS || r.0 < 0 || r.1 > MAX_SIZE || self.figures.is_empty() {
            return Err(invalid(
                "random_figures",
                format!(
                    "needs thicknesses 1–{MAX_THICKNESS}, circle_radiuses 0–{MAX_SIZE} and at \
                     least one figure (thicknesses {t:?}, circle_radiuses {r:?})"
                ),
            ));
        }
        Ok(())
    }
}

/// `cut_out_with_prior`: one to three black boxes, together covering a share of the image
/// between `max_area / 2` and `max_area`, centred on as many of the five reference face
/// landmarks (eyes, nose, mouth corners) — deep-object-reid's occlusion for aligned faces.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CutOutWithPrior {
    /// Whether the transform runs.
    pub enable: bool,
    /// Probability per image.
    pub p: f32,
    /// Largest share of the image the boxes cover.
    pub max_area: f32,
}

impl Default for CutOutWithPrior {
    fn default() -> Self {
        Self {
            enable: false,
            p: 0.5,
            max_area: 0.1,
        }
    }
}

/// `random_grid`: deep-object-reid's grid of thin slanted lines over the whole image, turned
/// by a random angle and painted in one colour (see [`crate::data::random_grid`]); drawn on
/// the image as decoded, before any crop or resize.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RandomGrid {
    /// Whether the transform runs.
    pub enable: bool,
    /// Probability per image.
    pub p: f32,
    /// `(-1, -1, -1)` (each channel drawn from 0–256, 256 wrapping to 0 as deep-object-reid's
    /// NumPy cast does) or an RGB triple.
    #[serde(deserialize_with = "grid_color")]
    pub color: Option<[u8; 3]>,
    /// Line spacing, pixels: fewest and most (inclusive).
    #[serde(deserialize_with = "int_pair")]
    pub grid_size: (i64, i64),
    /// Line thickness, pixels: fewest and most (inclusive).
    #[serde(deserialize_with = "int_pair")]
    pub thickness: (i64, i64),
    /// Turn, whole degrees: least and most (inclusive; 0 leaves the grid unturned).
    #[serde(deserialize_with = "int_pair")]
    pub angle: (i64, i64),
}

impl Default for RandomGrid {
    fn default() -> Self {
        Self {
            enable: false,
            p: 0.33,
            color: None,
            grid_size: (24, 64),
            thickness: (1, 1),
            angle: (0, 180),
        }
    }
}

/// A figure `random_figures` draws (OpenCV's function of that name).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Figure {
    /// A segment between two random points.
    Line,
    /// The outline of the rectangle two random points span.
    Rectangle,
    /// A circle's outline around a random point.
    Circle,
}

/// `random_figures`: deep-object-reid's random lines, rectangle outlines and circles drawn
/// over the image as decoded (OpenCV's drawing; see [`crate::data::drawing`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RandomFigures {
    /// Whether the transform runs.
    pub enable: bool,
    /// Probability per image.
    pub p: f32,
    /// Each figure in a random colour (each channel 0–256, 256 saturating to 255 as OpenCV
    /// does); black otherwise.
    pub random_color: bool,
    /// Exactly one figure, chosen uniformly from `figures`, instead of each by `figure_prob`.
    pub always_single_figure: bool,
    /// Line thickness: thinnest and thickest (inclusive).
    #[serde(deserialize_with = "int_pair")]
    pub thicknesses: (i64, i64),
    /// Circle radius: smallest and largest (inclusive).
    #[serde(deserialize_with = "int_pair")]
    pub circle_radiuses: (i64, i64),
    /// Each figure of the list is drawn when a uniform draw exceeds this.
    pub figure_prob: f32,
    /// The figures to draw from, in drawing order.
    pub figures: Vec<Figure>,
}

impl Default for RandomFigures {
    fn default() -> Self {
        Self {
            enable: false,
            p: 0.5,
            random_color: true,
            always_single_figure: false,
            thicknesses: (1, 6),
            circle_radiuses: (5, 64),
            figure_prob: 0.5,
            figures: vec![Figure::Line, Figure::Rectangle, Figure::Circle],
        }
    }
}

/// A section reid does not implement: any keys, refused when `enable` is true.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Unsupported(pub serde_json::Map<String, serde_json::Value>);

impl Unsupported {
    fn enabled(&self) -> bool {
        self.0.get("enable").and_then(|v| v.as_bool()) == Some(true)
    }
}

/// deep-object-reid's `data.transforms` sections.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TransformSections {
    /// Horizontal flip (on by default).
    pub random_flip: Flip,
    /// Margin crop before the resize, train and test.
    pub center_crop: CenterCrop,
    /// AugMix.
    pub augmix: Augmix,
    /// RandAugment.
    pub randaugment: RandAugment,
    /// One filled box.
    pub cutout: Cutout,
    /// Box blur.
    pub random_blur: RandomBlur,
    /// Gaussian noise.
    pub random_noise: RandomNoise,
    /// Brightness, contrast, saturation and hue in random order.
    pub color_jitter: ColorJitter,
    /// Grey with probability p.
    pub random_gray_scale: Chance,
    /// Rotation by a random angle.
    pub random_rotate: RandomRotate,
    /// Histogram equalization.
    pub equalize: Chance,
    /// Fewer bits per value.
    pub posterize: Posterize,
    /// Random erasing.
    pub random_erase: RandomErase,
    /// 255 − value.
    pub random_negative: Chance,
    /// Grey always, train and test.
    pub force_gray_scale: Switch,
    /// Several filled rectangles.
    pub coarse_dropout: CoarseDropout,
    /// Zero padding of height / 8 then a random crop back to the size.
    pub crop_pad: Switch,
    /// Perspective distortion.
    pub random_perspective: Perspective,
    /// Crop of a random scale (and aspect ratio) before the resize.
    pub random_crop: RandomCrop,
    /// A turned grid of lines in one colour.
    pub random_grid: RandomGrid,
    /// Random lines, rectangles and circles.
    pub random_figures: RandomFigures,
    /// Patches of earlier images pasted over the image (torchreid's `RandomPatch`).
    pub random_patch: RandomPatch,
    /// Black boxes over some of the five reference face landmarks.
    pub cut_out_with_prior: CutOutWithPrior,
    /// Background replaced through foreground masks (refused: no reader has masks).
    pub random_background_substitution: Unsupported,
    /// Blending with outside images.
    pub mixup: SampleMixup,
    /// Test-time resize options.
    pub test: TestResize,
}

fn probability(name: &str, p: f32) -> Result<()> {
    if (0.0..=1.0).contains(&p) {
        Ok(())
    } else {
        Err(invalid(name, format!("p must lie in [0, 1], not {p}")))
    }
}

fn invalid(name: &str, message: String) -> Error {
    Error::InvalidInput(format!("data.transforms.{name}: {message}"))
}

impl TransformSections {
    /// Refuses sections reid does not implement when enabled, and parameters out of range.
    pub fn validate(&self) -> Result<()> {
        if self.random_background_substitution.enabled() {
            // deep-object-reid swaps the background only where a dataset supplies foreground
            // masks (and leaves an image without one unchanged); no reader here has masks.
            return Err(invalid(
                "random_background_substitution",
                "needs foreground masks, which none of reid's dataset readers provide (deep-object-reid \
                 leaves images without a mask unchanged); switch it off"
                    .into(),
            ));
        }
        if self.random_grid.enable {
            self.random_grid.validate()?;
        }
        if self.random_figures.enable {
            self.random_figures.validate()?;
        }
        if self.random_patch.enable {
            self.random_patch.validate()?;
        }
        let m = self.cut_out_with_prior.max_area;
        if !(m.is_finite() && m > 0.0 && m <= 1.0) {
            return Err(invalid(
                "cut_out_with_prior",
                format!("max_area must lie in (0, 1], not {m}"),
            ));
        }
        let crop = &self.random_crop;
        if crop.enable && !(crop.scale > 0.0 && crop.scale < 1.0) {
            return Err(invalid(
                "random_crop",
                format!("scale must lie in (0, 1), not {}", crop.scale),
            ));
        }
        if self.test != TestResize::default() {
            return Err(invalid(
                "test",
                "only resize_first: false and resize_scale: 1.0 are supported".into(),
            ));
        }
        if self.augmix.enable && (self.augmix.cfg_str != AUGMIX_CFG || self.augmix.grey_imgs) {
            return Err(invalid(
                "augmix",
                format!(
                    "reid's AugMix has the paper's settings: cfg_str must be `{AUGMIX_CFG}` and \
                     grey_imgs false"
                ),
            ));
        }
        for (name, p) in [
            ("random_grid", self.random_grid.p),
            ("random_figures", self.random_figures.p),
            ("random_figures", self.random_figures.figure_prob),
            ("random_flip", self.random_flip.p),
            ("random_crop", self.random_crop.p),
            ("randaugment", self.randaugment.p),
            ("cutout", self.cutout.p),
            ("random_blur", self.random_blur.p),
            ("random_noise", self.random_noise.p),
            ("color_jitter", self.color_jitter.p),
            ("random_gray_scale", self.random_gray_scale.p),
            ("random_rotate", self.random_rotate.p),
            ("equalize", self.equalize.p),
            ("posterize", self.posterize.p),
            ("random_erase", self.random_erase.p),
            ("random_negative", self.random_negative.p),
            ("coarse_dropout", self.coarse_dropout.p),
            ("random_perspective", self.random_perspective.p),
            ("cut_out_with_prior", self.cut_out_with_prior.p),
            ("mixup", self.mixup.p),
        ] {
            probability(name, p)?;
        }
        if !(1..=6).contains(&self.posterize.bits) {
            return Err(invalid("posterize", "bits must lie in 1–6".into()));
        }
        if self.random_blur.k.is_multiple_of(2) {
            return Err(invalid("random_blur", "k must be odd".into()));
        }
        let finite_share = |v: f32| v.is_finite() && (0.0..=1.0).contains(&v);
        if !finite_share(self.cutout.cutout_factor) {
            return Err(invalid("cutout", "cutout_factor must lie in [0, 1]".into()));
        }
        let m = &self.mixup;
        if m.enable
            && (!(m.alpha.is_finite() && m.alpha > 0.0)
                || m.images_root_dir.as_os_str().is_empty()
                || m.images_list_file.as_os_str().is_empty())
        {
            return Err(invalid(
                "mixup",
                "needs alpha > 0, images_root_dir and images_list_file (a file of image paths \
                 relative to images_root_dir, one per line)"
                    .into(),
            ));
        }
        if !finite_share(self.random_perspective.distortion_scale) {
            return Err(invalid(
                "random_perspective",
                "distortion_scale must lie in [0, 1]".into(),
            ));
        }
        if !(self.random_noise.sigma.is_finite() && self.random_noise.sigma >= 0.0) {
            return Err(invalid("random_noise", "sigma must be ≥ 0".into()));
        }
        let c = &self.color_jitter;
        if ![c.brightness, c.contrast, c.saturation]
            .iter()
            .all(|&v| finite_share(v))
            || !(0.0..=0.5).contains(&c.hue)
        {
            return Err(invalid(
                "color_jitter",
                "brightness, contrast and saturation must lie in [0, 1], hue in [0, 0.5]".into(),
            ));
        }
        let e = &self.random_erase;
        if !(0.0 < e.sl && e.sl <= e.sh && e.sh <= 1.0 && 0.0 < e.rl && e.rl <= e.rh)
            || e.fill_color.len() != 3
        {
            return Err(invalid(
                "random_erase",
                "needs 0 < sl ≤ sh ≤ 1, 0 < rl ≤ rh and three fill_color values".into(),
            ));
        }
        let d = &self.coarse_dropout;
        let (holes, height, width) = self.coarse_dropout_ranges();
        if [holes, height, width]
            .iter()
            .any(|&(lo, hi)| lo == 0 || lo > hi)
        {
            return Err(invalid(
                "coarse_dropout",
                format!(
                    "needs 0 < min ≤ max for holes, height and width (holes {holes:?}, height \
                     {height:?}, width {width:?}; fill_value {})",
                    d.fill_value
                ),
            ));
        }
        let r = &self.random_rotate;
        if r.angle.len() != 2 || r.angle[0] > r.angle[1] || r.values.is_empty() {
            return Err(invalid(
                "random_rotate",
                "angle must be (lowest, highest) and values not empty".into(),
            ));
        }
        Ok(())
    }

    /// `(min, max)` of coarse dropout's hole count, height and width, the minima defaulting
    /// to the maxima.
    pub fn coarse_dropout_ranges(&self) -> ((usize, usize), (usize, usize), (usize, usize)) {
        let d = &self.coarse_dropout;
        (
            (d.min_holes.unwrap_or(d.max_holes), d.max_holes),
            (d.min_height.unwrap_or(d.max_height), d.max_height),
            (d.min_width.unwrap_or(d.max_width), d.max_width),
        )
    }

    /// Margin cut from each side of a test image (0: none).
    pub fn test_margin(&self) -> usize {
        if self.center_crop.enable {
            self.center_crop.margin
        } else {
            0
        }
    }
}

/// Numbers from a YAML sequence, a number, or deep-object-reid's tuple strings ("(-5, 5)",
/// "(0,)").
fn numbers<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Vec<f32>, D::Error> {
    let value = serde_json::Value::deserialize(d)?;
    parse_numbers(&value).ok_or_else(|| {
        serde::de::Error::custom(format!(
            "expected numbers like (a, b) or [a, b], not {value}"
        ))
    })
}

fn parse_numbers(value: &serde_json::Value) -> Option<Vec<f32>> {
    match value {
        serde_json::Value::Number(n) => Some(vec![n.as_f64()? as f32]),
        serde_json::Value::Array(items) => {
            items.iter().map(|v| v.as_f64().map(|x| x as f32)).collect()
        }
        serde_json::Value::String(s) => {
            let inner = s.trim().strip_prefix('(')?.strip_suffix(')')?;
            inner
                .split(',')
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(|t| t.parse::<f32>().ok())
                .collect()
        }
        _ => None,
    }
}

/// Two whole numbers, the least first, from a YAML sequence or a tuple string ("(24, 64)").
fn int_pair<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<(i64, i64), D::Error> {
    let value = serde_json::Value::deserialize(d)?;
    parse_numbers(&value)
        .filter(|v| v.len() == 2 && v.iter().all(|x| x.fract() == 0.0) && v[0] <= v[1])
        .map(|v| (v[0] as i64, v[1] as i64))
        .ok_or_else(|| {
            serde::de::Error::custom(format!(
                "expected two whole numbers, the least first, like (a, b), not {value}"
            ))
        })
}

/// `(-1, -1, -1)` or null (random: none) or an RGB triple.
fn grid_color<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Option<[u8; 3]>, D::Error> {
    let value = serde_json::Value::deserialize(d)?;
    let values = parse_numbers(&value).unwrap_or_default();
    if value.is_null() || values == [-1.0; 3] {
        return Ok(None);
    }
    if values.len() == 3 && values.iter().all(|x| (0.0..=255.0).contains(x)) {
        return Ok(Some([values[0] as u8, values[1] as u8, values[2] as u8]));
    }
    Err(serde::de::Error::custom(format!(
        "color: (-1, -1, -1) for a random colour or three values 0–255, not {value}"
    )))
}

/// `random` (none) or an RGB triple.
fn fill_color<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Option<[u8; 3]>, D::Error> {
    let value = serde_json::Value::deserialize(d)?;
    if value.is_null() || value.as_str() == Some("random") {
        return Ok(None);
    }
    let rgb = parse_numbers(&value)
        .filter(|v| v.len() == 3 && v.iter().all(|x| (0.0..=255.0).contains(x)))
        .ok_or_else(|| {
            serde::de::Error::custom(format!(
                "fill_color: `random` or three values 0–255, not {value}"
            ))
        })?;
    Ok(Some([rgb[0] as u8, rgb[1] as u8, rgb[2] as u8]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Result<TransformSections> {
        let s: TransformSections =
            serde_yaml::from_str(yaml).map_err(|e| Error::InvalidInput(e.to_string()))?;
        s.validate()?;
        Ok(s)
    }

    #[test]
    fn deep_object_reid_keys_tuples_and_refusals() {
        let s = parse(
            "random_rotate: {enable: True, p: 0.3, angle: '(-10, 10)', values: '(0,)'}\n\
             cutout: {enable: True, cutout_factor: 0.35, fill_color: '(1, 2, 3)'}\n\
             coarse_dropout: {enable: True, min_holes: 2}\n\
             random_grid: {enable: True, p: 0.33, color: '(-1, -1, -1)', grid_size: '(24, 40)'}\n\
             random_figures: {enable: True, figures: [circle, line], thicknesses: [2, 3]}\n",
        )
        .unwrap();
        assert_eq!(s.random_rotate.angle, vec![-10.0, 10.0]);
        assert_eq!(s.random_rotate.values, vec![0.0]);
        assert_eq!(s.cutout.fill_color, Some([1, 2, 3]));
        assert_eq!(s.coarse_dropout_ranges(), ((2, 8), (8, 8), (8, 8)));
        assert!(s.random_flip.enable, "random_flip is on by default");
        assert_eq!(
            (s.random_grid.color, s.random_grid.grid_size),
            (None, (24, 40))
        );
        assert_eq!(s.random_figures.figures, vec![Figure::Circle, Figure::Line]);
        assert_eq!(s.random_figures.thicknesses, (2, 3));
        for refused in [
            "random_grid: {enable: True, grid_size: '(0, 4)'}",
            "random_grid: {enable: True, color: '(256, 0, 0)'}",
            "random_grid: {enable: True, angle: '(90, 10)'}",
            "random_grid: {enable: True, grid_size: '(24, 1e30)'}",
            "random_grid: {enable: True, angle: '(0, 99999)'}",
            "random_figures: {enable: True, circle_radiuses: '(5, 100000)'}",
            "random_figures: {enable: True, figures: [ellipse]}",
            "random_figures: {enable: True, thicknesses: '(0, 3)'}",
            "random_background_substitution: {enable: True}",
            "random_perspective: {enable: True, distortion_scale: 1.5}",
            "posterize: {enable: True, bits: 7}",
            "random_blur: {enable: True, k: 4}",
            "equalize: {enable: True, p: 1.5}",
            "equalize: {enable: True, q: 0.5}",
            "coarse_dropout: {min_holes: 9}",
            "augmix: {enable: True, cfg_str: augmix-m3-w3}",
            "test: {resize_first: True}",
            "colour_jitter: {enable: True}",
        ] {
            assert!(parse(refused).is_err(), "{refused}");
        }
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(serde_json::from_str::<TransformSections>(&json).unwrap(), s);
    }
}
