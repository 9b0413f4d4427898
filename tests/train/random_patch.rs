//! torchreid's `random_patch` in training batches: every image gives the pool a patch, pastes
//! start once the pool an image sees is full enough, and a batch comes out the same on one
//! thread as on several (the pool grows between batches, in the batch's order).

use reid::data::transform_sections::{RandomPatch, TransformSections};
use reid::data::transforms::Augment;
use reid::device::default_device;
use reid::models::embed::tensor_to_vec;
use reid::preprocess::Preprocessing;
use reid::train::loader::training_batch;

use crate::runs::dataset;

/// Two batches of three images: (the batches' pixels, the pool's size after each).
fn two_batches(set: &reid::data::ReidDataset, patch: RandomPatch) -> (Vec<Vec<f32>>, Vec<usize>) {
    let sections = TransformSections {
        random_patch: patch,
        ..TransformSections::default()
    };
    let augment = Augment::from_sections(&sections).unwrap();
    let pre = Preprocessing::torchreid(64, 32);
    let mut batches = Vec::new();
    let mut sizes = Vec::new();
    for (epoch, indices) in [[0, 1, 2], [3, 4, 5]].iter().enumerate() {
        let (images, _) = training_batch(
            &set.train,
            indices,
            &pre,
            &augment,
            7,
            epoch,
            &default_device(),
        )
        .unwrap();
        batches.push(tensor_to_vec(images));
        sizes.push(augment.patch_pool.read(|pool| pool.len()));
    }
    (batches, sizes)
}

#[test]
fn the_pool_fills_by_batch_and_pastes_start_when_it_is_full_enough() {
    let dir = tempfile::tempdir().unwrap();
    let root = dataset(dir.path());
    let set = reid::data::load_dataset("market1501", &root).unwrap();
    let patch = RandomPatch {
        enable: true,
        p: 1.0,
        min_sample_size: 4,
        ..RandomPatch::default()
    };
    let (plain, _) = two_batches(&set, RandomPatch::default());
    let (patched, sizes) = two_batches(&set, patch.clone());
    assert_eq!(sizes, [3, 6], "one patch per image");
    // In the first batch each image sees one patch (its own), fewer than 4.
    assert_eq!(patched[0], plain[0]);
    let per = 3 * 64 * 32;
    for (i, (a, b)) in patched[1].chunks(per).zip(plain[1].chunks(per)).enumerate() {
        assert_ne!(a, b, "image {i} of the second batch has a patch");
    }
    let one_thread = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap()
        .install(|| two_batches(&set, patch));
    assert_eq!(one_thread.0, patched, "the same batches on one thread");
}

#[test]
fn out_of_range_settings_are_refused_by_name() {
    for bad in [
        RandomPatch {
            patch_min_area: 0.6,
            ..RandomPatch::torchreid()
        },
        RandomPatch {
            patch_min_ratio: 0.0,
            ..RandomPatch::torchreid()
        },
        RandomPatch {
            prob_rotate: 1.5,
            ..RandomPatch::torchreid()
        },
    ] {
        let sections = TransformSections {
            random_patch: bad,
            ..TransformSections::default()
        };
        let err = Augment::from_sections(&sections).unwrap_err().to_string();
        assert!(err.contains("data.transforms.random_patch"), "{err}");
    }
}
