//! Crop storage and re-embedding. A gallery may keep the image each entry's embedding was
//! computed from (encoded, each at most a bound the gallery records); after a finetune one call
//! embeds every kept crop with the new model and replaces every vector, the model's fingerprint
//! and the calibration in one transaction, so that no search sees two models' embeddings.

use super::{CALIBRATION_KEY, Gallery, MODEL_KEY, Store, calibration_record, check_fingerprint};
use crate::calibration::Calibration;
use crate::error::{Error, Result};

/// The setting recording a gallery's bound on one crop, in bytes (absent: it keeps none).
const CROP_LIMIT_KEY: &str = "crops.max_bytes";

/// The largest bound a gallery accepts on one crop: 16 MiB.
pub const MAX_CROP_BYTES: usize = 16 << 20;

/// How many crops [`Gallery::reembed`] hands its embedding function at a time.
pub const CROPS_PER_CALL: usize = 64;

impl Gallery {
    /// Keeps each entry's crop from now on ([`super::NewEntry::crop`], [`Gallery::set_crop`]),
    /// each at most `max_bytes` (1 to [`MAX_CROP_BYTES`]). Recorded with the gallery: it
    /// holds for every process that opens it.
    pub fn keep_crops(&self, max_bytes: usize) -> Result<()> {
        if !(1..=MAX_CROP_BYTES).contains(&max_bytes) {
            return Err(Error::InvalidInput(format!(
                "a crop bound of {max_bytes} bytes: 1 to {MAX_CROP_BYTES}"
            )));
        }
        self.store.set_meta(CROP_LIMIT_KEY, &max_bytes.to_string())
    }

    /// The bound on one crop, when the gallery keeps crops.
    pub fn crop_limit(&self) -> Result<Option<usize>> {
        let Some(value) = self.store.meta(CROP_LIMIT_KEY)? else {
            return Ok(None);
        };
        match value.parse::<usize>() {
            Ok(limit) if (1..=MAX_CROP_BYTES).contains(&limit) => Ok(Some(limit)),
            _ => Err(Error::InvalidInput(format!(
                "the gallery's crop bound `{value}` is corrupt"
            ))),
        }
    }

    /// The bound on one crop; an error for a gallery that keeps none.
    pub(super) fn crops_kept(&self) -> Result<usize> {
        self.crop_limit()?.ok_or_else(|| {
            Error::InvalidInput(
                "this gallery keeps no crops (Gallery::keep_crops turns them on)".into(),
            )
        })
    }

    /// The crop kept with entry `id`, `None` if it has none ([`Error::NotFound`] if there is
    /// no such entry).
    pub fn crop(&self, id: u64) -> Result<Option<Vec<u8>>> {
        self.store.crop(id)
    }

    /// Gives entry `id` the crop `crop` (an encoded image within the gallery's bound),
    /// replacing any it had.
    pub fn set_crop(&self, id: u64, crop: Vec<u8>) -> Result<()> {
        check_crop(&crop, self.crops_kept()?)?;
        self.store.set_crop(id, crop)
    }

    /// Re-embeds every entry from its kept crop with a new model: `embed` receives up to
    /// [`CROPS_PER_CALL`] crops at a time and returns their embeddings (`dim` values each, in
    /// order; `Extractor::extract_encoded` does). Then, in one transaction, every vector is
    /// replaced, the gallery is bound to `fingerprint` (the new model's) and its calibration
    /// becomes `calibration` (the new model's, if it carries one; the old model's threshold
    /// would not fit). Nothing changes if an entry has no crop, `embed` fails, or entries are
    /// added or removed meanwhile. Returns the number of entries re-embedded.
    pub fn reembed(
        &self,
        fingerprint: &str,
        calibration: Option<&Calibration>,
        mut embed: impl FnMut(&[&[u8]]) -> Result<Vec<f32>>,
    ) -> Result<usize> {
        check_fingerprint(fingerprint)?;
        let calibration = calibration
            .map(|c| calibration_record(c, self.metric))
            .transpose()?;
        let missing = self.store.without_crop()?;
        if let Some(first) = missing.first() {
            return Err(Error::InvalidInput(format!(
                "{} entries have no crop (entry {first} first): re-embedding needs every \
                 entry's crop",
                missing.len()
            )));
        }
        let mut vectors = Vec::new();
        for_each_page(self.store.as_ref(), |page| {
            let images = page
                .iter()
                .map(|(_, crop)| crop.as_deref().ok_or_else(super::changed_meanwhile))
                .collect::<Result<Vec<&[u8]>>>()?;
            let embeddings = embed(&images)?;
            if embeddings.len() != images.len() * self.dim {
                return Err(Error::InvalidInput(format!(
                    "the new model gave {} values for {} crops; the gallery holds {}-d \
                     embeddings",
                    embeddings.len(),
                    images.len(),
                    self.dim
                )));
            }
            for ((id, _), vector) in page.iter().zip(embeddings.chunks_exact(self.dim)) {
                vectors.push((*id, self.prepare(vector)?));
            }
            Ok(())
        })?;
        let count = vectors.len();
        let settings = [
            (MODEL_KEY, Some(fingerprint.to_string())),
            (CALIBRATION_KEY, calibration),
        ];
        self.store.replace_vectors(vectors, &settings)?;
        Ok(count)
    }
}

/// Checks a crop: at most `limit` bytes, and an image reid decodes (so that re-embedding
/// cannot fail on it later).
pub(super) fn check_crop(crop: &[u8], limit: usize) -> Result<()> {
    if crop.len() > limit {
        return Err(Error::InvalidInput(format!(
            "a crop of {} bytes is over the gallery's bound of {limit}",
            crop.len()
        )));
    }
    crate::preprocess::decode(crop)
        .map(|_| ())
        .map_err(|e| Error::InvalidInput(format!("crop: {e}")))
}

/// Every crop of `store`, by entry id (to copy a gallery whole).
pub(super) fn all_crops(store: &dyn Store) -> Result<Vec<(u64, Vec<u8>)>> {
    let mut crops = Vec::new();
    for_each_page(store, |page| {
        crops.extend(page.into_iter().filter_map(|(id, c)| Some((id, c?))));
        Ok(())
    })?;
    Ok(crops)
}

/// Hands `visit` every entry's crop, [`CROPS_PER_CALL`] entries at a time, by id.
fn for_each_page(
    store: &dyn Store,
    mut visit: impl FnMut(Vec<(u64, Option<Vec<u8>>)>) -> Result<()>,
) -> Result<()> {
    let mut after = None;
    loop {
        let page = store.crops(after, CROPS_PER_CALL)?;
        let Some(&(last, _)) = page.last() else {
            return Ok(());
        };
        after = Some(last);
        visit(page)?;
    }
}
