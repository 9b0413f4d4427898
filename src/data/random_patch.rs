//! torchreid's `RandomPatch` (the OSNet papers' occlusion augmentation): every image gives a
//! random patch of itself to a pool, and, once the pool holds enough, gets a patch from the
//! pool pasted over it at a random place — mirrored and rotated at random.
//!
//! torchreid runs it image by image, so each image sees the pool as the images before it left
//! it. reid augments a batch's images in parallel: each sees the pool as the batches before
//! left it plus its own new patch, and the batch's patches join the pool afterwards, in the
//! batch's order — the same stream for a given seed whatever the number of threads. With
//! batches of one this is torchreid's pool exactly. The pool is not saved in checkpoints: a
//! resumed run starts with an empty one.

use std::collections::VecDeque;
use std::sync::{Arc, PoisonError, RwLock};

use crate::data::image_ops::{self, Resample, crop};
use crate::data::rng::Rng;
use crate::data::transform_sections::RandomPatch;

/// An RGB patch cut from a training image.
#[derive(Debug, Clone, PartialEq)]
pub struct Patch {
    /// Packed RGB rows.
    pub rgb: Vec<u8>,
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
}

/// The last `capacity` patches collected (torchreid's `deque(maxlen=pool_capacity)`).
#[derive(Debug, Default)]
pub struct PatchPool {
    patches: VecDeque<Patch>,
}

impl PatchPool {
    /// Number of patches held.
    pub fn len(&self) -> usize {
        self.patches.len()
    }

    /// Whether the pool holds no patch.
    pub fn is_empty(&self) -> bool {
        self.patches.is_empty()
    }

    /// Adds `patch`, dropping the oldest beyond `capacity`.
    pub fn push(&mut self, patch: Patch, capacity: usize) {
        self.patches.push_back(patch);
        while self.patches.len() > capacity {
            self.patches.pop_front();
        }
    }

    /// The pool an image sees after adding its own patch `own` (without changing `self`): its
    /// length, and its patch at `index`.
    fn view<'a>(&'a self, own: Option<&'a Patch>, capacity: usize) -> PoolView<'a> {
        let total = self.len() + usize::from(own.is_some());
        let len = total.min(capacity);
        PoolView {
            pool: self,
            own,
            skip: total - len,
            len,
        }
    }
}

struct PoolView<'a> {
    pool: &'a PatchPool,
    own: Option<&'a Patch>,
    skip: usize,
    len: usize,
}

impl<'a> PoolView<'a> {
    fn get(&self, index: usize) -> &'a Patch {
        let i = index + self.skip;
        self.pool
            .patches
            .get(i)
            .or(self.own)
            .expect("index below the view's length")
    }
}

/// A run's pool, shared by the batches of a training run (reads in parallel within a batch,
/// writes between batches).
#[derive(Debug, Clone, Default)]
pub struct SharedPatchPool(Arc<RwLock<PatchPool>>);

impl PartialEq for SharedPatchPool {
    /// Two handles are equal when they share the pool: a pool's contents are the run's state,
    /// not part of any setting.
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl SharedPatchPool {
    /// Runs `f` on the pool as it stands (a poisoned lock still holds a whole pool: patches
    /// are added one by one).
    pub fn read<R>(&self, f: impl FnOnce(&PatchPool) -> R) -> R {
        f(&self.0.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Adds a batch's patches in the batch's order.
    pub fn extend(&self, patches: impl IntoIterator<Item = Patch>, capacity: usize) {
        let mut pool = self.0.write().unwrap_or_else(PoisonError::into_inner);
        for patch in patches {
            pool.push(patch, capacity);
        }
    }
}

/// torchreid's `generate_wh` for a `w × h` image: up to 100 tries of an area share and an
/// aspect ratio (`unit` gives the uniform draws in [0, 1), area then ratio), the first patch
/// smaller than the image on both sides. Python's `int(round(·))` rounds halves to even.
pub fn patch_size(
    w: usize,
    h: usize,
    s: &RandomPatch,
    mut unit: impl FnMut() -> f64,
) -> Option<(usize, usize)> {
    let area = (w * h) as f64;
    for _ in 0..100 {
        let target = (s.patch_min_area + (s.patch_max_area - s.patch_min_area) * unit()) * area;
        let ratio = s.patch_min_ratio + (1.0 / s.patch_min_ratio - s.patch_min_ratio) * unit();
        let ph = (target * ratio).sqrt().round_ties_even() as usize;
        let pw = (target / ratio).sqrt().round_ties_even() as usize;
        if pw < w && ph < h {
            return Some((pw, ph));
        }
    }
    None
}

/// Pastes `patch` with its top-left corner at `(x, y)` (the patch fits), first mirrored if
/// `mirror`, then rotated by `degrees` about its centre if given — Pillow's `rotate` with
/// nearest sampling, so the corners it turns out of the patch paste as black.
pub fn paste(
    img: &mut [u8],
    w: usize,
    patch: &Patch,
    (x, y): (usize, usize),
    mirror: bool,
    degrees: Option<i32>,
) {
    let (pw, ph) = (patch.width, patch.height);
    if pw == 0 || ph == 0 {
        // A patch rounded to no pixels (small images, small areas): pasting it changes nothing.
        return;
    }
    let mut rgb = patch.rgb.clone();
    if mirror {
        image_ops::flip(&mut rgb, pw);
    }
    if let Some(degrees) = degrees {
        rgb = image_ops::rotate(&rgb, pw, ph, f64::from(degrees), Resample::Nearest, [0; 3]);
    }
    for (row, src) in rgb.chunks_exact(pw * 3).enumerate() {
        let start = ((y + row) * w + x) * 3;
        img[start..start + pw * 3].copy_from_slice(src);
    }
}

/// Inclusive uniform integer in `[lo, hi]` (Python's `random.randint`).
fn randint(lo: i64, hi: i64, rng: &mut Rng) -> i64 {
    lo + rng.below((hi - lo + 1) as usize) as i64
}

/// The transform on one `w × h` image with torchreid's draws in its order: the patch it
/// gives (returned, for the pool), then — when the pool it sees holds at least
/// `min_sample_size` patches and with probability `p` — a pasted one.
pub fn random_patch(
    img: &mut [u8],
    w: usize,
    h: usize,
    s: &RandomPatch,
    pool: &PatchPool,
    rng: &mut Rng,
) -> Option<Patch> {
    let own = patch_size(w, h, s, || f64::from(rng.unit())).map(|(pw, ph)| {
        let x = randint(0, (w - pw) as i64, rng) as usize;
        let y = randint(0, (h - ph) as i64, rng) as usize;
        Patch {
            rgb: crop(img, w, (x, y, pw, ph)),
            width: pw,
            height: ph,
        }
    });
    let view = pool.view(own.as_ref(), s.pool_capacity);
    // torchreid pastes when `uniform(0, 1) > p` is false.
    if view.len < s.min_sample_size.max(1) || rng.unit() > s.p {
        return own;
    }
    let patch = view.get(rng.below(view.len));
    let x = randint(0, (w - patch.width) as i64, rng) as usize;
    let y = randint(0, (h - patch.height) as i64, rng) as usize;
    let mirror = rng.unit() > s.prob_flip_leftright;
    let degrees = (rng.unit() > s.prob_rotate).then(|| randint(-10, 10, rng) as i32);
    let patch = patch.clone();
    paste(img, w, &patch, (x, y), mirror, degrees);
    own
}

#[cfg(test)]
mod tests {
    use super::*;

    fn patch(tag: u8) -> Patch {
        Patch {
            rgb: vec![tag; 3],
            width: 1,
            height: 1,
        }
    }

    #[test]
    fn the_view_adds_the_own_patch_and_drops_the_oldest_past_capacity() {
        let mut pool = PatchPool::default();
        for tag in 0..3 {
            pool.push(patch(tag), 3);
        }
        pool.push(patch(3), 3);
        assert_eq!(pool.len(), 3);
        let own = patch(9);
        let view = pool.view(Some(&own), 3);
        let tags: Vec<u8> = (0..view.len).map(|i| view.get(i).rgb[0]).collect();
        assert_eq!(tags, [2, 3, 9]);
        let view = pool.view(None, 3);
        let tags: Vec<u8> = (0..view.len).map(|i| view.get(i).rgb[0]).collect();
        assert_eq!(tags, [1, 2, 3]);
    }

    #[test]
    fn a_patch_of_no_pixels_pastes_nothing() {
        let mut img = vec![7u8; 4 * 4 * 3];
        let empty = Patch {
            rgb: Vec::new(),
            width: 0,
            height: 2,
        };
        paste(&mut img, 4, &empty, (1, 1), true, Some(5));
        assert_eq!(img, vec![7u8; 4 * 4 * 3]);
    }

    #[test]
    fn nothing_is_pasted_before_the_pool_is_full_enough() {
        let s = RandomPatch {
            p: 1.0,
            min_sample_size: 2,
            ..RandomPatch::default()
        };
        let (w, h) = (16, 32);
        let image: Vec<u8> = (0..w * h * 3).map(|v| (v % 251) as u8).collect();
        let mut img = image.clone();
        let own = random_patch(&mut img, w, h, &s, &PatchPool::default(), &mut Rng::new(3));
        assert_eq!(img, image, "one patch in view, two needed");
        let own = own.expect("a patch fits");
        assert!(own.width < w && own.height < h);
    }
}
